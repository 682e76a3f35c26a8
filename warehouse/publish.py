"""The one write path: publish a staged load, any set of tables, in one short transaction.

Each staged table is written by its spec (`warehouse/tables.py`) — append, merge on the
key, or replace its partitions — under one load id, then the after-publish hooks rebuild
what derives from the rows (the rollups of the hours touched), and `quarantine` and
`ingest_log` say what happened to each input: all or nothing. Every statement goes through
one choke point, so a DuckDB error becomes a `PublishError` naming the table and inputs;
`publish_each` uses that to set a poisoned input aside and publish the rest.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import duckdb
import pyarrow as pa

from warehouse.db import Warehouse, read_sql
from warehouse.errors import WarehouseBusyError, WarehouseError
from warehouse.ingest_state import log_failure
from warehouse.report import InputReport, LoadReport, Status
from warehouse.rollups import statements
from warehouse.stage import INPUT_COLUMN, Stage
from warehouse.tables import TABLES, Disposition, Hook, TableSpec

log = logging.getLogger(__name__)


class PublishError(WarehouseError):
    """A statement of a publish failed: the transaction was rolled back, nothing written."""

    def __init__(self, message: str, *, table: str | None, uris: tuple[str, ...]) -> None:
        super().__init__(message)
        self.table = table
        self.uris = uris


@dataclass
class _Load:
    """The running state of one publish: its connection, id, inputs and touched hours."""

    con: duckdb.DuckDBPyConnection
    load_id: int
    stage: Stage
    inputs: list[int]  # indexes into stage.inputs that this publish writes
    only: int | None
    touched: dict[Hook, set[datetime]] = field(default_factory=dict)
    table: str | None = None  # the table being written, for error messages
    notes: list[Any] = field(default_factory=list)  # (input, what the report says, count)

    @contextmanager
    def writing(self, table: str | None) -> Iterator[None]:
        self.table, before = table, self.table
        try:
            yield
        finally:
            self.table = before

    def run(self, sql: str, params: dict[str, Any] | None = None, *, what: str) -> list[Any]:
        """Execute one statement; a DuckDB error becomes a sentence, never a traceback."""
        used = {k: v for k, v in (params or {}).items() if f"${k}" in sql}
        started, cpu = time.perf_counter(), time.process_time()
        try:
            rows = self.con.execute(sql, used).fetchall()
        except duckdb.Error as exc:
            uris = tuple(self.stage.inputs[i].uri for i in self.inputs)
            shown = ", ".join(uris[:3]) + (f" and {len(uris) - 3} more" if len(uris) > 3 else "")
            target = f"table {self.table!r}" if self.table else "the load's bookkeeping"
            log.error("publish step %s failed: %s\n%s", what, exc, sql)
            raise PublishError(
                f"publishing {target} from {shown or 'no input'} failed at {what}: {exc}",
                table=self.table,
                uris=uris,
            ) from exc
        _took(what, started, cpu)
        return rows


def publish(
    warehouse: Warehouse,
    stage: Stage,
    *,
    source: str,
    specs: Mapping[str, TableSpec] | None = None,
) -> LoadReport:
    """Write every staged table by its spec, run the hooks, log each input; one transaction."""
    return _publish(warehouse, stage, source, specs or TABLES, None)


def publish_each(
    warehouse: Warehouse,
    stage: Stage,
    *,
    source: str,
    specs: Mapping[str, TableSpec] | None = None,
    reason: Callable[[InputReport, Exception], str] | None = None,
    location: str = "publish",
    whole: bool = False,
    settle: Callable[[], None] = lambda: None,
) -> LoadReport:
    """`publish`, and when it fails, each input alone: the failing ones end FAILED (with a
    quarantine row at `location` saying why — `reason(input, error)`, else the error — and
    nothing written), the others are published. `whole`: every input ends FAILED with that
    sentence and nothing is written (inputs that only make sense together). A busy
    warehouse is no input's fault: that error propagates. The inputs are published again
    from the stage they are in, so nothing is read or parsed twice. Each publish calls
    `settle()` before it writes `ingest_log` (the driver's hashes finish meanwhile)."""
    specs = specs or TABLES
    try:
        return _publish(warehouse, stage, source, specs, None, settle)
    except WarehouseBusyError:
        raise  # not an input's fault: the caller waits or retries
    except Exception as exc:  # a statement, the staged frames, or a hook (tests raise)
        if len(stage.inputs) == 1 or whole:
            failed = LoadReport()
            for index in range(len(stage.inputs)):
                failed.add(_failed(warehouse, stage, source, index, reason, exc, location))
            return failed
        log.warning("a publish of %d inputs failed; publishing them one by one", len(stage.inputs))
    report = LoadReport()
    for index in range(len(stage.inputs)):
        try:
            report.add(_publish(warehouse, stage, source, specs, index, settle))
        except WarehouseBusyError:
            raise
        except Exception as exc:
            report.add(_failed(warehouse, stage, source, index, reason, exc, location))
    return report


def _failed(
    warehouse: Warehouse,
    stage: Stage,
    source: str,
    index: int,
    reason: Callable[[InputReport, Exception], str] | None,
    exc: Exception,
    location: str,
) -> LoadReport:
    entry = stage.inputs[index]
    error = reason(entry, exc) if reason else str(exc)
    entry.status, entry.message = Status.FAILED, error
    entry.rows, entry.duplicates = {}, {}
    entry.quarantined = 1  # the row saying why; its records are read again next time
    load_id = log_failure(warehouse, source=source, uri=entry.uri, error=error, location=location)
    return LoadReport(load_ids=[load_id], inputs=[entry])


def _publish(
    warehouse: Warehouse,
    stage: Stage,
    source: str,
    specs: Mapping[str, TableSpec],
    only: int | None,
    settle: Callable[[], None] = lambda: None,
) -> LoadReport:
    unknown = [t for t in stage.tables() if t not in specs]
    if unknown:
        raise WarehouseError(
            f"no write spec for table(s) {', '.join(unknown)}: declare one in warehouse/tables.py"
        )
    started_at, started = datetime.now(UTC), time.perf_counter()
    inputs = list(range(len(stage.inputs))) if only is None else [only]
    fresh: dict[tuple[str, int], int] = {}
    with warehouse.write() as con:
        load = _Load(con, 0, stage, inputs, only)
        load.load_id = int(load.run("SELECT nextval('load_ids')", what="the load id")[0][0])
        for spec in specs.values():  # in declaration order: spans before their evaluations
            if spec.name in stage.tables() and any(stage.staged_rows(spec.name, i) for i in inputs):
                with load.writing(spec.name):
                    _write(load, spec, fresh)
        for hook, hours in load.touched.items():
            if hours:
                with load.writing(None):
                    hook_started, hook_cpu = time.perf_counter(), time.process_time()
                    try:
                        hook(con, hours)
                    except duckdb.Error as exc:
                        raise PublishError(
                            f"refreshing what derives from the load failed: {exc}",
                            table=None,
                            uris=tuple(stage.inputs[i].uri for i in inputs),
                        ) from exc
                    name = getattr(hook, "__name__", repr(hook))
                    _took(f"hook {name} over {len(hours)} hours", hook_started, hook_cpu)
        _quarantine(load, source)
        settle()
        duration_ms = (time.perf_counter() - started) * 1000
        _log_inputs(load, source, fresh, started_at, duration_ms)
    return LoadReport(
        load_ids=[load.load_id],
        inputs=[stage.inputs[i] for i in inputs],
        duration_ms=duration_ms,
        longest_publish_ms=duration_ms,
    )


def _took(what: str, started: float, cpu: float) -> None:
    """One step's wall and CPU time (all threads): on a shared machine the CPU time is the
    figure that says whether a step got cheaper (`benchmarks/ingest_memory.py` sums them)."""
    log.debug(
        "publish step %s took %.1f ms (%.1f ms CPU)",
        what,
        (time.perf_counter() - started) * 1000,
        (time.process_time() - cpu) * 1000,
    )


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _write(load: _Load, spec: TableSpec, fresh: dict[tuple[str, int], int]) -> None:
    """Apply one table's disposition to its staged rows; tally the new rows per input."""
    name, stage = spec.name, load.stage
    if spec.memory_limit:
        load.run(f"SET memory_limit = '{spec.memory_limit}'", what="the memory limit")
    staged = stage.register(load.con, name, load.only)
    keys = ", ".join(_q(k) for k in spec.key)
    time_col = _q(spec.time_column) if spec.time_column else "NULL"
    merge = spec.disposition is Disposition.MERGE
    same = keys if merge else _unique(load, staged, spec)  # what makes rows one row
    distinct = f"count(DISTINCT ({same}))" if same else "count(*)"
    total, unique, lo, hi = load.run(
        f"SELECT count(*), {distinct}, min({time_col}), max({time_col}) FROM {staged}",
        what="reading the staged rows",
    )[0]
    fmt = {"table": name, "key": keys, "time": time_col}
    batch = f"_batch_{name}"
    if same and unique < total:
        order = spec.keep_first_by or INPUT_COLUMN
        dedupe = read_sql("publish_unique").format(**{**fmt, "key": same}, order=order)
        load.run(dedupe, what="in-batch dedupe")
    else:
        load.run(f"CREATE OR REPLACE TEMP VIEW {batch} AS FROM {staged}", what="the batch")
    params = {"lo": lo, "hi": hi, "load_id": load.load_id}
    hours: set[datetime] = set()
    if spec.prepare:
        for i, statement in enumerate(statements(spec.prepare)):
            load.run(statement, params, what=f"{spec.prepare}.sql statement {i + 1}")
    elif spec.disposition is Disposition.MERGE:
        load.run(read_sql("publish_merge").format(**fmt), params, what="the merge anti-join")
    else:
        if spec.disposition is Disposition.REPLACE:
            parts = f"SELECT DISTINCT {keys} FROM {batch}"
            if spec.supersedes:  # and the earlier partitions that the batch's own supersede
                load.run(read_sql(spec.supersedes), what=f"{spec.supersedes}.sql")
                parts += f" UNION SELECT {keys} FROM _superseded_{name}"
                said = f"SELECT {INPUT_COLUMN}, replaced, n FROM _superseded_{name}"
                load.notes += load.run(said, what="the superseded partitions")
            match = " AND ".join(f"t.{k} IS NOT DISTINCT FROM p.{k}" for k in map(_q, spec.key))
            returning = f"RETURNING t.{time_col}" if spec.time_column else ""
            fmt |= {"partitions": parts, "match": match, "returning": returning}
            sql = read_sql("publish_replace").format(**fmt)
            hours |= _hours(load.run(sql, what="deleting the replaced partitions"))
        load.run(f"CREATE OR REPLACE TEMP VIEW _fresh_{name} AS FROM {batch}", what="the batch")
    load_id = (
        f", {load.load_id}::BIGINT AS {_q(spec.load_id_column)}" if spec.load_id_column else ""
    )
    load.run(read_sql("publish_insert").format(**fmt, load_id=load_id), what="the insert")
    if not spec.prepare:  # a prepare query leaves a narrow `_new_<name>` of the new rows
        load.run(f"CREATE OR REPLACE TEMP VIEW _new_{name} AS FROM _fresh_{name}", what="new rows")
    counts = load.run(
        f"SELECT {INPUT_COLUMN}, count(*), min({time_col}), max({time_col}) "
        f"FROM _new_{name} GROUP BY 1",
        what="counting the new rows",
    )
    for index, n, _, _ in counts:
        fresh[(name, int(index))] = int(n)
    if not counts:
        return
    if spec.touches:
        found: list[Any] = []
        for i, statement in enumerate(statements(spec.touches)):
            found = load.run(statement, params, what=f"{spec.touches}.sql statement {i + 1}")
        hours |= _hours(found)
    elif spec.time_column:
        hours |= _hours(
            load.run(
                f"SELECT DISTINCT date_trunc('hour', {time_col}) FROM _new_{name}",
                what="the hours touched",
            )
        )
    for query in spec.after:
        hours |= _hours(load.run(read_sql(query), params, what=f"{query}.sql"))
    for hook in spec.hooks:
        load.touched.setdefault(hook, set()).update(hours)


def _unique(load: _Load, staged: str, spec: TableSpec) -> str:
    """A replace table's in-batch unique columns, when the batch has them all (a writer
    that stages no raw row, such as a test's or a future reader's, dedupes nothing) and
    comes from more than one input: the columns tell copies of a file apart, and comparing
    a million raw rows of a single file with each other found nothing and cost most of the
    publish."""
    if not spec.unique:
        return ""
    have = {d[0] for d in load.con.execute(f"SELECT * FROM {staged} LIMIT 0").description}
    if not set(spec.unique) <= have:
        return ""
    inputs = load.run(
        f"SELECT count(DISTINCT {INPUT_COLUMN}) FROM {staged}", what="the batch's inputs"
    )
    return ", ".join(_q(k) for k in spec.unique) if inputs[0][0] > 1 else ""


def _hours(rows: list[Any]) -> set[datetime]:
    return {r[0].replace(minute=0, second=0, microsecond=0) for r in rows if r[0] is not None}


def _quarantine(load: _Load, source: str) -> None:
    rejects = [q for q in load.stage.quarantine if q[0] in load.inputs]
    if not rejects:
        return
    frame = pa.table(
        {
            "uri": [load.stage.inputs[q[0]].uri for q in rejects],
            "location": [q[1] for q in rejects],
            "error": [q[2] for q in rejects],
            "raw_excerpt": [q[3] for q in rejects],
        }
    )
    load.con.register("_rejects", frame)
    load.run(
        "INSERT INTO quarantine SELECT $id, $source, uri, location, error, raw_excerpt, now() "
        "FROM _rejects",
        {"id": load.load_id, "source": source},
        what="writing the quarantine",
    )


def _log_inputs(
    load: _Load,
    source: str,
    fresh: dict[tuple[str, int], int],
    started_at: datetime,
    duration_ms: float,
) -> None:
    """One `ingest_log` row per input, in one statement: a load of 1,440 one-minute scrapes
    spent more on 1,440 INSERTs than on reading them."""
    entries: list[InputReport] = []
    for index in load.inputs:
        entry = load.stage.inputs[index]
        tables = load.stage.input_tables(index)
        entry.rows = {t: fresh.get((t, index), 0) for t in tables}
        entry.duplicates = {t: load.stage.staged_rows(t, index) - entry.rows[t] for t in tables}
        entry.skipped.update({str(w): int(n) for i, w, n in load.notes if i == index})
        if entry.status is Status.OK and entry.quarantined:
            entry.status = Status.PARTIAL
        entries.append(entry)
    if not entries:
        return
    frame = pa.table(
        {
            "uri": pa.array([e.uri for e in entries], pa.string()),
            "hash": pa.array([e.content_hash for e in entries], pa.string()),
            "offset": pa.array([e.byte_offset for e in entries], pa.int64()),
            "rows": pa.array([sum(e.rows.values()) for e in entries], pa.int64()),
            "dups": pa.array([sum(e.duplicates.values()) for e in entries], pa.int64()),
            "q": pa.array([e.quarantined for e in entries], pa.int64()),
            "skipped": pa.array(
                [
                    "; ".join(f"{n} {what}" for what, n in sorted(e.skipped.items())) or None
                    for e in entries
                ],
                pa.string(),
            ),
            "status": pa.array([str(e.status) for e in entries], pa.string()),
            "msg": pa.array([e.message for e in entries], pa.string()),
        }
    )
    load.con.register("_log_rows", frame)
    try:
        load.run(
            'INSERT INTO ingest_log SELECT $id, $source, uri, hash, "offset", "rows", dups, '
            "q, skipped, $at, $ms, status, msg FROM _log_rows",
            {"id": load.load_id, "source": source, "at": started_at, "ms": duration_ms},
            what="writing the ingest log",
        )
    finally:
        load.con.unregister("_log_rows")


def record_failure(warehouse: Warehouse, uri: str, reason: str, *, source: str) -> LoadReport:
    """One FAILED input in `ingest_log` and its one-sentence quarantine row, nothing else
    (a URL that could not be pulled: there are no rows to stage)."""
    stage = Stage()
    try:
        index = stage.begin(InputReport(uri, status=Status.FAILED, message=reason))
        stage.reject(index, "file", reason, "")
        return publish(warehouse, stage, source=source)
    finally:
        stage.close()

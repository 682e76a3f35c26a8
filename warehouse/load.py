"""The write path: publish one staged load in one short transaction.

Collectors parse outside the lock into Arrow tables (spilled to Parquet when large); here
the whole load goes in with a few INSERT ... SELECT statements, deduplicated, with its
rollups refreshed, its quarantine rows and its `ingest_log` row, all or nothing.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from warehouse import uptime
from warehouse.db import Warehouse, one, read_sql

LATENCY_GAMMA = 1.005 / 0.995  # log buckets with 0.5% relative error
_SPILL_ROWS = 250_000


@dataclass
class Input:
    """One file or request body of a load, as it will appear in `ingest_log`."""

    uri: str
    content_hash: str | None = None
    byte_offset: int | None = None
    status: str = "ok"
    message: str | None = None
    quarantined: int = 0
    skipped: str | None = None
    rows: int = 0
    duplicates: int = 0


@dataclass
class Stage:
    """The rows of one load, kept outside the warehouse (spilled to Parquet) until published."""

    spill_dir: Path | None = None
    inputs: list[Input] = field(default_factory=list)
    quarantine: list[tuple[int, str, str, str]] = field(default_factory=list)
    _tables: dict[str, list[pa.Table]] = field(default_factory=dict)
    _files: dict[str, list[Path]] = field(default_factory=dict)
    _rows: dict[str, int] = field(default_factory=dict)
    _tmp: tempfile.TemporaryDirectory[str] | None = None

    def begin(self, entry: Input) -> int:
        """Start an input; the returned index tags its rows and quarantine entries."""
        self.inputs.append(entry)
        return len(self.inputs) - 1

    def add(self, table: str, rows: pa.Table, input_index: int) -> None:
        if rows.num_rows == 0:
            return
        rows = rows.append_column("_file", pa.array([input_index] * rows.num_rows, pa.int32()))
        self._tables.setdefault(table, []).append(rows)
        self._rows[table] = self._rows.get(table, 0) + rows.num_rows
        if sum(t.num_rows for t in self._tables[table]) >= _SPILL_ROWS:
            self._spill(table)

    def reject(self, input_index: int, location: str, error: str, excerpt: str) -> None:
        self.quarantine.append((input_index, location, error, excerpt))
        self.inputs[input_index].quarantined += 1

    def rows(self, table: str | None = None) -> int:
        if table is None:
            return sum(self._rows.values())
        return self._rows.get(table, 0)

    def _spill(self, table: str) -> None:
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="hybridlens-stage-", dir=self.spill_dir)
        path = Path(self._tmp.name) / f"{table}-{len(self._files.get(table, []))}.parquet"
        pq.write_table(pa.concat_tables(self._tables.pop(table)), path, compression="zstd")
        self._files.setdefault(table, []).append(path)

    def register(self, con: duckdb.DuckDBPyConnection, table: str, schema: pa.Schema) -> None:
        """Expose the staged rows of `table` to `con` as the view `staged_<table>`."""
        empty = schema.append(pa.field("_file", pa.int32())).empty_table()
        memory = pa.concat_tables(self._tables.get(table) or [empty])
        con.register(f"_staged_mem_{table}", memory)
        parts = [f"SELECT * FROM _staged_mem_{table}"]
        for path in self._files.get(table, []):
            parts.append(f"SELECT * FROM read_parquet('{_sql_path(path)}')")
        # OTLP times are nanoseconds, the warehouse keeps microseconds: round the staged
        # times as an INSERT would, so that dedupe keys (evaluations are keyed by their time)
        # and time ranges compare equal to what is already stored.
        times = [f.name for f in schema if pa.types.is_timestamp(f.type) and f.type.unit == "ns"]
        union = " UNION ALL ".join(parts)
        if times:
            casts = ", ".join(f'"{c}"::TIMESTAMPTZ AS "{c}"' for c in times)
            union = f"SELECT * REPLACE ({casts}) FROM ({union})"
        con.execute(f"CREATE OR REPLACE TEMP VIEW staged_{table} AS {union}")

    def close(self) -> None:
        self._tables.clear()
        self._files.clear()
        self._rows.clear()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")


@dataclass(frozen=True)
class LoadResult:
    load_id: int
    rows: int
    duplicates: int
    evaluations: int
    evaluation_duplicates: int
    quarantined: int
    duration_ms: float
    inputs: tuple[Input, ...] = ()


def publish_traces(
    warehouse: Warehouse,
    stage: Stage,
    span_schema: pa.Schema,
    evaluation_schema: pa.Schema,
    *,
    source: str,
) -> LoadResult:
    """Write one load of spans and evaluations, its rollups, quarantine and ingest_log rows."""
    started_at = datetime.now(UTC)
    started = time.perf_counter()
    with warehouse.write() as con:
        load_id = int(one(con, "SELECT nextval('load_ids')")[0])  # type: ignore[index]
        stage.register(con, "spans", span_schema)
        stage.register(con, "evaluations", evaluation_schema)
        staged = stage.rows("spans")
        staged_evals = stage.rows("evaluations")
        per_file: dict[int, list[int]] = {}  # input index -> [rows read, rows new]
        inserted = inserted_e = 0
        ranges = []
        if staged:
            lo, hi = one(con, "SELECT min(start_time), max(start_time) FROM staged_spans")  # type: ignore[misc]
            keys = one(con, "SELECT count(DISTINCT (trace_id, span_id)) FROM staged_spans")
            if keys and keys[0] < staged:  # duplicates inside the batch: keep the first
                con.execute(read_sql("staged_unique_spans"))
            else:
                con.execute("CREATE OR REPLACE TEMP VIEW staged_unique_spans AS FROM staged_spans")
            con.execute(read_sql("publish_spans"), {"lo": lo, "hi": hi, "load_id": load_id})
            con.execute("INSERT INTO spans SELECT * EXCLUDE (_file) FROM _fresh_spans")
            _tally(con, per_file, "staged_spans", "_fresh_spans")
            got = one(con, "SELECT count(*), min(start_time), max(start_time) FROM _fresh_spans")
            inserted = int(got[0])  # type: ignore[index]
            if inserted:
                ranges.append((got[1], got[2]))  # type: ignore[index]
                params = {"lo": lo, "hi": hi, "load_id": load_id}
                completed = con.execute(read_sql("publish_span_models"), params).fetchall()
                if completed:  # earlier spans whose model this load supplied
                    ranges.append((min(r[0] for r in completed), max(r[0] for r in completed)))
        if staged_evals:
            lo, hi = one(con, "SELECT min(time), max(time) FROM staged_evaluations")  # type: ignore[misc]
            con.execute(read_sql("publish_evaluations"), {"lo": lo, "hi": hi, "load_id": load_id})
            con.execute("INSERT INTO evaluations SELECT * EXCLUDE (_file) FROM _fresh_evaluations")
            _tally(con, per_file, "staged_evaluations", "_fresh_evaluations")
            inserted_e = int(one(con, "SELECT count(*) FROM _fresh_evaluations")[0])  # type: ignore[index]
            if inserted_e:
                got = one(
                    con,
                    """SELECT min(s.start_time), max(s.start_time)
                       FROM _fresh_evaluations e JOIN spans s USING (trace_id, span_id)
                       WHERE s.start_time BETWEEN $lo - INTERVAL 2 DAY AND $hi""",
                    {"lo": lo, "hi": hi},
                )
                if got and got[0] is not None:
                    ranges.append((got[0], got[1]))
        if ranges:
            refresh_rollups(con, min(r[0] for r in ranges), max(r[1] for r in ranges))
        for index, location, error, excerpt in stage.quarantine:
            con.execute(
                "INSERT INTO quarantine VALUES ($id, $source, $uri, $loc, $err, $raw, now())",
                {
                    "id": load_id,
                    "source": source,
                    "uri": stage.inputs[index].uri,
                    "loc": location,
                    "err": error,
                    "raw": excerpt,
                },
            )
        duration_ms = (time.perf_counter() - started) * 1000
        for index, entry in enumerate(stage.inputs):
            read, new = per_file.get(index, [0, 0])
            entry.rows, entry.duplicates = new, read - new
            if entry.status == "ok" and entry.quarantined:
                entry.status = "partial"
            con.execute(
                "INSERT INTO ingest_log VALUES ($id, $source, $uri, $hash, $offset, $rows, $dups, "
                "$q, $skipped, $at, $ms, $status, $msg)",
                {
                    "id": load_id,
                    "source": source,
                    "uri": entry.uri,
                    "hash": entry.content_hash,
                    "offset": entry.byte_offset,
                    "rows": entry.rows,
                    "dups": entry.duplicates,
                    "q": entry.quarantined,
                    "skipped": entry.skipped,
                    "at": started_at,
                    "ms": duration_ms,
                    "status": entry.status,
                    "msg": entry.message,
                },
            )
    return LoadResult(
        load_id,
        inserted,
        staged - inserted,
        inserted_e,
        staged_evals - inserted_e,
        len(stage.quarantine),
        duration_ms,
        tuple(stage.inputs),
    )


def _tally(
    con: duckdb.DuckDBPyConnection, per_file: dict[int, list[int]], staged: str, fresh: str
) -> None:
    for index, n in con.execute(f"SELECT _file, count(*) FROM {staged} GROUP BY 1").fetchall():
        per_file.setdefault(index, [0, 0])[0] += n
    for index, n in con.execute(f"SELECT _file, count(*) FROM {fresh} GROUP BY 1").fetchall():
        per_file.setdefault(index, [0, 0])[1] += n


def refresh_rollups(con: duckdb.DuckDBPyConnection, lo: datetime, hi: datetime) -> None:
    """Rebuild the rollups of every hour touched by [lo, hi]."""
    start = lo.replace(minute=0, second=0, microsecond=0)
    end = hi.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    params: dict[str, Any] = {"lo": start, "hi": end, "gamma": LATENCY_GAMMA}
    for statement in _statements("refresh_rollups"):
        names = {n for n in params if f"${n}" in statement}
        con.execute(statement, {n: params[n] for n in names})
    uptime.refresh_minute_verdicts(con, start, end)  # until publish registers it as a hook
    # the histogram's bucket ratio, where 001_init.sql says it is, for SQL written by hand
    con.execute(
        "INSERT OR REPLACE INTO _meta VALUES ('latency_gamma', $g)", {"g": repr(LATENCY_GAMMA)}
    )


def rebuild_rollups(warehouse: Warehouse) -> None:
    """Recompute every rollup from the raw tables (after a config change, say)."""
    with warehouse.write() as con:
        lo, hi = one(con, "SELECT min(start_time), max(start_time) FROM spans")  # type: ignore[misc]
        if lo is not None:
            refresh_rollups(con, lo, hi)


def _statements(name: str) -> list[str]:
    text = "\n".join(
        line for line in read_sql(name).splitlines() if not line.lstrip().startswith("--")
    )
    return [s.strip() for s in text.split(";") if s.strip()]


def _count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    return int(one(con, f"SELECT count(*) FROM {table}")[0])  # type: ignore[index]


def content_hash(path: Path, limit: int | None = None) -> str:
    """blake2b of the first `limit` bytes of a file (all of it by default)."""
    h = hashlib.blake2b(digest_size=16)
    remaining = limit
    with path.open("rb") as fh:
        while True:
            size = 1 << 20 if remaining is None else min(1 << 20, remaining)
            if size == 0:
                break
            chunk = fh.read(size)
            if not chunk:
                break
            h.update(chunk)
            if remaining is not None:
                remaining -= len(chunk)
    return h.hexdigest()


def store_config(warehouse: Warehouse, origin: str, body: str) -> None:
    with warehouse.write() as con:
        last = one(con, "SELECT body::VARCHAR FROM config ORDER BY stored_at DESC LIMIT 1")
        if not last or last[0] != body:
            con.execute(
                "INSERT INTO config VALUES (now(), $origin, $body)",
                {"origin": origin, "body": body},
            )


def stored_config(warehouse: Warehouse) -> tuple[str, str] | None:
    """(origin, body) of the config last stored, or None."""
    if not warehouse.exists():
        return None
    with warehouse.read() as con:
        row = one(con, "SELECT origin, body::VARCHAR FROM config ORDER BY stored_at DESC LIMIT 1")
    return (row[0], row[1]) if row else None


def file_state(warehouse: Warehouse, uri: str) -> tuple[str | None, int | None] | None:
    """(content hash, byte offset) of the last successful load of `uri`, if any."""
    if not warehouse.exists():
        return None
    with warehouse.read() as con:
        row = one(
            con,
            "SELECT content_hash, byte_offset FROM ingest_log WHERE uri = $uri AND status != "
            "'failed' ORDER BY load_id DESC LIMIT 1",
            {"uri": uri},
        )
    return (row[0], row[1]) if row else None


def log_failure(warehouse: Warehouse, *, source: str, uri: str, error: str) -> None:
    """Record an input that could not be read at all (one row, status 'failed')."""
    with warehouse.write() as con:
        load_id = int(one(con, "SELECT nextval('load_ids')")[0])  # type: ignore[index]
        con.execute(
            "INSERT INTO quarantine VALUES ($id, $source, $uri, 'file', $err, NULL, now())",
            {"id": load_id, "source": source, "uri": uri, "err": error},
        )
        con.execute(
            "INSERT INTO ingest_log VALUES ($id, $source, $uri, NULL, NULL, 0, 0, 1, NULL, now(), "
            "0, 'failed', $err)",
            {"id": load_id, "source": source, "uri": uri, "err": error},
        )


def file_states(warehouse: Warehouse, uris: list[str]) -> dict[str, tuple[str, int]]:
    """uri -> (content hash, byte offset) of its last successful load, for many files at once."""
    if not warehouse.exists() or not uris:
        return {}
    with warehouse.read() as con:
        con.execute(
            """SELECT uri, arg_max(content_hash, load_id), arg_max(byte_offset, load_id)
               FROM ingest_log
               WHERE list_contains($uris, uri) AND status != 'failed'
                 AND content_hash IS NOT NULL AND byte_offset IS NOT NULL
               GROUP BY uri""",
            {"uris": uris},
        )
        rows = con.fetchall()
    return {uri: (h, int(offset)) for uri, h, offset in rows}

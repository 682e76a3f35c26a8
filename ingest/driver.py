"""The one collector driver: planned units -> worker pool -> staging -> publish -> LoadReport.

Every collector runs through here, so resume offsets, chunk order and line numbering, the
statuses of `ingest_log` and the isolation of an input that cannot be published are decided
once. Units are collected outside the warehouse lock (in worker processes when the load is
big); small inputs are published together, one transaction per group. An input too big
for one group (a multi-gigabyte plain file) is published in record-aligned pieces of about
GROUP_ROWS rows, each logging the offset it reached, so memory and the writer lock hold stay
bounded by the group, not the file: a crash between pieces leaves the input loaded up to a
logged offset, which the next run resumes from, as it does for a file still being written.
A group that cannot be published is published again input by input from the same stage, so
a poisoned input is FAILED and every other loads (`whole`: a billing delivery fails whole).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import re
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor

from ingest.contract import Collected, Collector, Unit
from ingest.files import PrefixHash, Refused, Source, printable, unit_hash
from warehouse.config import Config
from warehouse.db import Warehouse
from warehouse.publish import publish_each
from warehouse.report import InputReport, LoadReport, Status
from warehouse.stage import Stage, warm_arrow

log = logging.getLogger(__name__)
GROUP_ROWS = 400_000  # publish once this many rows are staged (mid-input too, for big ones)
PARALLEL_BYTES = 16 * 1024 * 1024  # below this much input, worker processes cost more than
_LINE = re.compile(r"^(line|frame) (\d+)")
Progress = Callable[[int, int], None]


def load(
    warehouse: Warehouse,
    sources: Sequence[Source | Refused],
    config: Config,
    collector: Collector,
    *,
    files_skipped: int = 0,
    progress: Progress | None = None,
    workers: int | None = None,
    one_publish: bool = False,
) -> LoadReport:
    """Collect, stage and publish every input; one report. `one_publish`: all in one
    transaction, or none (a billing delivery's files replace their unit together)."""
    started, report = time.perf_counter(), LoadReport(files_skipped=files_skipped)
    plans: list[tuple[Source, list[Unit]]] = []
    group = _Group(warehouse, collector, config)
    for entry in sources:
        if isinstance(entry, Refused):
            group.refuse(entry.uri, entry.reason)
            continue
        try:
            plans.append((entry, collector.plan(entry.unit, entry.size)))
        except OSError as exc:
            group.refuse(entry.unit.uri, f"cannot read {printable(entry.unit.uri)}: {exc}")
    units = [(source, unit) for source, planned in plans for unit in planned]
    total = sum(_length(u, s.size) for s, u in units)
    workers = workers if workers is not None else (os.cpu_count() or 1)
    pool: Executor | None = None
    if workers > 1 and total >= PARALLEL_BYTES and len(units) > 1:
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        warm_arrow()  # pyarrow's one-time setup here, not again in each forked worker
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method))
    done = 0
    try:
        for (source, unit), collected in _collect_all(units, collector, config, pool, workers):
            group.take(source, unit, collected)
            done += _length(unit, source.size)
            if progress:
                progress(done, total)
            full = not one_publish and group.stage.rows() >= GROUP_ROWS
            if full and (unit.last or group.can_cut(unit, collected)):
                report.add(group.publish(one_publish))
        report.add(group.publish(one_publish))
    finally:
        group.close()
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    report.duration_ms = (time.perf_counter() - started) * 1000
    return report


def stage_collected(
    stage: Stage, index: int, report: InputReport, collected: Collected, *, line_base: int = 0
) -> None:
    """Put what one unit gave into the stage under input `index` (whose report is `report`);
    `line_base` is the records read by the earlier units of the same input."""
    for table, frame in [*collected.frames.items(), *collected.files.items()]:
        stage.add(table, frame, index)
    for rejected in collected.rejected:
        location = rejected.location
        if line_base:
            location = _LINE.sub(lambda m: f"{m[1]} {int(m[2]) + line_base}", location)
        stage.reject(index, location, rejected.error, rejected.excerpt)
    report.skipped.update(collected.skipped)
    if collected.error:
        stage.reject(index, "file", collected.error, "")
        if report.status is not Status.FAILED:  # a later piece's failure is not the cause
            report.message = collected.error
        report.status = Status.FAILED


def finish_input(
    stage: Stage,
    index: int,
    report: InputReport,
    source: Source,
    collected: Collected,
    config: Config,
    now: float,
) -> None:
    """Set an input's resume offset and status once its last unit is staged (its content
    hash, of the bytes up to that offset, is the caller's to take)."""
    unit = source.unit
    if collected.resumable and collected.complete_offset is not None:
        report.byte_offset = collected.complete_offset
    else:
        report.byte_offset = source.size
    incomplete = collected.pending_bytes > 0 or collected.cut
    if incomplete and report.status is not Status.FAILED:
        offset = collected.complete_offset or 0
        if collected.resumable:
            report.pending_bytes = collected.pending_bytes
            report.message = (
                f"{collected.pending_bytes} bytes after offset {offset} are an incomplete "
                "record (still being written?); they will be read on the next run"
            )
            if not report.quarantined:
                report.status = Status.PENDING
        elif _settled(source, config, now):
            report.message = (
                f"{printable(unit.uri)} ends mid-record at byte {offset} of its decompressed "
                "content and has stopped growing: the records before it were loaded, the "
                "rest is lost"
            )
            stage.reject(index, f"byte {offset}", report.message, "")
            report.status = Status.TRUNCATED
        else:
            report.byte_offset = None  # read it again from the start next run
            report.pending_bytes = collected.pending_bytes
            report.message = (
                f"{printable(unit.uri)} ends inside a compressed frame and was modified less "
                f"than {config.ingest.settle_minutes:g} minutes ago (still being written?); "
                "it will be read again on the next run"
            )
            if not report.quarantined:
                report.status = Status.PENDING
    report.content_hash = None


def publish_isolating(
    warehouse: Warehouse,
    stage: Stage,
    *,
    source: str,
    whole: bool = False,
    settle: Callable[[], None] = lambda: None,
) -> LoadReport:
    """Publish `stage`; if that fails, its inputs one by one (`publish_each`), so an input
    that cannot be published is FAILED with one sentence and the others still load; with
    `whole`, they fail together (one billing delivery's files: alone, each would replace
    the other's rows). `settle`: as `publish_each`'s."""
    try:
        return publish_each(warehouse, stage, source=source, reason=_cannot, location="file",
                            whole=whole, settle=settle)  # fmt: skip
    finally:
        stage.close()


def _cannot(entry: InputReport, exc: Exception) -> str:
    return f"{printable(entry.uri)} cannot be published: {_sentence(exc)}"


class _Group:
    """The inputs staged for the next publish, and the pieces of a big input published so far.

    An input published in pieces keeps one report: each piece's figures are folded into the
    report of its next piece, and the last piece's report (offset, hash, status) is the one
    the load returns. A piece that cannot be published fails its input there: its later
    units are dropped, and the next run reads it again from the offset the previous piece
    logged.

    The content hashes are taken on a thread of their own, each once its input's last unit
    (or a piece's) is staged, and the publish waits for them just before it writes
    `ingest_log`: a big file is hashed while DuckDB writes its rows (on one core, mostly),
    not while the workers parse it, when both cores are theirs. A big input's prefix is
    hashed once, piece by piece (`PrefixHash`).
    """

    def __init__(self, warehouse: Warehouse, collector: Collector, config: Config) -> None:
        self.warehouse, self.collector, self.config = warehouse, collector, config
        self.stage = Stage()
        self.reports: list[InputReport] = []
        self._index = -1
        self._line_base = 0
        self._open: Source | None = None  # the input whose last unit is still to come
        self._dead = False  # a piece of the open input failed: drop its remaining units
        self._hash: PrefixHash | None = None
        self._reached = 0  # where the open input's last staged unit ends
        self._carried: dict[int, InputReport] = {}  # id(report) -> its earlier pieces' figures
        self._hasher: ThreadPoolExecutor | None = None  # one thread: a PrefixHash goes in order
        self._hashing: list[tuple[InputReport, Future[str | None]]] = []

    def refuse(self, uri: str, reason: str) -> None:
        report = InputReport(uri, status=Status.FAILED, message=reason)
        index = self.stage.begin(report)
        self.stage.reject(index, "file", reason, "")
        self.reports.append(report)

    def take(self, source: Source, unit: Unit, collected: Collected) -> None:
        if unit.first:
            self._index = self.stage.begin(InputReport(source.unit.uri))
            self.reports.append(self.stage.inputs[self._index])
            self._line_base, self._open, self._dead = 0, source, False
            self._hash = None
        if self._dead:
            self._open = None if unit.last else self._open
            return
        report = self.reports[-1]
        stage_collected(self.stage, self._index, report, collected, line_base=self._line_base)
        self._line_base += collected.lines
        self._reached = collected.complete_offset or 0
        if unit.last:
            finish_input(self.stage, self._index, report, source, collected, self.config,
                         time.time())  # fmt: skip
            if report.byte_offset is not None:
                offset, whole = report.byte_offset, source.unit
                if unit.first or not collected.resumable:
                    self._hash_later(report, lambda: unit_hash(whole, offset))
                else:
                    prefix = self._hash = self._hash or PrefixHash(whole)
                    self._hash_later(report, lambda: prefix.digest(offset))
            self._open = None

    def can_cut(self, unit: Unit, collected: Collected) -> bool:
        """The open input may be published up to here: a clean record boundary of a plain
        input that a later run can resume from."""
        return (
            self._open is not None
            and not self._dead
            and collected.error is None
            and collected.resumable
            and not collected.cut
            and collected.pending_bytes == 0
            and unit.end is not None
            and collected.complete_offset == unit.end
            and self.reports[-1].status is not Status.FAILED
        )

    def publish(self, whole: bool = False) -> LoadReport:
        if not self.reports:
            return LoadReport()
        piece = self._open is not None and not self._dead
        if piece:
            self._mark_piece(self.reports[-1])
        try:
            name = self.collector.name
            loaded = publish_isolating(
                self.warehouse, self.stage, source=name, whole=whole, settle=self._settle
            )
        finally:
            self._settle()
            self.stage = Stage()
            self.reports = []
        for entry in loaded.inputs:
            carried = self._carried.pop(id(entry), None)
            if carried is not None:
                _fold(entry, carried)
        if piece:
            entry = loaded.inputs.pop()  # the open input's piece: its report goes on
            if entry.status is Status.FAILED:
                self._dead = True
                if entry.rows:
                    entry.message = (
                        f"{entry.message}; its records before the failed piece were loaded "
                        "and the next run reads on from there"
                    )
                loaded.inputs.append(entry)
            else:
                self._index = self.stage.begin(InputReport(entry.uri))
                self.reports.append(self.stage.inputs[self._index])
                self._carried[id(self.reports[-1])] = entry
        return loaded

    def _mark_piece(self, report: InputReport) -> None:
        """Log the open input as read up to the end of its last staged unit."""
        source = self._open
        assert source is not None
        prefix = self._hash = self._hash or PrefixHash(source.unit)
        offset = report.byte_offset = self._reached
        self._hash_later(report, lambda: prefix.digest(offset))
        report.message = (
            f"published up to byte {self._reached} of {source.size} in pieces; "
            "a later piece of this load or the next run reads the rest"
        )
        if not report.quarantined:
            report.status = Status.PENDING

    def _hash_later(self, report: InputReport, digest: Callable[[], str | None]) -> None:
        if self._hasher is None:
            self._hasher = ThreadPoolExecutor(1, thread_name_prefix="hybridlens-hash")
        self._hashing.append((report, self._hasher.submit(digest)))

    def _settle(self) -> None:
        """Wait for the hashes of the inputs being published and put them in their reports."""
        for report, digest in self._hashing:
            report.content_hash = digest.result()
        self._hashing = []

    def close(self) -> None:
        self.stage.close()
        if self._hasher is not None:
            self._hasher.shutdown(cancel_futures=True)


def _fold(entry: InputReport, earlier: InputReport) -> None:
    """Add what the earlier pieces of an input loaded to the report of its last piece."""
    for table, n in earlier.rows.items():
        entry.rows[table] = entry.rows.get(table, 0) + n
    for table, n in earlier.duplicates.items():
        entry.duplicates[table] = entry.duplicates.get(table, 0) + n
    entry.quarantined += earlier.quarantined
    entry.skipped.update(earlier.skipped)
    if entry.status is Status.OK and earlier.quarantined:
        entry.status = Status.PARTIAL


def _collect_all(
    units: list[tuple[Source, Unit]],
    collector: Collector,
    config: Config,
    pool: Executor | None,
    workers: int,
) -> Iterator[tuple[tuple[Source, Unit], Collected]]:
    """Collected units in order; with a pool, a bounded number are in flight at once."""
    if pool is None:
        for item in units:
            yield item, _collect_safe(collector, item[1], config)
        return
    pending: deque[tuple[tuple[Source, Unit], Future[Collected]]] = deque()
    queue = iter(units)
    for item in queue:
        pending.append((item, pool.submit(_collect_safe, collector, item[1], config)))
        if len(pending) >= workers * 2:
            break
    while pending:
        item, future = pending.popleft()
        nxt = next(queue, None)
        if nxt is not None:
            pending.append((nxt, pool.submit(_collect_safe, collector, nxt[1], config)))
        yield item, future.result()


def _collect_safe(collector: Collector, unit: Unit, config: Config) -> Collected:
    """A collector that raises fails its unit, not the load."""
    try:
        return collector.collect(unit, config)
    except Exception as exc:
        log.debug("collector %s failed on %s", collector.name, unit.uri, exc_info=True)
        return Collected(
            error=f"{printable(unit.uri)}: the {collector.name} collector failed "
            f"({type(exc).__name__}: {exc})",
            resumable=False,
        )


def _settled(source: Source, config: Config, now: float) -> bool:
    """A fetched body cannot grow; a file has settled when not modified for a while."""
    if source.modified is None:
        return True
    return now - source.modified >= config.ingest.settle_minutes * 60


def _length(unit: Unit, size: int) -> int:
    return (unit.end if unit.end is not None else size) - unit.start


def _sentence(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__).rstrip(".")

"""The one collector driver: planned units -> worker pool -> staging -> publish -> LoadReport.

Every collector runs through here, so resume offsets, chunk order and line numbering, the
statuses of `ingest_log` and the isolation of an input that cannot be published are decided
once. Units are collected outside the warehouse lock (in worker processes when the load is
big); small inputs are published together, one transaction per group, so a crash never
leaves half an input. When a group cannot be published, its inputs are retried one by one,
so one poisoned input is quarantined (status FAILED) and every other input still loads.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import re
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor

from ingest.contract import Collected, Collector, Unit
from ingest.files import Refused, Source, printable, unit_hash
from warehouse.config import Config
from warehouse.db import Warehouse
from warehouse.errors import WarehouseBusyError
from warehouse.publish import publish
from warehouse.report import InputReport, LoadReport, Status
from warehouse.stage import Stage

log = logging.getLogger(__name__)
GROUP_ROWS = 400_000  # publish once this many rows are staged
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
) -> LoadReport:
    """Collect, stage and publish every input; one report for all of them."""
    started = time.perf_counter()
    report = LoadReport(files_skipped=files_skipped)
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
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method))
    done = 0
    try:
        for (source, unit), collected in _collect_all(units, collector, config, pool, workers):
            group.take(source, unit, collected)
            done += _length(unit, source.size)
            if progress:
                progress(done, total)
            if unit.last and group.stage.rows() >= GROUP_ROWS:
                report.add(group.publish())
        report.add(group.publish())
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
    for table, frame in collected.frames.items():
        stage.add(table, frame, index)
    for rejected in collected.rejected:
        location = rejected.location
        if line_base:
            location = _LINE.sub(lambda m: f"{m[1]} {int(m[2]) + line_base}", location)
        stage.reject(index, location, rejected.error, rejected.excerpt)
    report.skipped.update(collected.skipped)
    if collected.error:
        stage.reject(index, "file", collected.error, "")
        report.status = Status.FAILED
        report.message = collected.error


def finish_input(
    stage: Stage,
    index: int,
    report: InputReport,
    source: Source,
    collected: Collected,
    config: Config,
    now: float,
) -> None:
    """Set an input's resume offset, hash and status once its last unit is staged."""
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
    if report.byte_offset is not None:
        report.content_hash = unit_hash(unit, report.byte_offset)


def publish_isolating(
    warehouse: Warehouse,
    stage: Stage,
    reports: list[InputReport],
    *,
    source: str,
    restage: Callable[[int], tuple[Stage, InputReport]],
) -> LoadReport:
    """Publish `stage`; if that fails, publish its inputs one by one (`restage(i)` builds a
    stage holding input i alone), so an input that cannot be published is recorded as
    FAILED with one sentence and the others still load. A busy warehouse is not an input's
    fault: that error propagates."""
    try:
        return publish(warehouse, stage, source=source)
    except WarehouseBusyError:
        raise
    except Exception as exc:
        log.info("publishing %d inputs failed (%s); publishing them one by one", len(reports), exc)
    finally:
        stage.close()
    total = LoadReport()
    for i, original in enumerate(reports):
        alone, report = restage(i)
        try:
            total.add(publish(warehouse, alone, source=source))
            continue
        except WarehouseBusyError:
            raise
        except Exception as exc:
            reason = f"{printable(original.uri)} cannot be published: {_sentence(exc)}"
        finally:
            alone.close()
        total.add(record_failure(warehouse, report.uri, reason, source=source))
    return total


def record_failure(warehouse: Warehouse, uri: str, reason: str, *, source: str) -> LoadReport:
    """One FAILED input in `ingest_log` and its one-sentence quarantine row, nothing else."""
    stage = Stage()
    try:
        index = stage.begin(InputReport(uri, status=Status.FAILED, message=reason))
        stage.reject(index, "file", reason, "")
        return publish(warehouse, stage, source=source)
    finally:
        stage.close()


class _Group:
    """The inputs staged for the next publish, and how to stage each again on its own."""

    def __init__(self, warehouse: Warehouse, collector: Collector, config: Config) -> None:
        self.warehouse, self.collector, self.config = warehouse, collector, config
        self.stage = Stage()
        self.reports: list[InputReport] = []
        self.inputs: list[Source | Refused] = []
        self._index = -1
        self._line_base = 0

    def refuse(self, uri: str, reason: str) -> None:
        report = InputReport(uri, status=Status.FAILED, message=reason)
        index = self.stage.begin(report)
        self.stage.reject(index, "file", reason, "")
        self.reports.append(report)
        self.inputs.append(Refused(uri, reason))

    def take(self, source: Source, unit: Unit, collected: Collected) -> None:
        if unit.first:
            report = InputReport(source.unit.uri)
            self._index = self.stage.begin(report)
            self.reports.append(report)
            self.inputs.append(source)
            self._line_base = 0
        report = self.reports[-1]
        stage_collected(self.stage, self._index, report, collected, line_base=self._line_base)
        self._line_base += collected.lines
        if unit.last:
            finish_input(
                self.stage, self._index, report, source, collected, self.config, time.time()
            )

    def publish(self) -> LoadReport:
        if not self.reports:
            return LoadReport()
        try:
            return publish_isolating(
                self.warehouse,
                self.stage,
                self.reports,
                source=self.collector.name,
                restage=self._restage,
            )
        finally:
            self.stage = Stage()
            self.reports, self.inputs = [], []

    def _restage(self, i: int) -> tuple[Stage, InputReport]:
        """Input i alone in a fresh stage: collected again (failures are rare, memory is not)."""
        entry = self.inputs[i]
        alone = _Group(self.warehouse, self.collector, self.config)
        if isinstance(entry, Refused):
            alone.refuse(entry.uri, entry.reason)
        else:
            for unit in self.collector.plan(entry.unit, entry.size):
                alone.take(entry, unit, _collect_safe(self.collector, unit, self.config))
        return alone.stage, alone.reports[0]

    def close(self) -> None:
        self.stage.close()


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

"""Publishing spool segments: one segment, one stage, one publish, one LoadReport.

Parsing happens here, outside the warehouse lock; only `publish` holds it. A segment whose
rows were mapped at accept time is staged from that cache; one left by an earlier process
is parsed again from disk, in bounded pieces. A segment that cannot be published is
retried a bounded number of times and then set aside (see `Spool.set_aside`), recorded in
`ingest_log` (status failed) and `quarantine`, so one bad segment never blocks the rest.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import orjson
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from ingest.admission import DECODE_BYTES_PER_ITEM, ByteBudget
from ingest.driver import stage_collected
from ingest.gpu.collector import request_collected
from ingest.otlp import Batch, Mapping
from ingest.otlp_files import batch_collected
from ingest.otlp_http import count_items, request_location
from ingest.spool import Segment, Spool, read_segment
from warehouse.config import Config
from warehouse.db import Warehouse
from warehouse.load import content_hash, file_state
from warehouse.publish import publish as publish  # re-exported: tests patch it here
from warehouse.report import InputReport, LoadReport, Status
from warehouse.stage import Stage

log = logging.getLogger("ingest.receiver")

T = TypeVar("T")

SOURCE = "otlp-http"
LOAD_CHUNK_SPANS = 100_000  # a segment parsed from disk is staged in pieces of this size


class SpoolLoader:
    """Turns sealed segments into warehouse rows for one receiver."""

    def __init__(
        self,
        warehouse: Warehouse,
        mapping: Mapping,
        spool: Spool,
        decoding: ByteBudget | None = None,
        wait_s: float = 10.0,
        config: Config | None = None,
    ) -> None:
        self.warehouse = warehouse
        self.mapping = mapping
        self.config = config or Config()  # GPU rows' environments, pools and workloads
        self.spool = spool
        # Parsing a record again takes the same decode budget as a request, so the loader
        # and the handlers never decode more than that budget's bytes at once between them.
        self.decoding = decoding
        self.wait_s = wait_s

    def load(self, seg: Segment, nice: int = 0) -> tuple[LoadReport, int]:
        """Publish one sealed segment; (its report, requests in it). Raises to retry later.

        Staging the accept-time cache runs at `nice` more niceness (see `run_niced`). A
        re-parse from disk and the publish run in the caller's thread, at its priority,
        because they hold what the others wait for (the decode budget the handlers share,
        the warehouse write lock): a starved thread holding either would stall them all.
        """
        uri = str(seg.path.absolute())
        if seg.recovered:
            digest = content_hash(seg.path)
            if file_state(self.warehouse, uri) == (digest, seg.size):
                log.info("spool segment %s was loaded before the last stop; removing it", uri)
                return LoadReport(files_skipped=1), seg.records
        else:
            digest = seg.digest.hexdigest()
        stage = Stage()
        try:
            report = InputReport(uri=uri, content_hash=digest, byte_offset=seg.size)
            index = stage.begin(report)
            fill = functools.partial(self._fill, stage, report, index, seg)
            requests = run_niced(fill, nice if seg.cached_end >= seg.size else 0)
            if stage.rows() == 0 and not report.quarantined:
                return LoadReport(inputs=[report]), requests
            return publish(self.warehouse, stage, source=SOURCE), requests
        finally:
            stage.close()

    def record_failure(self, seg: Segment, error: str) -> LoadReport:
        """Note a segment set aside: one `failed` ingest_log row and one quarantine row."""
        report = InputReport(
            uri=str(seg.path.absolute()),
            byte_offset=seg.size,
            status=Status.FAILED,
            message=error,
        )
        stage = Stage()
        try:
            index = stage.begin(report)
            stage.reject(index, "segment", error, "")
            return publish(self.warehouse, stage, source=SOURCE)
        finally:
            stage.close()

    def _fill(self, stage: Stage, report: InputReport, index: int, seg: Segment) -> int:
        """Stage a segment's rows: the records mapped at accept time from the cache, the
        rest from disk; its request count."""
        for mapped in seg.cached:
            collected = batch_collected(mapped) if isinstance(mapped, Batch) else mapped
            stage_collected(stage, index, report, collected)
        requests = seg.cached_records
        if seg.cached_end < seg.size:
            requests += self._stage_from_disk(stage, report, index, seg, seg.cached_end)
        return requests

    def _stage(self, stage: Stage, report: InputReport, index: int, batch: Batch) -> None:
        stage_collected(stage, index, report, batch_collected(batch))

    def _stage_from_disk(
        self, stage: Stage, report: InputReport, index: int, seg: Segment, start: int
    ) -> int:
        """Parse a segment's records from byte `start` again from its file, staging them in
        bounded pieces."""
        batch = Batch(self.mapping)
        requests = 0
        for record in read_segment(seg.path, start):
            if isinstance(record, tuple):
                offset, reason = record
                batch.quarantine.append((f"spool byte {offset}", reason, ""))
                continue
            requests += 1
            meta = record.meta
            if meta.get("signal") == "metrics":
                self._stage_metrics(stage, report, index, record.body, meta)
                continue
            signal = "logs" if meta.get("signal") == "logs" else "traces"
            location = request_location(
                "/v1/logs" if signal == "logs" else "/v1/traces",
                str(meta.get("peer", "?")),
                int(meta.get("at") or 0),
            )
            held = self._decode_slot(_decode_cost(record.body, meta.get("encoding"), signal))
            try:
                if meta.get("encoding") == "json":
                    try:
                        batch.add_json(orjson.loads(record.body), location, signal=signal)
                    except orjson.JSONDecodeError as exc:  # valid when accepted: disk damage
                        batch.quarantine.append((location, f"not valid JSON: {exc}", ""))
                else:
                    batch.add_proto(record.body, location, signal=signal)
            finally:
                if self.decoding is not None:
                    self.decoding.release(held)
            del record
            if len(batch) >= LOAD_CHUNK_SPANS:
                self._stage(stage, report, index, batch)
                batch = Batch(self.mapping)
        self._stage(stage, report, index, batch)
        return requests

    def _stage_metrics(
        self, stage: Stage, report: InputReport, index: int, body: bytes, meta: dict[str, Any]
    ) -> None:
        """A spooled `POST /v1/metrics`, mapped again as at accept time (they are small)."""
        location = request_location(
            "/v1/metrics", str(meta.get("peer", "?")), int(meta.get("at") or 0)
        )
        held = self._decode_slot(len(body))
        try:
            encoding = "json" if meta.get("encoding") == "json" else "proto"
            collected = request_collected(body, encoding, location, self.config)
        finally:
            if self.decoding is not None:
                self.decoding.release(held)
        stage_collected(stage, index, report, collected)

    def _decode_slot(self, size: int) -> int:
        """Wait for decode budget (the loader never gives up: it only waits longer)."""
        if self.decoding is None:
            return 0
        while True:
            held = self.decoding.acquire(max(size, 1), self.wait_s)
            if held:
                return held


def _decode_cost(body: bytes, encoding: object, signal: str) -> int:
    """What mapping one spooled request costs, as the handler charged it when it came in."""
    if encoding == "json":
        return len(body)
    cls = ExportLogsServiceRequest if signal == "logs" else ExportTraceServiceRequest
    try:
        items = count_items(signal, cls.FromString(body))
    except DecodeError:
        return len(body)  # the parser quarantines it; it maps to nothing
    return max(len(body), items * DECODE_BYTES_PER_ITEM)


def run_niced(work: Callable[[], T], nice: int) -> T:
    """`work()` in a thread of its own at `nice` more niceness; at once when `nice` is 0.

    Niceness cannot be lowered again without privilege, so each low-priority run gets a
    fresh thread and an urgent one runs in the caller's. What `work` raises is raised here.
    """
    if not nice:
        return work()
    done: list[T] = []
    failed: list[BaseException] = []

    def run() -> None:
        lower_thread_priority(nice)
        try:
            done.append(work())
        except BaseException as exc:  # raised again in the caller's thread
            failed.append(exc)

    worker = threading.Thread(target=run, name="otlp-loader-flush")
    worker.start()
    worker.join()
    if failed:
        raise failed[0]
    return done[0]


def lower_thread_priority(nice: int) -> bool:
    """Add `nice` to the calling thread's niceness; False where the OS cannot do it per thread.

    Linux schedules threads as tasks with their own nice value (threads they start inherit
    it). Other systems would renice the whole process, handlers included, so there
    everything keeps one priority.
    """
    if nice <= 0 or not sys.platform.startswith("linux"):
        return False
    tid = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + nice)
    except OSError as exc:
        log.debug("cannot lower the loader's priority: %s", exc)
        return False
    return True

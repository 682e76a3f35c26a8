"""Publishing spool segments: one segment, one stage, one publish, one LoadReport.

Parsing happens here, outside the warehouse lock; only `publish` holds it. A segment whose
rows were mapped at accept time is staged from that cache; one left by an earlier process
is parsed again from disk, in bounded pieces. A segment that cannot be published is
retried a bounded number of times and then set aside (see `Spool.set_aside`), recorded in
`ingest_log` (status failed) and `quarantine`, so one bad segment never blocks the rest.
"""

from __future__ import annotations

import logging

import orjson

from ingest.otlp import Batch, Mapping
from ingest.otlp_http import request_location
from ingest.spool import Segment, Spool, read_segment
from warehouse.db import Warehouse
from warehouse.load import content_hash, file_state
from warehouse.publish import publish
from warehouse.report import InputReport, LoadReport, Status
from warehouse.stage import Stage

log = logging.getLogger("ingest.receiver")

SOURCE = "otlp-http"
LOAD_CHUNK_SPANS = 100_000  # a segment parsed from disk is staged in pieces of this size


class SpoolLoader:
    """Turns sealed segments into warehouse rows for one receiver."""

    def __init__(self, warehouse: Warehouse, mapping: Mapping, spool: Spool) -> None:
        self.warehouse = warehouse
        self.mapping = mapping
        self.spool = spool

    def load(self, seg: Segment) -> tuple[LoadReport, int]:
        """Publish one sealed segment; (its report, requests in it). Raises to retry later."""
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
            if seg.batch is not None:
                requests = seg.records
                self._stage(stage, report, index, seg.batch)
            else:
                requests = self._stage_from_disk(stage, report, index, seg)
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

    def _stage(self, stage: Stage, report: InputReport, index: int, batch: Batch) -> None:
        spans, evaluations = batch.to_arrow()
        stage.add("spans", spans, index)
        stage.add("evaluations", evaluations, index)
        for location, error, excerpt in batch.quarantine:
            stage.reject(index, location, error, excerpt)
        report.skipped.update(batch.skipped)

    def _stage_from_disk(self, stage: Stage, report: InputReport, index: int, seg: Segment) -> int:
        """Parse a segment again from its file, staging it in bounded pieces."""
        self.spool.drop_cache(seg)
        batch = Batch(self.mapping)
        requests = 0
        for record in read_segment(seg.path):
            if isinstance(record, tuple):
                offset, reason = record
                batch.quarantine.append((f"spool byte {offset}", reason, ""))
                continue
            requests += 1
            meta = record.meta
            signal = "logs" if meta.get("signal") == "logs" else "traces"
            location = request_location(
                "/v1/logs" if signal == "logs" else "/v1/traces",
                str(meta.get("peer", "?")),
                int(meta.get("at") or 0),
            )
            if meta.get("encoding") == "json":
                try:
                    batch.add_json(orjson.loads(record.body), location, signal=signal)
                except orjson.JSONDecodeError as exc:  # was valid when accepted: disk damage
                    batch.quarantine.append((location, f"not valid JSON: {exc}", ""))
            else:
                batch.add_proto(record.body, location, signal=signal)
            if len(batch) >= LOAD_CHUNK_SPANS:
                self._stage(stage, report, index, batch)
                batch = Batch(self.mapping)
        self._stage(stage, report, index, batch)
        return requests

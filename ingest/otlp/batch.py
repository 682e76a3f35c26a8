"""Batch: framed OTLP records (JSON or protobuf, traces or logs) in, staged rows out.

The entry points never raise for bad data: what cannot be read goes to `quarantine`,
what is deliberately not kept is counted in `skipped`, and each call returns the Counts
of its items (spans, or log records), so the receiver can answer a request's
`partial_success` with exactly the number it rejected.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import orjson
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from ingest.framing import Record
from ingest.otlp import json_walk, proto_walk
from ingest.otlp.fields import excerpt, excerpt_json
from ingest.otlp.rows import Counts, Rows
from ingest.otlp.signal import detect_signal, is_empty

METRICS_SKIPPED = "metrics requests (GPU metrics come from their own collectors)"


@contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """Millions of small dicts and tuples: the cyclic collector only slows the walk down."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


@dataclass
class Batch(Rows):
    """Column lists for spans and evaluations plus what went to quarantine."""

    def _call(self, work: Callable[[], None]) -> Counts:
        """Run one add call's walk and return the Counts it added."""
        before = self.counts
        self.latest_ns = self.mapping.latest_ns()
        with _no_cyclic_gc():
            work()
        after = self.counts
        return Counts(*(a - b for a, b in zip(after, before, strict=True)))

    # -- entry points -----------------------------------------------------------------
    def add(self, record: Record, *, signal: str | None = None) -> Counts:
        """Decode one framed record and add what it holds; never raises for bad data."""
        if record.error:
            return self._call(
                lambda: self.reject(record.location, record.error or "", excerpt(record.payload))
            )
        if record.encoding == "json":
            return self._call(lambda: self._json_record(record, signal))
        return self.add_proto(record.payload, record.location, signal=signal)

    def add_json(
        self, doc: Any, location: str, *, signal: str | None = None, size: int | None = None
    ) -> Counts:
        """Add one decoded OTLP/JSON request; `size` (its encoded bytes) spares measuring
        each span against max_span_bytes when the whole request is within the limit."""
        return self._call(lambda: self._json(doc, location, signal, size))

    def add_proto(self, payload: bytes, location: str, *, signal: str | None = None) -> Counts:
        """Add one protobuf export request; without `signal` it is read from the payload."""
        return self._call(lambda: self._proto(payload, location, signal))

    # -- dispatch -----------------------------------------------------------------------
    def _json_record(self, record: Record, signal: str | None) -> None:
        """Decode and walk inside one GC-free call: a decoded request is thousands of
        containers, and a collection between decoding and walking would traverse them all."""
        try:
            doc = orjson.loads(record.payload)
        except orjson.JSONDecodeError as exc:
            self.reject(record.location, f"not valid JSON: {exc}", excerpt(record.payload))
            return
        self._json(doc, record.location, signal, len(record.payload))

    def _json(self, doc: Any, location: str, signal: str | None, size: int | None) -> None:
        if not isinstance(doc, dict):
            self.reject(
                location,
                "wrong schema: expected a JSON object with resourceSpans or "
                f"resourceLogs, got {type(doc).__name__}",
                excerpt_json(doc),
            )
            return
        measure = size is None or size > self.mapping.max_span_bytes
        if "resourceSpans" in doc and signal in (None, "traces"):
            json_walk.walk_traces(self, doc["resourceSpans"], location, measure=measure)
        elif "resourceLogs" in doc and signal in (None, "logs"):
            json_walk.walk_logs(self, doc["resourceLogs"], location)
        elif "resourceMetrics" in doc:
            self.skipped[METRICS_SKIPPED] += 1
        elif "resourceProfiles" in doc:
            self.skipped["profiles requests"] += 1
        elif not doc:
            self.skipped["empty requests"] += 1
        else:
            keys = ", ".join(sorted(map(str, doc))[:5])
            self.reject(
                location,
                f"wrong schema: no resourceSpans or resourceLogs (keys: {keys})",
                excerpt_json(doc),
            )

    def _proto(self, payload: bytes, location: str, signal: str | None) -> None:
        if signal is None:
            signal = detect_signal(payload)
            if signal is None and is_empty(payload):
                self.skipped["empty requests"] += 1
                return
            signal = signal or "traces"  # undecidable items: read them as spans, as before
        if signal == "metrics":
            self.skipped[METRICS_SKIPPED] += 1
            return
        cls: type[ExportLogsServiceRequest] | type[ExportTraceServiceRequest] = (
            ExportLogsServiceRequest if signal == "logs" else ExportTraceServiceRequest
        )
        try:
            request: Any = cls.FromString(payload)
        except DecodeError as exc:
            self.reject(
                location, f"not a valid OTLP protobuf {signal} request: {exc}", excerpt(payload)
            )
            return
        if signal == "logs":
            proto_walk.walk_logs(self, request, location)
        else:
            measure = len(payload) > self.mapping.max_span_bytes
            proto_walk.walk_traces(self, request, location, measure=measure)

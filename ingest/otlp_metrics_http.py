"""`POST /v1/metrics`: OTLP metrics requests mapped to GPU samples, for the receiver.

The receiver keeps GPU telemetry only (the OpenTelemetry hardware conventions and DCGM
series forwarded by the Collector, mapped as `ingest.gpu.otlp_metrics` maps files); the
rest of a request is counted as skipped, as a file's would be. A request is mapped at
accept time, like traces, so the answer can say how many data points were rejected, and
the mapped rows travel with the spool segment to the loader. The durability rule is the
traces one: the body is spooled and fsync'd before the 200.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsPartialSuccess,
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)

from ingest.contract import Collected
from ingest.gpu.collector import request_collected
from ingest.otlp_http import Reply, json_request
from warehouse.config import Config

GPU_TABLE = "gpu_samples"


@dataclass
class MetricsDecoded:
    """One metrics request, mapped: its GPU rows and the counts for `partial_success`."""

    collected: Collected
    total: int  # data points in the request
    rejected: int  # quarantined records (a data point, or a metric or resource of bad shape)

    @property
    def rows(self) -> int:
        frame = self.collected.frames.get(GPU_TABLE)
        return 0 if frame is None else frame.num_rows

    @property
    def empty(self) -> bool:
        """Nothing to keep: no GPU sample and nothing to quarantine (it is not spooled)."""
        return not self.rows and not self.collected.rejected


def decode_metrics(
    encoding: str,
    body: bytes | bytearray,
    config: Config,
    location: str,
    admit: Callable[[int], None] | None = None,
) -> MetricsDecoded:
    """Map one request body; raises Reply(400) when it is not an OTLP metrics request."""
    if encoding == "proto":
        try:
            request = ExportMetricsServiceRequest.FromString(bytes(body))
        except DecodeError as exc:
            raise Reply(400, f"not a valid OTLP protobuf metrics request: {exc}") from None
        total = _proto_points(request)
        del request
    else:
        doc = json_request(body, "resourceMetrics")
        if doc is None:
            return MetricsDecoded(Collected(), 0, 0)  # only unknown fields: an empty request
        total = _json_points(doc)
        del doc
    if admit is not None:
        admit(total)
    collected = request_collected(bytes(body), encoding, location, config)
    return MetricsDecoded(collected, total, min(total, len(collected.rejected)))


def _proto_points(request: Any) -> int:
    total = 0
    for rm in request.resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                kind = m.WhichOneof("data")
                total += len(getattr(m, kind).data_points) if kind else 0
    return total


def _json_points(doc: dict[str, Any]) -> int:
    """Data points where the shape allows counting them (a bad shape is quarantined)."""
    total = 0
    for rm in doc["resourceMetrics"]:
        scopes = rm.get("scopeMetrics") if isinstance(rm, dict) else None
        for sm in scopes if isinstance(scopes, list) else ():
            metrics = sm.get("metrics") if isinstance(sm, dict) else None
            for m in metrics if isinstance(metrics, list) else ():
                for kind in ("gauge", "sum", "histogram", "exponentialHistogram", "summary"):
                    data = m.get(kind) if isinstance(m, dict) else None
                    points = data.get("dataPoints") if isinstance(data, dict) else None
                    total += len(points) if isinstance(points, list) else 0
    return total


def metrics_success_body(encoding: str, decoded: MetricsDecoded) -> bytes:
    message = metrics_message(decoded)
    partial = decoded.rejected > 0 or bool(message)
    if encoding == "json":
        if not partial:
            return b"{}"
        return orjson.dumps(
            {
                "partialSuccess": {
                    "rejectedDataPoints": str(decoded.rejected),
                    "errorMessage": message,
                }
            }
        )  # int64 is a decimal string in proto3 JSON
    success = ExportMetricsPartialSuccess(
        rejected_data_points=decoded.rejected, error_message=message
    )
    reply: bytes = ExportMetricsServiceResponse(
        partial_success=success if partial else None
    ).SerializeToString()
    return reply


def metrics_message(decoded: MetricsDecoded) -> str:
    """Why points were rejected, or what was left out (non-GPU metrics), in one line."""
    rejected = decoded.collected.rejected
    if rejected:
        head = "; ".join(f"{r.location.split(': ', 1)[-1]}: {r.error}" for r in rejected[:3])
        more = f" (and {len(rejected) - 3} more)" if len(rejected) > 3 else ""
        return (
            f"{decoded.rejected} of {decoded.total} data points rejected: {head}{more}; they "
            "are kept in the warehouse's quarantine table"
        )[:2000]
    skipped = sum(decoded.collected.skipped.values())
    if skipped and not decoded.rows:  # a warning, so a misdirected exporter finds out
        return (
            f"none of the {decoded.total} data points is GPU telemetry (hw.gpu.*, hw.power or "
            "hw.energy of hw.type gpu, DCGM_FI_*): nothing was kept"
        )
    return ""

"""OTLP metrics as a GPU format: the hardware conventions (`hw.*`) and forwarded DCGM series.

Two kinds of sender put GPU telemetry into OTLP. OpenLIT's GPU collector (and anything
following the OpenTelemetry hardware conventions) emits `hw.gpu.utilization`,
`hw.gpu.memory.*`, `hw.power` and `hw.energy` with `hw.type = gpu` and `hw.id`; the
Collector's Prometheus receiver forwards a dcgm-exporter scrape as metrics named
`DCGM_FI_*` with the exporter's labels as attributes. Both are mapped, through the one
table `MAPPING` (in `otlp_points.py`), onto DCGM-named readings; every other metric in a
file (a service's request counters, histograms) is skipped with a count, never an error.

Data points are grouped into one reading per (resource and point attributes, time), so a
GPU's utilization, memory and power exported at the same instant become one sample. A
delta `hw.energy` sum is turned into a counter by adding up each series' deltas in time
order within the input (see docs/gpu-otlp.md for what that means across inputs).
"""

from __future__ import annotations

import io
import zlib
from dataclasses import dataclass
from typing import Any

import orjson
import zstandard
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)

from ingest.contract import Rejected, Unit
from ingest.errors import RecordError
from ingest.framing import GZIP_MAGIC, ZSTD_MAGIC, Framing, Record, iter_records
from ingest.gpu.otlp_points import (
    BY_HW,
    DELTA,
    LABELS,
    MAPPING,
    PointGroups,
    attributes,
    mapping_markdown,
    proto_doc,
)
from ingest.gpu.readings import FIELDS, Parsed, ReadOptions
from ingest.otlp.fields import excerpt, excerpt_json, message

__all__ = ["LABELS", "MAPPING", "OtlpMetrics", "mapping_markdown", "readings_from_request"]


@dataclass(frozen=True)
class OtlpMetrics:
    """OTLP metrics files and request bodies: JSON, JSON lines, protobuf, any framing."""

    name: str = "otlp-metrics"

    def sniff(self, head: bytes) -> bool:
        """A JSON head that names `resourceMetrics`, or protobuf shaped like a metrics
        request (compressed heads are opened first)."""
        head = _open_head(head)
        if head.lstrip()[:1] in (b"{", b"["):
            return b'"resourceMetrics"' in head
        if len(head) >= 5 and head[:1] == b"\x00" and head[4:5] == b"\x0a":
            head = head[4:]  # a length-prefixed frame
        return _looks_like_metrics_proto(head)

    def read(self, data: bytes, unit: Unit, options: ReadOptions) -> Parsed:
        """Every GPU reading of one input; records that cannot be read are rejected."""
        builder = PointGroups()
        framing = Framing()
        try:
            for record in iter_records(io.BytesIO(data), framing):
                _read_record(record, builder)
        except ValueError as exc:
            builder.parsed.rejected.append(Rejected("input", str(exc), excerpt(data[:200])))
        if framing.pending_bytes:
            builder.parsed.rejected.append(
                Rejected(
                    "end of input",
                    f"the last {framing.pending_bytes} bytes are an "
                    "incomplete record (a truncated file)",
                    excerpt(data[-200:]),
                )
            )
        return builder.finish()


def readings_from_request(body: bytes, content_type: str, location: str = "request") -> Parsed:
    """The readings of one `POST /v1/metrics` body (already decompressed), for the receiver.

    `application/json` is OTLP/JSON, anything else (`application/x-protobuf`) protobuf;
    `location` names the request in quarantine rows."""
    builder = PointGroups()
    kind = content_type.split(";", 1)[0].strip().lower()
    encoding = "json" if kind == "application/json" else "proto"
    _read_record(Record(body, encoding, location), builder)
    return builder.finish()


# -- records ------------------------------------------------------------------------------
def _read_record(record: Record, builder: PointGroups) -> None:
    where = record.location
    if record.error:
        builder.parsed.rejected.append(Rejected(where, record.error, excerpt(record.payload)))
        return
    try:
        if record.encoding == "json":
            doc = orjson.loads(record.payload)
        else:
            request = ExportMetricsServiceRequest.FromString(record.payload)
            doc = proto_doc(request)
    except (orjson.JSONDecodeError, DecodeError, UnicodeDecodeError) as exc:
        what = "JSON" if record.encoding == "json" else "an ExportMetricsServiceRequest"
        builder.parsed.rejected.append(
            Rejected(where, f"not {what}: {message(exc)}", excerpt(record.payload))
        )
        return
    if not isinstance(doc, dict):
        builder.parsed.rejected.append(
            Rejected(where, "wrong schema: not an object", excerpt(record.payload))
        )
        return
    if "resourceMetrics" not in doc:
        builder.parsed.skipped["records without resourceMetrics"] += 1
        return
    resources = doc["resourceMetrics"]
    if not isinstance(resources, list):
        builder.parsed.rejected.append(
            Rejected(where, "wrong schema: resourceMetrics is not a list", excerpt_json(doc))
        )
        return
    for i, rm in enumerate(resources):
        _read_resource(rm, f"{where}: resourceMetrics[{i}]", builder)


def _read_resource(rm: Any, where: str, builder: PointGroups) -> None:
    try:
        if not isinstance(rm, dict):
            raise RecordError("not an object")
        resource = attributes((rm.get("resource") or {}).get("attributes"))
        scopes = rm.get("scopeMetrics") or rm.get("instrumentationLibraryMetrics") or []
        if not isinstance(scopes, list):
            raise RecordError("scopeMetrics is not a list")
    except (RecordError, AttributeError, TypeError, KeyError) as exc:
        builder.parsed.rejected.append(
            Rejected(where, f"bad resource: {message(exc)}", excerpt_json(rm))
        )
        return
    for j, sm in enumerate(scopes):
        metrics = sm.get("metrics") if isinstance(sm, dict) else None
        if not isinstance(metrics, list):
            if metrics is not None or not isinstance(sm, dict):
                builder.parsed.rejected.append(
                    Rejected(
                        f"{where}.scopeMetrics[{j}]",
                        "wrong schema: metrics is not a list",
                        excerpt_json(sm),
                    )
                )
            continue
        for k, metric in enumerate(metrics):
            _read_metric(metric, resource, f"{where}.scopeMetrics[{j}].metrics[{k}]", builder)


def _read_metric(metric: Any, resource: dict[str, str], where: str, builder: PointGroups) -> None:
    if not isinstance(metric, dict) or not isinstance(metric.get("name"), str):
        builder.parsed.rejected.append(
            Rejected(where, "wrong schema: a metric without a name", excerpt_json(metric))
        )
        return
    name: str = metric["name"]
    kind = next(
        (
            k
            for k in ("gauge", "sum", "histogram", "exponentialHistogram", "summary")
            if k in metric
        ),
        None,
    )
    data = metric.get(kind) if kind else None
    points = data.get("dataPoints") if isinstance(data, dict) else None
    n_points = len(points) if isinstance(points, list) else 1
    mapped = BY_HW.get(name)
    if name in FIELDS:
        field, scale = name, 1.0
    elif mapped is not None:
        field, scale = mapped.field, mapped.scale
    else:
        builder.parsed.skipped["non-GPU metric data points"] += n_points
        return
    if kind not in ("gauge", "sum") or not isinstance(points, list):
        builder.parsed.rejected.append(
            Rejected(
                f"{where} {name}",
                "wrong schema: a GPU metric must be a gauge or a sum with a dataPoints list",
                excerpt_json(metric),
            )
        )
        return
    assert isinstance(data, dict)
    delta = kind == "sum" and data.get("aggregationTemporality") == DELTA
    for p, point in enumerate(points):
        at = f"{where} {name[:80]} dataPoints[{p}]"
        try:
            builder.add(name, field, scale, delta, point, resource, at)
        except (RecordError, AttributeError, TypeError, KeyError, ValueError) as exc:
            builder.parsed.rejected.append(Rejected(at, message(exc), excerpt_json(point)))


# -- sniffing -----------------------------------------------------------------------------
def _open_head(head: bytes) -> bytes:
    """The first decompressed bytes of a gzip or zstd head (a partial stream is fine)."""
    try:
        if head[:2] == GZIP_MAGIC:
            return zlib.decompressobj(wbits=31).decompress(head, 1 << 16)
        if head[:4] == ZSTD_MAGIC:
            # read, not decompress: a head of RLE blocks would expand to gigabytes first
            return zstandard.ZstdDecompressor().stream_reader(io.BytesIO(head)).read(1 << 16)
    except (zlib.error, zstandard.ZstdError):
        return b""
    return head


def _varint(data: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while i < len(data) and shift < 64:
        byte = data[i]
        value |= (byte & 0x7F) << shift
        i += 1
        if not byte & 0x80:
            return value, i
        shift += 7
    raise IndexError("varint runs past the head")


def _looks_like_metrics_proto(head: bytes) -> bool:
    """Walk request -> ResourceMetrics -> ScopeMetrics -> Metric -> name as far as the head
    goes: a metric's name (field 1) is printable text, where a span's field 1 is a trace id,
    so a traces or logs request is told apart from a metrics one."""
    try:
        if head[:1] != b"\x0a":
            return False
        _, i = _varint(head, 1)  # into ResourceMetrics
        for want in (2, 2, 1):  # ScopeMetrics (field 2), Metric (field 2), name (field 1)
            while True:
                tag, i = _varint(head, i)
                if tag & 7 != 2:
                    return False
                size, i = _varint(head, i)
                if tag >> 3 == want:
                    break
                i += size  # skip the resource / scope / schema url
        name = head[i : i + size]
        return bool(name) and all(32 <= b < 127 for b in name)
    except IndexError:
        return True  # plausible as far as the head goes; read decides

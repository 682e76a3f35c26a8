"""One day's export lines written in a site's Collector framing.

Why several framings: real Collectors write JSON lines, legacy per-message zstd with a
length prefix, native zstd streams or length-prefixed protobuf, and a reader has to sniff
the bytes rather than trust the extension; the demo has each of them.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import orjson
import zstandard
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue


def _pb_value(pb: AnyValue, v: dict[str, Any]) -> None:
    if "stringValue" in v:
        pb.string_value = v["stringValue"]
    elif "intValue" in v:
        pb.int_value = int(v["intValue"])
    elif "doubleValue" in v:
        pb.double_value = float(v["doubleValue"])
    elif "boolValue" in v:
        pb.bool_value = v["boolValue"]
    elif "arrayValue" in v:
        for x in v["arrayValue"].get("values", []):
            _pb_value(pb.array_value.values.add(), x)


def _pb_attrs(target: Any, attrs: list[dict[str, Any]]) -> None:
    for a in attrs:
        kv = target.add()
        kv.key = a["key"]
        _pb_value(kv.value, a["value"])


def to_protobuf(line: str) -> bytes:
    """Our own OTLP/JSON line as protobuf; json_format would read the hex ids as base64."""
    doc = orjson.loads(line)
    req = ExportTraceServiceRequest()
    for rs in doc["resourceSpans"]:
        prs = req.resource_spans.add()
        _pb_attrs(prs.resource.attributes, rs["resource"]["attributes"])
        for ss in rs["scopeSpans"]:
            pss = prs.scope_spans.add()
            pss.scope.name = ss["scope"]["name"]
            pss.scope.version = ss["scope"]["version"]
            for s in ss["spans"]:
                ps = pss.spans.add()
                ps.trace_id = bytes.fromhex(s["traceId"])
                ps.span_id = bytes.fromhex(s["spanId"])
                if s.get("parentSpanId"):
                    ps.parent_span_id = bytes.fromhex(s["parentSpanId"])
                ps.name = s["name"]
                ps.kind = s["kind"]
                ps.start_time_unix_nano = int(s["startTimeUnixNano"])
                ps.end_time_unix_nano = int(s["endTimeUnixNano"])
                _pb_attrs(ps.attributes, s["attributes"])
                for e in s.get("events", ()):
                    pe = ps.events.add()
                    pe.time_unix_nano = int(e["timeUnixNano"])
                    pe.name = e["name"]
                    _pb_attrs(pe.attributes, e["attributes"])
                if "status" in s:
                    ps.status.code = s["status"]["code"]
                    ps.status.message = s["status"].get("message", "")
    data: bytes = req.SerializeToString(deterministic=True)
    return data


def _length_prefixed(frames: list[bytes]) -> bytes:
    parts = []
    for frame in frames:
        parts.append(struct.pack(">I", len(frame)))
        parts.append(frame)
    return b"".join(parts)


def write_traces(path: Path, lines: list[str], framing: str, native_zstd: bool) -> str:
    """Write one day's lines in the environment's framing; returns the file name used."""
    data: bytes
    if framing == "jsonl":
        name = path.name + ".jsonl"
        data = "".join(line + "\n" for line in lines).encode()
    elif framing == "zstd" and native_zstd:  # newer Collector: one zstd stream of JSON lines
        name = path.name + ".zst"
        raw = "".join(line + "\n" for line in lines).encode()
        data = zstandard.ZstdCompressor(level=3).compress(raw)
    elif framing == "zstd":  # legacy Collector: each message compressed, length-prefixed
        name = path.name + ".jsonl.zst"
        cctx = zstandard.ZstdCompressor(level=3)
        data = _length_prefixed([cctx.compress(line.encode()) for line in lines])
    else:
        name = path.name + ".binpb"
        data = _length_prefixed([to_protobuf(line) for line in lines])
    (path.parent / name).write_bytes(data)
    return name

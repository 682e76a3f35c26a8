"""OTLP/HTTP protocol: inflate a body, decode and map it, and the status and success bodies.

Everything here is a pure function of a request's bytes, so the HTTP handler stays about
sockets and the tests can drive each answer directly. A request body is mapped at accept
time because that is how the receiver knows how many spans or log records to report as
rejected in `partial_success`; the counts are exact (every item of the request is either
stored or rejected, never both), including the pre-1.0 `instrumentationLibrarySpans` /
`instrumentationLibraryLogs` shapes.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import orjson
from google.protobuf import unknown_fields
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsPartialSuccess,
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.logs.v1.logs_pb2 import ScopeLogs
from opentelemetry.proto.trace.v1.trace_pb2 import ScopeSpans

from ingest.framing import MAX_RECORD_BYTES
from ingest.otlp import Batch, Mapping

try:  # ships with googleapis-common-protos, which the OTLP exporters depend on
    from google.rpc.status_pb2 import Status as _RpcStatus
except ImportError:  # pragma: no cover - exercised only without googleapis-common-protos
    _RpcStatus = None

SIGNALS = {"/v1/traces": "traces", "/v1/logs": "logs", "/v1/metrics": "metrics"}
MAX_BODY_BYTES = MAX_RECORD_BYTES  # the OTLP/HTTP default limit, applied after decompression
CONTENT_TYPES = {"application/x-protobuf": "proto", "application/json": "json"}
MEDIA = {"proto": "application/x-protobuf", "json": "application/json"}
UTF8 = ("utf-8", "utf8")
_INFLATE_STEP = 1 << 20
OTHER_SIGNAL_KEYS = {
    "resourceSpans": "/v1/traces",
    "resourceLogs": "/v1/logs",
    "resourceMetrics": "/v1/metrics",
    "resourceProfiles": "/v1development/profiles",
}
# Pre-1.0 OTLP: ResourceSpans/ResourceLogs field 1000, laid out as ScopeSpans/ScopeLogs are.
_LEGACY_FIELD = 1000
# google.rpc.Code for each HTTP status we answer with (the gRPC/HTTP mapping of code.proto).
_RPC_CODES = {
    400: 3,
    401: 16,
    404: 5,
    405: 12,
    408: 4,
    411: 3,
    413: 8,
    415: 3,
    431: 8,
    500: 13,
    501: 12,
    503: 14,
}
# What a parser may raise on a request whose nesting is not OTLP's (`"scopeLogs": 5`):
# bad input, answered 400, never a 500.
_SHAPE_ERRORS = (TypeError, AttributeError, ValueError, KeyError, IndexError, RecursionError)


class Reply(Exception):
    """Stop handling this request and answer with an error Status."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        close: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}
        self.close = close


def inflate(
    data: bytes | bytearray,
    coding: str,
    limit: int,
    charge: Callable[[int], None] | None = None,
) -> bytes | bytearray:
    """Undo gzip or deflate, refusing (OverflowError) output beyond `limit` bytes.

    Inflates in 1 MiB steps, so a decompression bomb costs about `limit` of memory before
    it is refused; a truncated stream is an error rather than a silently shorter body.
    `charge` is told of every step's bytes, so a memory budget sees the body as it grows.
    """
    if coding == "gzip":
        wbits = 31
    elif data[:1] and (data[0] & 0x0F) == 8 and int.from_bytes(data[:2], "big") % 31 == 0:
        wbits = 15  # zlib-wrapped, as RFC 9110 says deflate is
    else:
        wbits = -15  # raw deflate, which some clients send instead
    out = bytearray()
    d = zlib.decompressobj(wbits)
    pending = data
    while True:
        chunk = d.decompress(pending, _INFLATE_STEP)
        if charge is not None:
            charge(len(chunk))
        out += chunk
        if len(out) > limit:
            raise OverflowError(f"the body inflates to more than {limit} bytes")
        pending = d.unconsumed_tail
        if d.eof:
            rest = d.unused_data
            if coding == "gzip" and rest[:2] == b"\x1f\x8b":  # another gzip member
                d = zlib.decompressobj(wbits)
                pending = rest
                continue
            if rest.strip(b"\x00"):
                raise ValueError(f"{len(rest)} bytes of garbage after the {coding} stream")
            return out
        if not pending and len(chunk) < _INFLATE_STEP:
            raise ValueError(f"the {coding} stream is truncated")


def count_items(signal: str, request: Any) -> int:
    """Spans or log records in a decoded protobuf request, the pre-1.0 field 1000 included."""
    if signal == "logs":
        total = sum(len(sl.log_records) for rl in request.resource_logs for sl in rl.scope_logs)
        outers, legacy = request.resource_logs, ScopeLogs.FromString
    else:
        total = sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
        outers, legacy = request.resource_spans, ScopeSpans.FromString  # type: ignore[assignment]
    for outer in outers:
        for unknown in unknown_fields.UnknownFieldSet(outer):  # type: ignore[attr-defined]
            if unknown.field_number == _LEGACY_FIELD and isinstance(unknown.data, bytes):
                try:
                    scope: Any = legacy(unknown.data)
                except DecodeError:
                    continue  # the parser cannot see it either; nothing to count
                total += len(scope.log_records if signal == "logs" else scope.spans)
    return total


def count_json_items(signal: str, doc: dict[str, Any]) -> int:
    """Spans or log records in an OTLP/JSON request, counting only where the shape allows.

    Both the current scope lists and the pre-1.0 instrumentation-library ones count, so a
    span the parser rejects is reported as rejected whichever name its list had.
    """
    outer, inners, leaf = _shape(signal)
    total = 0
    for resource in doc.get(outer) or ():
        for inner in inners:
            scopes = resource.get(inner) if isinstance(resource, dict) else None
            for scope in scopes if isinstance(scopes, list) else ():
                items = scope.get(leaf) if isinstance(scope, dict) else None
                total += len(items) if isinstance(items, list) else 0
    return total


def check_json_shape(signal: str, doc: dict[str, Any]) -> None:
    """400 for a request whose lists are not lists (`"scopeLogs": 5`, `"logRecords": "x"`).

    Such a request has no countable items, so no exact `partial_success` could describe
    it; it is refused whole and nothing of it is spooled. Items that are not objects are
    counted and rejected one by one by the parser instead.
    """
    outer, inners, leaf = _shape(signal)
    for i, resource in enumerate(doc[outer]):
        if not isinstance(resource, dict):
            raise Reply(400, f"{outer}[{i}] is not an object (got {type(resource).__name__})")
        for inner in inners:
            scopes = resource.get(inner)
            if scopes is None:
                continue
            if not isinstance(scopes, list):
                raise Reply(
                    400, f"{outer}[{i}].{inner} is not a list (got {type(scopes).__name__})"
                )
            for j, scope in enumerate(scopes):
                if not isinstance(scope, dict):
                    raise Reply(
                        400,
                        f"{outer}[{i}].{inner}[{j}] is not an object (got {type(scope).__name__})",
                    )
                items = scope.get(leaf)
                if items is not None and not isinstance(items, list):
                    raise Reply(
                        400,
                        f"{outer}[{i}].{inner}[{j}].{leaf} is not a list "
                        f"(got {type(items).__name__})",
                    )


def _shape(signal: str) -> tuple[str, tuple[str, str], str]:
    if signal == "logs":
        return "resourceLogs", ("scopeLogs", "instrumentationLibraryLogs"), "logRecords"
    return "resourceSpans", ("scopeSpans", "instrumentationLibrarySpans"), "spans"


@dataclass
class Decoded:
    """One request, mapped: the Batch, and the counts for `partial_success`."""

    batch: Batch
    total: int
    rejected: int

    @property
    def empty(self) -> bool:
        b = self.batch
        return not b.rows and not b.evaluation_count and not b.quarantine


def decode(
    signal: str,
    encoding: str,
    body: bytes | bytearray,
    mapping: Mapping,
    location: str,
    admit: Callable[[int], None] | None = None,
) -> Decoded:
    """Map one request body; raises Reply(400) when it is not an OTLP request at all.

    The protobuf request parsed for counting is dropped before the Batch parses it again,
    so the two decoded copies are never in memory at once. `admit` is told the item count
    before the items are mapped (the mapped rows cost per item, not per byte), and may
    wait for memory or raise Reply(503).
    """
    batch = Batch(mapping)
    if encoding == "proto":
        cls = ExportLogsServiceRequest if signal == "logs" else ExportTraceServiceRequest
        try:
            request: Any = cls.FromString(body)  # type: ignore[arg-type]  # a bytearray parses too
        except DecodeError as exc:
            raise Reply(400, f"not a valid OTLP protobuf {signal} request: {exc}") from None
        total = count_items(signal, request)
        del request
        if admit is not None:
            admit(total)
        if total:
            _parse(batch.add_proto, body, location, signal)
    else:
        key = "resourceLogs" if signal == "logs" else "resourceSpans"
        doc = json_request(body, key)
        if doc is None:
            return Decoded(batch, 0, 0)  # only unknown fields: an empty request
        check_json_shape(signal, doc)
        total = count_json_items(signal, doc)
        if admit is not None:
            admit(total)
        _parse(batch.add_json, doc, location, signal)
    if signal == "logs":
        ignored = sum(n for what, n in batch.skipped.items() if what.startswith("log records"))
        accepted = batch.evaluation_count + ignored
    else:
        accepted = len(batch)
    return Decoded(batch, total, max(total - accepted, 0))


def json_request(body: bytes | bytearray, key: str) -> dict[str, Any] | None:
    """An OTLP/JSON request whose `key` list holds the items; None when it has no such key
    (an empty request). Raises Reply(400) for what is no request of this signal at all,
    naming the right path when the body is another signal's."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Reply(400, f"not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise Reply(400, f"expected a JSON object, got {type(doc).__name__}")
    if key not in doc:
        other = next((k for k in OTHER_SIGNAL_KEYS if k in doc), None)
        if other:
            raise Reply(400, f"this is a {other} request; send it to {OTHER_SIGNAL_KEYS[other]}")
        return None
    if not isinstance(doc[key], list):
        raise Reply(400, f"{key} is not a list")
    return doc


def _parse(add: Any, payload: Any, location: str, signal: str) -> None:
    """Run one of Batch's parsers; a request it cannot walk at all is a 400, never a 500."""
    try:
        add(payload, location, signal=signal)
    except _SHAPE_ERRORS as exc:
        raise Reply(
            400, f"malformed OTLP {signal} request (not OTLP's nesting): {exc or type(exc)}"
        ) from None


def status_body(encoding: str, status: int, message: str) -> bytes:
    code = _RPC_CODES.get(status, 2)
    if encoding == "proto":
        if _RpcStatus is not None:
            out: bytes = _RpcStatus(code=code, message=message).SerializeToString()
            return out
        text = message.encode()  # google.rpc.Status: 1 code (varint), 2 message (string)
        return b"\x08" + _varint(code) + b"\x12" + _varint(len(text)) + text
    return orjson.dumps({"code": code, "message": message})


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        bits, n = n & 0x7F, n >> 7
        out.append(bits | (0x80 if n else 0))
        if not n:
            return bytes(out)


def success_body(encoding: str, signal: str, rejected: int, message: str) -> bytes:
    partial = rejected > 0 or bool(message)
    if encoding == "json":
        if not partial:
            return b"{}"
        key = "rejectedLogRecords" if signal == "logs" else "rejectedSpans"
        return orjson.dumps(
            {"partialSuccess": {key: str(rejected), "errorMessage": message}}
        )  # int64 is a decimal string in proto3 JSON
    if signal == "logs":
        logs = ExportLogsPartialSuccess(rejected_log_records=rejected, error_message=message)
        log_reply: bytes = ExportLogsServiceResponse(
            partial_success=logs if partial else None
        ).SerializeToString()
        return log_reply
    spans = ExportTracePartialSuccess(rejected_spans=rejected, error_message=message)
    trace_reply: bytes = ExportTraceServiceResponse(
        partial_success=spans if partial else None
    ).SerializeToString()
    return trace_reply


def partial_message(decoded: Decoded, signal: str) -> str:
    q = decoded.batch.quarantine
    what = "log records" if signal == "logs" else "spans"
    if not q:
        if not decoded.rejected:
            return ""
        return (
            f"{decoded.rejected} of {decoded.total} {what} rejected: in a form this receiver "
            "does not read (pre-1.0 instrumentationLibrary lists); send scopeSpans/scopeLogs"
        )
    head = "; ".join(f"{loc.split(': ', 1)[-1]}: {err}" for loc, err, _ in q[:3])
    more = f" (and {len(q) - 3} more)" if len(q) > 3 else ""
    lead = f"{decoded.rejected} of {decoded.total} {what} rejected" if decoded.rejected else ""
    lead = lead or "accepted with warnings"
    return f"{lead}: {head}{more}; they are kept in the warehouse's quarantine table"[:2000]


def request_location(path: str, peer: str, received_ns: int) -> str:
    """How a quarantine row names the request it came in: method, path, peer, time."""
    at = datetime.fromtimestamp(received_ns / 1e9, UTC).isoformat(timespec="milliseconds")
    return f"POST {urlsplit(path).path} from {peer} at {at.replace('+00:00', 'Z')}"

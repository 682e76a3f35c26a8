"""The walk over a parsed OTLP protobuf request: resources, scopes, spans and log records.

upb parses a request in C at millions of spans a second; the cost is this loop. So a
span's fixed fields are read once into locals, an attribute map is decoded by one dict
comprehension with the string case first, and a span's size is only measured when the
whole request is bigger than the per-span limit (a smaller request cannot hold a bigger
span). Pre-1.0 senders' `instrumentation_library_spans`/`_logs` (field 1000, dropped from
today's .proto) are read from the unknown fields: their layout is today's ScopeSpans/Logs.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.message import DecodeError
from google.protobuf.unknown_fields import UnknownFieldSet
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.logs.v1.logs_pb2 import ScopeLogs
from opentelemetry.proto.trace.v1.trace_pb2 import ScopeSpans

from ingest.errors import RecordError
from ingest.otlp.fields import KINDS, MAX_NS, MIN_NS, STATUSES, bytes_id, message, ns, proto_value
from ingest.otlp.mapping import COLUMN, DENIED, KEPT, Mapping, ResourceContext
from ingest.otlp.rows import EVALUATION_EVENT, Rows, evaluation_row, span_row

LEGACY_FIELD = 1000  # instrumentation_library_spans / _logs before OTLP 1.0
_BAD = (RecordError, ValueError, UnicodeDecodeError)
# AnyValue fields whose value `proto_value` returns as it is: read inline, without the call
_SCALARS = frozenset({"string_value", "int_value", "double_value", "bool_value"})
_ZERO16, _ZERO8 = bytes(16), bytes(8)


def _attrs(items: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in items:
        value = kv.value
        which = value.WhichOneof("value")
        out[kv.key] = value.string_value if which == "string_value" else proto_value(value)
    return out


def _legacy(message_: Any, cls: Any) -> list[Any]:
    """Scope entries a pre-1.0 sender put in field 1000, parsed as today's scope message."""
    found = []
    for f in UnknownFieldSet(message_):  # type: ignore[attr-defined]  # iterable at run time
        if f.field_number == LEGACY_FIELD and f.wire_type == 2:
            try:
                found.append(cls.FromString(f.data))
            except DecodeError as exc:
                raise RecordError(f"instrumentationLibrary entry is not valid: {exc}") from None
    return found


def _scopes(resource: Any, current: str, cls: Any, legacy_name: str) -> tuple[str, list[Any]]:
    """A resource's scopes, under today's field or, when that is empty, the pre-1.0 one."""
    scopes = getattr(resource, current)
    if len(scopes):
        return _CAMEL[current], list(scopes)
    return legacy_name, _legacy(resource, cls)


_CAMEL = {"scope_spans": "scopeSpans", "scope_logs": "scopeLogs"}


def walk_traces(
    rows: Rows, request: ExportTraceServiceRequest, location: str, *, measure: bool
) -> None:
    """Stage the spans of one request; `measure` checks each span against max_span_bytes."""
    mapping = rows.mapping
    for i, rs in enumerate(request.resource_spans):
        where = f"{location}: resourceSpans[{i}]"
        try:
            ctx = mapping.resource_context(_attrs(rs.resource.attributes))
            name, scope_list = _scopes(rs, "scope_spans", ScopeSpans, "instrumentationLibrarySpans")
        except _BAD as exc:
            items = max(sum(len(ss.spans) for ss in rs.scope_spans), 1)
            rows.reject(where, f"bad resource: {message(exc)}", str(rs)[:500], items)
            continue
        for j, ss in enumerate(scope_list):
            scope_where = f"{where}.{name}[{j}].spans"  # a span's location is built on error only
            for k, span in enumerate(ss.spans):
                try:
                    _span(rows, span, ctx, scope_where, k, measure)
                except _BAD as exc:
                    rows.reject(f"{scope_where}[{k}]", message(exc), _span_excerpt(span))


def _split_attrs(items: Any, mapping: Mapping) -> tuple[dict[str, Any], dict[str, Any], bool]:
    """The attributes as (those that become columns, the rest) in one pass, and whether
    `mapping.clean` would change nothing in the rest.

    A value the deny list drops is not decoded at all; a plain string within the cap, an
    int or a bool is kept as it is, and anything else leaves the map to `mapping.clean`.
    """
    mapped: dict[str, Any] = {}
    rest: dict[str, Any] = {}
    clean = True
    kinds, limit = mapping.key_kinds, mapping.max_bytes
    for kv in items:
        key = kv.key
        kind = kinds.get(key)
        if kind is None:
            kind = mapping.key_kind(key)
        value = kv.value
        text = value.string_value  # most values are strings: one call, not two
        if kind == KEPT:
            if text:
                rest[key] = text
                if len(text) > limit:
                    clean = False
                continue
            which = value.WhichOneof("value")
            decoded = getattr(value, which) if which in _SCALARS else proto_value(value)
            rest[key] = decoded
            if decoded.__class__ not in (int, bool, str):
                clean = False
        elif kind == COLUMN:
            if text:
                mapped[key] = text
            else:
                which = value.WhichOneof("value")
                mapped[key] = getattr(value, which) if which in _SCALARS else proto_value(value)
        elif kind == DENIED:
            if mapping.redact:
                rest[key] = None  # mapping.clean writes "[redacted]"
                clean = False
        else:
            rest[key] = text if text else proto_value(value)
            clean = False
    return mapped, rest, clean


def _span(
    rows: Rows, span: Any, ctx: ResourceContext, scope_where: str, k: int, measure: bool
) -> None:
    """Stage one span; the checks of `fields` run only where the cheap test fails."""
    mapping = rows.mapping
    tid, sid, pid = span.trace_id, span.span_id, span.parent_span_id
    # of the right length and not all zeros (one compare, not any()'s walk over the bytes)
    trace_id = tid.hex() if len(tid) == 16 and tid != _ZERO16 else bytes_id(tid, 16, "traceId")
    span_id = sid.hex() if len(sid) == 8 and sid != _ZERO8 else bytes_id(sid, 8, "spanId")
    parent = None
    if pid:
        parent = pid.hex() if len(pid) == 8 and pid != _ZERO8 else bytes_id(pid, 8, "parentSpanId")
    start, end = span.start_time_unix_nano, span.end_time_unix_nano
    if not MIN_NS <= start < MAX_NS:
        ns(start, "startTimeUnixNano")  # raises, saying why
    if not MIN_NS <= end < MAX_NS:
        ns(end, "endTimeUnixNano")
    latest = rows.latest_ns
    if start > latest:
        rows.check_time("start time", start)
    if end > latest:
        rows.check_time("end time", end)
    kind = span.kind
    kind_name = KINDS[kind] if 0 <= kind < 6 else _enum_error("kind", kind, KINDS)
    status = span.status
    code = status.code
    code_name = STATUSES[code] if 0 <= code < 3 else _enum_error("status.code", code, STATUSES)
    name = span.name
    if not name:
        raise RecordError("span has no name")
    if measure:
        size = _size(span)
        if size > mapping.max_span_bytes:
            raise mapping.span_size_error(size)
    mapped, rest, rest_clean = _split_attrs(span.attributes, mapping)
    rows.rows.append(
        span_row(
            mapping,
            ctx,
            trace_id,
            span_id,
            parent,
            span.trace_state or None,
            name,
            kind_name,
            start,
            end,
            code_name,
            status.message or None,
            mapped,
            rest,
            rest_clean,
        )
    )
    rows.accepted += 1
    events = span.events
    if not events:
        return
    for n, event in enumerate(events):
        if event.name != EVALUATION_EVENT:
            continue
        try:
            t = event.time_unix_nano
            t = ns(t, "event timeUnixNano") if t else end
            evaluation = evaluation_row(
                mapping,
                trace_id,
                span_id,
                rows.check_time("time", t),
                _attrs(event.attributes),
                "span_event",
            )
            rows.add_evaluation(evaluation)
        except _BAD as exc:  # the evaluation is its own record: the span stays staged
            where = f"{scope_where}[{k}].events[{n}]"
            rows.quarantine.append((where, message(exc), str(event)[:500]))


def _enum_error(field_name: str, value: int, names: tuple[str, ...]) -> str:
    raise RecordError(f"{field_name} {value!r} is not a known value ({', '.join(names)})")


def _size(span: Any) -> int:
    """Bytes of a span's attributes, events and links, as protobuf."""
    return sum(x.ByteSize() for part in (span.attributes, span.events, span.links) for x in part)


def _span_excerpt(span: Any) -> str:
    """A quarantine excerpt that never prints a huge span whole."""
    if span.ByteSize() > 4096:
        return (
            f"trace_id: {span.trace_id.hex()} span_id: {span.span_id.hex()} "
            f"name: {span.name[:200]!r} (attributes, events and links left out)"
        )
    try:
        return str(span)[:500]
    except UnicodeDecodeError:
        return f"trace_id: {span.trace_id.hex()} span_id: {span.span_id.hex()}"


def walk_logs(rows: Rows, request: ExportLogsServiceRequest, location: str) -> None:
    """Stage the evaluations among one request's log records; count the others as ignored."""
    mapping = rows.mapping
    for i, rl in enumerate(request.resource_logs):
        where = f"{location}: resourceLogs[{i}]"
        try:
            name, scope_list = _scopes(rl, "scope_logs", ScopeLogs, "instrumentationLibraryLogs")
        except _BAD as exc:
            rows.reject(where, message(exc), str(rl)[:500])
            continue
        for j, sl in enumerate(scope_list):
            for k, lr in enumerate(sl.log_records):
                try:
                    attrs = _attrs(lr.attributes)
                    event_name = lr.event_name or attrs.get("event.name")
                    if event_name != EVALUATION_EVENT:
                        rows.ignore("log records that are not gen_ai.evaluation.result")
                        continue
                    if not lr.trace_id or not lr.span_id:
                        raise RecordError(
                            "evaluation has no span context (traceId/spanId); it cannot "
                            "be joined to a request"
                        )
                    t = ns(lr.time_unix_nano or lr.observed_time_unix_nano, "timeUnixNano")
                    row = evaluation_row(
                        mapping,
                        bytes_id(lr.trace_id, 16, "traceId"),
                        bytes_id(lr.span_id, 8, "spanId"),
                        rows.check_time("time", t),
                        attrs,
                        "log_record",
                    )
                    rows.add_evaluation(row)
                    rows.accepted += 1
                except _BAD as exc:
                    rows.reject(f"{where}.{name}[{j}].logRecords[{k}]", message(exc), str(lr)[:500])

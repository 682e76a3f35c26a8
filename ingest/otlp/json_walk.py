"""The walk over a decoded OTLP/JSON request: resources, scopes, spans and log records.

Every level checks its own shape and quarantines only what it cannot read: a resource
whose `scopeLogs` is a number costs that resource, a scope whose `logRecords` is a string
costs that scope, and the next ones still load. Pre-1.0 senders' field names
(`instrumentationLibrarySpans`, `instrumentationLibraryLogs`) are read as the current ones.
"""

from __future__ import annotations

from contextlib import suppress
from typing import Any

import orjson

from ingest.errors import RecordError
from ingest.otlp.fields import (
    KINDS,
    STATUSES,
    UNSET_TIMES,
    enum,
    excerpt_json,
    hex_id,
    is_hex,
    json_attrs,
    json_value,
    message,
    ns,
)
from ingest.otlp.mapping import COLUMN, KEPT, Mapping, ResourceContext
from ingest.otlp.rows import EVALUATION_EVENT, Rows, evaluation_row, span_row

# what a malformed document raises on the way down, besides our own RecordError
_BAD = (RecordError, AttributeError, TypeError, ValueError, KeyError)


def _scopes(parent: dict[str, Any], current: str, legacy: str) -> tuple[str, Any]:
    """The scope list of a resource, under its current name or its pre-1.0 one."""
    scopes = parent.get(current)
    if not scopes and parent.get(legacy):
        return legacy, parent[legacy]
    return current, scopes


def _countable(resource: Any, inner: str, legacy: str, leaf: str) -> int:
    """How many items a resource holds, counting only where the shape allows (at least 1)."""
    total = 0
    if isinstance(resource, dict):
        _, scopes = _scopes(resource, inner, legacy)
        for scope in scopes if isinstance(scopes, list) else ():
            items = scope.get(leaf) if isinstance(scope, dict) else None
            total += len(items) if isinstance(items, list) else 1
    return max(total, 1)


def walk_traces(rows: Rows, resource_spans: Any, location: str, *, measure: bool) -> None:
    """Stage the spans of one request; `measure` checks each span against max_span_bytes."""
    if not isinstance(resource_spans, list):
        rows.reject(location, "wrong schema: resourceSpans is not a list", "")
        return
    for i, rs in enumerate(resource_spans):
        where = f"{location}: resourceSpans[{i}]"
        try:
            resource = json_attrs((rs.get("resource") or {}).get("attributes"))
            name, scope_spans = _scopes(rs, "scopeSpans", "instrumentationLibrarySpans")
            if scope_spans is None:
                continue
            if not isinstance(scope_spans, list):
                raise RecordError(f"{name} is not a list")
            ctx = rows.mapping.resource_context(resource)
        except _BAD as exc:
            items = _countable(rs, "scopeSpans", "instrumentationLibrarySpans", "spans")
            rows.reject(where, f"bad resource: {message(exc)}", excerpt_json(rs), items)
            continue
        for j, ss in enumerate(scope_spans):
            if not isinstance(ss, dict):
                rows.reject(f"{where}.{name}[{j}]", "wrong schema: not an object", excerpt_json(ss))
                continue
            spans = ss.get("spans")
            if spans is None:
                continue  # proto3 JSON leaves out an empty list
            if not isinstance(spans, list):
                rows.reject(
                    f"{where}.{name}[{j}]", "wrong schema: spans is not a list", excerpt_json(ss)
                )
                continue
            scope_where = f"{where}.{name}[{j}].spans"  # a span's location is built on error only
            for k, span in enumerate(spans):
                try:
                    _span(rows, span, ctx, scope_where, k, measure)
                except _BAD as exc:
                    rows.reject(f"{scope_where}[{k}]", message(exc), _span_excerpt(span))


def _split_attrs(items: Any, mapping: Mapping) -> tuple[dict[str, Any], dict[str, Any], bool]:
    """The attributes as (those that become columns, the rest) in one pass, and whether
    `mapping.clean` would change nothing in the rest.

    Every value is decoded, denied ones too, so a span refused for a bad value before is
    refused still; a kept plain string within the cap, an int or a bool leaves the map
    clean, anything else leaves it to `mapping.clean`.
    """
    if not items:
        return {}, {}, True
    if not isinstance(items, list):
        raise RecordError("attributes is not a list of {key, value}")
    mapped: dict[str, Any] = {}
    rest: dict[str, Any] = {}
    clean = True
    kinds, limit = mapping.key_kinds, mapping.max_bytes
    for item in items:
        key = item["key"]
        if key.__class__ is not str and not isinstance(key, str):
            raise RecordError(f"attribute key {key!r} is not a string")
        value = item.get("value")
        text = value.get("stringValue") if value.__class__ is dict else None
        if text.__class__ is not str:  # most attributes are strings: skip the dispatch
            text = json_value(value)
        kind = kinds.get(key)
        if kind is None:
            kind = mapping.key_kind(key)
        if kind == COLUMN:
            mapped[key] = text
            continue
        rest[key] = text
        if clean and (
            kind != KEPT
            or text.__class__ not in (str, int, bool)
            or (text.__class__ is str and len(text) > limit)
        ):
            clean = False
    return mapped, rest, clean


def _span(
    rows: Rows, span: dict[str, Any], ctx: ResourceContext, scope_where: str, k: int, measure: bool
) -> None:
    """Stage one span; the checks of `fields` run in full only where the cheap test fails."""
    mapping = rows.mapping
    get = span.get
    # an id of the right length, all hex and not all zeros is `hex_id`'s answer, inline
    trace_id = get("traceId")
    if (
        trace_id.__class__ is str
        and len(trace_id) == 32
        and is_hex(trace_id)
        and trace_id.strip("0")
    ):
        trace_id = trace_id.lower()
    else:
        trace_id = hex_id(trace_id, 16, "traceId")
    span_id = get("spanId")
    if span_id.__class__ is str and len(span_id) == 16 and is_hex(span_id) and span_id.strip("0"):
        span_id = span_id.lower()
    else:
        span_id = hex_id(span_id, 8, "spanId")
    parent = get("parentSpanId") or None
    if parent is not None:
        if parent.__class__ is str and len(parent) == 16 and is_hex(parent) and parent.strip("0"):
            parent = parent.lower()
        else:
            parent = hex_id(parent, 8, "parentSpanId")
    latest = rows.latest_ns
    start = ns(get("startTimeUnixNano"), "startTimeUnixNano")
    if start > latest:
        rows.check_time("start time", start)
    end = ns(get("endTimeUnixNano"), "endTimeUnixNano")
    if end > latest:
        rows.check_time("end time", end)
    kind = get("kind", 0)
    if kind.__class__ is int and 0 <= kind < 6:
        kind = KINDS[kind]
    else:
        kind = enum(kind, KINDS, "SPAN_KIND_", "kind")
    status = get("status") or {}
    code = status.get("code", 0)
    if code.__class__ is int and 0 <= code < 3:
        code = STATUSES[code]
    else:
        code = enum(code, STATUSES, "STATUS_CODE_", "status.code")
    name = get("name")
    if not isinstance(name, str) or not name:
        raise RecordError("span has no name")
    events = get("events")
    if events is not None:
        events = _objects(events, "events")
    links = get("links")
    if links is not None:
        _objects(links, "links")
    if measure:
        size = _size(span)
        if size > mapping.max_span_bytes:
            raise mapping.span_size_error(size)
    mapped, rest, rest_clean = _split_attrs(get("attributes"), mapping)
    row = span_row(
        mapping,
        ctx,
        trace_id,
        span_id,
        parent,
        get("traceState") or None,
        name,
        kind,
        start,
        end,
        code,
        status.get("message") or None,
        mapped,
        rest,
        rest_clean,
    )
    rows.rows.append(row)
    rows.accepted += 1
    if not events:
        return
    for n, event in enumerate(events):
        if event.get("name") != EVALUATION_EVENT:
            continue
        try:
            t = event.get("timeUnixNano")
            t = ns(t, "event timeUnixNano") if t not in UNSET_TIMES else end
            attrs = json_attrs(event.get("attributes"))
            rows.add_evaluation(
                evaluation_row(
                    mapping, trace_id, span_id, rows.check_time("time", t), attrs, "span_event"
                )
            )
        except _BAD as exc:  # the evaluation is its own record: the span stays staged
            where = f"{scope_where}[{k}].events[{n}]"
            rows.quarantine.append((where, message(exc), excerpt_json(event)))


def _objects(value: Any, field_name: str) -> list[dict[str, Any]]:
    """A span's events or links: a list of objects, else the span is unreadable."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise RecordError(f"{field_name} is not a list (got {type(value).__name__})")
    for n, item in enumerate(value):
        if not isinstance(item, dict):
            raise RecordError(f"{field_name}[{n}] is not an object (got {type(item).__name__})")
    return value


def _size(span: dict[str, Any]) -> int:
    """Bytes of a span's attributes, events and links, as JSON."""
    size = 0
    for key in ("attributes", "events", "links"):
        value = span.get(key)
        if value:
            with suppress(TypeError):  # nested deeper than orjson serializes: decoding says so
                size += len(orjson.dumps(value))
    return size


def _span_excerpt(span: Any) -> str:
    """A quarantine excerpt that never serializes a huge span whole."""
    if isinstance(span, dict) and len(span) > 0:
        head = {k: span[k] for k in ("traceId", "spanId", "name") if k in span}
        if _size(span) > 4096:
            return excerpt_json({**head, "…": "attributes, events and links left out"})
    return excerpt_json(span)


def walk_logs(rows: Rows, resource_logs: Any, location: str) -> None:
    """Stage the evaluations among one request's log records; count the others as ignored."""
    if not isinstance(resource_logs, list):
        rows.reject(location, "wrong schema: resourceLogs is not a list", "")
        return
    for i, rl in enumerate(resource_logs):
        where = f"{location}: resourceLogs[{i}]"
        if not isinstance(rl, dict):
            rows.reject(where, "wrong schema: a resourceLogs entry is not an object", "")
            continue
        name, scope_logs = _scopes(rl, "scopeLogs", "instrumentationLibraryLogs")
        if scope_logs is None:
            continue
        if not isinstance(scope_logs, list):
            rows.reject(where, f"wrong schema: {name} is not a list", excerpt_json(rl))
            continue
        for j, sl in enumerate(scope_logs):
            if not isinstance(sl, dict):
                rows.reject(f"{where}.{name}[{j}]", "wrong schema: not an object", excerpt_json(sl))
                continue
            records = sl.get("logRecords")
            if records is None:
                continue
            if not isinstance(records, list):
                rows.reject(
                    f"{where}.{name}[{j}]",
                    "wrong schema: logRecords is not a list",
                    excerpt_json(sl),
                )
                continue
            for k, lr in enumerate(records):
                here = f"{where}.{name}[{j}].logRecords[{k}]"
                try:
                    _log_record(rows, lr)
                except _BAD as exc:
                    rows.reject(here, message(exc), excerpt_json(lr))


def _log_record(rows: Rows, lr: dict[str, Any]) -> None:
    attrs = json_attrs(lr.get("attributes"))
    name = lr.get("eventName") or attrs.get("event.name")
    if name != EVALUATION_EVENT:
        rows.ignore("log records that are not gen_ai.evaluation.result")
        return
    if not lr.get("traceId") or not lr.get("spanId"):
        raise RecordError(
            "evaluation has no span context (traceId/spanId); it cannot be joined to a request"
        )
    t = lr.get("timeUnixNano")
    if t in UNSET_TIMES:  # 0 is "unknown", as in the protobuf path
        t = lr.get("observedTimeUnixNano")
    row = evaluation_row(
        rows.mapping,
        hex_id(lr.get("traceId"), 16, "traceId"),
        hex_id(lr.get("spanId"), 8, "spanId"),
        rows.check_time("time", ns(t, "timeUnixNano")),
        attrs,
        "log_record",
    )
    rows.add_evaluation(row)
    rows.accepted += 1

"""OTLP traces and logs (JSON or protobuf) into rows for `spans` and `evaluations`.

The mapping follows DESIGN.md: environment from the config's resolver rules, then
`deployment.environment.name`, then `deployment.environment`; the model from
`gen_ai.request.model` or the attribute the config names for the service (the request
span's model is completed from its descendants when the batch is published). Prompt and
completion content is dropped or redacted by the deny list and every value is capped.
A bad span or log record becomes a quarantine entry and never stops its neighbours.
"""

from __future__ import annotations

import base64
import binascii
import gc
import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
import pyarrow as pa
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from ingest.framing import Record
from warehouse.config import Config

KINDS = ("UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")
STATUSES = ("UNSET", "OK", "ERROR")
MIN_NS = 946_684_800 * 10**9  # 2000-01-01: anything earlier is a zero or a broken clock
MAX_NS = 4_102_444_800 * 10**9  # 2100-01-01
MAX_COUNT = 2**53
_UNSET_TIMES = (None, "", "0", 0)  # a zero time means "not set" (OTLP), here as in protobuf
EVALUATION_EVENT = "gen_ai.evaluation.result"
PASS_LABELS = frozenset({"pass", "passed", "true", "correct", "yes", "1", "success"})
FAIL_LABELS = frozenset({"fail", "failed", "false", "incorrect", "no", "0", "failure"})
_PROVIDER_ALIASES = {"az.ai.openai": "azure.ai.openai", "az.ai.inference": "azure.ai.inference"}
# Attributes that become columns; everything else stays in the `attributes` JSON.
_MAPPED = frozenset(
    {
        "gen_ai.request.model",
        "gen_ai.response.model",
        "gen_ai.operation.name",
        "gen_ai.provider.name",
        "gen_ai.system",
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.output_tokens",
        "gen_ai.usage.prompt_tokens",
        "gen_ai.usage.completion_tokens",
        "gen_ai.server.time_to_first_token",
    }
)

SPAN_SCHEMA = pa.schema(
    [
        ("trace_id", pa.string()),
        ("span_id", pa.string()),
        ("parent_span_id", pa.string()),
        ("trace_state", pa.string()),
        ("service", pa.string()),
        ("environment", pa.string()),
        ("own_model", pa.string()),
        ("version", pa.string()),
        ("response_model", pa.string()),
        ("operation", pa.string()),
        ("provider", pa.string()),
        ("name", pa.string()),
        ("kind", pa.string()),
        ("start_time", pa.timestamp("ns", tz="UTC")),
        ("end_time", pa.timestamp("ns", tz="UTC")),
        ("duration_ms", pa.float64()),
        ("status_code", pa.string()),
        ("status_message", pa.string()),
        ("input_tokens", pa.int64()),
        ("output_tokens", pa.int64()),
        ("ttft_ms", pa.float64()),
        ("sample_weight", pa.float64()),
        ("host", pa.string()),
        ("resource_attributes", pa.string()),
        ("attributes", pa.string()),
    ]
)
EVALUATION_SCHEMA = pa.schema(
    [
        ("trace_id", pa.string()),
        ("span_id", pa.string()),
        ("evaluation_name", pa.string()),
        ("time", pa.timestamp("ns", tz="UTC")),
        ("score", pa.float64()),
        ("score_value", pa.float64()),
        ("score_label", pa.string()),
        ("explanation", pa.string()),
        ("response_id", pa.string()),
        ("origin", pa.string()),
    ]
)


class BadRecord(Exception):
    """One span or log record is unusable; the message says which field and why."""


@dataclass(frozen=True)
class Mapping:
    """The parts of the config that decide how a span is mapped."""

    rules: tuple[tuple[str, tuple[tuple[tuple[str, str], ...], ...]], ...] = ()
    sampling: tuple[tuple[str, float], ...] = ()
    model_attributes: tuple[tuple[str, str], ...] = ()
    deny_exact: frozenset[str] = frozenset()
    deny_prefixes: tuple[str, ...] = ()
    redact: bool = False
    max_bytes: int = 4096

    @classmethod
    def from_config(cls, config: Config) -> Mapping:
        exact = frozenset(p for p in config.ingest.deny_attributes if not p.endswith("*"))
        prefixes = tuple(p[:-1] for p in config.ingest.deny_attributes if p.endswith("*"))
        return cls(
            rules=tuple((e.name, e.match) for e in config.environments if e.match),
            sampling=tuple(
                (e.name, e.sampling_ratio) for e in config.environments if e.sampling_ratio
            ),
            model_attributes=tuple(sorted(config.model_attributes().items())),
            deny_exact=exact,
            deny_prefixes=prefixes,
            redact=config.ingest.redaction == "redact",
            max_bytes=config.ingest.max_attribute_bytes,
        )

    def environment(self, resource: dict[str, Any]) -> str:
        for name, rules in self.rules:
            if any(all(str(resource.get(k)) == v for k, v in rule) for rule in rules):
                return name
        for key in ("deployment.environment.name", "deployment.environment"):
            value = resource.get(key)
            if isinstance(value, str) and value:
                return value[:200]
        return "unknown"

    def denied(self, key: str) -> bool:
        return key in self.deny_exact or (
            bool(self.deny_prefixes) and key.startswith(self.deny_prefixes)
        )


@dataclass
class Batch:
    """Column lists for spans and evaluations plus what went to quarantine."""

    mapping: Mapping
    rows: list[tuple[Any, ...]] = field(
        default_factory=list
    )  # one tuple per span, SPAN_SCHEMA order
    evaluations: dict[str, list[Any]] = field(
        default_factory=lambda: {n: [] for n in EVALUATION_SCHEMA.names}
    )
    quarantine: list[tuple[str, str, str]] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    warnings: Counter[str] = field(default_factory=Counter)

    @property
    def spans(self) -> dict[str, list[Any]]:
        """The staged spans as columns (rows are kept as tuples: one append per span)."""
        columns = list(zip(*self.rows, strict=True)) if self.rows else [()] * len(SPAN_SCHEMA)
        return {name: list(col) for name, col in zip(SPAN_SCHEMA.names, columns, strict=True)}

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def evaluation_count(self) -> int:
        return len(self.evaluations["trace_id"])

    def to_arrow(self) -> tuple[pa.Table, pa.Table]:
        spans = pa.Table.from_pydict(self.spans, schema=SPAN_SCHEMA)  # one transpose, in C
        evals = pa.Table.from_pydict(self.evaluations, schema=EVALUATION_SCHEMA)
        return spans, evals

    def clear(self) -> None:
        self.rows.clear()
        for col in self.evaluations.values():
            col.clear()

    # -- entry points -----------------------------------------------------------------
    def add(self, record: Record, *, signal: str | None = None) -> None:
        """Decode one framed record and add what it holds; never raises for bad data."""
        if record.error:
            self.quarantine.append((record.location, record.error, _excerpt(record.payload)))
            return
        if record.encoding == "json":
            try:
                doc = orjson.loads(record.payload)
            except orjson.JSONDecodeError as exc:
                self.quarantine.append(
                    (record.location, f"not valid JSON: {exc}", _excerpt(record.payload))
                )
                return
            self.add_json(doc, record.location, signal=signal)
        else:
            self.add_proto(record.payload, record.location, signal=signal or "traces")

    def add_json(self, doc: Any, location: str, *, signal: str | None = None) -> None:
        if not isinstance(doc, dict):
            self.quarantine.append(
                (
                    location,
                    "wrong schema: expected a JSON object with resourceSpans or "
                    f"resourceLogs, got {type(doc).__name__}",
                    _excerpt_json(doc),
                )
            )
            return
        gc_was = gc.isenabled()
        gc.disable()  # millions of small dicts: the cyclic collector only slows this down
        try:
            if "resourceSpans" in doc and signal in (None, "traces"):
                self._json_traces(doc["resourceSpans"], location)
            elif "resourceLogs" in doc and signal in (None, "logs"):
                self._json_logs(doc["resourceLogs"], location)
            elif "resourceMetrics" in doc:
                self.skipped["metrics requests (GPU metrics come from their own collectors)"] += 1
            elif "resourceProfiles" in doc:
                self.skipped["profiles requests"] += 1
            elif not doc:
                self.skipped["empty requests"] += 1
            else:
                keys = ", ".join(sorted(map(str, doc))[:5])
                self.quarantine.append(
                    (
                        location,
                        f"wrong schema: no resourceSpans or resourceLogs (keys: {keys})",
                        _excerpt_json(doc),
                    )
                )
        finally:
            if gc_was:
                gc.enable()

    def add_proto(self, payload: bytes, location: str, *, signal: str = "traces") -> None:
        try:
            if signal == "logs":
                logs = ExportLogsServiceRequest.FromString(payload)
            else:
                traces = ExportTraceServiceRequest.FromString(payload)
        except DecodeError as exc:
            self.quarantine.append(
                (location, f"not a valid OTLP protobuf {signal} request: {exc}", _excerpt(payload))
            )
            return
        gc_was = gc.isenabled()
        gc.disable()
        try:
            if signal == "logs":
                self._proto_logs(logs, location)
            else:
                self._proto_traces(traces, location)
        finally:
            if gc_was:
                gc.enable()

    # -- JSON -------------------------------------------------------------------------
    def _json_traces(self, resource_spans: Any, location: str) -> None:
        if not isinstance(resource_spans, list):
            self.quarantine.append((location, "wrong schema: resourceSpans is not a list", ""))
            return
        for i, rs in enumerate(resource_spans):
            where = f"{location}: resourceSpans[{i}]"
            try:
                resource = _json_attrs((rs.get("resource") or {}).get("attributes"))
                scope_spans = rs.get("scopeSpans") or rs.get("instrumentationLibrarySpans") or []
                if not isinstance(scope_spans, list):
                    raise BadRecord("scopeSpans is not a list")
                ctx = self._resource_context(resource)
            except (BadRecord, AttributeError, TypeError, ValueError, KeyError) as exc:
                self.quarantine.append((where, f"bad resource: {_message(exc)}", _excerpt_json(rs)))
                continue
            for j, ss in enumerate(scope_spans):
                spans = ss.get("spans") if isinstance(ss, dict) else None
                if not isinstance(spans, list):
                    self.quarantine.append(
                        (
                            f"{where}.scopeSpans[{j}]",
                            "wrong schema: spans is not a list",
                            _excerpt_json(ss),
                        )
                    )
                    continue
                for k, span in enumerate(spans):
                    try:
                        self._json_span(span, ctx, f"{where}.scopeSpans[{j}].spans[{k}]")
                    except (BadRecord, AttributeError, TypeError, ValueError, KeyError) as exc:
                        self.quarantine.append(
                            (
                                f"{where}.scopeSpans[{j}].spans[{k}]",
                                _message(exc),
                                _excerpt_json(span),
                            )
                        )

    def _json_span(self, span: dict[str, Any], ctx: _ResourceContext, where: str) -> None:
        trace_id = _hex_id(span.get("traceId"), 16, "traceId")
        span_id = _hex_id(span.get("spanId"), 8, "spanId")
        parent = span.get("parentSpanId") or None
        if parent is not None:
            parent = _hex_id(parent, 8, "parentSpanId")
        start = _ns(span.get("startTimeUnixNano"), "startTimeUnixNano")
        end = _ns(span.get("endTimeUnixNano"), "endTimeUnixNano")
        kind = _enum(span.get("kind", 0), KINDS, "SPAN_KIND_", "kind")
        status = span.get("status") or {}
        code = _enum(status.get("code", 0), STATUSES, "STATUS_CODE_", "status.code")
        name = span.get("name")
        if not isinstance(name, str) or not name:
            raise BadRecord("span has no name")
        attrs = _json_attrs(span.get("attributes"))
        self._append_span(
            ctx,
            trace_id,
            span_id,
            parent,
            span.get("traceState") or None,
            name,
            kind,
            start,
            end,
            code,
            status.get("message") or None,
            attrs,
        )
        for n, event in enumerate(span.get("events") or ()):
            if isinstance(event, dict) and event.get("name") == EVALUATION_EVENT:
                try:
                    t = event.get("timeUnixNano")
                    self._append_evaluation(
                        trace_id,
                        span_id,
                        _ns(t, "event timeUnixNano") if t not in _UNSET_TIMES else end,
                        _json_attrs(event.get("attributes")),
                        "span_event",
                    )
                except (BadRecord, AttributeError, TypeError, ValueError, KeyError) as exc:
                    self.quarantine.append(
                        (f"{where}.events[{n}]", _message(exc), _excerpt_json(event))
                    )

    def _json_logs(self, resource_logs: Any, location: str) -> None:
        if not isinstance(resource_logs, list):
            self.quarantine.append((location, "wrong schema: resourceLogs is not a list", ""))
            return
        for i, rl in enumerate(resource_logs):
            scope_logs = rl.get("scopeLogs") if isinstance(rl, dict) else None
            for j, sl in enumerate(scope_logs or ()):
                records = sl.get("logRecords") if isinstance(sl, dict) else None
                for k, lr in enumerate(records or ()):
                    where = f"{location}: resourceLogs[{i}].scopeLogs[{j}].logRecords[{k}]"
                    try:
                        attrs = _json_attrs(lr.get("attributes"))
                        name = lr.get("eventName") or attrs.get("event.name")
                        if name != EVALUATION_EVENT:
                            self.skipped["log records that are not gen_ai.evaluation.result"] += 1
                            continue
                        if not lr.get("traceId") or not lr.get("spanId"):
                            raise BadRecord(
                                "evaluation has no span context (traceId/spanId); it cannot "
                                "be joined to a request"
                            )
                        t = lr.get("timeUnixNano")
                        if t in _UNSET_TIMES:  # 0 is "unknown", as in the protobuf path
                            t = lr.get("observedTimeUnixNano")
                        self._append_evaluation(
                            _hex_id(lr.get("traceId"), 16, "traceId"),
                            _hex_id(lr.get("spanId"), 8, "spanId"),
                            _ns(t, "timeUnixNano"),
                            attrs,
                            "log_record",
                        )
                    except (BadRecord, AttributeError, TypeError, ValueError, KeyError) as exc:
                        self.quarantine.append((where, _message(exc), _excerpt_json(lr)))

    # -- protobuf -----------------------------------------------------------------------
    def _proto_traces(self, request: ExportTraceServiceRequest, location: str) -> None:
        for i, rs in enumerate(request.resource_spans):
            try:
                resource = _proto_attrs(rs.resource.attributes)
            except (BadRecord, ValueError) as exc:
                self.quarantine.append(
                    (f"{location}: resourceSpans[{i}]", f"bad resource: {exc}", str(rs)[:500])
                )
                continue
            ctx = self._resource_context(resource)
            for j, ss in enumerate(rs.scope_spans):
                for k, span in enumerate(ss.spans):
                    try:
                        self._proto_span(
                            span, ctx, f"{location}: resourceSpans[{i}].scopeSpans[{j}].spans[{k}]"
                        )
                    except (BadRecord, ValueError) as exc:
                        self.quarantine.append(
                            (
                                f"{location}: resourceSpans[{i}].scopeSpans[{j}].spans[{k}]",
                                _message(exc),
                                str(span)[:500],
                            )
                        )

    def _proto_span(self, span: Any, ctx: _ResourceContext, where: str) -> None:
        trace_id = _bytes_id(span.trace_id, 16, "traceId")
        span_id = _bytes_id(span.span_id, 8, "spanId")
        parent = _bytes_id(span.parent_span_id, 8, "parentSpanId") if span.parent_span_id else None
        start = _ns(span.start_time_unix_nano, "startTimeUnixNano")
        end = _ns(span.end_time_unix_nano, "endTimeUnixNano")
        kind = _enum(span.kind, KINDS, "SPAN_KIND_", "kind")
        code = _enum(span.status.code, STATUSES, "STATUS_CODE_", "status.code")
        if not span.name:
            raise BadRecord("span has no name")
        attrs = _proto_attrs(span.attributes)
        self._append_span(
            ctx,
            trace_id,
            span_id,
            parent,
            span.trace_state or None,
            span.name,
            kind,
            start,
            end,
            code,
            span.status.message or None,
            attrs,
        )
        for n, event in enumerate(span.events):
            if event.name == EVALUATION_EVENT:
                try:
                    t = event.time_unix_nano
                    self._append_evaluation(
                        trace_id,
                        span_id,
                        _ns(t, "event timeUnixNano") if t else end,
                        _proto_attrs(event.attributes),
                        "span_event",
                    )
                except (BadRecord, ValueError) as exc:
                    self.quarantine.append(
                        (f"{where}.events[{n}]", _message(exc), str(event)[:500])
                    )

    def _proto_logs(self, request: ExportLogsServiceRequest, location: str) -> None:
        for i, rl in enumerate(request.resource_logs):
            for j, sl in enumerate(rl.scope_logs):
                for k, lr in enumerate(sl.log_records):
                    where = f"{location}: resourceLogs[{i}].scopeLogs[{j}].logRecords[{k}]"
                    try:
                        attrs = _proto_attrs(lr.attributes)
                        name = lr.event_name or attrs.get("event.name")
                        if name != EVALUATION_EVENT:
                            self.skipped["log records that are not gen_ai.evaluation.result"] += 1
                            continue
                        if not lr.trace_id or not lr.span_id:
                            raise BadRecord(
                                "evaluation has no span context (traceId/spanId); it cannot "
                                "be joined to a request"
                            )
                        self._append_evaluation(
                            _bytes_id(lr.trace_id, 16, "traceId"),
                            _bytes_id(lr.span_id, 8, "spanId"),
                            _ns(lr.time_unix_nano or lr.observed_time_unix_nano, "timeUnixNano"),
                            attrs,
                            "log_record",
                        )
                    except (BadRecord, ValueError) as exc:
                        self.quarantine.append((where, _message(exc), str(lr)[:500]))

    # -- shared mapping -------------------------------------------------------------------
    def _resource_context(self, resource: dict[str, Any]) -> _ResourceContext:
        m = self.mapping
        service = _short(resource.get("service.name")) or "unknown_service"
        env = m.environment(resource)
        weight = dict(m.sampling).get(env)
        kept = self._clean(resource)
        return _ResourceContext(
            service=service,
            version=_short(resource.get("service.version")),
            environment=env,
            host=_short(resource.get("host.name")),
            json=orjson.dumps(kept, option=orjson.OPT_SORT_KEYS).decode(),
            model_attribute=dict(m.model_attributes).get(service),
            weight=1.0 / weight if weight else None,
        )

    def _append_span(
        self,
        ctx: _ResourceContext,
        trace_id: str,
        span_id: str,
        parent: str | None,
        trace_state: str | None,
        name: str,
        kind: str,
        start: int,
        end: int,
        code: str,
        message: str | None,
        attrs: dict[str, Any],
    ) -> None:
        if end < start:
            raise BadRecord(
                f"span ends before it starts (end - start = {(end - start) / 1e6:.3f} ms)"
            )
        get = attrs.get
        model = get("gen_ai.request.model")
        if model is None and ctx.model_attribute:
            model = get(ctx.model_attribute)
        provider = get("gen_ai.provider.name") or get("gen_ai.system")
        provider = _PROVIDER_ALIASES.get(provider, provider) if isinstance(provider, str) else None
        input_tokens = _count(
            get("gen_ai.usage.input_tokens", get("gen_ai.usage.prompt_tokens")),
            "gen_ai.usage.input_tokens",
        )
        output_tokens = _count(
            get("gen_ai.usage.output_tokens", get("gen_ai.usage.completion_tokens")),
            "gen_ai.usage.output_tokens",
        )
        rest = {k: v for k, v in attrs.items() if k not in _MAPPED}
        attributes_json = orjson.dumps(self._clean(rest)).decode() if rest else None
        self.rows.append(
            (
                trace_id,
                span_id,
                parent,
                _short(trace_state, 512),
                ctx.service,
                ctx.environment,
                _short(model),
                ctx.version,
                _short(get("gen_ai.response.model")),
                _short(get("gen_ai.operation.name")),
                provider,
                _short(name, 1024),
                kind,
                start,
                end,
                (end - start) / 1e6,
                code,
                _short(message, 1024),
                input_tokens,
                output_tokens,
                _seconds_to_ms(get("gen_ai.server.time_to_first_token")),
                ctx.weight or _tracestate_weight(trace_state),
                ctx.host,
                ctx.json,
                attributes_json,
            )
        )

    def _append_evaluation(
        self, trace_id: str, span_id: str, time_ns: int, attrs: dict[str, Any], origin: str
    ) -> None:
        name = attrs.get("gen_ai.evaluation.name")
        if not isinstance(name, str) or not name:
            raise BadRecord("gen_ai.evaluation.result without gen_ai.evaluation.name")
        value = attrs.get("gen_ai.evaluation.score.value")
        label = attrs.get("gen_ai.evaluation.score.label")
        if value is not None:
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
            ):
                raise BadRecord(f"gen_ai.evaluation.score.value is not a finite number: {value!r}")
            score: float | None = float(value)
        elif isinstance(label, str):
            low = label.strip().lower()
            score = 1.0 if low in PASS_LABELS else 0.0 if low in FAIL_LABELS else None
        else:
            score = None
        e = self.evaluations
        e["trace_id"].append(trace_id)
        e["span_id"].append(span_id)
        e["evaluation_name"].append(_short(name))
        e["time"].append(time_ns)
        e["score"].append(score)
        e["score_value"].append(float(value) if value is not None else None)
        e["score_label"].append(_short(label) if isinstance(label, str) else None)
        e["explanation"].append(
            _short(attrs.get("gen_ai.evaluation.explanation"), self.mapping.max_bytes)
        )
        e["response_id"].append(_short(attrs.get("gen_ai.response.id")))
        e["origin"].append(origin)

    def _clean(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """Apply the deny list and the size cap to one attribute map."""
        m = self.mapping
        out: dict[str, Any] = {}
        for key, value in attrs.items():
            if m.denied(key):
                if m.redact:
                    out[key] = "[redacted]"
                continue
            if isinstance(value, str):
                if len(value) > m.max_bytes:
                    value = f"{value[: m.max_bytes]}…[truncated {len(value) - m.max_bytes} chars]"
            elif isinstance(value, list | dict):
                try:
                    text = orjson.dumps(value, default=str).decode()
                except TypeError as exc:  # nested deeper than orjson serializes
                    raise BadRecord(f"attribute {key[:100]!r} cannot be stored: {exc}") from None
                if len(text) > m.max_bytes:
                    value = f"{text[: m.max_bytes]}…[truncated {len(text) - m.max_bytes} chars]"
            elif isinstance(value, float) and not math.isfinite(value):
                value = str(value)
            out[key[:256]] = value
        return out


@dataclass(frozen=True)
class _ResourceContext:
    service: str
    version: str | None
    environment: str
    host: str | None
    json: str
    model_attribute: str | None
    weight: float | None


# -- field helpers --------------------------------------------------------------------------
def _message(exc: BaseException) -> str:
    if isinstance(exc, KeyError):
        return f"missing field {exc}"
    return str(exc) or type(exc).__name__


def _excerpt(raw: bytes | str, limit: int = 500) -> str:
    if isinstance(raw, bytes):
        raw = raw[:limit].decode("utf-8", errors="backslashreplace")
    return raw[:limit]


def _excerpt_json(value: Any, limit: int = 500) -> str:
    """The start of a decoded JSON value, serialized again, for a quarantine row."""
    try:
        return _excerpt(orjson.dumps(value), limit)
    except TypeError:  # nested deeper than orjson serializes
        return f"({type(value).__name__} nested too deeply to show)"


def _short(value: Any, limit: int = 256) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        value = str(value)
    return value if len(value) <= limit else value[:limit] + "…"


_HEX = re.compile(r"[0-9a-fA-F]+")


def _hex_id(value: Any, size: int, field_name: str) -> str:
    if not isinstance(value, str) or not value:
        raise BadRecord(f"{field_name} is missing")
    if len(value) == size * 2 and _HEX.fullmatch(value):  # the common case, kept cheap
        if not value.strip("0"):
            raise BadRecord(f"{field_name} is all zeros (invalid)")
        return value.lower()
    if len(value) == size * 2:
        try:
            raw = bytes.fromhex(value)
        except ValueError:
            raise BadRecord(f"{field_name} {value[:40]!r} is not hex") from None
    else:
        try:  # proto3 JSON's default bytes encoding, emitted by some non-OTLP encoders
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != size:
            raise BadRecord(
                f"{field_name} {value[:40]!r} must be {size * 2} hex digits, got {len(value)} chars"
            ) from None
    if not any(raw):
        raise BadRecord(f"{field_name} is all zeros (invalid)")
    return raw.hex()


def _bytes_id(value: bytes, size: int, field_name: str) -> str:
    if len(value) != size:
        raise BadRecord(f"{field_name} must be {size} bytes, got {len(value)}")
    if not any(value):
        raise BadRecord(f"{field_name} is all zeros (invalid)")
    return value.hex()


def _ns(value: Any, field_name: str) -> int:
    if value is None or value == "":
        raise BadRecord(f"{field_name} is missing")
    if isinstance(value, bool):
        raise BadRecord(f"{field_name} must be an integer, got {value!r}")
    try:
        ns = int(value)
    except (TypeError, ValueError):
        raise BadRecord(f"{field_name} {str(value)[:40]!r} is not an integer") from None
    if not MIN_NS <= ns < MAX_NS:
        raise BadRecord(
            f"{field_name} {ns} is outside 2000-01-01..2100-01-01 (a zero, a wrong unit or a "
            "broken clock)"
        )
    return ns


def _enum(value: Any, names: tuple[str, ...], prefix: str, field_name: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        if 0 <= value < len(names):
            return names[value]
    elif isinstance(value, str):  # lenient: enum names are not OTLP/JSON but are common
        name = value.removeprefix(prefix)
        if name in names:
            return name
    raise BadRecord(f"{field_name} {str(value)[:40]!r} is not a known value ({', '.join(names)})")


def _count(value: Any, field_name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        try:
            value = int(value)
        except (TypeError, ValueError):
            raise BadRecord(f"{field_name} {str(value)[:40]!r} is not a count") from None
    if not 0 <= value < MAX_COUNT:
        raise BadRecord(f"{field_name} {value!r} is out of range")
    return int(value)


def _seconds_to_ms(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value) * 1000.0 if 0 <= value < 86400 else None
    return None


def _tracestate_weight(trace_state: str | None) -> float:
    """Adjusted count from the W3C `ot=th:` rejection threshold (1.0 when absent)."""
    if not trace_state or "th:" not in trace_state:
        return 1.0
    for member in trace_state.split(","):
        key, _, value = member.strip().partition("=")
        if key != "ot":
            continue
        for part in value.split(";"):
            name, _, th = part.partition(":")
            if name == "th" and 0 < len(th) <= 14:
                try:
                    threshold = int(th.ljust(14, "0"), 16)
                except ValueError:
                    return 1.0
                return float(2**56) / (2**56 - threshold)
    return 1.0


def _json_attrs(items: Any) -> dict[str, Any]:
    if not items:
        return {}
    if not isinstance(items, list):
        raise BadRecord("attributes is not a list of {key, value}")
    out: dict[str, Any] = {}
    for item in items:
        key = item["key"]
        if not isinstance(key, str):
            raise BadRecord(f"attribute key {key!r} is not a string")
        value = item.get("value")
        if value.__class__ is dict:
            text = value.get("stringValue")
            if text.__class__ is str:  # most attributes are strings: skip the dispatch
                out[key] = text
                continue
        out[key] = _json_value(value)
    return out


def _json_value(value: Any) -> Any:
    if not value:
        return None
    if not isinstance(value, dict):
        raise BadRecord(f"attribute value {str(value)[:40]!r} is not an AnyValue object")
    if "stringValue" in value:
        v = value["stringValue"]
        return v if isinstance(v, str) else str(v)
    if "intValue" in value:
        try:
            return int(value["intValue"])
        except (TypeError, ValueError):
            raise BadRecord(f"intValue {str(value['intValue'])[:40]!r} is not an integer") from None
    if "doubleValue" in value:
        return float(value["doubleValue"])
    if "boolValue" in value:
        return bool(value["boolValue"])
    if "arrayValue" in value:
        return [_json_value(v) for v in (value["arrayValue"] or {}).get("values") or ()]
    if "kvlistValue" in value:
        return _json_attrs((value["kvlistValue"] or {}).get("values"))
    if "bytesValue" in value:
        return value["bytesValue"]
    return None


def _proto_attrs(items: Iterable[Any]) -> dict[str, Any]:
    return {kv.key: _proto_value(kv.value) for kv in items}


def _proto_value(value: Any) -> Any:
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [_proto_value(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return _proto_attrs(value.kvlist_value.values)
    if which == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return getattr(value, which)

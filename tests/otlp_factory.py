"""Hand-made OTLP requests for tests: small, explicit, and in the real wire format."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import orjson

NS = 1_000_000_000
BASE_NS = 1_793_000_000 * NS  # 2026-10-26T...Z: inside the accepted 2000..2100 window


def hex_id(nbytes: int) -> str:
    return os.urandom(nbytes).hex()


def attr(key: str, value: Any) -> dict[str, Any]:
    """One OTLP/JSON KeyValue; ints are decimal strings as proto3 JSON wants."""
    if isinstance(value, bool):
        v: dict[str, Any] = {"boolValue": value}
    elif isinstance(value, int):
        v = {"intValue": str(value)}
    elif isinstance(value, float):
        v = {"doubleValue": value}
    elif isinstance(value, list):
        v = {"arrayValue": {"values": [attr("_", x)["value"] for x in value]}}
    else:
        v = {"stringValue": str(value)}
    return {"key": key, "value": v}


@dataclass
class SpanSpec:
    """A span in the terms tests think in; `to_json` makes the OTLP/JSON object."""

    name: str = "chat llama"
    trace_id: str = field(default_factory=lambda: hex_id(16))
    span_id: str = field(default_factory=lambda: hex_id(8))
    parent_span_id: str = ""
    kind: int = 2
    start_ns: int = BASE_NS
    duration_ms: float = 100.0
    status_code: int = 0
    attributes: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        end = self.start_ns + round(self.duration_ms * 1_000_000)
        span: dict[str, Any] = {
            "traceId": self.trace_id,
            "spanId": self.span_id,
            "name": self.name,
            "kind": self.kind,
            "startTimeUnixNano": str(self.start_ns),
            "endTimeUnixNano": str(end),
            "attributes": [attr(k, v) for k, v in self.attributes.items()],
        }
        if self.parent_span_id:
            span["parentSpanId"] = self.parent_span_id
        if self.status_code:
            span["status"] = {"code": self.status_code}
        if self.events:
            span["events"] = self.events
        return span


def evaluation_event(
    name: str = "accuracy",
    *,
    label: str | None = None,
    value: float | None = None,
    time_ns: int = BASE_NS,
) -> dict[str, Any]:
    attrs = [attr("gen_ai.evaluation.name", name)]
    if label is not None:
        attrs.append(attr("gen_ai.evaluation.score.label", label))
    if value is not None:
        attrs.append(attr("gen_ai.evaluation.score.value", float(value)))
    return {"timeUnixNano": str(time_ns), "name": "gen_ai.evaluation.result", "attributes": attrs}


def traces_request(resource: dict[str, Any], spans: list[SpanSpec]) -> dict[str, Any]:
    """An ExportTraceServiceRequest with one resource and one scope."""
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": [attr(k, v) for k, v in resource.items()]},
                "scopeSpans": [
                    {
                        "scope": {"name": "tests", "version": "1"},
                        "spans": [s.to_json() for s in spans],
                    }
                ],
            }
        ]
    }


def logs_request(resource: dict[str, Any], records: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceLogs": [
            {
                "resource": {"attributes": [attr(k, v) for k, v in resource.items()]},
                "scopeLogs": [{"scope": {"name": "tests"}, "logRecords": records}],
            }
        ]
    }


def evaluation_log(
    trace_id: str,
    span_id: str,
    name: str = "accuracy",
    *,
    label: str | None = None,
    value: float | None = None,
    time_ns: int = BASE_NS,
) -> dict[str, Any]:
    event = evaluation_event(name, label=label, value=value, time_ns=time_ns)
    return {
        "timeUnixNano": str(time_ns),
        "eventName": "gen_ai.evaluation.result",
        "traceId": trace_id,
        "spanId": span_id,
        "attributes": event["attributes"],
    }


def jsonl(*requests: dict[str, Any]) -> bytes:
    """JSON lines as the Collector's file exporter writes them."""
    return b"".join(orjson.dumps(r) + b"\n" for r in requests)

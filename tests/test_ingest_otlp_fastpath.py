"""The walks' fast paths against the general decoders they stand in for (hypothesis).

The JSON and protobuf walks split a span's attributes in one pass and decide inline
whether the deny list and the caps would change anything; the general path is
`json_attrs`, then the split by MAPPED, then `Mapping.clean`. On hostile attribute maps
(denied keys, redaction, values over the cap, keys over 256 characters that collide when
cut, NaN, ints as strings and out of range, arrays, nested maps, injection in names) both
must stage the same row or quarantine the same spans, and the two encodings
must stage identical rows.
"""

from __future__ import annotations

from typing import Any

import orjson
from google.protobuf import json_format
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from otlp_factory import BASE_NS, NS, SpanSpec, traces_request

from ingest.errors import RecordError
from ingest.framing import Record
from ingest.otlp import KINDS, SPAN_SCHEMA, Batch, Counts, Mapping
from ingest.otlp.fields import json_attrs
from ingest.otlp.mapping import MAPPED
from ingest.otlp.rows import span_row
from warehouse.config import Config, parse

NOW = BASE_NS + 2 * 3600 * NS
CONFIGS = {
    "default": Config(),
    "redact": parse(
        {
            "ingest": {
                "deny_attributes": ["gen_ai.prompt", "secret.*"],
                "redaction": "redact",
                "max_attribute_bytes": 16,
            }
        },
        "test",
    ),
}
KEYS = [
    "a",
    "http.route",
    "gen_ai.prompt",
    "gen_ai.input.messages",
    "secret.token",
    "gen_ai.request.model",
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.cache_read.input_tokens",
    "'; DROP TABLE spans; --",
    "x" * 300,
    "x" * 300 + "y",  # cut to 256 characters, it collides with the key above
]
SCALARS = st.one_of(
    st.text(max_size=40).map(lambda s: {"stringValue": s}),
    st.integers(min_value=10, max_value=30).map(lambda n: {"stringValue": "é" * n}),  # the cap
    st.integers(min_value=-(2**70), max_value=2**70).map(lambda i: {"intValue": str(i)}),
    st.integers(min_value=0, max_value=5000).map(lambda i: {"intValue": i}),
    st.sampled_from(["NaN", "Infinity", "-Infinity"]).map(lambda s: {"doubleValue": s}),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda f: {"doubleValue": f}),
    st.booleans().map(lambda b: {"boolValue": b}),
    st.just({"intValue": "twelve"}),
)
VALUES = st.one_of(
    SCALARS,
    st.lists(SCALARS, max_size=4).map(lambda vs: {"arrayValue": {"values": vs}}),
    st.lists(st.tuples(st.sampled_from(KEYS[:4]), SCALARS), max_size=3).map(
        lambda kvs: {"kvlistValue": {"values": [{"key": k, "value": v} for k, v in kvs]}}
    ),
)
ITEMS = st.lists(st.tuples(st.sampled_from(KEYS), VALUES), max_size=8).map(
    lambda kvs: [{"key": k, "value": v} for k, v in kvs]
)
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _request(items: list[dict[str, Any]]) -> dict[str, Any]:
    doc = traces_request({"service.name": "s"}, [SpanSpec()])
    doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"] = items
    return doc


def _reference(mapping: Mapping, doc: dict[str, Any]) -> tuple[Any, ...]:
    """The span's row by the general path; raises where the span is refused."""
    resource = doc["resourceSpans"][0]["resource"]["attributes"]
    span = doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    attrs = json_attrs(span["attributes"])
    return span_row(
        mapping,
        mapping.resource_context(json_attrs(resource)),
        span["traceId"],
        span["spanId"],
        None,
        None,
        span["name"],
        KINDS[span["kind"]],
        int(span["startTimeUnixNano"]),
        int(span["endTimeUnixNano"]),
        "UNSET",
        None,
        {k: v for k, v in attrs.items() if k in MAPPED},
        {k: v for k, v in attrs.items() if k not in MAPPED},
    )


def _staged(config: Config, payload: bytes, encoding: str) -> tuple[Batch, Counts]:
    batch = Batch(Mapping.from_config(config, now_ns=NOW))
    return batch, batch.add(Record(payload, encoding, "line 1"))


@SETTINGS
@given(ITEMS, st.sampled_from(sorted(CONFIGS)))
@example(
    [{"key": "x" * 300, "value": {"stringValue": "a"}}, {"key": "x" * 301, "value": {}}], "default"
)
@example([{"key": "secret.token", "value": {"intValue": "nope"}}], "redact")
@example([{"key": "a", "value": {"stringValue": "y" * 17}}], "redact")
@example([{"key": "a", "value": {"intValue": str(2**64)}}], "default")
def test_json_fast_path_stages_what_the_general_path_would(items: list[Any], config: str) -> None:
    mapping = Mapping.from_config(CONFIGS[config], now_ns=NOW)
    doc = _request(items)
    try:
        expected: tuple[Any, ...] | None = _reference(mapping, doc)
    except (RecordError, TypeError, ValueError):
        expected = None
    batch, counts = _staged(CONFIGS[config], orjson.dumps(doc), "json")
    if expected is None:
        assert counts == Counts(rejected=1) and len(batch.quarantine) == 1
    else:
        assert counts == Counts(accepted=1) and not batch.quarantine
        assert batch.rows == [expected]


def _proto(doc: dict[str, Any]) -> bytes:
    span = doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    ids = {k: span.pop(k) for k in ("traceId", "spanId")}
    message = json_format.ParseDict(doc, ExportTraceServiceRequest())
    target = message.resource_spans[0].scope_spans[0].spans[0]
    target.trace_id, target.span_id = (bytes.fromhex(ids[k]) for k in ("traceId", "spanId"))
    return message.SerializeToString()


@SETTINGS
@given(ITEMS, st.sampled_from(sorted(CONFIGS)))
@example([{"key": "gen_ai.usage.input_tokens", "value": {"doubleValue": "NaN"}}], "default")
def test_protobuf_and_json_stage_identical_rows(items: list[Any], config: str) -> None:
    doc = _request(items)
    json_batch, json_counts = _staged(CONFIGS[config], orjson.dumps(doc), "json")
    try:
        payload = _proto(doc)
    except json_format.ParseError:  # out of int64 range or not a number: JSON-only input
        assume(False)
    proto_batch, proto_counts = _staged(CONFIGS[config], payload, "proto")
    assert proto_counts == json_counts
    assert [_all_denied_as_null(r) for r in json_batch.rows] == proto_batch.rows


ATTRIBUTES = SPAN_SCHEMA.names.index("attributes")


def _all_denied_as_null(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """The one difference the encodings had before the fast paths, kept as it was: a map
    whose every key is dropped by the deny list stages `{}` from JSON, NULL from protobuf."""
    if row[ATTRIBUTES] != "{}":
        return row
    return (*row[:ATTRIBUTES], None, *row[ATTRIBUTES + 1 :])

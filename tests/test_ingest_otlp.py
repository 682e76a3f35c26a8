"""OTLP requests into rows, at the parser level: `Batch` fed with framed records.

Each test builds a small request in the real wire format (tests/otlp_factory.py for JSON,
the opentelemetry-proto classes for protobuf), feeds it to a Batch and looks at the
staged columns, the skip reasons and the quarantine, without a warehouse.
"""

from __future__ import annotations

import base64
import math
from pathlib import Path
from typing import Any

import orjson
import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from otlp_factory import (
    BASE_NS,
    SpanSpec,
    attr,
    evaluation_event,
    evaluation_log,
    logs_request,
    traces_request,
)

from ingest.framing import Framing, Record, iter_records
from ingest.otlp import Batch, Mapping
from warehouse.config import Config, parse

OFFICIAL = (
    "otlp-proto-example-trace.json",
    "otlp-proto-example-logs.json",
    "otlp-proto-example-events.json",
    "otlp-proto-example-metrics.json",
)
RESOURCE = {"service.name": "chat-api", "deployment.environment.name": "production"}


def make_batch(config: Config | None = None) -> Batch:
    return Batch(Mapping.from_config(config or Config()))


def feed(doc: Any, config: Config | None = None, *, batch: Batch | None = None) -> Batch:
    """One JSON request, as the file reader would hand it over, into a (new) Batch."""
    if batch is None:
        batch = make_batch(config)
    batch.add(Record(orjson.dumps(doc), "json", "line 1"))
    return batch


def rows(batch: Batch) -> list[dict[str, Any]]:
    cols = batch.spans
    return [dict(zip(cols, values, strict=True)) for values in zip(*cols.values(), strict=True)]


def one_span(batch: Batch) -> dict[str, Any]:
    got = rows(batch)
    assert len(got) == 1, (got, batch.quarantine)
    return got[0]


def evaluations(batch: Batch) -> list[dict[str, Any]]:
    cols = batch.evaluations
    return [dict(zip(cols, values, strict=True)) for values in zip(*cols.values(), strict=True)]


def span_with(attributes: dict[str, Any], resource: dict[str, Any] | None = None, **kw: Any):
    spec = SpanSpec(attributes=attributes, **kw)
    return spec, traces_request(RESOURCE if resource is None else resource, [spec])


def config(**raw: Any) -> Config:
    return parse(raw, "test config")


# -- the four official examples ---------------------------------------------------------------
@pytest.mark.parametrize("name", OFFICIAL)
def test_official_examples_load_or_are_skipped_with_a_reason(fixtures_dir: Path, name: str):
    batch = make_batch()
    framing = Framing()
    with (fixtures_dir / "otlp" / name).open("rb") as fh:
        for record in iter_records(fh, framing):
            batch.add(record)
    assert framing.kind == "json-document"
    assert batch.quarantine == []
    if name.endswith("trace.json"):
        span = one_span(batch)
        assert span["trace_id"] == "5b8efff798038103d269b633813fc60c"
        assert span["span_id"] == "eee19b7ec3c1b174"
        assert span["parent_span_id"] == "eee19b7ec3c1b173"
        assert span["kind"] == "SERVER"
        assert span["name"] == "I'm a server span"
        assert span["service"] == "my.service"
        assert span["environment"] == "unknown"
        assert span["duration_ms"] == 1000.0
        assert span["status_code"] == "UNSET"
        assert orjson.loads(span["attributes"]) == {"my.span.attr": "some value"}
        assert orjson.loads(span["resource_attributes"]) == {"service.name": "my.service"}
        assert not batch.skipped
    else:
        assert len(batch) == 0
        assert batch.evaluation_count == 0
        assert sum(batch.skipped.values()) == 1
        (reason,) = batch.skipped
        expected = "metrics" if "metrics" in name else "not gen_ai.evaluation.result"
        assert expected in reason


# -- resource mapping -------------------------------------------------------------------------
def test_service_version_host_and_environment_name():
    _, doc = span_with(
        {},
        {
            "service.name": "rag-api",
            "service.version": "2.3.1",
            "deployment.environment.name": "staging",
            "deployment.environment": "old-name",
            "host.name": "gpu-node-7",
        },
    )
    span = one_span(feed(doc))
    assert span["service"] == "rag-api"
    assert span["version"] == "2.3.1"
    assert span["environment"] == "staging"
    assert span["host"] == "gpu-node-7"
    # no gen_ai.request.model and no configured attribute: the publish falls back to service
    assert span["own_model"] is None


def test_older_deployment_environment_then_unknown():
    _, doc = span_with({}, {"service.name": "a", "deployment.environment": "prod-old"})
    assert one_span(feed(doc))["environment"] == "prod-old"
    _, doc = span_with({}, {"service.name": "a"})
    span = one_span(feed(doc))
    assert span["environment"] == "unknown"
    assert span["version"] is None and span["host"] is None
    _, doc = span_with({}, {})
    assert one_span(feed(doc))["service"] == "unknown_service"


def test_config_rules_win_over_deployment_environment_name():
    cfg = config(
        environments=[
            {"name": "eks-frankfurt", "match": [{"k8s.cluster.name": "eks-fra-1"}]},
            {
                "name": "aws-us-east-1",
                "match": [{"cloud.provider": "aws", "cloud.region": "us-east-1"}],
            },
        ]
    )
    base = {"service.name": "a", "deployment.environment.name": "production"}
    _, doc = span_with({}, {**base, "k8s.cluster.name": "eks-fra-1"})
    assert one_span(feed(doc, cfg))["environment"] == "eks-frankfurt"
    _, doc = span_with({}, {**base, "cloud.provider": "aws", "cloud.region": "us-east-1"})
    assert one_span(feed(doc, cfg))["environment"] == "aws-us-east-1"
    # a rule needs all of its attributes: a region alone does not match
    _, doc = span_with({}, {**base, "cloud.region": "us-east-1"})
    assert one_span(feed(doc, cfg))["environment"] == "production"


# -- GenAI attributes -------------------------------------------------------------------------
def test_genai_attributes_become_columns():
    _, doc = span_with(
        {
            "gen_ai.request.model": "llama-3.1-70b",
            "gen_ai.response.model": "llama-3.1-70b-instruct-2024",
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.usage.input_tokens": 812,
            "gen_ai.usage.output_tokens": 97,
            "gen_ai.server.time_to_first_token": 0.25,
            "gen_ai.request.temperature": 0.2,
            "http.route": "/v1/chat",
        }
    )
    span = one_span(feed(doc))
    assert span["own_model"] == "llama-3.1-70b"
    assert span["response_model"] == "llama-3.1-70b-instruct-2024"
    assert span["operation"] == "chat"
    assert span["provider"] == "openai"
    assert (span["input_tokens"], span["output_tokens"]) == (812, 97)
    assert span["ttft_ms"] == 250.0
    # mapped attributes leave the JSON; every other one stays in it, typed
    assert orjson.loads(span["attributes"]) == {
        "gen_ai.request.temperature": 0.2,
        "http.route": "/v1/chat",
    }


def test_old_genai_names_are_mapped():
    _, doc = span_with(
        {
            "gen_ai.system": "az.ai.openai",
            "gen_ai.usage.prompt_tokens": 10,
            "gen_ai.usage.completion_tokens": 20,
        }
    )
    span = one_span(feed(doc))
    assert span["provider"] == "azure.ai.openai"
    assert (span["input_tokens"], span["output_tokens"]) == (10, 20)
    assert span["attributes"] is None
    # the new name wins when both are there
    _, doc = span_with({"gen_ai.provider.name": "anthropic", "gen_ai.system": "openai"})
    assert one_span(feed(doc))["provider"] == "anthropic"


def test_configured_model_attribute_for_a_non_genai_service():
    cfg = config(
        models=[{"name": "fraud-xgb", "service": "fraud-scorer", "model_attribute": "ml.model"}]
    )
    _, doc = span_with({"ml.model": "fraud-xgb"}, {"service.name": "fraud-scorer"})
    span = one_span(feed(doc, cfg))
    assert span["own_model"] == "fraud-xgb"
    assert orjson.loads(span["attributes"]) == {"ml.model": "fraud-xgb"}
    # another service's spans do not read that attribute
    _, doc = span_with({"ml.model": "fraud-xgb"}, {"service.name": "other"})
    assert one_span(feed(doc, cfg))["own_model"] is None
    # gen_ai.request.model still wins on the configured service
    _, doc = span_with(
        {"ml.model": "fraud-xgb", "gen_ai.request.model": "m2"}, {"service.name": "fraud-scorer"}
    )
    assert one_span(feed(doc, cfg))["own_model"] == "m2"


def test_attribute_types_are_kept():
    _, doc = span_with(
        {
            "s": "x",
            "i": 7,
            "f": 1.5,
            "b": True,
            "arr": ["a", "b"],
        }
    )
    span = one_span(feed(doc))
    assert orjson.loads(span["attributes"]) == {
        "s": "x",
        "i": 7,
        "f": 1.5,
        "b": True,
        "arr": ["a", "b"],
    }


# -- content policy ---------------------------------------------------------------------------
CONTENT = {
    "gen_ai.input.messages": '[{"role":"user","parts":[{"type":"text","content":"secret"}]}]',
    "gen_ai.output.messages": '[{"role":"assistant","parts":[]}]',
    "gen_ai.prompt": "tell me the secret",
    "gen_ai.completion": "the secret is 42",
    "gen_ai.prompt.0.content": "old-style indexed prompt",
    "keep.me": "yes",
}


def test_content_is_dropped_by_default():
    _, doc = span_with(CONTENT, {**RESOURCE, "gen_ai.prompt": "on the resource too"})
    span = one_span(feed(doc))
    assert orjson.loads(span["attributes"]) == {"keep.me": "yes"}
    assert "gen_ai.prompt" not in orjson.loads(span["resource_attributes"])
    assert "secret" not in str(span)


def test_content_is_redacted_on_request():
    _, doc = span_with(CONTENT)
    span = one_span(feed(doc, config(ingest={"redaction": "redact"})))
    attrs = orjson.loads(span["attributes"])
    assert attrs == {k: "[redacted]" for k in CONTENT if k != "keep.me"} | {"keep.me": "yes"}
    assert "secret" not in span["attributes"]


def test_custom_deny_list_with_a_prefix_pattern():
    cfg = config(ingest={"deny_attributes": ["user.email", "internal.*"]})
    _, doc = span_with(
        {
            "user.email": "a@b.c",
            "user.email.domain": "b.c",
            "internal.token": "t",
            "internal.a.b": "t",
            "internals": "kept: the pattern is the prefix 'internal.'",
            "gen_ai.prompt": "the custom list replaces the default one",
        }
    )
    attrs = orjson.loads(one_span(feed(doc, cfg))["attributes"])
    assert attrs == {
        "user.email.domain": "b.c",
        "internals": "kept: the pattern is the prefix 'internal.'",
        "gen_ai.prompt": "the custom list replaces the default one",
    }


def test_a_huge_attribute_value_is_capped():
    big = "x" * 1_000_000
    _, doc = span_with({"blob": big, "list": ["y" * 1000] * 1000}, {**RESOURCE, "huge.res": big})
    roomy = {"max_span_bytes": 8 << 20}  # this span's 2 MB is within the per-span cap here
    span = one_span(feed(doc, config(ingest={"max_attribute_bytes": 1024, **roomy})))
    attrs = orjson.loads(span["attributes"])
    assert attrs["blob"].startswith("x" * 1024)
    assert attrs["blob"].endswith(f"…[truncated {1_000_000 - 1024} chars]")
    assert len(attrs["blob"]) < 1100
    assert isinstance(attrs["list"], str) and "[truncated" in attrs["list"]
    assert len(attrs["list"]) < 1100
    res = orjson.loads(span["resource_attributes"])
    assert len(res["huge.res"]) < 1100 and "[truncated" in res["huge.res"]
    # the default cap is 4 KiB
    span = one_span(feed(doc, config(ingest=roomy)))
    assert len(orjson.loads(span["attributes"])["blob"]) < 4096 + 64


# -- evaluations ------------------------------------------------------------------------------
def test_evaluations_from_span_events():
    spec, doc = span_with(
        {},
        events=[
            evaluation_event("accuracy", label="pass", time_ns=BASE_NS + 1),
            evaluation_event("accuracy", label="FAIL", time_ns=BASE_NS + 2),
            evaluation_event("relevance", value=0.75, label="relevant", time_ns=BASE_NS + 3),
            evaluation_event("tone", label="friendly", time_ns=BASE_NS + 4),
            {"name": "exception", "timeUnixNano": str(BASE_NS), "attributes": []},
        ],
    )
    batch = feed(doc)
    assert batch.quarantine == []
    assert len(batch) == 1
    got = evaluations(batch)
    assert [
        (e["evaluation_name"], e["score"], e["score_value"], e["score_label"]) for e in got
    ] == [
        ("accuracy", 1.0, None, "pass"),
        ("accuracy", 0.0, None, "FAIL"),
        ("relevance", 0.75, 0.75, "relevant"),
        ("tone", None, None, "friendly"),
    ]
    assert {(e["trace_id"], e["span_id"], e["origin"]) for e in got} == {
        (spec.trace_id, spec.span_id, "span_event")
    }
    assert [e["time"] for e in got] == [BASE_NS + 1, BASE_NS + 2, BASE_NS + 3, BASE_NS + 4]


def test_a_bad_evaluation_is_quarantined_alone():
    nameless = evaluation_event("x", label="pass")
    nameless["attributes"] = [
        a for a in nameless["attributes"] if a["key"] != "gen_ai.evaluation.name"
    ]
    nan = evaluation_event("accuracy")
    nan["attributes"].append(
        {"key": "gen_ai.evaluation.score.value", "value": {"doubleValue": "NaN"}}
    )
    spec, doc = span_with({}, events=[nameless, nan, evaluation_event("accuracy", value=1.0)])
    batch = feed(doc)
    assert one_span(batch)["span_id"] == spec.span_id
    assert [e["score"] for e in evaluations(batch)] == [1.0]
    assert len(batch.quarantine) == 2
    (loc1, err1, raw1), (loc2, err2, _) = batch.quarantine
    assert loc1.endswith("spans[0].events[0]") and "without gen_ai.evaluation.name" in err1
    assert "gen_ai.evaluation.result" in raw1
    assert loc2.endswith("spans[0].events[1]") and "not a finite number" in err2


def test_evaluations_from_json_log_records():
    trace, span = "ab" * 16, "cd" * 8
    doc = logs_request(
        RESOURCE,
        [
            evaluation_log(trace.upper(), span, "accuracy", label="passed"),
            evaluation_log(trace, span, "accuracy", label="incorrect", time_ns=BASE_NS + 5),
            evaluation_log(trace, span, "groundedness", value=0.5),
            {"timeUnixNano": str(BASE_NS), "body": {"stringValue": "an ordinary log line"}},
        ],
    )
    batch = feed(doc)
    assert batch.quarantine == []
    assert len(batch) == 0
    got = evaluations(batch)
    assert [(e["trace_id"], e["span_id"]) for e in got] == [(trace, span)] * 3
    assert [e["score"] for e in got] == [1.0, 0.0, 0.5]
    assert {e["origin"] for e in got} == {"log_record"}
    assert batch.skipped == {"log records that are not gen_ai.evaluation.result": 1}


def test_an_evaluation_log_without_span_context_is_quarantined():
    record = evaluation_log("ab" * 16, "cd" * 8, label="pass")
    del record["traceId"], record["spanId"]
    record["attributes"].append(attr("gen_ai.response.id", "chatcmpl-1"))
    good = evaluation_log("ab" * 16, "cd" * 8, label="pass")
    batch = feed(logs_request(RESOURCE, [record, good]))
    assert batch.evaluation_count == 1
    ((location, error, excerpt),) = batch.quarantine
    assert location == "line 1: resourceLogs[0].scopeLogs[0].logRecords[0]"
    assert "no span context" in error and "cannot be joined" in error
    assert "chatcmpl-1" in excerpt


def test_evaluations_from_protobuf_log_records():
    trace, span = "ab" * 16, "cd" * 8
    doc = logs_request(
        RESOURCE,
        [
            evaluation_log(trace, span, "accuracy", label="pass"),
            evaluation_log(trace, span, "relevance", value=0.25, time_ns=BASE_NS + 1),
            {**evaluation_log(trace, span, label="pass"), "traceId": "", "spanId": ""},
        ],
    )
    batch = make_batch()
    batch.add(Record(_proto_equivalent(doc), "proto", "document"), signal="logs")
    got = evaluations(batch)
    assert [(e["trace_id"], e["span_id"], e["score"]) for e in got] == [
        (trace, span, 1.0),
        (trace, span, 0.25),
    ]
    ((location, error, _),) = batch.quarantine
    assert location.endswith("logRecords[2]") and "no span context" in error
    # the same request as JSON gives the same rows
    as_json = feed(doc)
    assert evaluations(as_json) == got


# -- protobuf ---------------------------------------------------------------------------------
def _proto_equivalent(doc: dict[str, Any]) -> bytes:
    """The protobuf of an OTLP/JSON request (hex ids become bytes, as the spec says)."""
    doc = orjson.loads(orjson.dumps(doc))
    if "resourceLogs" in doc:
        items = [
            lr for rl in doc["resourceLogs"] for sl in rl["scopeLogs"] for lr in sl["logRecords"]
        ]
        message: Any = ExportLogsServiceRequest()
    else:
        items = [s for rs in doc["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]]
        message = ExportTraceServiceRequest()
    for item in items:
        for key in ("traceId", "spanId", "parentSpanId"):
            if item.get(key):
                item[key] = base64.b64encode(bytes.fromhex(item[key])).decode()
    return json_format.ParseDict(doc, message).SerializeToString()


def test_protobuf_gives_the_same_rows_as_json():
    root = SpanSpec(
        name="POST /v1/chat",
        kind=2,
        attributes={"http.route": "/v1/chat", "n": 3},
        events=[evaluation_event("accuracy", label="pass")],
    )
    child = SpanSpec(
        name="chat llama",
        trace_id=root.trace_id,
        parent_span_id=root.span_id,
        kind=3,
        start_ns=BASE_NS + 5_000_000,
        duration_ms=42.123456,
        status_code=2,
        attributes={
            "gen_ai.request.model": "llama",
            "gen_ai.usage.input_tokens": 5,
            "gen_ai.usage.output_tokens": 6,
            "flag": False,
            "ratio": 0.5,
            "tags": ["a", "b"],
        },
    )
    doc = traces_request({**RESOURCE, "service.version": "1.0", "host.name": "h1"}, [root, child])
    from_json = feed(doc)
    from_proto = make_batch()
    from_proto.add(Record(_proto_equivalent(doc), "proto", "frame 1"))
    assert from_json.quarantine == [] and from_proto.quarantine == []
    assert len(from_proto) == 2
    assert rows(from_proto) == rows(from_json)
    assert evaluations(from_proto) == evaluations(from_json)
    child_row = rows(from_proto)[1]
    assert child_row["kind"] == "CLIENT" and child_row["status_code"] == "ERROR"
    assert child_row["parent_span_id"] == root.span_id
    assert math.isclose(child_row["duration_ms"], 42.123456, abs_tol=1e-6)


def test_bad_protobuf_is_quarantined_with_its_location():
    batch = make_batch()
    batch.add(Record(b"\x0a\xff\xff\xff\xff\x0f garbage", "proto", "frame 3"))
    ((location, error, _),) = batch.quarantine
    assert location == "frame 3"
    assert "not a valid OTLP protobuf traces request" in error


def test_a_bad_protobuf_span_is_quarantined_alone():
    good = SpanSpec()
    bad = SpanSpec(start_ns=BASE_NS + 10, duration_ms=-1.0)
    payload = _proto_equivalent(traces_request(RESOURCE, [bad, good]))
    batch = make_batch()
    batch.add(Record(payload, "proto", "document"))
    assert one_span(batch)["span_id"] == good.span_id
    ((location, error, excerpt),) = batch.quarantine
    assert location == "document: resourceSpans[0].scopeSpans[0].spans[0]"
    assert "ends before it starts" in error
    assert "chat llama" in excerpt


# -- field validation (more cases at file level in test_ingest_traces.py) ---------------------
@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"traceId": "zz" * 16}, "not hex"),
        ({"traceId": "ab" * 15}, "must be 32 hex digits"),
        ({"spanId": "0" * 16}, "all zeros"),
        ({"traceId": None}, "traceId is missing"),
        ({"name": ""}, "no name"),
        ({"startTimeUnixNano": "0"}, "outside 2000-01-01..2100-01-01"),
        ({"kind": 9}, "kind '9' is not a known value"),
        ({"kind": "SPAN_KIND_WEIRD"}, "not a known value"),
        ({"status": {"code": 3}}, "status.code '3' is not a known value"),
        ({"attributes": [attr("gen_ai.usage.input_tokens", 2**60)]}, "out of range"),
        ({"attributes": [attr("gen_ai.usage.output_tokens", -1)]}, "out of range"),
        ({"attributes": {"not": "a list"}}, "attributes is not a list"),
    ],
)
def test_a_bad_span_field_is_quarantined_with_a_clear_message(change, message):
    good = SpanSpec()
    bad = SpanSpec().to_json() | change
    doc = traces_request(RESOURCE, [good])
    doc["resourceSpans"][0]["scopeSpans"][0]["spans"].insert(0, bad)
    batch = feed(doc)
    assert one_span(batch)["span_id"] == good.span_id
    ((location, error, excerpt),) = batch.quarantine
    assert location == "line 1: resourceSpans[0].scopeSpans[0].spans[0]"
    assert message in error
    assert excerpt.startswith("{")


def test_lenient_inputs_are_accepted():
    """Enum names and numeric timestamps are not OTLP/JSON but common: accepted."""
    spec = SpanSpec()
    span = spec.to_json() | {
        "kind": "SPAN_KIND_CLIENT",
        "status": {"code": "STATUS_CODE_ERROR", "message": "boom"},
        "startTimeUnixNano": BASE_NS,
        "endTimeUnixNano": BASE_NS + 1_000_000,
    }
    doc = traces_request(RESOURCE, [])
    doc["resourceSpans"][0]["scopeSpans"][0]["spans"] = [span]
    got = one_span(feed(doc))
    assert (got["kind"], got["status_code"], got["status_message"]) == ("CLIENT", "ERROR", "boom")
    assert got["duration_ms"] == 1.0


def test_wrong_schema_and_empty_requests():
    batch = make_batch()
    feed([{"resourceSpans": []}], batch=batch)
    feed({"spans": []}, batch=batch)
    feed({}, batch=batch)
    feed({"resourceSpans": "nope"}, batch=batch)
    feed({"resourceProfiles": []}, batch=batch)
    errors = [e for _, e, _ in batch.quarantine]
    assert len(errors) == 3
    assert "expected a JSON object with resourceSpans or resourceLogs, got list" in errors[0]
    assert "no resourceSpans or resourceLogs (keys: spans)" in errors[1]
    assert "resourceSpans is not a list" in errors[2]
    assert batch.skipped == {"empty requests": 1, "profiles requests": 1}


def test_invalid_json_is_quarantined_with_an_excerpt():
    batch = make_batch()
    batch.add(Record(b'{"resourceSpans": [{"resource"', "json", "line 7"))
    batch.add(Record(b'{"a": "\xff\xfe"}', "json", "line 8"))
    (loc, err, raw), (loc2, err2, raw2) = batch.quarantine
    assert (loc, loc2) == ("line 7", "line 8")
    assert err.startswith("not valid JSON") and err2.startswith("not valid JSON")
    assert raw == '{"resourceSpans": [{"resource"'
    assert raw2 == '{"a": "\\xff\\xfe"}'


def test_a_bad_resource_quarantines_its_spans_not_the_next_request():
    _, keyless = span_with({})
    keyless["resourceSpans"][0]["resource"]["attributes"].append({"ey": "typo"})
    good_spec, good = span_with({})
    batch = make_batch()
    feed(keyless, batch=batch)
    feed(good, batch=batch)
    assert one_span(batch)["span_id"] == good_spec.span_id
    ((location, error, excerpt),) = batch.quarantine
    assert location == "line 1: resourceSpans[0]"
    assert error == "bad resource: missing field 'key'"
    assert '"ey":"typo"' in excerpt


def _nested(depth: int) -> bytes:
    return b'{"arrayValue":{"values":[' * depth + b'{"stringValue":"x"}' + b"]}}" * depth


@pytest.mark.parametrize("depth", [50, 300, 400])
@pytest.mark.parametrize("where", ["resource", "span", "log"])
def test_deeply_nested_values_are_quarantined_not_raised(where: str, depth: int):
    value = _nested(depth)
    deep = b'[{"key":"deep","value":' + value + b"}]"
    span = orjson.dumps(SpanSpec().to_json() | {"attributes": []}).replace(
        b'"attributes":[]', b'"attributes":' + (deep if where == "span" else b"[]")
    )
    if where == "log":
        payload = (
            b'{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"eventName":'
            b'"gen_ai.evaluation.result","attributes":' + deep + b"}]}]}]}"
        )
    else:
        resource = b'{"attributes":' + (deep if where == "resource" else b"[]") + b"}"
        payload = (
            b'{"resourceSpans":[{"resource":'
            + resource
            + b',"scopeSpans":[{"spans":['
            + span
            + b"]}]}]}"
        )
    batch = make_batch()
    batch.add(Record(payload, "json", "line 1"))
    if depth == 50 and where != "log":
        assert len(batch) == 1 and batch.quarantine == []  # deep but storable
    else:
        assert len(batch) == 0
        ((_, error, excerpt),) = batch.quarantine
        assert error and excerpt


def test_a_zero_time_means_unset_in_json_as_in_protobuf():
    """timeUnixNano "0" is "unknown": a log record falls back to observedTimeUnixNano, a
    span event to the span's end, in JSON just as protobuf's default 0 does."""
    trace, span_id = "ab" * 16, "cd" * 8
    record = evaluation_log(trace, span_id, label="pass") | {
        "timeUnixNano": "0",
        "observedTimeUnixNano": str(BASE_NS + 7),
    }
    logs = logs_request(RESOURCE, [record])
    event = evaluation_event(label="pass") | {"timeUnixNano": "0"}
    spec, spans = span_with({}, events=[event])
    for doc in (logs, spans):
        from_json = feed(doc)
        from_proto = make_batch()
        from_proto.add(
            Record(_proto_equivalent(doc), "proto", "document"),
            signal="logs" if doc is logs else "traces",
        )
        assert from_json.quarantine == [] and from_proto.quarantine == []
        assert evaluations(from_json) == evaluations(from_proto)
    assert [e["time"] for e in evaluations(feed(logs))] == [BASE_NS + 7]
    end = spec.start_ns + round(spec.duration_ms * 1_000_000)
    assert [e["time"] for e in evaluations(feed(spans))] == [end]


def test_invalid_utf8_in_a_protobuf_string_is_quarantined():
    good = _proto_equivalent(traces_request(RESOURCE, [SpanSpec(name="NAME_TO_BREAK")]))
    broken = good.replace(b"NAME_TO_BREAK", b"NAME\xff\xfeO_BREAK")  # same length
    batch = make_batch()
    batch.add(Record(broken, "proto", "frame 2"))
    ((location, error, _),) = batch.quarantine
    assert location == "frame 2" and "not a valid OTLP protobuf traces request" in error

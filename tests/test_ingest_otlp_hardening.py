"""The OTLP parser against hostile, legacy and newer input, and the counts it reports.

Each test feeds a Batch (or the whole ingest) one request in the real wire format and
checks that a record is staged or quarantined, never both, with exact Counts; the clock
is injected (`Mapping.now_ns`) so the clock-skew tests do not depend on today's date.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import orjson
import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.logs.v1.logs_pb2 import ScopeLogs
from opentelemetry.proto.trace.v1.trace_pb2 import ScopeSpans
from otlp_factory import (
    BASE_NS,
    NS,
    SpanSpec,
    evaluation_event,
    evaluation_log,
    hex_id,
    jsonl,
    logs_request,
    traces_request,
)

from ingest.errors import IngestError, RecordError
from ingest.framing import Record
from ingest.otlp import METRICS_SKIPPED, BadRecord, Batch, Counts, Mapping, detect_signal
from warehouse.config import Config, parse

RESOURCE = {"service.name": "chat-api", "deployment.environment.name": "production"}
HOUR = 3600 * NS
NOW = BASE_NS + 2 * HOUR  # the injected time of ingest: every factory time is before it


def batch_for(now_ns: int | None = NOW, **ingest: Any) -> Batch:
    config = parse({"ingest": ingest}, "test") if ingest else Config()
    return Batch(Mapping.from_config(config, now_ns=now_ns))


def add_json(batch: Batch, doc: Any, location: str = "line 1") -> Counts:
    return batch.add(Record(orjson.dumps(doc), "json", location))


def ids_to_base64(doc: Any) -> Any:
    """OTLP/JSON (hex ids) to proto3 JSON (base64 bytes), for json_format.Parse."""
    if isinstance(doc, dict):
        return {
            k: base64.b64encode(bytes.fromhex(v)).decode()
            if k in ("traceId", "spanId", "parentSpanId") and isinstance(v, str)
            else ids_to_base64(v)
            for k, v in doc.items()
        }
    if isinstance(doc, list):
        return [ids_to_base64(v) for v in doc]
    return doc


def to_proto(doc: dict[str, Any]) -> bytes:
    cls: Any = (
        ExportLogsServiceRequest
        if "resourceLogs" in doc
        else ExportMetricsServiceRequest
        if "resourceMetrics" in doc
        else ExportTraceServiceRequest
    )
    return json_format.Parse(orjson.dumps(ids_to_base64(doc)), cls()).SerializeToString()


def test_bad_record_is_the_ingest_record_error():
    assert BadRecord is RecordError and issubclass(BadRecord, IngestError)


# -- 2. current GenAI names ------------------------------------------------------------------
def test_current_genai_usage_and_ttft_names_become_columns():
    attrs = {
        "gen_ai.request.model": "claude",
        "gen_ai.usage.input_tokens": 100,
        "gen_ai.usage.output_tokens": 50,
        "gen_ai.usage.cache_read.input_tokens": 70,
        "gen_ai.usage.cache_creation.input_tokens": 20,
        "gen_ai.usage.reasoning.output_tokens": 30,
        "gen_ai.response.time_to_first_chunk": 0.25,
        "other": "kept",
    }
    batch = batch_for()
    assert add_json(batch, traces_request(RESOURCE, [SpanSpec(kind=3, attributes=attrs)])) == (
        Counts(accepted=1)
    )
    span = {k: v[0] for k, v in batch.spans.items()}
    assert span["ttft_ms"] == 250.0
    assert span["cache_read_input_tokens"] == 70
    assert span["cache_creation_input_tokens"] == 20
    assert span["reasoning_output_tokens"] == 30
    assert (span["input_tokens"], span["output_tokens"]) == (100, 50)
    assert orjson.loads(span["attributes"]) == {"other": "kept"}
    # the server's own TTFT wins over the client's first chunk when a span has both
    both = {"gen_ai.server.time_to_first_token": 0.1, "gen_ai.response.time_to_first_chunk": 0.3}
    batch = batch_for()
    add_json(batch, traces_request(RESOURCE, [SpanSpec(attributes=both)]))
    assert batch.spans["ttft_ms"] == [100.0]
    assert batch.spans["cache_read_input_tokens"] == [None]


def test_a_bad_cache_token_count_quarantines_the_span():
    attrs = {"gen_ai.usage.cache_read.input_tokens": "lots"}
    batch = batch_for()
    assert add_json(batch, traces_request(RESOURCE, [SpanSpec(attributes=attrs)])).rejected == 1
    assert "gen_ai.usage.cache_read.input_tokens 'lots' is not a count" in batch.quarantine[0][1]


# -- 3. a record is staged or quarantined, never both -------------------------------------------
@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"events": 5}, "events is not a list (got int)"),
        ({"events": [5]}, "events[0] is not an object (got int)"),
        ({"links": 5}, "links is not a list (got int)"),
        ({"links": ["x"]}, "links[0] is not an object (got str)"),
        ({"attributes": 5}, "attributes is not a list"),
        ({"attributes": [{"key": "k", "value": 5}]}, "is not an AnyValue object"),
    ],
)
def test_a_span_of_the_wrong_shape_is_only_quarantined(change: dict[str, Any], message: str):
    good, bad = SpanSpec(), SpanSpec(events=[evaluation_event(value=1.0)])
    doc = traces_request(RESOURCE, [bad, good])
    doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0].update(change)
    batch = batch_for()
    assert add_json(batch, doc) == Counts(accepted=1, rejected=1)
    assert batch.spans["span_id"] == [good.span_id]
    assert batch.evaluation_count == 0
    ((location, error, _),) = batch.quarantine
    assert location.endswith("spans[0]") and message in error


def test_a_bad_evaluation_event_costs_the_evaluation_not_its_span():
    spec = SpanSpec(events=[{"name": "gen_ai.evaluation.result", "attributes": 5}])
    batch = batch_for()
    assert add_json(batch, traces_request(RESOURCE, [spec])) == Counts(accepted=1)
    assert len(batch) == 1 and batch.evaluation_count == 0
    assert batch.quarantine[0][0].endswith("spans[0].events[0]")


# -- 4. logs of the wrong shape cost only themselves -------------------------------------------
def test_logs_of_the_wrong_shape_never_cost_their_neighbours():
    trace, span = hex_id(16), hex_id(8)
    good = logs_request(RESOURCE, [evaluation_log(trace, span, value=1.0)])
    bad_scopes = {"resourceLogs": [{"resource": {}, "scopeLogs": 5}, good["resourceLogs"][0]]}
    bad_records = logs_request(RESOURCE, [])
    bad_records["resourceLogs"][0]["scopeLogs"].insert(0, {"logRecords": "x"})
    bad_records["resourceLogs"][0]["scopeLogs"][1]["logRecords"] = [
        evaluation_log(trace, span, "other", value=0.5),
        {"eventName": "something.else"},
    ]
    lines = [good, bad_scopes, bad_records, {"resourceLogs": [7]}, good]
    batch = batch_for()
    counts = [add_json(batch, doc, f"line {n}") for n, doc in enumerate(lines, 1)]
    assert counts == [
        Counts(accepted=1),
        Counts(accepted=1, rejected=1),
        Counts(accepted=1, ignored=1, rejected=1),
        Counts(rejected=1),
        Counts(accepted=1),
    ]
    assert batch.evaluation_count == 4
    assert [q[0] for q in batch.quarantine] == [
        "line 2: resourceLogs[0]",
        "line 3: resourceLogs[0].scopeLogs[0]",
        "line 4: resourceLogs[0]",
    ]
    assert "scopeLogs is not a list" in batch.quarantine[0][1]
    assert "logRecords is not a list" in batch.quarantine[1][1]
    assert batch.counts == Counts(accepted=4, ignored=1, rejected=3)


def test_a_bad_resource_counts_every_span_it_held():
    doc = traces_request(RESOURCE, [SpanSpec(), SpanSpec(), SpanSpec()])
    doc["resourceSpans"][0]["resource"]["attributes"] = 5
    batch = batch_for()
    assert add_json(batch, doc) == Counts(rejected=3)
    assert len(batch.quarantine) == 1


# -- 5. pre-1.0 field names ---------------------------------------------------------------------
def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        bits, n = n & 0x7F, n >> 7
        out.append(bits | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _legacy_proto(modern: bytes, resource_field: str, scope_cls: Any, cls: Any) -> bytes:
    """A request with its scopes moved to field 1000, as a pre-1.0 sender wrote them."""
    request = cls.FromString(modern)
    out = b""
    for resource in getattr(request, resource_field):
        body = b""
        if resource.HasField("resource"):
            res = resource.resource.SerializeToString()
            body += b"\x0a" + _varint(len(res)) + res
        for scope in resource.scope_spans if scope_cls is ScopeSpans else resource.scope_logs:
            data = scope.SerializeToString()
            body += _varint(1000 << 3 | 2) + _varint(len(data)) + data
        out += b"\x0a" + _varint(len(body)) + body
    return out


def test_pre_1_0_instrumentation_library_spans_and_logs():
    specs = [SpanSpec(), SpanSpec(start_ns=BASE_NS, duration_ms=-5.0)]  # one good, one bad
    traces = traces_request(RESOURCE, specs)
    rs = traces["resourceSpans"][0]
    rs["instrumentationLibrarySpans"] = rs.pop("scopeSpans")
    trace, span = hex_id(16), hex_id(8)
    logs = logs_request(RESOURCE, [evaluation_log(trace, span, value=1.0), {"eventName": "x"}])
    rl = logs["resourceLogs"][0]
    rl["instrumentationLibraryLogs"] = rl.pop("scopeLogs")
    for encoding in ("json", "proto"):
        batch = batch_for()
        if encoding == "json":
            got = (add_json(batch, traces), add_json(batch, logs))
        else:
            modern_t = to_proto(traces_request(RESOURCE, specs))
            records = rl["instrumentationLibraryLogs"][0]["logRecords"]
            modern_l = to_proto(logs_request(RESOURCE, records))
            old_t = _legacy_proto(modern_t, "resource_spans", ScopeSpans, ExportTraceServiceRequest)
            old_l = _legacy_proto(modern_l, "resource_logs", ScopeLogs, ExportLogsServiceRequest)
            assert detect_signal(old_t) == "traces" and detect_signal(old_l) == "logs"
            got = (batch.add_proto(old_t, "frame 1"), batch.add_proto(old_l, "frame 2"))
        assert got == (Counts(accepted=1, rejected=1), Counts(accepted=1, ignored=1)), encoding
        assert batch.spans["span_id"] == [specs[0].span_id]
        assert batch.evaluations["span_id"] == [span]
        assert "instrumentationLibrarySpans[0].spans[1]" in batch.quarantine[0][0]


# -- 6. the per-span size cap ------------------------------------------------------------------
def test_a_span_over_max_span_bytes_is_quarantined_with_its_size():
    big = SpanSpec(attributes={f"k{i}": "v" * 1000 for i in range(1500)})  # ~1.5 MB
    events = [{"name": f"e{i}", "timeUnixNano": str(BASE_NS)} for i in range(80_000)]
    many_events = SpanSpec(events=events)  # ~4 MB as JSON, ~1.4 MB as protobuf
    small = SpanSpec(attributes={"k": "v" * 1000})
    doc = traces_request(RESOURCE, [big, small, many_events])
    for encoding in ("json", "proto"):
        batch = batch_for()
        if encoding == "json":
            counts = add_json(batch, doc)
        else:
            counts = batch.add_proto(to_proto(doc), "frame 1", signal="traces")
        assert counts == Counts(accepted=1, rejected=2), encoding
        assert batch.spans["span_id"] == [small.span_id]
        (_, error, raw), (_, error2, _) = batch.quarantine
        assert "of attributes, events and links" in error and "MiB" in error
        assert "the limit is ingest.max_span_bytes = 1048576" in error
        assert int(error.split()[2]) > 1_048_576 and len(raw) <= 500
        assert "max_span_bytes" in error2
    # the limit is the config's: a larger one lets the big span in
    batch = batch_for(max_span_bytes=8 << 20)
    assert add_json(batch, doc) == Counts(accepted=3)


# -- 7. records from the future -----------------------------------------------------------------
def test_records_dated_past_the_clock_skew_are_quarantined():
    future = NOW + 30 * HOUR
    ok = SpanSpec(start_ns=NOW + 23 * HOUR)  # within the 24 h allowed
    late = SpanSpec(start_ns=future)
    late_eval = SpanSpec(events=[evaluation_event(value=1.0, time_ns=future)])
    trace, span = hex_id(16), hex_id(8)
    batch = batch_for()
    assert add_json(batch, traces_request(RESOURCE, [ok, late, late_eval])) == Counts(
        accepted=2, rejected=1
    )
    late_log = evaluation_log(trace, span, time_ns=future, value=1.0)
    assert add_json(batch, logs_request(RESOURCE, [late_log])) == Counts(rejected=1)
    assert batch.spans["span_id"] == [ok.span_id, late_eval.span_id]
    assert batch.evaluation_count == 0
    errors = [q[1] for q in batch.quarantine]
    assert errors[0].startswith("start time 2026-10-27T")
    assert "is 30.0 h past the time of ingest" in errors[0]
    assert errors[0].endswith("the limit is ingest.max_clock_skew_hours = 24")
    assert errors[1].startswith("time 2026-10-27T") and errors[2].startswith("time ")
    # the same through protobuf, and a wider limit from the config
    batch = batch_for(max_clock_skew_hours=48)
    payload = to_proto(traces_request(RESOURCE, [ok, late]))
    assert batch.add_proto(payload, "frame 1") == Counts(accepted=2)
    batch = batch_for()
    assert batch.add_proto(payload, "frame 1") == Counts(accepted=1, rejected=1)


# -- 8. telling the signals apart -------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "signal"),
    [
        ("otlp-proto-example-trace.json", "traces"),
        ("otlp-proto-example-logs.json", "logs"),
        ("otlp-proto-example-events.json", "logs"),
        ("otlp-proto-example-metrics.json", "metrics"),
    ],
)
def test_detect_signal_on_the_official_examples(fixtures_dir: Path, name: str, signal: str):
    payload = to_proto(orjson.loads((fixtures_dir / "otlp" / name).read_bytes()))
    assert detect_signal(payload) == signal
    batch = batch_for()
    counts = batch.add_proto(payload, "file 1")  # no signal: read from the payload
    assert batch.quarantine == []
    if signal == "traces":
        assert counts == Counts(accepted=1) and len(batch) == 1
    elif signal == "logs":
        assert counts == Counts(ignored=1)
    else:
        assert counts == Counts() and batch.skipped == {METRICS_SKIPPED: 1}


def test_detect_signal_on_built_requests_and_garbage():
    trace, span = hex_id(16), hex_id(8)
    spans = to_proto(traces_request(RESOURCE, [SpanSpec(), SpanSpec(kind=0, status_code=0)]))
    logs = to_proto(logs_request(RESOURCE, [evaluation_log(trace, span, value=1.0)]))
    assert detect_signal(spans) == "traces" and detect_signal(logs) == "logs"
    assert detect_signal(b"") is None
    assert detect_signal(b"\x0a\xff\xff\xff\xff\x0f garbage") is None
    assert detect_signal(b"\x0a\x02\x0a\x00") is None  # a resource, no scope: nothing to tell
    batch = batch_for()
    assert batch.add_proto(b"", "frame 1") == Counts()
    assert batch.skipped == {"empty requests": 1}
    assert batch.add_proto(logs, "frame 2") == Counts(accepted=1)


# -- the counts the receiver answers with --------------------------------------------------
def test_counts_add_up_over_a_mixed_request():
    specs = [SpanSpec(), SpanSpec(duration_ms=-1.0), SpanSpec(name="")]
    doc = traces_request(RESOURCE, specs)
    doc["resourceSpans"].append({"scopeSpans": [{"spans": "x"}, {"spans": [5]}]})
    batch = batch_for()
    counts = add_json(batch, doc)
    assert counts == Counts(accepted=1, rejected=4) and counts.total == 5
    assert len(batch) == 1 and len(batch.quarantine) == 4


def test_a_file_with_bad_lines_loads_every_good_line(tmp_path: Path):
    from ingest.traces import ingest_paths  # the whole path, framing to warehouse
    from warehouse.db import Warehouse

    trace, span = hex_id(16), hex_id(8)
    good = logs_request(RESOURCE, [evaluation_log(trace, span, value=1.0)])
    bad = {"resourceLogs": [{"scopeLogs": 5}]}
    path = tmp_path / "logs.jsonl"
    worse = {"resourceLogs": [{"scopeLogs": [{"logRecords": "x"}]}]}
    last = logs_request(RESOURCE, [evaluation_log(trace, span, "b", value=0.0)])
    path.write_bytes(jsonl(good, bad, worse, last))
    summary = ingest_paths(Warehouse(tmp_path / "w.duckdb"), [path], Config())
    assert (summary.rows("evaluations"), summary.quarantined) == (2, 2), summary


# -- migration 003 ------------------------------------------------------------------------------
NEW_COLUMNS = ("cache_read_input_tokens", "cache_creation_input_tokens", "reasoning_output_tokens")


def test_a_warehouse_written_before_migration_003_migrates_with_the_same_figures(
    tmp_path: Path,
) -> None:
    """The schema-1 warehouse the landed code wrote (tests/cases/warehouse_v1) gains the new
    columns on open, keeps its figures, and takes spans that fill them."""
    import gzip
    import shutil

    from ingest.traces import ingest_paths
    from warehouse.db import Warehouse
    from warehouse.metrics import metrics

    v1 = Path(__file__).parent / "cases" / "warehouse_v1"
    old = Warehouse(tmp_path / "old.duckdb")
    with gzip.open(v1 / "warehouse.duckdb.gz", "rb") as src, old.path.open("wb") as dst:
        shutil.copyfileobj(src, dst)
    by = ("environment", "model", "version")
    migrated = metrics(old, Config(), by=by)
    with old.read() as con:
        columns = [r[0] for r in con.execute("DESCRIBE spans").fetchall()]
        (stored,) = con.execute("SELECT count(*) FROM spans").fetchone()  # type: ignore[misc]
    assert set(NEW_COLUMNS) <= set(columns)
    fresh = Warehouse(tmp_path / "fresh.duckdb")
    assert ingest_paths(fresh, [v1 / "spans.jsonl", v1 / "labels.jsonl"], Config()).ok
    assert migrated.select("environment", "model", "requests", "errors").equals(
        metrics(fresh, Config(), by=by).select("environment", "model", "requests", "errors")
    )
    # and the migrated warehouse takes spans with the new columns
    cached = SpanSpec(start_ns=BASE_NS, attributes={"gen_ai.usage.cache_read.input_tokens": 9})
    more = tmp_path / "more.jsonl"
    more.write_bytes(jsonl(traces_request(RESOURCE, [cached])))
    assert ingest_paths(old, [more], Config()).ok
    cols = ", ".join(NEW_COLUMNS)
    with old.read() as con:
        got = con.execute(
            f"SELECT span_id, {cols} FROM spans WHERE {NEW_COLUMNS[0]} IS NOT NULL"
        ).fetchall()
        assert con.execute("SELECT count(*) FROM spans").fetchone() == (stored + 1,)
    assert got == [(cached.span_id, 9, None, None)]

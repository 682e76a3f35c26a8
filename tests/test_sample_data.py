"""The demo generator writes real OTLP in every framing, and its scenario is what it says.

The files are read back here with nothing but protobuf, zstandard and json, not with our
own ingest, so a reader bug and a generator bug cannot cancel each other out.
"""

from __future__ import annotations

import io
import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zstandard
from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from sample_data.generator import ENVIRONMENTS, MODELS, generate

END = datetime(2026, 11, 1, tzinfo=UTC)
NS_PER_MIN = 60 * 10**9
HEX32 = re.compile(r"^[0-9a-f]{32}$")
HEX16 = re.compile(r"^[0-9a-f]{16}$")
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


# -- an independent reader ------------------------------------------------------------------
@dataclass
class Span:
    env: str
    resource: dict[str, Any]
    trace_id: str
    span_id: str
    parent: str
    name: str
    kind: int
    start: int
    end: int
    status: int
    message: str
    attrs: dict[str, Any]
    events: list[tuple[int, str, dict[str, Any]]] = field(default_factory=list)


def _frames(data: bytes) -> Iterator[bytes]:
    at = 0
    while at < len(data):
        size = int.from_bytes(data[at : at + 4], "big")
        payload = data[at + 4 : at + 4 + size]
        assert len(payload) == size, "truncated frame"
        yield payload
        at += 4 + size


def trace_messages(path: Path) -> Iterator[tuple[str, bytes]]:
    """(encoding, message) for every export request in a traces file, sniffing the bytes."""
    data = path.read_bytes()
    if not data:
        return
    if data[:4] == ZSTD_MAGIC:  # native compression: one zstd stream of JSON lines
        reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data))
        for line in reader.read().splitlines():
            yield "json", line
    elif data[:1] == b"{":
        for line in data.splitlines():
            yield "json", line
    else:
        for frame in _frames(data):
            if frame[:4] == ZSTD_MAGIC:
                yield "json", zstandard.ZstdDecompressor().decompress(frame)
            else:
                yield "proto", frame


def _json_value(v: dict[str, Any]) -> Any:
    if "stringValue" in v:
        return v["stringValue"]
    if "intValue" in v:
        assert isinstance(v["intValue"], str), "int64 must be a decimal string"
        return int(v["intValue"])
    if "doubleValue" in v:
        return float(v["doubleValue"])
    if "boolValue" in v:
        return v["boolValue"]
    if "arrayValue" in v:
        return [_json_value(x) for x in v["arrayValue"]["values"]]
    raise AssertionError(f"unexpected AnyValue {v}")


def _pb_value(v: AnyValue) -> Any:
    which = v.WhichOneof("value")
    assert which is not None
    if which == "array_value":
        return [_pb_value(x) for x in v.array_value.values]
    return getattr(v, which)


def _json_attrs(attrs: list[dict[str, Any]]) -> dict[str, Any]:
    return {a["key"]: _json_value(a["value"]) for a in attrs}


def _pb_attrs(attrs: Any) -> dict[str, Any]:
    return {a.key: _pb_value(a.value) for a in attrs}


def spans_of(env: str, encoding: str, message: bytes) -> Iterator[Span]:
    if encoding == "json":
        doc = json.loads(message)
        for rs in doc["resourceSpans"]:
            resource = _json_attrs(rs["resource"]["attributes"])
            for ss in rs["scopeSpans"]:
                for s in ss["spans"]:
                    status = s.get("status", {})
                    yield Span(
                        env,
                        resource,
                        s["traceId"],
                        s["spanId"],
                        s.get("parentSpanId", ""),
                        s["name"],
                        s["kind"],
                        int(s["startTimeUnixNano"]),
                        int(s["endTimeUnixNano"]),
                        status.get("code", 0),
                        status.get("message", ""),
                        _json_attrs(s["attributes"]),
                        [
                            (int(e["timeUnixNano"]), e["name"], _json_attrs(e["attributes"]))
                            for e in s.get("events", [])
                        ],
                    )
    else:
        req = ExportTraceServiceRequest.FromString(message)
        for prs in req.resource_spans:
            resource = _pb_attrs(prs.resource.attributes)
            for pss in prs.scope_spans:
                for s in pss.spans:
                    yield Span(
                        env,
                        resource,
                        s.trace_id.hex(),
                        s.span_id.hex(),
                        s.parent_span_id.hex(),
                        s.name,
                        s.kind,
                        s.start_time_unix_nano,
                        s.end_time_unix_nano,
                        s.status.code,
                        s.status.message,
                        _pb_attrs(s.attributes),
                        [(e.time_unix_nano, e.name, _pb_attrs(e.attributes)) for e in s.events],
                    )


def read_spans(outdir: Path) -> list[Span]:
    spans: list[Span] = []
    for env in ENVIRONMENTS:
        for path in sorted((outdir / "traces" / env).iterdir()):
            for encoding, message in trace_messages(path):
                spans.extend(spans_of(env, encoding, message))
    return spans


def read_log_records(outdir: Path) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(environment directory, log record, its attributes) for every evaluation log record."""
    out = []
    for path in sorted((outdir / "logs").glob("*/*.jsonl")):
        for line in path.read_bytes().splitlines():
            for rl in json.loads(line)["resourceLogs"]:
                for sl in rl["scopeLogs"]:
                    for rec in sl["logRecords"]:
                        out.append((path.parent.name, rec, _json_attrs(rec["attributes"])))
    return out


def model_of(span: Span) -> str | None:
    return span.attrs.get("gen_ai.request.model") or span.attrs.get("ml.model.name")


def ns(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()) * 10**9


# -- fixtures -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("scenario")
    calls: list[tuple[int, int]] = []
    summary = generate(
        out, days=3, seed=7, scale=0.1, end=END, progress=lambda d, t: calls.append((d, t))
    )
    assert calls[0] == (0, 3) and calls[-1] == (3, 3)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    return out, summary


@pytest.fixture(scope="module")
def small_spans(small: tuple[Path, dict[str, Any]]) -> list[Span]:
    return read_spans(small[0])


# -- tests ----------------------------------------------------------------------------------
def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_same_arguments_give_identical_bytes_and_another_seed_differs(tmp_path: Path) -> None:
    args: dict[str, Any] = {"days": 3, "scale": 0.03, "end": END}
    generate(tmp_path / "a", seed=11, **args)
    generate(tmp_path / "b", seed=11, **args)
    generate(tmp_path / "c", seed=12, **args)
    a, b, c = _tree(tmp_path / "a"), _tree(tmp_path / "b"), _tree(tmp_path / "c")
    assert a == b
    traces = {k for k in a if k.startswith("traces/")}
    assert traces == {k for k in c if k.startswith("traces/")} and len(traces) == 12
    assert a["traces/dc-frankfurt/2026-10-29.jsonl"] != c["traces/dc-frankfurt/2026-10-29.jsonl"]


def test_summary_is_written_as_scenario_json(small: tuple[Path, dict[str, Any]]) -> None:
    out, summary = small
    assert json.loads((out / "scenario.json").read_text()) == summary
    assert summary["start"] == "2026-10-29T00:00:00Z" and summary["end"] == "2026-11-01T00:00:00Z"
    data_files = [p for p in out.rglob("*") if p.is_file() and p.name != "scenario.json"]
    assert summary["files"] == len(data_files)
    assert summary["bytes"] == sum(p.stat().st_size for p in data_files)


def test_default_end_is_today_midnight_utc(tmp_path: Path) -> None:
    summary = generate(tmp_path, days=1, scale=0.01)
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    # the test may straddle midnight
    assert ns(summary["end"]) in {
        int(today.timestamp()) * 10**9,
        ns(summary["start"]) + 86400 * 10**9,
    }


def test_json_lines_are_real_otlp_json(small: tuple[Path, dict[str, Any]]) -> None:
    """json_format is the proto3 JSON reference; OTLP's hex ids are checked by hand since
    proto3 JSON would read them as base64."""
    out, _ = small
    paths = sorted((out / "traces").glob("*/*.jsonl"))
    assert {p.parent.name for p in paths} == {"dc-frankfurt", "gcp-europe-west4"}
    for path in paths:
        lines = path.read_bytes().splitlines()
        for line in lines[:: max(1, len(lines) // 20)]:
            json_format.Parse(line, ExportTraceServiceRequest())
            doc = json.loads(line)
            spans = [
                s for rs in doc["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]
            ]
            assert 0 < len(spans) <= 500
            for s in spans:
                assert HEX32.match(s["traceId"]) and HEX16.match(s["spanId"])
                assert s.get("parentSpanId", "") == "" or HEX16.match(s["parentSpanId"])
                assert isinstance(s["kind"], int)
                assert isinstance(s["startTimeUnixNano"], str)
                assert isinstance(s["endTimeUnixNano"], str)
    logs = sorted((out / "logs").glob("*/*.jsonl"))
    assert {p.parent.name for p in logs} == set(ENVIRONMENTS)
    for path in logs:
        for line in path.read_bytes().splitlines()[:5]:
            req = json_format.Parse(line, ExportLogsServiceRequest())
            records = [
                r for rl in req.resource_logs for sl in rl.scope_logs for r in sl.log_records
            ]
            assert records and all(r.event_name == "gen_ai.evaluation.result" for r in records)
            doc = json.loads(line)
            for rl in doc["resourceLogs"]:
                for rec in rl["scopeLogs"][0]["logRecords"]:
                    assert HEX32.match(rec["traceId"]) and HEX16.match(rec["spanId"])
                    assert isinstance(rec["timeUnixNano"], str)


def test_zstd_and_protobuf_framings_decode(small: tuple[Path, dict[str, Any]]) -> None:
    out, _ = small
    aws = sorted((out / "traces" / "aws-us-east-1").iterdir())
    legacy = [p for p in aws if p.name.endswith(".jsonl.zst")]
    native = [p for p in aws if not p.name.endswith(".jsonl.zst")]
    assert len(legacy) == 2 and len(native) == 1 and native[0].suffix == ".zst"
    for path in legacy:  # every frame is its own zstd frame holding one JSON request
        data = path.read_bytes()
        assert data[4:8] == ZSTD_MAGIC
        frames = list(_frames(data))
        assert frames
        for frame in frames:
            text = zstandard.ZstdDecompressor().decompress(frame)
            json_format.Parse(text, ExportTraceServiceRequest())
    data = native[0].read_bytes()
    assert data[:4] == ZSTD_MAGIC
    lines = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)).read().splitlines()
    assert lines
    for line in lines:
        json_format.Parse(line, ExportTraceServiceRequest())
    edge = sorted((out / "traces" / "edge-munich").iterdir())
    assert edge and all(p.suffix == ".binpb" for p in edge)
    for path in edge:
        for frame in _frames(path.read_bytes()):
            req = ExportTraceServiceRequest.FromString(frame)
            spans = [s for rs in req.resource_spans for ss in rs.scope_spans for s in ss.spans]
            assert 0 < len(spans) <= 500
            assert all(len(s.trace_id) == 16 and len(s.span_id) == 8 for s in spans)
            assert req.SerializeToString(deterministic=True) == frame


def test_counts_match_the_summary_and_everything_is_present(
    small: tuple[Path, dict[str, Any]], small_spans: list[Span]
) -> None:
    _, summary = small
    spans = small_spans
    assert len(spans) == summary["spans"]
    roots = [s for s in spans if not s.parent]
    assert len(roots) == summary["requests"]
    assert len({(s.trace_id, s.span_id) for s in spans}) == len(spans)
    by_trace: dict[str, list[Span]] = defaultdict(list)
    for s in spans:
        by_trace[s.trace_id].append(s)
    assert len(by_trace) == len(roots)

    pairs: Counter[tuple[str, str]] = Counter()
    for trace in by_trace.values():
        (root,) = [s for s in trace if not s.parent]
        assert root.kind == 2
        models = {m for s in trace if (m := model_of(s))}
        assert len(models) == 1
        pairs[(root.env, models.pop())] += 1
        for child in trace:
            if child is root:
                continue
            assert child.parent == root.span_id and child.kind == 1
            assert root.start <= child.start <= child.end <= root.end
            assert child.resource == root.resource
    expected = {
        (env, model): p["requests"]
        for env, models in summary["by_environment_model"].items()
        for model, p in models.items()
    }
    assert dict(pairs) == expected
    assert {env for env, _ in pairs} == set(ENVIRONMENTS)
    assert {model for _, model in pairs} == set(MODELS)
    for env, counts in summary["by_environment"].items():
        assert sum(1 for s in spans if s.env == env) == counts["spans"]
        assert sum(1 for s in roots if s.env == env and s.status == 2) == counts["errors"]

    # the environment each resource resolves to under the scenario's rules
    for s in roots:
        r = s.resource
        assert r["service.name"] and r["service.version"] and r["service.instance.id"]
        if s.env == "dc-frankfurt":
            assert r["k8s.cluster.name"] == "fra-dc-prod"
            assert r["deployment.environment.name"] == "production"
            assert re.match(r"^fra-gpu-\d\d$", r["host.name"])
        elif s.env == "aws-us-east-1":
            assert (r["cloud.provider"], r["cloud.region"]) == ("aws", "us-east-1")
            assert r["deployment.environment.name"] == "production"
        elif s.env == "gcp-europe-west4":
            assert r["deployment.environment.name"] == "gcp-europe-west4"
        else:
            assert r["deployment.environment"] == "edge-munich"
            assert "deployment.environment.name" not in r
            assert r["host.name"] in {"muc-edge-01", "muc-edge-02"}
    providers = {("gen_ai.system" in s.attrs, "gen_ai.provider.name" in s.attrs) for s in roots}
    assert {(True, False), (False, True)} <= providers


def test_span_shapes_per_model(small_spans: list[Span]) -> None:
    seen: dict[str, Span] = {}
    for s in small_spans:
        model = model_of(s)
        if model and s.status == 0:
            seen.setdefault(model, s)
    llama = seen["llama-3.1-70b-instruct"]
    assert llama.name == "chat llama-3.1-70b-instruct" and not llama.parent
    assert llama.attrs["gen_ai.operation.name"] == "chat"
    for key in (
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.output_tokens",
        "gen_ai.request.max_tokens",
    ):
        assert isinstance(llama.attrs[key], int)
    assert isinstance(llama.attrs["gen_ai.server.time_to_first_token"], float)
    fraud = seen["fraud-classifier"]
    assert fraud.name == "predict fraud-classifier" and fraud.parent and fraud.kind == 1
    embed = seen["bge-large-en-v1.5"]
    assert embed.attrs["gen_ai.operation.name"] == "embeddings"
    vision = seen["yolov8-l"]
    assert vision.name == "inference" and "gen_ai.request.model" not in vision.attrs
    entries = {s.name for s in small_spans if not s.parent and s.kind == 2}
    assert {"POST /v1/score", "POST /v1/embeddings", "POST /v1/detect"} <= entries
    http = [s for s in small_spans if s.name.startswith("POST ")]
    assert all(s.attrs["http.response.status_code"] >= 500 for s in http if s.status == 2)
    assert all(s.attrs["http.response.status_code"] == 200 for s in http if s.status == 0)
    edge = {s.attrs.get("gen_ai.response.model") for s in small_spans if s.env == "edge-munich"}
    assert "mistral-7b-instruct-q4_k_m" in edge
    errors = sum(s.status == 2 for s in small_spans if not s.parent)
    assert 0 < errors < 0.05 * sum(1 for s in small_spans if not s.parent)


def test_evaluations_as_span_events_and_log_records(
    small: tuple[Path, dict[str, Any]], small_spans: list[Span]
) -> None:
    out, summary = small
    by_id = {(s.trace_id, s.span_id): s for s in small_spans}
    events = [(s, e) for s in small_spans for e in s.events]
    logs = read_log_records(out)
    assert len(events) + len(logs) == summary["evaluations"]
    assert events and logs
    for span, (t, name, attrs) in events:
        assert name == "gen_ai.evaluation.result"
        assert "gen_ai.request.model" in span.attrs
        assert span.start <= t <= span.end
        assert attrs["gen_ai.evaluation.name"] in {"accuracy", "relevance"}
        if model_of(span) == "fraud-classifier":
            assert 0.0 <= attrs["gen_ai.evaluation.score.value"] <= 1.0
    llm_events = [a for s, (_, _, a) in events if model_of(s) != "fraud-classifier"]
    assert {a.get("gen_ai.evaluation.score.label") for a in llm_events} >= {"pass", "fail"}
    for env, rec, attrs in logs:
        span = by_id[(rec["traceId"], rec["spanId"])]
        assert span.env == env and "gen_ai.request.model" in span.attrs
        assert int(rec["timeUnixNano"]) >= span.end
        assert attrs["gen_ai.evaluation.name"] in {"accuracy", "relevance"}
    names = Counter(a["gen_ai.evaluation.name"] for *_, a in logs) + Counter(
        a["gen_ai.evaluation.name"] for _, (_, _, a) in events
    )
    assert 0 < names["relevance"] < names["accuracy"] / 3
    # the scenario's observed accuracy is exactly what the files say
    scores: dict[tuple[str, str], list[float]] = defaultdict(list)
    evaluated = [(s, a) for s, (_, _, a) in events] + [
        (by_id[(rec["traceId"], rec["spanId"])], a) for _, rec, a in logs
    ]
    for span, attrs in evaluated:
        if attrs["gen_ai.evaluation.name"] == "accuracy":
            label = attrs.get("gen_ai.evaluation.score.label")
            value = attrs["gen_ai.evaluation.score.value"] if label is None else label == "pass"
            scores[(span.env, model_of(span) or "")].append(float(value))
    truth = summary["events"]["accuracy"]
    for (env, model), values in scores.items():
        assert truth[env][model]["observed"] == pytest.approx(np.mean(values), abs=1e-3)
    # the quantized edge build is clearly less accurate, and the ground truth says so
    assert truth["edge-munich"]["mistral-7b-instruct"]["expected"] < 0.8
    assert truth["dc-frankfurt"]["mistral-7b-instruct"]["expected"] > 0.85


def test_outage_has_errors_then_silence(
    small: tuple[Path, dict[str, Any]], small_spans: list[Span]
) -> None:
    _, summary = small
    o = summary["events"]["outage"]
    assert o["environment"] == "gcp-europe-west4"
    start, errors_until, end = ns(o["start"]), ns(o["errors_until"]), ns(o["end"])
    assert errors_until - start == 60 * NS_PER_MIN and end - errors_until == 120 * NS_PER_MIN
    roots = [s for s in small_spans if not s.parent]
    gcp = [s for s in roots if s.env == "gcp-europe-west4"]
    failing = [s for s in gcp if start <= s.start < errors_until]
    assert len(failing) >= 10
    assert sum(s.status == 2 for s in failing) / len(failing) > 0.75
    http = [s for s in failing if s.status == 2 and "http.response.status_code" in s.attrs]
    assert http and all(s.attrs["http.response.status_code"] == 503 for s in http)
    assert not [s for s in gcp if errors_until <= s.start < end]
    assert any(s.start >= end for s in gcp) and any(s.start < start for s in gcp)
    others = [s for s in roots if s.env != "gcp-europe-west4" and errors_until <= s.start < end]
    assert others and sum(s.status == 2 for s in others) / len(others) < 0.05


def test_latency_regression_after_the_version_change(
    small: tuple[Path, dict[str, Any]], small_spans: list[Span]
) -> None:
    _, summary = small
    r = summary["events"]["regression"]
    assert (r["environment"], r["service"], r["from_version"], r["to_version"]) == (
        "aws-us-east-1",
        "chat-gateway",
        "2.3.1",
        "2.4.0",
    )
    at = ns(r["at"])
    chat = [
        s
        for s in small_spans
        if s.env == "aws-us-east-1"
        and s.resource["service.name"] == "chat-gateway"
        and s.status == 0
    ]
    before = [s.end - s.start for s in chat if s.resource["service.version"] == "2.3.1"]
    after = [s.end - s.start for s in chat if s.resource["service.version"] == "2.4.0"]
    assert all(s.start >= at for s in chat if s.resource["service.version"] == "2.4.0")
    assert all(s.start < at for s in chat if s.resource["service.version"] == "2.3.1")
    ratio = float(np.median(after) / np.median(before))
    assert 1.25 < ratio < 1.7


def _root_starts(env: str, encoding: str, message: bytes) -> list[int]:
    """Start times of the request (root) spans, read cheaply for a month of data."""
    if encoding == "json":
        doc = json.loads(message)
        return [
            int(s["startTimeUnixNano"])
            for rs in doc["resourceSpans"]
            for s in rs["scopeSpans"][0]["spans"]
        ]
    req = ExportTraceServiceRequest.FromString(message)
    return [s.start_time_unix_nano for rs in req.resource_spans for s in rs.scope_spans[0].spans]


def test_load_has_daily_and_weekly_shape_and_is_overdispersed(tmp_path: Path) -> None:
    days = 28
    summary = generate(tmp_path, days=days, seed=3, scale=0.15, end=END, gpu=False)  # traces
    first = ns(summary["start"])
    weekday = np.array(
        [(datetime.fromtimestamp(first / 1e9, UTC).weekday() + d) % 7 for d in range(days)]
    )
    hour = np.arange(1440) // 60
    for env in ENVIRONMENTS:
        counts = np.zeros(days * 1440, np.int64)
        for path in sorted((tmp_path / "traces" / env).iterdir()):
            for encoding, message in trace_messages(path):
                starts = np.array(_root_starts(env, encoding, message), np.int64)
                np.add.at(counts, (starts - first) // NS_PER_MIN, 1)
        assert counts.sum() == summary["by_environment"][env]["requests"]
        per_minute = counts.reshape(days, 1440)
        workdays = per_minute[weekday < 5]
        assert workdays[:, (hour >= 8) & (hour < 18)].mean() > 2.0 * workdays[:, hour < 5].mean()
        per_day = per_minute.sum(axis=1)
        assert per_day[weekday >= 5].mean() < 0.8 * per_day[weekday < 5].mean()
        # within an hour the expected rate barely moves: pure Poisson would give var/mean = 1
        by_hour = counts.reshape(-1, 60)
        mean = by_hour.mean(axis=1)
        busy = mean >= 0.5
        dispersion = by_hour.var(axis=1, ddof=1)[busy].sum() / mean[busy].sum()
        assert dispersion > 1.2, env


SMALL = Path(__file__).resolve().parents[1] / "sample_data" / "small"


def _content(path: Path) -> bytes:
    """File content with zstd undone, so a different libzstd cannot fail the comparison."""
    data = path.read_bytes()
    if data[:4] == ZSTD_MAGIC:
        return zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)).read()
    if path.name.endswith(".jsonl.zst"):
        return b"\n".join(zstandard.ZstdDecompressor().decompress(f) for f in _frames(data))
    return data


def test_committed_small_copy_is_what_its_readme_call_writes(tmp_path: Path) -> None:
    if not (SMALL / "scenario.json").exists():
        pytest.skip("sample_data/small is not in this checkout")
    summary = generate(tmp_path, days=7, seed=7, scale=0.03, end=END, gpu=False, billing=False)
    committed = json.loads((SMALL / "scenario.json").read_text())
    hint = "regenerate sample_data/small with the call in sample_data/README.md"
    assert {k: v for k, v in committed.items() if k != "bytes"} == {
        k: v for k, v in summary.items() if k != "bytes"
    }, hint
    fresh = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert fresh == sorted(p.relative_to(SMALL) for p in SMALL.rglob("*") if p.is_file()), hint
    for rel in fresh:
        assert _content(SMALL / rel) == _content(tmp_path / rel), f"{rel}: {hint}"
    size = sum(p.stat().st_size for p in SMALL.rglob("*") if p.is_file())
    assert size <= 5_000_000

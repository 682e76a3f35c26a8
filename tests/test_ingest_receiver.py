"""The OTLP/HTTP receiver, driven by the real OpenTelemetry SDK exporters and by hand.

Every server listens on 127.0.0.1 on a port the OS picked. In-process `Receiver`s are
stopped by the fixture; `hybridlens serve-otlp` subprocesses are killed in `finally`.
Waits are bounded: a test fails rather than hangs.
"""

from __future__ import annotations

import gzip
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from google.rpc.status_pb2 import Status
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource as ProtoResource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExportResult,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags
from otlp_factory import BASE_NS, SpanSpec, evaluation_log, logs_request, traces_request

import ingest.spool_loader as loader_module
from ingest.receiver import Receiver, ReceiverError, read_segment
from warehouse.config import Config
from warehouse.db import Warehouse
from warehouse.errors import WarehouseBusyError

HYBRIDLENS = str(Path(sys.executable).with_name("hybridlens"))
RESOURCE = {
    "service.name": "chat-api",
    "service.version": "1.4.2",
    "deployment.environment.name": "eu-prod",
}
GEN_AI: dict[str, str | int] = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "llama-3-70b",
    "gen_ai.usage.input_tokens": 120,
    "gen_ai.usage.output_tokens": 40,
}
PROTO = {"Content-Type": "application/x-protobuf"}
JSON = {"Content-Type": "application/json"}


# -- helpers -----------------------------------------------------------------------------------
@pytest.fixture
def start(warehouse: Warehouse, tmp_path: Path) -> Iterator[Callable[..., Receiver]]:
    """Start an in-process receiver on a free port; every one is stopped at teardown."""
    started: list[Receiver] = []

    def make(**kwargs: Any) -> Receiver:
        kwargs.setdefault("spool_dir", tmp_path / "spool")
        receiver = Receiver(warehouse, Config(), **kwargs)
        receiver.start()
        started.append(receiver)
        return receiver

    yield make
    for receiver in started:
        if receiver.running:
            receiver.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def post(
    port: int,
    path: str,
    body: bytes,
    headers: dict[str, str],
    *,
    method: str = "POST",
    chunked: bool = False,
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        if chunked:
            conn.request(
                method,
                path,
                body=iter([body[:100], body[100:]]),
                headers=headers,
                encode_chunked=True,
            )
        else:
            conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def wait_for(predicate: Callable[[], bool], timeout_s: float, what: str) -> float:
    """Seconds until `predicate()` held; fails the test after `timeout_s`."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout_s:
            pytest.fail(f"not within {timeout_s} s: {what}")
        time.sleep(0.1)
    return time.monotonic() - started


def rows(warehouse: Warehouse, sql: str) -> list[tuple[Any, ...]]:
    if not warehouse.exists():
        return []
    with warehouse.read() as con:
        return con.execute(sql).fetchall()


def span_count(warehouse: Warehouse) -> int:
    got = rows(warehouse, "SELECT count(*) FROM spans")
    return int(got[0][0]) if got else 0


def sdk_tracer(exporter: Any, *, batch: bool = True) -> tuple[TracerProvider, trace.Tracer]:
    provider = TracerProvider(resource=Resource.create(RESOURCE))
    processor = (
        BatchSpanProcessor(exporter, schedule_delay_millis=200)
        if batch
        else SimpleSpanProcessor(exporter)
    )
    provider.add_span_processor(processor)
    return provider, provider.get_tracer("tests.receiver")


def make_spans(n: int) -> list[ReadableSpan]:
    """Finished SDK spans (fresh ids) to hand to an exporter's export() directly."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create(RESOURCE))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("tests.receiver")
    for _ in range(n):
        with tracer.start_as_current_span(
            "chat llama-3-70b", kind=SpanKind.SERVER, attributes=GEN_AI
        ):
            pass
    spans = list(memory.get_finished_spans())
    provider.shutdown()
    return spans


def span_key(span: ReadableSpan) -> tuple[str, str]:
    ctx = span.get_span_context()
    assert ctx is not None
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [HYBRIDLENS, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def start_server(port: int, warehouse: Path, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    """`hybridlens serve-otlp` as a real process; returns once it accepts connections."""
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [HYBRIDLENS, "serve-otlp", "--port", str(port), "--warehouse", str(warehouse), *extra],
            stdout=out,
            stderr=out,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    def up() -> bool:
        if proc.poll() is not None:
            pytest.fail(f"serve-otlp exited with {proc.returncode}:\n{log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            return False

    try:
        wait_for(up, 30, "serve-otlp listening")
    except BaseException:
        proc.kill()
        proc.wait(10)
        raise
    return proc


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(30)


def proto_spans(*spans: Span) -> bytes:
    resource = ProtoResource(
        attributes=[KeyValue(key=k, value=AnyValue(string_value=v)) for k, v in RESOURCE.items()]
    )
    request = ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(resource=resource, scope_spans=[ScopeSpans(spans=spans)])]
    )
    body: bytes = request.SerializeToString()
    return body


def proto_span(span_id: bytes) -> Span:
    now = time.time_ns()
    return Span(
        trace_id=os.urandom(16),
        span_id=span_id,
        name="chat llama-3-70b",
        kind=Span.SPAN_KIND_SERVER,
        start_time_unix_nano=now - 5_000_000,
        end_time_unix_nano=now,
    )


# -- the SDK exporters --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "compression", [Compression.NoCompression, Compression.Gzip, Compression.Deflate]
)
def test_sdk_spans_reach_warehouse_and_metrics_while_running(
    start: Callable[..., Receiver], warehouse: Warehouse, compression: Compression
) -> None:
    receiver = start()  # the loader's own 2 s interval: no flush() from the test
    exporter = OTLPSpanExporter(
        endpoint=f"http://127.0.0.1:{receiver.port}/v1/traces", compression=compression
    )
    provider, tracer = sdk_tracer(exporter)
    for i in range(25):
        with tracer.start_as_current_span(
            "chat llama-3-70b", kind=SpanKind.SERVER, attributes=GEN_AI
        ) as span:
            if i == 0:
                span.set_status(trace.Status(trace.StatusCode.ERROR, "upstream timeout"))
    assert provider.force_flush(10_000)
    waited = wait_for(lambda: span_count(warehouse) == 25, 10, "25 spans in the warehouse")
    assert waited < 10

    got = rows(
        warehouse,
        "SELECT environment, model, version, provider, sum(input_tokens), "
        "count(*) FILTER (WHERE status_code = 'ERROR') FROM spans GROUP BY ALL",
    )
    assert got == [("eu-prod", "llama-3-70b", "1.4.2", "openai", 25 * 120, 1)]
    result = run_cli("metrics", "--format", "json", "--warehouse", str(warehouse.path))
    assert result.returncode == 0, result.stderr
    (row,) = json.loads(result.stdout)
    assert (row["environment"], row["model"], row["requests"], row["errors"]) == (
        "eu-prod",
        "llama-3-70b",
        25,
        1,
    )
    assert row["input_tokens"] == 25 * 120
    provider.shutdown()
    assert receiver.running  # still serving: nothing above stopped it


@pytest.mark.parametrize("chunked", [False, True])
def test_json_posted_by_hand(
    start: Callable[..., Receiver], warehouse: Warehouse, chunked: bool
) -> None:
    receiver = start(flush_interval_s=3600)
    spans = [SpanSpec(attributes=GEN_AI) for _ in range(3)]
    body = orjson.dumps(traces_request(RESOURCE, spans))
    status, headers, reply = post(
        receiver.port,
        "/v1/traces",
        body,
        {"Content-Type": "application/json; charset=utf-8"},
        chunked=chunked,
    )
    assert status == 200, reply
    assert headers["content-type"] == "application/json"
    assert orjson.loads(reply) == {}
    assert receiver.flush().rows("spans") == 3
    assert rows(warehouse, "SELECT DISTINCT environment, model FROM spans") == [
        ("eu-prod", "llama-3-70b")
    ]


def test_empty_requests_succeed_and_store_nothing(start: Callable[..., Receiver]) -> None:
    receiver = start(flush_interval_s=3600)
    assert post(receiver.port, "/v1/traces", b"", PROTO)[:1] == (200,)
    status, _, reply = post(receiver.port, "/v1/traces", b"{}", JSON)
    assert (status, reply) == (200, b"{}")
    assert receiver.spool.backlog == 0


# -- evaluations on /v1/logs ----------------------------------------------------------------------
def test_evaluation_logs_json_and_sdk_protobuf(
    start: Callable[..., Receiver], warehouse: Warehouse
) -> None:
    receiver = start(flush_interval_s=3600)
    trace_id, span_id = os.urandom(16).hex(), os.urandom(8).hex()
    body = orjson.dumps(
        logs_request(RESOURCE, [evaluation_log(trace_id, span_id, "accuracy", value=0.75)])
    )
    status, headers, reply = post(receiver.port, "/v1/logs", body, JSON)
    assert (status, headers["content-type"], reply) == (200, "application/json", b"{}")

    provider = LoggerProvider(resource=Resource.create(RESOURCE))
    provider.add_log_record_processor(
        SimpleLogRecordProcessor(OTLPLogExporter(endpoint=f"{receiver.url}/v1/logs"))
    )
    context = trace.set_span_in_context(
        NonRecordingSpan(SpanContext(int(trace_id, 16), int(span_id, 16), False, TraceFlags(1)))
    )
    provider.get_logger("tests.evaluator").emit(
        event_name="gen_ai.evaluation.result",
        timestamp=BASE_NS + 1_000,
        context=context,
        attributes={"gen_ai.evaluation.name": "relevance", "gen_ai.evaluation.score.label": "pass"},
    )
    provider.get_logger("tests.evaluator").emit(body="an ordinary log line, ignored")
    provider.shutdown()

    result = receiver.flush()
    assert result.rows("evaluations") == 2
    assert sorted(
        rows(warehouse, "SELECT trace_id, span_id, evaluation_name, score, origin FROM evaluations")
    ) == [
        (trace_id, span_id, "accuracy", 0.75, "log_record"),
        (trace_id, span_id, "relevance", 1.0, "log_record"),
    ]


def test_evaluation_log_without_span_context_is_a_partial_success(
    start: Callable[..., Receiver], warehouse: Warehouse
) -> None:
    receiver = start(flush_interval_s=3600)
    good = evaluation_log(os.urandom(16).hex(), os.urandom(8).hex(), value=1.0)
    bad = {**evaluation_log(os.urandom(16).hex(), os.urandom(8).hex(), value=1.0), "spanId": ""}
    status, _, reply = post(
        receiver.port, "/v1/logs", orjson.dumps(logs_request(RESOURCE, [good, bad])), JSON
    )
    assert status == 200
    partial = orjson.loads(reply)["partialSuccess"]
    assert partial["rejectedLogRecords"] == "1"
    assert "span context" in partial["errorMessage"]
    receiver.flush()
    assert rows(warehouse, "SELECT count(*) FROM evaluations") == [(1,)]
    assert rows(warehouse, "SELECT source, count(*) FROM quarantine GROUP BY 1") == [
        ("otlp-http", 1)
    ]


# -- partial success ----------------------------------------------------------------------------
def test_partial_success_counts_the_bad_span_and_quarantines_it(
    start: Callable[..., Receiver], warehouse: Warehouse
) -> None:
    receiver = start(flush_interval_s=3600)
    spans = [SpanSpec(attributes=GEN_AI) for _ in range(3)]
    doc = traces_request(RESOURCE, spans)
    del doc["resourceSpans"][0]["scopeSpans"][0]["spans"][1]["spanId"]
    status, headers, reply = post(receiver.port, "/v1/traces", orjson.dumps(doc), JSON)
    assert (status, headers["content-type"]) == (200, "application/json")
    partial = orjson.loads(reply)["partialSuccess"]
    assert partial["rejectedSpans"] == "1"
    assert "spanId is missing" in partial["errorMessage"]

    body = proto_spans(proto_span(os.urandom(8)), proto_span(b"\x01\x02\x03"))
    status, headers, reply = post(receiver.port, "/v1/traces", body, PROTO)
    assert (status, headers["content-type"]) == (200, "application/x-protobuf")
    response = ExportTraceServiceResponse.FromString(reply)
    assert response.HasField("partial_success")
    assert response.partial_success.rejected_spans == 1
    assert "spanId must be 8 bytes" in response.partial_success.error_message

    receiver.flush()
    assert span_count(warehouse) == 3
    quarantined = rows(warehouse, "SELECT source, location, error FROM quarantine ORDER BY 2")
    assert len(quarantined) == 2
    assert all(source == "otlp-http" for source, _, _ in quarantined)
    assert any("spans[1]" in loc and "spanId is missing" in err for _, loc, err in quarantined)
    assert any("spanId must be 8 bytes" in err for _, _, err in quarantined)


def test_full_success_has_no_partial_success(start: Callable[..., Receiver]) -> None:
    receiver = start(flush_interval_s=3600)
    status, _, reply = post(
        receiver.port, "/v1/traces", proto_spans(proto_span(os.urandom(8))), PROTO
    )
    assert status == 200
    assert not ExportTraceServiceResponse.FromString(reply).HasField("partial_success")
    status, _, reply = post(receiver.port, "/v1/logs", b"", PROTO)
    assert status == 200
    assert not ExportLogsServiceResponse.FromString(reply).HasField("partial_success")


# -- refusals ----------------------------------------------------------------------------------
def test_undecodable_bodies_get_400_with_a_status(start: Callable[..., Receiver]) -> None:
    receiver = start(flush_interval_s=3600)
    port = receiver.port
    status, headers, reply = post(port, "/v1/traces", b"\xff\xff\xff garbage", PROTO)
    assert (status, headers["content-type"]) == (400, "application/x-protobuf")
    rpc = Status.FromString(reply)
    assert rpc.code == 3 and "protobuf" in rpc.message

    status, headers, reply = post(port, "/v1/traces", b'{"resourceSpans": [', JSON)
    assert (status, headers["content-type"]) == (400, "application/json")
    assert orjson.loads(reply)["code"] == 3

    status, _, reply = post(port, "/v1/traces", b"[1, 2]", JSON)
    assert status == 400
    status, _, reply = post(port, "/v1/traces", orjson.dumps(logs_request(RESOURCE, [])), JSON)
    assert status == 400 and b"/v1/logs" in reply

    whole = gzip.compress(proto_spans(proto_span(os.urandom(8))))
    status, _, reply = post(port, "/v1/traces", whole[:-12], {**PROTO, "Content-Encoding": "gzip"})
    assert status == 400 and b"truncated" in Status.FromString(reply).message.encode()
    status, _, _ = post(
        port, "/v1/traces", b"not gzip at all", {**PROTO, "Content-Encoding": "gzip"}
    )
    assert status == 400
    assert receiver.spool.backlog == 0  # nothing undecodable was spooled


def test_wrong_path_method_type_and_encoding(start: Callable[..., Receiver]) -> None:
    receiver = start(flush_interval_s=3600)
    port = receiver.port
    status, _, reply = post(port, "/v1development/profiles", b"", PROTO)
    assert status == 404 and Status.FromString(reply).code == 5
    assert "/v1/metrics" in Status.FromString(reply).message
    assert post(port, "/v2/traces", b"{}", JSON)[0] == 404
    status, headers, _ = post(port, "/v1/traces", b"", JSON, method="GET")
    assert (status, headers["allow"]) == (405, "POST")
    assert post(port, "/v1/logs", b"{}", JSON, method="PUT")[0] == 405
    status, headers, reply = post(port, "/v1/traces", b"{}", {"Content-Type": "text/plain"})
    assert (status, headers["content-type"]) == (415, "application/json")
    assert "application/x-protobuf" in orjson.loads(reply)["message"]
    assert post(port, "/v1/traces", b"{}", {})[0] == 415
    status, _, _ = post(port, "/v1/traces", b"{}", {**JSON, "Content-Encoding": "br"})
    assert status == 415
    status, _, _ = post(
        port, "/v1/traces", b"{}", {"Content-Type": "application/json; charset=latin-1"}
    )
    assert status == 415
    # and the same connection-level server still takes good data
    assert post(port, "/v1/traces", proto_spans(proto_span(os.urandom(8))), PROTO)[0] == 200


def test_bearer_token(start: Callable[..., Receiver], warehouse: Warehouse) -> None:
    receiver = start(token="s3cret", flush_interval_s=3600)
    body = proto_spans(proto_span(os.urandom(8)))
    status, headers, _ = post(receiver.port, "/v1/traces", body, PROTO)
    assert status == 401 and headers["www-authenticate"].startswith("Bearer")
    for auth in ("Bearer wrong", "Basic czNjcmV0", "Bearer s3cret-and-more", "s3cret"):
        assert post(receiver.port, "/v1/traces", body, {**PROTO, "Authorization": auth})[0] == 401
    exporter = OTLPSpanExporter(
        endpoint=f"{receiver.url}/v1/traces", headers={"Authorization": "Bearer s3cret"}
    )
    assert exporter.export(make_spans(4)) == SpanExportResult.SUCCESS
    exporter.shutdown()  # type: ignore[no-untyped-call]
    assert receiver.flush().rows("spans") == 4


def _raw_exchange(port: int, head: bytes, body: bytes = b"") -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head + body)
        chunks = []
        while True:  # the server closes the connection after a 413
            data = sock.recv(65536)
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks)


def test_content_length_over_the_limit_is_413_before_reading(
    start: Callable[..., Receiver],
) -> None:
    receiver = start(flush_interval_s=3600)
    big = 100 * 1024 * 1024
    head = (
        f"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
        f"Content-Length: {big}\r\n\r\n"
    ).encode()
    reply = _raw_exchange(receiver.port, head, b"\x0a" * 1000)  # the rest is never sent
    assert reply.startswith(b"HTTP/1.1 413")
    assert b"Connection: close" in reply
    expect = head.replace(b"\r\n\r\n", b"\r\nExpect: 100-continue\r\n\r\n")
    reply = _raw_exchange(receiver.port, expect)
    assert reply.startswith(b"HTTP/1.1 413")  # refused instead of "100 Continue"
    assert b"100 Continue" not in reply


def test_backlog_over_its_bound_is_503_with_retry_after(start: Callable[..., Receiver]) -> None:
    receiver = start(flush_interval_s=3600, max_backlog_bytes=1)
    body = proto_spans(proto_span(os.urandom(8)))
    assert post(receiver.port, "/v1/traces", body, PROTO)[0] == 200
    status, headers, reply = post(receiver.port, "/v1/traces", body, PROTO)
    assert status == 503
    assert int(headers["retry-after"]) >= 1
    assert Status.FromString(reply).code == 14
    receiver.flush()
    assert post(receiver.port, "/v1/traces", body, PROTO)[0] == 200


# -- the spool -------------------------------------------------------------------------------------
def test_acknowledged_means_spooled_and_reloading_is_harmless(
    start: Callable[..., Receiver], warehouse: Warehouse, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    receiver = start(flush_interval_s=3600)
    body = orjson.dumps(traces_request(RESOURCE, [SpanSpec(attributes=GEN_AI) for _ in range(5)]))
    assert post(receiver.port, "/v1/traces", body, JSON)[0] == 200
    (segment,) = [p for p in spool.iterdir() if p.suffix == ".spool"]
    records = list(read_segment(segment))  # on disk at the moment of the 200
    assert len(records) == 1 and not isinstance(records[0], tuple)
    assert records[0].body == body and records[0].meta["signal"] == "traces"
    saved = segment.read_bytes()
    receiver.stop()  # the final flush loads it
    assert span_count(warehouse) == 5
    assert not [p for p in spool.iterdir() if p.suffix == ".spool"]

    # The same segment again (a crash between publish and delete): recognised, not republished.
    segment.write_bytes(saved)
    again = spool / "000000000099-1.spool"  # the same bytes under a new name: deduplicated
    again.write_bytes(saved + b"HLSP\x00\x00")  # plus a torn record: never acknowledged
    logs_before = rows(warehouse, "SELECT count(*) FROM ingest_log")[0][0]
    receiver = start(flush_interval_s=3600)  # loads what it finds at once, then every hour
    wait_for(lambda: receiver.spool.pending == 0, 10, "the recovered segments loaded")
    stats = receiver.stats
    assert (stats.segments_loaded, stats.loaded_spans, stats.duplicates) == (2, 0, 5)
    assert span_count(warehouse) == 5
    assert rows(warehouse, "SELECT count(*) FROM ingest_log")[0][0] == logs_before + 1
    receiver.stop()  # its own active segment is empty and goes with it
    assert not [p for p in spool.iterdir() if p.suffix == ".spool"]


def test_a_second_receiver_cannot_share_the_spool(
    start: Callable[..., Receiver], warehouse: Warehouse, tmp_path: Path
) -> None:
    start()
    with pytest.raises(ReceiverError, match="another receiver is using the spool"):
        Receiver(warehouse, Config(), spool_dir=tmp_path / "spool").start()


def test_a_failed_publish_keeps_the_segment_for_the_next_flush(
    start: Callable[..., Receiver], warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver = start(flush_interval_s=3600)
    body = orjson.dumps(traces_request(RESOURCE, [SpanSpec(attributes=GEN_AI) for _ in range(4)]))
    assert post(receiver.port, "/v1/traces", body, JSON)[0] == 200
    real = loader_module.publish

    def busy(*args: Any, **kwargs: Any) -> Any:
        raise WarehouseBusyError("the warehouse stayed busy (simulated)")

    monkeypatch.setattr(loader_module, "publish", busy)
    with pytest.raises(WarehouseBusyError):
        receiver.flush()
    assert receiver.spool.pending == 1
    assert post(receiver.port, "/v1/traces", body.replace(b"chat", b"chat2"), JSON)[0] == 200
    monkeypatch.setattr(loader_module, "publish", real)
    result = receiver.flush()
    assert (len(result.inputs), result.rows("spans")) == (2, 4)  # the replay deduplicated
    assert result.duplicates("spans") == 4
    assert span_count(warehouse) == 4


def test_a_damaged_record_is_quarantined_and_its_neighbours_load(
    start: Callable[..., Receiver], tmp_path: Path
) -> None:
    receiver = start(flush_interval_s=3600)
    for _ in range(3):
        body = orjson.dumps(traces_request(RESOURCE, [SpanSpec(attributes=GEN_AI)]))
        assert post(receiver.port, "/v1/traces", body, JSON)[0] == 200
    (segment,) = [p for p in (tmp_path / "spool").iterdir() if p.suffix == ".spool"]
    data = bytearray(segment.read_bytes())
    offsets = [r.offset for r in read_segment(segment) if not isinstance(r, tuple)]
    data[offsets[1] + 40] ^= 0xFF  # a bit flip inside the second record
    receiver.stop()

    other = Warehouse(tmp_path / "other.duckdb")
    spool = tmp_path / "other-spool"
    spool.mkdir()
    (spool / segment.name).write_bytes(bytes(data))
    recovering = Receiver(other, Config(), spool_dir=spool, flush_interval_s=3600)
    recovering.start()
    try:
        wait_for(lambda: recovering.spool.pending == 0, 10, "the damaged segment loaded")
    finally:
        recovering.stop()
    assert span_count(other) == 2
    assert rows(other, "SELECT location, error FROM quarantine") == [
        (f"spool byte {offsets[1]}", "spool record checksum mismatch (damaged on disk)")
    ]


def test_a_taken_port_is_a_clear_error(
    start: Callable[..., Receiver], warehouse: Warehouse, tmp_path: Path
) -> None:
    receiver = start()
    with pytest.raises(ReceiverError, match=f"cannot listen on 127.0.0.1:{receiver.port}"):
        Receiver(warehouse, Config(), port=receiver.port, spool_dir=tmp_path / "other").start()
    assert not [p for p in (tmp_path / "other").iterdir() if p.suffix == ".spool"]


# -- real processes ------------------------------------------------------------------------------
def _vm_hwm_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_gzip_bomb_is_413_within_bounded_memory(tmp_path: Path) -> None:
    port = free_port()
    proc = start_server(port, tmp_path / "w.duckdb", tmp_path / "server.log")
    try:
        good = proto_spans(proto_span(os.urandom(8)))
        assert post(port, "/v1/traces", good, PROTO)[0] == 200  # warm: imports, first segment
        before = _vm_hwm_kib(proc.pid)
        packer = zlib.compressobj(9, zlib.DEFLATED, 31)
        zeros = bytes(1 << 20)
        bomb = b"".join([*(packer.compress(zeros) for _ in range(512)), packer.flush()])
        assert len(bomb) < 1_000_000  # 512 MiB of zeros
        status, _, reply = post(port, "/v1/traces", bomb, {**PROTO, "Content-Encoding": "gzip"})
        assert status == 413, reply
        grown_mib = (_vm_hwm_kib(proc.pid) - before) / 1024
        assert grown_mib < 200, f"peak RSS grew {grown_mib:.0f} MiB for a 512 MiB bomb"
        assert post(port, "/v1/traces", good, PROTO)[0] == 200  # still up
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        stop_process(proc)
    assert "loaded 1 spans" in (tmp_path / "server.log").read_text()


@pytest.mark.slow
def test_every_acknowledged_span_survives_sigkill(tmp_path: Path) -> None:
    port = free_port()
    db = tmp_path / "w.duckdb"
    log = tmp_path / "server.log"
    acked: list[tuple[str, str]] = []
    stop = threading.Event()
    exports = {"ok": 0, "failed": 0}

    def push() -> None:
        exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{port}/v1/traces", timeout=2)
        try:
            while not stop.is_set():
                batch = make_spans(100)
                if exporter.export(batch) == SpanExportResult.SUCCESS:
                    acked.extend(span_key(s) for s in batch)
                    exports["ok"] += 1
                else:
                    exports["failed"] += 1
        finally:
            exporter.shutdown()  # type: ignore[no-untyped-call]

    proc = start_server(port, db, log)
    client = threading.Thread(target=push, daemon=True)
    try:
        client.start()
        # Past the first loader flush (2 s) so some segments are loaded and some are not.
        wait_for(lambda: exports["ok"] >= 10, 20, "10 acknowledged exports")
        time.sleep(2.5)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        stop.set()
        client.join(20)
        assert not client.is_alive()
        assert len(acked) >= 1000
        assert any(
            p.suffix == ".spool" and p.stat().st_size
            for p in (tmp_path / "w.duckdb.spool").iterdir()
        ), "nothing was left to recover"

        proc = start_server(port, db, log)  # loads the backlog first
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        stop.set()
        stop_process(proc)
    loaded = set(rows(Warehouse(db), "SELECT trace_id, span_id FROM spans"))
    missing = set(acked) - loaded
    assert not missing, f"{len(missing)} of {len(acked)} acknowledged spans were lost"
    assert not [p for p in (tmp_path / "w.duckdb.spool").iterdir() if p.suffix == ".spool"]

"""`POST /v1/metrics`: GPU telemetry pushed to the receiver, by the real SDK and by hand.

The same durability rule as traces (spooled and fsync'd before the 200, loaded after a
SIGKILL), the same warehouse rows as `ingest gpu` gives for the same body in a file.
"""

from __future__ import annotations

import gzip
import json
import signal
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import orjson
from google.rpc.status_pb2 import Status
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceResponse,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from test_ingest_receiver import (
    JSON,
    PROTO,
    free_port,
    post,
    rows,
    start,  # noqa: F401 (the fixture)
    start_server,
    stop_process,
    wait_for,
)

from hybridlens.cli import main
from ingest.receiver import Receiver
from warehouse.db import Warehouse

CASES = Path(__file__).parent / "cases" / "otlp-metrics"
GPU = "GPU-7d2f0c1e-0000-4000-8000-0000000000a1"


def gpu_rows(warehouse: Warehouse) -> list[tuple[Any, ...]]:
    return rows(
        warehouse,
        "SELECT environment, host, gpu_uuid, gpu_model, utilization, power_w, energy_mj, "
        "source FROM gpu_samples ORDER BY ts, gpu_uuid",
    )


def count(warehouse: Warehouse) -> int:
    got = rows(warehouse, "SELECT count(*) FROM gpu_samples")
    return int(got[0][0]) if got else 0


def test_sdk_gpu_gauges_reach_gpu_samples(
    start: Callable[..., Receiver],  # noqa: F811
    warehouse: Warehouse,
) -> None:
    """OpenLIT-style hw.* instruments exported by the real SDK over OTLP/HTTP (gzip)."""
    receiver = start()
    exporter = OTLPMetricExporter(
        endpoint=f"http://127.0.0.1:{receiver.port}/v1/metrics", compression=Compression.Gzip
    )
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    resource = Resource.create(
        {"host.name": "edge-nuc-07", "deployment.environment.name": "edge-berlin"}
    )
    provider = MeterProvider(resource=resource, metric_readers=[reader])
    meter = provider.get_meter("gpu-collector")
    gpu = {"hw.id": GPU, "hw.type": "gpu", "hw.model": "NVIDIA L4"}

    def observe(value: float) -> Callable[[CallbackOptions], Iterable[Observation]]:
        return lambda _options: [Observation(value, gpu)]

    meter.create_observable_gauge("hw.gpu.utilization", [observe(0.625)], unit="1")
    meter.create_observable_gauge("hw.power", [observe(41.5)], unit="W")
    meter.create_observable_counter("hw.energy", [observe(1200.0)], unit="J")
    meter.create_observable_gauge("process.cpu.utilization", [observe(0.1)], unit="1")
    assert provider.force_flush(10_000)
    wait_for(lambda: count(warehouse) == 1, 10, "one GPU sample in the warehouse")
    [(env, host, gpu_uuid, model, util, power, energy, source)] = gpu_rows(warehouse)
    assert (env, host, gpu_uuid, model) == ("edge-berlin", "edge-nuc-07", GPU, "NVIDIA L4")
    assert (util, power, energy) == (62.5, 41.5, 1_200_000.0)  # percent, W, mJ
    assert source == "otlp-metrics"
    log = rows(warehouse, "SELECT source, status, skipped FROM ingest_log")
    assert [(s, st) for s, st, _ in log] == [("otlp-http", "ok")]
    assert "non-GPU metric data points" in log[0][2]  # the process metric, counted
    provider.shutdown()  # one last collection and export
    receiver.flush()
    stats = receiver.stats
    assert (stats.requests, stats.accepted_gpu_samples, stats.loaded_gpu_samples) == (2, 2, 2)
    assert count(warehouse) == 2


def test_a_body_gives_the_rows_ingest_gpu_gives_for_it_in_a_file(
    start: Callable[..., Receiver],  # noqa: F811
    warehouse: Warehouse,
    tmp_path: Path,
) -> None:
    body = (CASES / "dcgm-via-prometheus-receiver.json").read_bytes()
    receiver = start(flush_interval_s=3600)
    status, headers, reply = post(
        receiver.port, "/v1/metrics", gzip.compress(body), {**JSON, "Content-Encoding": "gzip"}
    )
    assert (status, headers["content-type"], reply) == (200, "application/json", b"{}")
    receiver.flush()
    from_file = Warehouse(tmp_path / "file.duckdb")
    path = tmp_path / "request.json"
    path.write_bytes(body)
    assert main(["ingest", "gpu", str(path), "--warehouse", str(from_file.path)]) == 0
    assert gpu_rows(warehouse) == gpu_rows(from_file) and len(gpu_rows(warehouse)) == 2


def test_bad_points_are_a_partial_success_and_quarantined(
    start: Callable[..., Receiver],  # noqa: F811
    warehouse: Warehouse,
) -> None:
    receiver = start(flush_interval_s=3600)
    doc = json.loads((CASES / "dcgm-via-prometheus-receiver.json").read_text())
    points = doc["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][0]["gauge"]["dataPoints"]
    points.append({**points[0], "asDouble": "lots", "timeUnixNano": "1793000060000000000"})
    status, _, reply = post(receiver.port, "/v1/metrics", orjson.dumps(doc), JSON)
    assert status == 200
    partial = orjson.loads(reply)["partialSuccess"]
    assert partial["rejectedDataPoints"] == "1"
    assert "'lots' is not a number" in partial["errorMessage"]
    assert "quarantine" in partial["errorMessage"]
    receiver.flush()
    assert count(warehouse) == 2
    [(location, error)] = rows(warehouse, "SELECT location, error FROM quarantine")
    assert location.startswith("POST /v1/metrics from 127.0.0.1 at ") and "dataPoints[" in location
    assert "is not a number" in error
    # the same request in protobuf: the reply is an ExportMetricsServiceResponse
    status, _, reply = post(receiver.port, "/v1/metrics", b"", PROTO)
    assert status == 200 and not ExportMetricsServiceResponse.FromString(reply).HasField(
        "partial_success"
    )


def test_metrics_that_are_not_gpu_telemetry_are_answered_and_not_spooled(
    start: Callable[..., Receiver],  # noqa: F811
) -> None:
    receiver = start(flush_interval_s=3600)
    doc = {
        "resourceMetrics": [
            {
                "scopeMetrics": [
                    {
                        "metrics": [
                            {
                                "name": "http.server.request.duration",
                                "gauge": {"dataPoints": [{"timeUnixNano": "1", "asDouble": 1}]},
                            }
                        ]
                    }
                ]
            }
        ]
    }
    status, _, reply = post(receiver.port, "/v1/metrics", orjson.dumps(doc), JSON)
    assert status == 200
    partial = orjson.loads(reply)["partialSuccess"]
    assert partial["rejectedDataPoints"] == "0"
    assert "none of the 1 data points is GPU telemetry" in partial["errorMessage"]
    assert receiver.spool.backlog == 0


def test_wrong_bodies_on_the_metrics_path_are_400(
    start: Callable[..., Receiver],  # noqa: F811
) -> None:
    port = start(flush_interval_s=3600).port
    status, _, reply = post(port, "/v1/metrics", b'{"resourceSpans": []}', JSON)
    assert status == 400 and "send it to /v1/traces" in orjson.loads(reply)["message"]
    status, _, reply = post(port, "/v1/metrics", b"\xff\xfe not protobuf", PROTO)
    assert status == 400 and Status.FromString(reply).code == 3
    assert "not a valid OTLP protobuf metrics request" in Status.FromString(reply).message
    assert post(port, "/v1/metrics", b"[1, 2]", JSON)[0] == 400
    assert post(port, "/v1/metrics", b'{"resourceMetrics": 5}', JSON)[0] == 400


def test_mapped_rows_and_rows_parsed_from_disk_agree(
    start: Callable[..., Receiver],  # noqa: F811
    warehouse: Warehouse,
    tmp_path: Path,
) -> None:
    """A segment whose cache was dropped (over the bound) is read from the spool file."""
    body = (CASES / "openlit-hw.jsonl").read_bytes().splitlines()[0]
    cached = start(flush_interval_s=3600)
    assert post(cached.port, "/v1/metrics", body, JSON)[0] == 200
    cached.stop()
    on_disk = Warehouse(tmp_path / "disk.duckdb")
    receiver = Receiver(on_disk, cached.config, spool_dir=tmp_path / "disk", max_cached_bytes=0)
    receiver.start()
    try:
        assert post(receiver.port, "/v1/metrics", body, JSON)[0] == 200
    finally:
        receiver.stop()
    assert gpu_rows(on_disk) == gpu_rows(warehouse) and gpu_rows(warehouse)


def test_every_acknowledged_gpu_sample_survives_sigkill(tmp_path: Path) -> None:
    port = free_port()
    db = tmp_path / "w.duckdb"
    log = tmp_path / "server.log"
    template = json.loads((CASES / "dcgm-via-prometheus-receiver.json").read_text())
    acked: set[str] = set()
    proc = start_server(port, db, log)  # its loader flushes every 2 s, mid-way or not
    try:
        for i in range(40):  # one GPU, a new time each request
            doc = json.loads(json.dumps(template))
            gpu_uuid = f"GPU-{uuid.UUID(int=i)}"
            for metric in doc["resourceMetrics"][0]["scopeMetrics"][0]["metrics"]:
                for point in (metric.get("gauge") or metric["sum"])["dataPoints"]:
                    for attr in point["attributes"]:
                        if attr["key"] == "UUID":
                            attr["value"]["stringValue"] = gpu_uuid
            status, _, _ = post(port, "/v1/metrics", orjson.dumps(doc), JSON)
            assert status == 200
            acked.add(gpu_uuid)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        proc = start_server(port, db, log)  # loads the backlog first
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        stop_process(proc)
    loaded = {u for (u,) in rows(Warehouse(db), "SELECT DISTINCT gpu_uuid FROM gpu_samples")}
    assert loaded == acked, "an acknowledged request was lost"


def test_hostile_requests_are_answered_and_the_receiver_keeps_serving(
    start: Callable[..., Receiver],  # noqa: F811
    warehouse: Warehouse,
) -> None:
    """Each line of the bad-points case as a request: a 200 (partial or not) or a 400 with a
    sentence, never a 500; an SQL injection in a host name is stored as the text it is."""
    receiver = start(flush_interval_s=3600)
    statuses = []
    for line in (CASES / "bad-points.jsonl").read_bytes().splitlines():
        status, _, reply = post(receiver.port, "/v1/metrics", line, JSON)
        statuses.append(status)
        assert status in (200, 400), reply
        if status == 400:
            assert orjson.loads(reply)["message"]
    # good, truncated, not JSON, resourceMetrics a string, bad points, a traces line, repeat
    assert statuses == [200, 400, 400, 400, 200, 400, 200]
    receiver.flush()
    hosts = {h for (h,) in rows(warehouse, "SELECT DISTINCT host FROM gpu_samples")}
    assert any("DROP TABLE" in h or "'" in h for h in hosts), hosts
    assert rows(warehouse, "SELECT count(*) FROM quarantine")[0][0] > 0
    assert post(receiver.port, "/v1/metrics", b"", PROTO)[0] == 200

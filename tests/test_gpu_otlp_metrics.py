"""OTLP metrics as a GPU format: hw.* conventions, forwarded DCGM series, every framing."""

from __future__ import annotations

import gzip
import json
import random
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

import pytest
import zstandard
from google.protobuf.json_format import Parse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)

from ingest.contract import Unit
from ingest.gpu.collector import GpuCollector
from ingest.gpu.otlp_metrics import MAPPING, OtlpMetrics, mapping_markdown, readings_from_request
from ingest.gpu.readings import (
    ENERGY,
    FB_FREE,
    FB_USED,
    FIELDS,
    GR_ENGINE_ACTIVE,
    POWER,
    TEMP,
    UTIL,
    Parsed,
    ReadOptions,
)
from warehouse.config import Config

ROOT = Path(__file__).resolve().parents[1]
CASES = ROOT / "tests" / "cases" / "otlp-metrics"
T0 = datetime(2026, 10, 26, 7, 33, 20, tzinfo=UTC)
L4_A = "GPU-0b1f3c2a-0000-4000-8000-000000000001"
L4_B = "GPU-0b1f3c2a-0000-4000-8000-000000000002"
A100 = "GPU-5fb2a1c4-0000-4000-8000-00000000a100"
FORMAT = OtlpMetrics()


def _read(data: bytes, uri: str = "test") -> Parsed:
    return FORMAT.read(data, Unit(uri=uri, body=data), ReadOptions())


def _case(name: str) -> Parsed:
    data = (CASES / name).read_bytes()
    assert FORMAT.sniff(data[:4096]), name
    return _read(data, name)


def _by(parsed: Parsed) -> dict[tuple[str, str, datetime], dict[str, float]]:
    return {
        (r.labels["UUID"], r.labels.get("GPU_I_ID", ""), r.ts): r.fields for r in parsed.readings
    }


def test_openlit_hw_metrics_become_one_reading_per_gpu_and_time() -> None:
    parsed = _case("openlit-hw.jsonl")
    assert not parsed.rejected
    got = _by(parsed)
    t1 = T0.replace(minute=34)
    assert set(got) == {(L4_A, "", T0), (L4_B, "", T0), (L4_A, "", t1), (L4_B, "", t1)}
    first = got[(L4_A, "", T0)]
    assert first[UTIL] == pytest.approx(42.0)  # ratio 0.42 -> percent
    assert first[FB_USED] == 8192.0  # 8 GiB in bytes -> MiB
    assert first[FB_FREE] == 24 * 1024 - 8192.0  # limit - usage
    assert first[POWER] == 55.5
    # hw.energy is a delta sum: 3300 J, then 3360 J, accumulated into an mJ counter
    assert first[ENERGY] == 3_300_000.0
    assert got[(L4_A, "", t1)][ENERGY] == 3_300_000.0 + 3_360_000.0
    assert got[(L4_A, "", t1)][UTIL] == pytest.approx(52.0)
    reading = next(r for r in parsed.readings if r.labels["UUID"] == L4_A)
    assert reading.labels["Hostname"] == "edge-nuc-01"
    assert reading.labels["modelName"] == "NVIDIA L4"
    assert reading.labels["deployment.environment.name"] == "edge-berlin"
    assert "hw.gpu.task" not in reading.labels  # a metric's attribute, not the GPU's identity
    assert reading.location.startswith("line 1: resourceMetrics[0]")
    # the encoder utilization, the CPU's hw.power and the HTTP counter are skipped, counted
    assert parsed.skipped["hw.gpu.utilization of decoder/encoder tasks"] == 2
    assert parsed.skipped["hw.* data points of other hardware (hw.type not gpu)"] == 2
    assert parsed.skipped["non-GPU metric data points"] == 2


def test_dcgm_series_forwarded_by_the_prometheus_receiver_keep_their_labels() -> None:
    parsed = _case("dcgm-via-prometheus-receiver.json")
    assert not parsed.rejected
    got = _by(parsed)
    whole = got[(A100, "", T0)]
    assert whole == {
        UTIL: 87.0,
        FB_USED: 61234.0,
        FB_FREE: 20000.0,
        POWER: 312.25,
        ENERGY: 123456789012.0,  # a cumulative counter is kept as it is
        TEMP: 61.0,
        GR_ENGINE_ACTIVE: 0.81,
    }
    assert got[(A100, "1", T0)] == {GR_ENGINE_ACTIVE: 0.25}  # the MIG instance, apart
    gpu = next(r for r in parsed.readings if "GPU_I_ID" not in r.labels)
    assert gpu.labels["Hostname"] == "dcgm-exporter-7x2kq"
    assert gpu.labels["kubernetes_node"] == "fra-gpu-03"  # for gpu.node_label
    assert gpu.labels["pod"] == "llama-70b-5d9f8-abcde"
    assert gpu.labels["service.instance.id"] == "10.0.3.7:9400"
    # SM clock, memory temperature (not a reading field), scrape_duration_seconds and up
    assert parsed.skipped["non-GPU metric data points"] == 4


def test_the_official_metrics_example_is_skipped_with_a_count(fixtures_dir: Path) -> None:
    data = (fixtures_dir / "otlp" / "otlp-proto-example-metrics.json").read_bytes()
    assert FORMAT.sniff(data[:4096])
    parsed = _read(data)
    assert parsed.readings == [] and parsed.rejected == []
    # counter, gauge, histogram and exponential histogram: one data point each
    assert parsed.skipped == {"non-GPU metric data points": 4}


def test_bad_points_are_rejected_one_by_one_and_the_rest_reads() -> None:
    parsed = _case("bad-points.jsonl")
    uuids = sorted(r.labels["UUID"] for r in parsed.readings)
    assert uuids == ['GPU-"quoted"\nnewline\\escape', "GPU-good", "GPU-nan"]
    errors = {(r.location.split(":")[0], r.error.split(":")[0]) for r in parsed.rejected}
    assert ("line 2", "not JSON") in errors
    assert ("line 3", "not JSON") in errors
    assert ("line 4", "wrong schema") in errors
    messages = " | ".join(r.error for r in parsed.rejected)
    assert "timeUnixNano 0 is outside 2000-01-01..2100-01-01" in messages
    assert "is not an integer" in messages  # asInt of 400 digits
    assert "neither asDouble nor asInt" in messages
    assert "must be a gauge or a sum" in messages  # a histogram named hw.gpu.utilization
    assert "a metric without a name" in messages
    assert len(parsed.rejected) == 8
    nan = next(r for r in parsed.readings if r.labels["UUID"] == "GPU-nan")
    assert nan.fields[UTIL] != nan.fields[UTIL]  # NaN passes on: the samples builder nulls it
    hostile = next(r for r in parsed.readings if r.labels["UUID"] == "GPU-good")
    assert hostile.labels["Hostname"] == "bad-host'; DROP TABLE gpu_samples;--"  # kept as data
    assert parsed.skipped["data points with no recorded value"] == 1
    assert parsed.skipped["records without resourceMetrics"] == 1  # a traces line
    assert parsed.skipped["duplicate data points"] == 1  # the last line repeats the first


def _proto(name: str) -> bytes:
    text = (CASES / name).read_text(encoding="utf-8")
    return Parse(text, ExportMetricsServiceRequest()).SerializeToString()


def _proto_line(line: bytes) -> bytes:
    return Parse(line.decode(), ExportMetricsServiceRequest()).SerializeToString()


def _frame(payload: bytes) -> bytes:
    return len(payload).to_bytes(4, "big") + payload


@pytest.mark.parametrize(
    "wrap",
    [
        pytest.param(lambda b: b, id="protobuf"),
        pytest.param(_frame, id="length-prefixed"),
        pytest.param(lambda b: gzip.compress(_frame(b)), id="gzip-frames"),
        pytest.param(lambda b: zstandard.ZstdCompressor().compress(_frame(b)), id="zstd-frames"),
    ],
)
def test_protobuf_reads_the_same_as_json(wrap: object) -> None:
    assert callable(wrap)
    data = wrap(_proto("dcgm-via-prometheus-receiver.json"))
    assert FORMAT.sniff(data[:4096])
    parsed = _read(data)
    assert not parsed.rejected
    from_json = _case("dcgm-via-prometheus-receiver.json")
    assert _by(parsed) == _by(from_json)
    assert [r.labels for r in parsed.readings] == [r.labels for r in from_json.readings]
    assert parsed.skipped == from_json.skipped


def test_gzip_and_zstd_json_lines_are_opened() -> None:
    data = (CASES / "openlit-hw.jsonl").read_bytes()
    for packed in (gzip.compress(data), zstandard.ZstdCompressor().compress(data)):
        assert FORMAT.sniff(packed[:4096])
        assert _by(_read(packed)) == _by(_read(data))
    as_proto = _read(b"".join(_frame(_proto_line(line)) for line in data.splitlines()))
    assert _by(as_proto) == _by(_read(data)) and as_proto.skipped == _read(data).skipped


def test_sniff_refuses_other_inputs() -> None:
    traces = b'{"resourceSpans":[{"resource":{},"scopeSpans":[{"spans":[{"traceId":"5B8E"}]}]}]}'
    dcgm = b'# HELP DCGM_FI_DEV_GPU_UTIL GPU utilization (in %).\nDCGM_FI_DEV_GPU_UTIL{gpu="0"} 5\n'
    smi = b"timestamp, name, utilization.gpu [%]\n2026/07/14 08:12:53.353, NVIDIA H100, 100 %\n"
    for head in (traces, dcgm, smi, b"", b"\n# HELP x\n"):
        assert not FORMAT.sniff(head), head
    # a traces request in protobuf: a span's field 1 is a trace id, not a metric's name
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    span = Parse(
        json.dumps(
            {
                "resourceSpans": [
                    {
                        "resource": {},
                        "scopeSpans": [{"spans": [{"traceId": "", "spanId": "", "name": "x"}]}],
                    }
                ]
            }
        ),
        ExportTraceServiceRequest(),
    )
    span.resource_spans[0].scope_spans[0].spans[0].trace_id = bytes(range(0, 32, 2))
    assert not FORMAT.sniff(span.SerializeToString())


def test_a_truncated_protobuf_is_rejected_not_misread() -> None:
    whole = _proto("dcgm-via-prometheus-receiver.json")
    framed = _frame(whole)
    parsed = _read(framed[: len(framed) // 2])
    assert parsed.readings == []
    assert parsed.rejected and "incomplete record" in parsed.rejected[0].error
    parsed = _read(whole[: len(whole) // 2])  # an unframed message cut in half
    assert parsed.readings == []
    assert parsed.rejected[0].error.startswith("not an ExportMetricsServiceRequest")


def test_readings_from_request_takes_both_content_types() -> None:
    body = (CASES / "dcgm-via-prometheus-receiver.json").read_bytes()
    as_json = readings_from_request(body, "application/json; charset=utf-8")
    as_proto = readings_from_request(
        _proto("dcgm-via-prometheus-receiver.json"), "application/x-protobuf"
    )
    assert _by(as_json) == _by(as_proto)
    assert len(as_json.readings) == 2
    assert as_json.readings[0].location.startswith("request: resourceMetrics[0]")
    bad = readings_from_request(b"{not json", "application/json")
    assert bad.readings == [] and bad.rejected[0].location == "request"


def test_delta_energy_is_summed_in_time_order_and_skips_non_finite_deltas() -> None:
    def point(t: int, joules: object) -> dict[str, object]:
        return {
            "timeUnixNano": str(1_793_000_000_000_000_000 + t * 10**9),
            "asDouble": joules,
            "attributes": [
                {"key": "hw.id", "value": {"stringValue": "GPU-1"}},
                {"key": "hw.type", "value": {"stringValue": "gpu"}},
            ],
        }

    points = [point(20, 2.0), point(0, 1.0), point(10, "NaN"), point(30, 4.0)]  # out of order
    doc = {
        "resourceMetrics": [
            {
                "resource": {"attributes": [{"key": "host.name", "value": {"stringValue": "h"}}]},
                "scopeMetrics": [
                    {
                        "metrics": [
                            {
                                "name": "hw.energy",
                                "sum": {"aggregationTemporality": 1, "dataPoints": points},
                            }
                        ]
                    }
                ],
            }
        ]
    }
    parsed = _read(json.dumps(doc).encode())
    counter = [r.fields[ENERGY] for r in parsed.readings]
    assert counter == [1000.0, 3000.0, 7000.0]  # mJ, in time order
    assert parsed.skipped["delta data points that are NaN or infinite"] == 1


def test_the_mapping_covers_every_reading_field_once_and_the_docs_show_it() -> None:
    assert sorted(m.field for m in MAPPING) == sorted(FIELDS)
    docs = (ROOT / "docs" / "gpu-otlp.md").read_text(encoding="utf-8")
    assert mapping_markdown() in docs, (
        "docs/gpu-otlp.md is out of date: paste the output of "
        "`python -c 'from ingest.gpu.otlp_metrics import mapping_markdown as m; print(m())'`"
    )


def _noisy(copies: int) -> bytes:
    """The openlit case many times over with a random attribute per point and resource, so
    zstd's first block (128 KiB of input) compresses to more than the 4 KiB a plain sniff
    looks at: a 4 KiB head of such a file opens to nothing."""
    rng = random.Random(5)
    out = []
    for _ in range(copies):
        for line in (CASES / "openlit-hw.jsonl").read_bytes().splitlines():
            doc = json.loads(line)
            for rm in doc["resourceMetrics"]:
                rm["resource"]["attributes"].append(_noise(rng))
                for metric in (m for sm in rm["scopeMetrics"] for m in sm["metrics"]):
                    for kind in ("gauge", "sum"):
                        for point in metric.get(kind, {}).get("dataPoints", []):
                            point.setdefault("attributes", []).append(_noise(rng))
            out.append(json.dumps(doc).encode())
    return b"\n".join(out) + b"\n"


def _noise(rng: random.Random) -> dict[str, object]:
    return {"key": "test.noise", "value": {"stringValue": f"{rng.getrandbits(128):032x}"}}


def test_a_zstd_file_whose_first_block_is_past_the_sniff_head_is_read(tmp_path: Path) -> None:
    """Found by the demo: one day's file of one host was 'in none of the GPU formats'."""
    data = _noisy(40)
    packed = zstandard.ZstdCompressor().compress(data)
    assert zstandard.ZstdDecompressor().decompressobj().decompress(packed[:4096]) == b""
    path = tmp_path / "gpu.jsonl.zst"
    path.write_bytes(packed)
    collected = GpuCollector().collect(Unit(str(path), path=path), Config())
    assert collected.error is None, collected.error
    plain = tmp_path / "gpu.jsonl"
    plain.write_bytes(data)
    want = GpuCollector().collect(Unit(str(plain), path=plain), Config())
    assert collected.frames["gpu_samples"].num_rows == want.frames["gpu_samples"].num_rows > 0
    assert collected.frames["gpu_samples"].equals(want.frames["gpu_samples"])


def test_sniffing_a_zstd_bomb_opens_only_a_bounded_head() -> None:
    """A few KiB of RLE blocks stand for 256 MiB of zeros; the sniff opens 64 KiB of them."""
    compressor = zstandard.ZstdCompressor().compressobj()
    chunk = bytes(1 << 20)
    packed = b"".join(compressor.compress(chunk) for _ in range(256)) + compressor.flush()
    assert len(packed) < 1 << 18
    tracemalloc.start()
    try:
        assert not FORMAT.sniff(packed)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20, peak

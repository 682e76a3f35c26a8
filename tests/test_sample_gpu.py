"""The demo's GPU telemetry: the fleet's GPUs, a load that follows the traces, real formats."""

from __future__ import annotations

import csv
import itertools
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zstandard
from google.protobuf import json_format
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from prometheus_client.parser import text_string_to_metric_families

from sample_data.fleet import FLEET
from sample_data.gpu_inventory import STALE_JOB, inventory
from sample_data.gpu_load import clock, day_series
from sample_data.gpu_scenario import GpuWriter
from sample_data.ids import instance_id
from sample_data.incidents import INCIDENTS
from sample_data.plan import make_plan

END = datetime(2026, 11, 1, tzinfo=UTC)
DAYS = 3


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, GpuWriter]:
    out = tmp_path_factory.mktemp("gpu")
    writer = GpuWriter(out, make_plan(FLEET, INCIDENTS, DAYS, 7, 0.1, END))
    for day in range(DAYS):
        writer.day(day)
    return out, writer


def otlp_points(path: Path) -> list[tuple[dict[str, Any], str, dict[str, Any]]]:
    """(resource attributes, metric name, point) of every point of a GPU metrics file."""
    text = zstandard.ZstdDecompressor().decompress(path.read_bytes(), max_output_size=1 << 30)
    found = []
    for line in text.decode().splitlines():
        for rm in json.loads(line)["resourceMetrics"]:
            resource = {a["key"]: a["value"]["stringValue"] for a in rm["resource"]["attributes"]}
            for sm in rm["scopeMetrics"]:
                for metric in sm["metrics"]:
                    body = metric.get("gauge") or metric["sum"]
                    found += [(resource, metric["name"], p) for p in body["dataPoints"]]
    return found


@dataclass
class OtlpSummary:
    """What the tests read from every OTLP metrics file, gathered in one pass: decoding
    three days of them is most of this module's time."""

    names: dict[Path, set[str]] = field(default_factory=dict)  # metric names per file
    utilization_points: int = 0
    pod_utilization: dict[str, list[float]] = field(default_factory=dict)  # percent, by env
    energy: dict[str, list[tuple[int, float]]] = field(default_factory=dict)  # dc-frankfurt


@pytest.fixture(scope="module")
def otlp(written: tuple[Path, GpuWriter]) -> OtlpSummary:
    out, _ = written
    found = OtlpSummary()
    for path in sorted((out / "gpu").glob("*/*.jsonl.zst")):
        env = path.parent.name
        names = found.names.setdefault(path, set())
        for resource, name, point in otlp_points(path):
            names.add(name)
            if name == "hw.gpu.utilization":
                found.utilization_points += 1
                if resource.get("k8s.pod.name"):
                    util = point.get("asDouble", 0.0) * 100
                    found.pod_utilization.setdefault(env, []).append(util)
            elif name == "hw.energy" and env == "dc-frankfurt":
                uuid = next(a["value"]["stringValue"] for a in point["attributes"]
                            if a["key"] == "hw.id")  # fmt: skip
                found.energy.setdefault(uuid, []).append(
                    (int(point["timeUnixNano"]), point["asDouble"])
                )
    return found


def test_a_metrics_file_is_real_otlp_json(written: tuple[Path, GpuWriter]) -> None:
    out, _ = written
    path = min((out / "gpu" / "edge-munich").glob("*.jsonl.zst"))
    text = zstandard.ZstdDecompressor().decompress(path.read_bytes(), max_output_size=1 << 30)
    lines = text.decode().splitlines()
    assert len(lines) == 24  # one per hour
    request = json_format.Parse(lines[0], ExportMetricsServiceRequest())
    energy = next(
        m for m in request.resource_metrics[0].scope_metrics[0].metrics if m.name == "hw.energy"
    )
    assert energy.sum.is_monotonic and energy.sum.aggregation_temporality == 2  # cumulative
    assert len(energy.sum.data_points) == 12  # every 5 minutes


def test_aws_hosts_carry_the_instance_id_their_bill_names(written: tuple[Path, GpuWriter]) -> None:
    """As the Collector's ec2 detector sets it: the CUR bills `instance_id(host)` too."""
    out, _ = written
    ids: dict[str, set[str]] = {}
    for path in sorted((out / "gpu").glob("*/*.jsonl.zst")):
        for resource, _, _ in otlp_points(path):
            ids.setdefault(path.parent.name, set()).add(resource.get("host.id", ""))
            if path.parent.name == "aws-us-east-1":
                assert resource["host.id"] == instance_id(resource["host.name"])
    assert all(i.startswith("i-0") and len(i) == 19 for i in ids.pop("aws-us-east-1"))
    assert set().union(*ids.values()) == {""}  # no other site is on EC2


def test_every_pool_gpu_is_there_once_and_deployments_hold_theirs() -> None:
    gpus = inventory()
    assert Counter(g.pool for g in gpus) == {p.name: p.count for p in FLEET.pools}
    assert len({g.uuid for g in gpus}) == len(gpus) == 68
    held = Counter((g.env, g.deployment.model) for g in gpus if g.deployment)
    assert held == {(d.env, d.model): d.gpus for d in FLEET.deployments}
    # replicas sit on the hosts their spans name (sample_data.resources.host_of)
    llama = [g for g in gpus if g.deployment and g.pool == "fra-h100" and g.pod == "llama-0"]
    assert {g.host for g in llama} == {"fra-gpu-01"} and len(llama) == 4
    stale = [g for g in gpus if g.stale_days]
    assert [(g.pool, g.host, g.index, g.pod) for g in stale] == [
        ("fra-h100", "fra-gpu-06", 3, STALE_JOB[4])
    ]


def test_files_are_real_formats_and_count_as_the_summary_says(
    written: tuple[Path, GpuWriter], otlp: OtlpSummary
) -> None:
    out, writer = written
    counted = otlp.utilization_points
    assert otlp.names
    for names in otlp.names.values():
        assert names == {
            "hw.gpu.utilization",
            "hw.gpu.memory.usage",
            "hw.gpu.memory.limit",
            "hw.power",
            "hw.energy",
        }
    (smi,) = (out / "gpu" / "edge-munich" / "nvidia-smi").glob("*.csv")
    with smi.open(newline="") as f:
        rows = list(csv.reader(f, skipinitialspace=True))
    assert rows[0][5] == "utilization.gpu [%]" and rows[1][5].endswith(" %")
    counted += len(rows) - 1
    scrapes = sorted((out / "gpu" / "dc-frankfurt" / "dcgm").glob("*.prom"))
    assert len(scrapes) == 1440  # the last day, one a minute
    for path in scrapes[:3]:
        text = path.read_text()
        assert text.startswith("# scraped at ")
        families = {f.name: f for f in text_string_to_metric_families(text)}
        util = families["DCGM_FI_DEV_GPU_UTIL"].samples
        assert {s.labels["kubernetes_node"] for s in util} == {"fra-gpu-07"}
        assert all(s.timestamp is None for s in util)
        counted += len(util)
    counted += 4 * (len(scrapes) - 3)
    assert counted == writer.summary()["samples"]


def test_utilization_follows_the_site_and_the_incidents(otlp: OtlpSummary) -> None:
    util = otlp.pod_utilization
    means = {env: float(np.mean(v)) for env, v in util.items()}
    assert means["aws-us-east-1"] > means["dc-frankfurt"] + 10, means  # the cloud runs hot
    # on-prem capacity sits mostly idle at night: many busy-pod points below the 5% threshold
    assert np.mean(np.array(util["dc-frankfurt"]) < 5) > 0.2


def test_energy_counter_grows_except_at_the_reboot(otlp: OtlpSummary) -> None:
    assert otlp.energy
    drops = 0
    for points in otlp.energy.values():
        values = [v for _, v in sorted(points)]
        drops += sum(1 for a, b in itertools.pairwise(values) if b < a)
    assert drops == 0  # the reboot is 20 days before the end, outside these days


def test_the_reboot_resets_the_counter_once_at_noon() -> None:
    gpu = next(g for g in inventory() if g.host == "fra-gpu-03")
    state = clock(gpu, 7)
    before = state.energy_mj
    rates = np.full(1440, 2.0)
    day = day_series(gpu, "onprem", rates, 4.0, state, 10, 30)  # 20 days before the end
    energy = day.energy_mj
    drops = np.flatnonzero(np.diff(energy) < 0)
    assert drops.tolist() == [719]  # the minute after noon starts from zero
    assert energy[720] < energy[0] - before + 1e6 and energy[720] > 0
    assert np.all(np.diff(energy[720:]) > 0) and state.energy_mj == energy[-1]


def test_spin_polling_gpus_look_busy_with_idle_sms(written: tuple[Path, GpuWriter]) -> None:
    out, _ = written
    (scrape,) = (out / "gpu" / "dc-frankfurt" / "dcgm").glob("*T1000Z.prom")
    families = {f.name: f for f in text_string_to_metric_families(scrape.read_text())}

    def of(name: str) -> dict[str, float]:
        return {s.labels["UUID"]: s.value for s in families[name].samples
                if s.labels["namespace"] == "search"}  # fmt: skip

    util, sm = of("DCGM_FI_DEV_GPU_UTIL"), of("DCGM_FI_PROF_SM_ACTIVE")
    assert util and all(util[u] >= 90 and sm[u] < 0.1 for u in util), (util, sm)


def test_the_summary_is_json(written: tuple[Path, GpuWriter]) -> None:
    _, writer = written
    summary = json.loads(json.dumps(writer.summary()))
    assert summary["gpus"] == 68 and summary["samples"] > 68 * 288 * (DAYS - 1)

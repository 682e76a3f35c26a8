"""The one builder from readings to gpu_samples rows: placement, workload, MIG, bounds."""

from __future__ import annotations

import math
import tomllib
from datetime import UTC, datetime, timedelta

import pytest

from ingest.gpu.readings import (
    ENERGY,
    FB_USED,
    GR_ENGINE_ACTIVE,
    POWER,
    SM_ACTIVE,
    TEMP,
    UTIL,
    Reading,
    ReadOptions,
)
from ingest.gpu.samples import SCHEMA, mig_share, rows
from warehouse.config import Config, parse
from warehouse.db import Warehouse

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
T0 = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)

CONFIG = """
[gpu]
node_label = "kubernetes_node"
[[gpu.workloads]]
workload = "llama-70b"
namespace = "serving"
pod = "llama-70b-*"
[[gpu.workloads]]
workload = "batch-embed"
host = "edge-*"

[[environments]]
name = "onprem-fra"
kind = "onprem"
[[environments.gpu_pools]]
name = "h100-rack"
hosts = ["fra-gpu-*"]

[[environments]]
name = "aws-us-east-1"
match = [{ cluster = "eks-prod" }]
"""


def config(text: str = CONFIG) -> Config:
    return parse(tomllib.loads(text), "test.toml")


def reading(*, ts: datetime = T0, fields: dict[str, float] | None = None, **labels: str) -> Reading:
    base = {"gpu": "0", "UUID": "GPU-aaaa", "modelName": "NVIDIA H100 80GB HBM3"}
    base.update({"Hostname": "fra-gpu-01"} if "Hostname" not in labels else {})
    base.update(labels)
    return Reading(ts, base, fields if fields is not None else {UTIL: 42.0}, "line 1")


def build(*readings: Reading, cfg: Config | None = None, env: str = "") -> list[dict[str, object]]:
    table, rejected, _ = rows(readings, cfg or config(), ReadOptions(env), "dcgm", now=NOW)
    assert not rejected, rejected
    found: list[dict[str, object]] = table.to_pylist()
    return found


def test_the_columns_are_gpu_samples_without_load_id(warehouse: Warehouse) -> None:
    with warehouse.write() as con:
        stored = con.execute("SELECT * FROM gpu_samples LIMIT 0").description
    # in the table's order: columns a migration adds come after load_id
    assert SCHEMA.names == [c[0] for c in stored if c[0] != "load_id"]
    assert stored[SCHEMA.names.index("source") + 1][0] == "load_id"


def test_a_pool_host_glob_places_the_gpu_first() -> None:
    [row] = build(reading(cluster="eks-prod", environment="staging"))
    assert (row["environment"], row["pool"], row["host"]) == (
        "onprem-fra",
        "h100-rack",
        "fra-gpu-01",
    )
    assert row["utilization"] == 42.0 and row["gpu_share"] == 1.0 and row["mig_instance"] == ""
    assert row["gpu_index"] == 0 and row["gpu_model"] == "NVIDIA H100 80GB HBM3"
    assert row["source"] == "dcgm" and row["ts"] == T0


def test_then_match_rules_then_the_data_then_the_option_then_unknown() -> None:
    other = "ip-10-0-0-1"
    assert build(reading(cluster="eks-prod", Hostname=other))[0]["environment"] == "aws-us-east-1"
    assert (
        build(reading(environment="staging", Hostname=other), env="cli")[0]["environment"]
        == "staging"
    )
    [row] = build(reading(Hostname=other), env="cli")
    assert (row["environment"], row["pool"]) == ("cli", None)
    assert build(reading(Hostname=other))[0]["environment"] == "unknown"


def test_the_node_label_names_the_host_on_kubernetes() -> None:
    [row] = build(reading(Hostname="dcgm-exporter-x7f2k", kubernetes_node="fra-gpu-07"))
    assert (row["host"], row["pool"]) == ("fra-gpu-07", "h100-rack")
    # without the label the exporter's Hostname is all there is
    assert build(reading(Hostname="fra-gpu-02"))[0]["host"] == "fra-gpu-02"
    assert build(reading(Hostname="", hostname="fra-gpu-03"))[0]["host"] == "fra-gpu-03"


def test_the_hosts_cloud_id_is_kept_where_the_source_names_it() -> None:
    """An EC2 node is `ip-...` by name and `i-...` on the bill: the id is what matches."""
    host = "ip-10-0-1-23.ec2.internal"
    otlp = reading(Hostname=host, **{"host.id": "i-0abc1234567890def"})
    assert build(otlp)[0]["host_id"] == "i-0abc1234567890def"
    # the OTLP attribute first, then Prometheus' name for it, then EC2 discovery's relabel
    both = reading(Hostname=host, host_id="i-second", instance_id="i-third")
    assert build(both)[0]["host_id"] == "i-second"
    assert build(reading(Hostname=host, instance_id="i-third"))[0]["host_id"] == "i-third"
    [plain] = build(reading(Hostname=host, host_id=""))
    assert (plain["host"], plain["host_id"]) == (host, None)
    assert build(reading(instance_id="i" * 1000))[0]["host_id"] == "i" * 256


def test_workload_rules_then_the_pod_then_nothing() -> None:
    [ruled] = build(reading(namespace="serving", pod="llama-70b-5d9f", container="vllm"))
    assert (ruled["workload"], ruled["pod"], ruled["container"]) == (
        "llama-70b",
        "llama-70b-5d9f",
        "vllm",
    )
    [pod] = build(reading(namespace="ray", pod="ray-worker-1"))
    assert pod["workload"] == "ray-worker-1"
    [host] = build(reading(Hostname="edge-jetson-4"))
    assert host["workload"] == "batch-embed"
    [free] = build(reading(namespace="", pod="", container=""))
    assert (free["workload"], free["pod"], free["namespace"]) == (None, None, None)
    [old] = build(reading(pod_name="llama-70b-1", pod_namespace="serving"))
    assert old["workload"] == "llama-70b"


@pytest.mark.parametrize(
    ("profile", "model", "share"),
    [
        ("1g.10gb", "NVIDIA H100 80GB HBM3", 1 / 7),
        ("3g.40gb", "NVIDIA H100 80GB HBM3", 3 / 7),
        ("7g.80gb", "NVIDIA H100 80GB HBM3", 1.0),
        ("1g.10gb+me", "NVIDIA H100 80GB HBM3", 1 / 7),
        ("1c.3g.40gb", "NVIDIA A100-SXM4-80GB", 3 / 7),
        ("2g.12gb", "NVIDIA A30", 2 / 4),
        ("9g.90gb", "NVIDIA H100 80GB HBM3", None),
        ("full", None, None),
    ],
)
def test_mig_share_from_the_profile(profile: str, model: str | None, share: float | None) -> None:
    assert mig_share(profile, model) == share


def test_a_mig_instance_counts_its_share_and_its_engine_activity() -> None:
    fields = {UTIL: 0.0, GR_ENGINE_ACTIVE: 0.37, FB_USED: 5000.0}
    [row] = build(reading(fields=fields, GPU_I_PROFILE="1g.10gb", GPU_I_ID="9"))
    assert row["mig_instance"] == "9" and row["mig_profile"] == "1g.10gb"
    assert row["gpu_share"] == pytest.approx(1 / 7)
    assert row["utilization"] == pytest.approx(37.0) and row["gr_engine_active"] == 0.37


def test_a_mig_instance_without_a_usable_profile_is_rejected() -> None:
    cases = [reading(GPU_I_ID="3"), reading(GPU_I_ID="3", GPU_I_PROFILE="huge")]
    table, rejected, _ = rows(cases, config(), ReadOptions(), "dcgm", now=NOW)
    assert table.num_rows == 0
    assert "has no GPU_I_PROFILE" in rejected[0].error
    assert "is not a MIG profile" in rejected[1].error


@pytest.mark.parametrize(
    ("field", "value", "why"),
    [
        (UTIL, math.nan, "NaN or infinite values"),
        (POWER, math.inf, "NaN or infinite values"),
        (TEMP, -math.inf, "NaN or infinite values"),
        (TEMP, 9223372036854775794.0, "DCGM blank values (no reading)"),
        (ENERGY, 9.22e18, "DCGM blank values (no reading)"),
        (ENERGY, 1e308, "out-of-range values (DEV_TOTAL_ENERGY_CONSUMPTION)"),
        (POWER, float(2**47), "DCGM blank values (no reading)"),
        (UTIL, 2147483632.0, "DCGM blank values (no reading)"),
        (UTIL, 140.0, "out-of-range values (DEV_GPU_UTIL)"),
        (SM_ACTIVE, 3.0, "out-of-range values (PROF_SM_ACTIVE)"),
        (FB_USED, -1.0, "out-of-range values (DEV_FB_USED)"),
    ],
)
def test_values_that_are_no_measurement_become_null_and_are_counted(
    field: str, value: float, why: str
) -> None:
    r = reading(fields={field: value, FB_USED if field != FB_USED else UTIL: 10.0})
    table, rejected, counts = rows([r], config(), ReadOptions(), "dcgm", now=NOW)
    assert not rejected and counts[why] == 1
    [row] = table.to_pylist()
    column = dict(
        zip(
            (UTIL, POWER, TEMP, ENERGY, SM_ACTIVE, FB_USED),
            (
                "utilization",
                "power_w",
                "temperature_c",
                "energy_mj",
                "sm_active",
                "memory_used_mib",
            ),
            strict=True,
        )
    )[field]
    assert row[column] is None


def test_a_ratio_a_hair_over_one_is_one() -> None:
    [row] = build(reading(fields={SM_ACTIVE: 1.0000004}))
    assert row["sm_active"] == 1.0


def test_a_reading_with_nothing_usable_is_skipped_and_counted() -> None:
    table, rejected, counts = rows(
        [reading(fields={UTIL: math.nan})], config(), ReadOptions(), "dcgm", now=NOW
    )
    assert table.num_rows == 0 and not rejected
    assert counts["samples with no usable value"] == 1


def test_unkeyable_and_future_readings_are_rejected_with_a_sentence() -> None:
    no_uuid = Reading(T0, {"Hostname": "fra-gpu-01", "gpu": "0"}, {UTIL: 1.0}, "line 3")
    no_host = Reading(T0, {"UUID": "GPU-b", "gpu": "0"}, {UTIL: 1.0}, "line 4")
    future = reading(ts=NOW + timedelta(hours=25))
    naive = reading(ts=datetime(2026, 11, 30, 10, 0))
    near = reading(ts=NOW + timedelta(hours=23))
    table, rejected, _ = rows(
        [no_uuid, no_host, future, naive, near], config(), ReadOptions(), "dcgm", now=NOW
    )
    assert table.num_rows == 1  # 23 h ahead is within the default 24 h of skew
    errors = {r.location: r.error for r in rejected}
    assert "no UUID label" in errors["line 3"]
    assert "no host label (kubernetes_node, Hostname or hostname)" in errors["line 4"]
    assert [r.error for r in rejected if "past the time of ingest" in r.error]
    assert [r.error for r in rejected if "no time zone" in r.error]
    assert all(r.excerpt for r in rejected)


def test_hostile_label_values_are_kept_as_text_and_bounded() -> None:
    evil = 'x\'); DROP TABLE gpu_samples; --\n"quoted"\\'
    [row] = build(reading(pod=evil, namespace="ns\nline", Hostname="h" * 10_000))
    assert row["pod"] == evil and row["workload"] == evil and row["namespace"] == "ns\nline"
    assert row["host"] == "h" * 256
    assert build(reading(gpu="99999999999"))[0]["gpu_index"] is None


def test_out_of_order_and_duplicate_readings_all_become_rows() -> None:
    # dedupe is the table's merge spec (publish), not the builder's
    a, b = reading(ts=T0 + timedelta(seconds=30)), reading(ts=T0)
    assert [r["ts"] for r in build(a, b, a)] == [a.ts, b.ts, a.ts]

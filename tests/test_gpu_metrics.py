"""The GPU keys of `metrics`: per environment and fleet, null where they do not apply, a row
for an environment with GPU samples but no requests, and the cost model's join point null.

GPU samples go in through the real write path (`test_gpu_rollups.publish_samples`), spans
through the real trace ingest.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from otlp_factory import NS, SpanSpec, jsonl, traces_request
from test_gpu_rollups import T0, every, publish_samples, sample

from hybridlens.cli import main
from ingest.traces import ingest_paths
from warehouse.config import Config, parse
from warehouse.db import Warehouse
from warehouse.gpu_metrics import GPU_COLUMNS, unmonitored_by_pool
from warehouse.metrics import METRIC_COLUMNS, metrics

MINUTE = timedelta(minutes=1)


def requests_in(warehouse: Warehouse, folder: Path, environment: str, n: int) -> None:
    start = int(T0.timestamp()) * NS
    spans = [
        SpanSpec(start_ns=start + i * 60 * NS, attributes={"gen_ai.request.model": "llama"})
        for i in range(n)
    ]
    resource = {"service.name": "chat", "deployment.environment.name": environment}
    path = folder / f"{environment}.jsonl"
    path.write_bytes(jsonl(traces_request(resource, spans)))
    assert ingest_paths(warehouse, [path], Config()).ok


@pytest.fixture
def fleet(warehouse: Warehouse, tmp_path: Path) -> Warehouse:
    """onprem-fra: requests and GPUs; edge-muc: GPUs only; aws-us: requests only."""
    requests_in(warehouse, tmp_path, "onprem-fra", 5)
    requests_in(warehouse, tmp_path, "aws-us", 3)
    # GPU-0 busy for an hour at uneven steps: 30 samples at 90% over 10:00-10:30, then 3 at
    # 0% over 10:30-11:00 (10 minutes apart, each capped at 5): the sample mean is 30*90/33,
    # the time-weighted one (30 min at 90, 15 at 0) 60
    busy = every(T0, MINUTE, 30, utilization=90.0, power_w=600.0, workload="llama")
    busy += every(T0 + 30 * MINUTE, 10 * MINUTE, 3, utilization=0.0, power_w=600.0)
    # GPU-1 held by a finished workload, idle, for two hours; energy from its counter
    held = [
        sample(
            T0 + i * MINUTE,
            gpu_uuid="GPU-1",
            utilization=0.0,
            workload="finished-job",
            energy_mj=1e9 + i * 6e6,
        )
        for i in range(120)
    ]
    # an edge GPU nobody holds, idle, one hour
    edge = every(
        T0,
        MINUTE,
        60,
        environment="edge-muc",
        pool=None,
        host="edge-07",
        gpu_uuid="GPU-e",
        utilization=1.0,
        power_w=60.0,
    )
    publish_samples(warehouse, busy + held + edge)
    return warehouse


def rows(frame: Any, key: str = "environment") -> dict[str, dict[str, Any]]:
    return {r[key]: r for r in frame.iter_rows(named=True)}


def test_per_environment_figures(fleet: Warehouse) -> None:
    got = rows(metrics(fleet, Config(), by=("environment",)))
    assert set(got) == {"onprem-fra", "edge-muc", "aws-us"}
    fra, edge, aws = got["onprem-fra"], got["edge-muc"], got["aws-us"]
    assert fra["requests"] == 5
    assert fra["gpu_util_mean"] == pytest.approx((30 * 90 + 123 * 0) / 153)
    # GPU-0: 30 + 15 minutes; GPU-1: 119 one-minute steps + its last sample's 5
    assert fra["gpu_hours"] == pytest.approx((45 + 124) / 60)
    assert fra["idle_held_gpu_hours"] == pytest.approx(124 / 60)
    assert fra["idle_free_gpu_hours"] == 0.0
    # GPU-0: 600 W for 45 minutes; GPU-1: 6e6 mJ a minute for 119 minutes, then 5 minutes
    # with neither a next counter value nor power: unknown, not zero
    assert fra["energy_kwh"] == pytest.approx(0.6 * 0.75 + 119 * 6e6 / 3.6e9)
    # a row although it served no requests; its idle hours are free (nothing holds it)
    assert edge["requests"] == 0 and edge["availability"] is None and edge["accuracy_n"] == 0
    assert edge["gpu_hours"] == pytest.approx(64 / 60)
    assert edge["idle_free_gpu_hours"] == pytest.approx(64 / 60)
    assert edge["energy_kwh"] == pytest.approx(0.06 * 64 / 60)
    # no GPU samples: the keys do not apply
    assert all(aws[c] is None for c in GPU_COLUMNS)
    # the cost model has not written a modelled cost: its join point leaves these null
    assert all(r["co2e_kg"] is None and r["cost_per_gpu_hour"] is None for r in got.values())


def test_model_rows_carry_no_gpu_figures_and_a_gpu_only_environment_keeps_a_row(
    fleet: Warehouse,
) -> None:
    frame = metrics(fleet, Config(), by=("environment", "model"))
    assert frame.columns == ["environment", "model", *METRIC_COLUMNS]
    by_env = {(r["environment"], r["model"]): r for r in frame.iter_rows(named=True)}
    assert set(by_env) == {("aws-us", "llama"), ("edge-muc", None), ("onprem-fra", "llama")}
    assert all(by_env["onprem-fra", "llama"][c] is None for c in GPU_COLUMNS)
    assert by_env["edge-muc", None]["gpu_hours"] == pytest.approx(64 / 60)
    by_model = metrics(fleet, Config(), by=("model",))
    assert by_model["model"].to_list() == ["llama"]
    assert by_model["gpu_hours"].to_list() == [None]
    filtered = rows(metrics(fleet, Config(), by=("environment",), models=["llama"]))
    assert set(filtered) == {"onprem-fra", "aws-us"}  # GPU time is not yet any model's
    assert filtered["onprem-fra"]["gpu_hours"] is None


def test_fleet_totals_and_filters(fleet: Warehouse) -> None:
    (total,) = metrics(fleet, Config(), by=()).iter_rows(named=True)
    assert total["requests"] == 8
    assert total["gpu_hours"] == pytest.approx((45 + 124 + 64) / 60)
    assert total["gpu_util_mean"] == pytest.approx((30 * 90 + 60 * 1) / 213)
    only_edge = metrics(fleet, Config(), by=(), environments=["edge-muc"])
    assert only_edge["requests"].to_list() == [0]
    assert only_edge["gpu_hours"].to_list() == [pytest.approx(64 / 60)]
    # whole hours [11:00, 12:00): GPU-1's second hour, and the 4 minutes the edge GPU's 10:59
    # sample runs into 11
    later = rows(
        metrics(fleet, Config(), start=T0 + 60 * MINUTE, end=T0 + 120 * MINUTE, by=("environment",))
    )
    assert set(later) == {"onprem-fra", "edge-muc"}
    assert later["onprem-fra"]["gpu_hours"] == pytest.approx(1.0)
    assert later["onprem-fra"]["gpu_util_mean"] == pytest.approx(0.0)
    assert later["edge-muc"]["gpu_hours"] == pytest.approx(4 / 60)
    assert later["edge-muc"]["gpu_util_mean"] is None  # no sample in the hour itself


def test_no_gpu_samples_adds_null_keys_only(warehouse: Warehouse, tmp_path: Path) -> None:
    requests_in(warehouse, tmp_path, "aws-us", 2)
    frame = metrics(warehouse, Config(), by=("environment", "model", "version"))
    assert frame.height == 1
    assert frame.select(GPU_COLUMNS).null_count().row(0) == (1,) * len(GPU_COLUMNS)
    assert metrics(warehouse, Config(), by=())["gpu_hours"].to_list() == [None]


def test_the_command_prints_the_keys(fleet: Warehouse, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["metrics", "--warehouse", str(fleet.path), "--by", "environment", "--format", "json"]
    )
    assert code == 0
    printed = {r["environment"]: r for r in json.loads(capsys.readouterr().out)}
    assert printed["edge-muc"]["gpu_hours"] == pytest.approx(64 / 60)
    assert printed["aws-us"]["gpu_util_mean"] is None and "cost_per_gpu_hour" in printed["aws-us"]


def test_unmonitored_hours_of_a_configured_pool(fleet: Warehouse) -> None:
    config = parse(
        {
            "environments": [
                {"name": "onprem-fra", "gpu_pools": [{"name": "h100", "count": 4}]},
                {"name": "edge-muc", "gpu_pools": [{"name": "l4", "count": 2}, {"name": "x"}]},
            ]
        },
        "test",
    )
    got = unmonitored_by_pool(fleet, config, T0, T0 + 120 * MINUTE)
    pools = {(r["environment"], r["pool"]): r for r in got.iter_rows(named=True)}
    assert set(pools) == {("onprem-fra", "h100"), ("edge-muc", "l4")}  # `x`: count not stated
    h100 = pools["onprem-fra", "h100"]
    assert h100["capacity_gpu_hours"] == 8.0
    assert h100["monitored_gpu_hours"] == pytest.approx((45 + 120) / 60)
    assert h100["unmonitored_gpu_hours"] == pytest.approx(8 - (45 + 120) / 60)
    # the edge samples carry no pool: none of the l4 pool's hours were monitored
    assert pools["edge-muc", "l4"]["unmonitored_gpu_hours"] == 4.0

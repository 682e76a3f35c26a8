"""A GPU that Kubernetes time-slices between pods: dcgm-exporter writes its series once per
pod, with the same values. It is one row per sample, its time in equal parts to every
workload that holds it, in the rollup, the allocation and the unit costs alike."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from test_allocation import ENV, allocation, bill, load, totals
from test_export_focus import rows as sql_rows
from test_ingest_gpu_samples import NOW, build, config, reading

from hybridlens.ingest_gpu import GpuInput, ingest_gpu
from ingest.gpu.readings import FB_USED, UTIL, ReadOptions
from ingest.gpu.samples import rows
from ingest.gpu.shared_gpus import MAX_SHARED_WORKLOADS
from warehouse import gpu_reads
from warehouse.allocation_reads import daily_unit_costs
from warehouse.config import Config
from warehouse.db import Warehouse

T0 = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)


def exposition(at: datetime) -> str:
    """One scrape: GPU-0 time-sliced between a llama and a bge pod, GPU-1 llama's alone."""
    ms = int(at.timestamp() * 1000)
    gpu0 = 'gpu="0",UUID="GPU-0",Hostname="node-1",modelName="NVIDIA H100 80GB HBM3"'
    gpu1 = 'gpu="1",UUID="GPU-1",Hostname="node-1",modelName="NVIDIA H100 80GB HBM3"'
    lines = ["# TYPE DCGM_FI_DEV_GPU_UTIL gauge"]
    for labels, util in (
        (f'{gpu0},namespace="serving",pod="llama-0"', 80),
        (f'{gpu0},namespace="search",pod="bge-0"', 80),  # the same GPU, the same value
        (f'{gpu1},namespace="serving",pod="llama-1"', 60),
    ):
        lines.append(f"DCGM_FI_DEV_GPU_UTIL{{{labels}}} {util} {ms}")
    return "\n".join(lines) + "\n"


def test_a_time_sliced_gpu_is_one_row_listing_its_workloads(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    for minute in range(0, 60, 15):  # an hour of scrapes, 15 minutes apart
        at = T0 + timedelta(minutes=minute)
        (tmp_path / f"scrape-{minute:02d}.prom").write_text(exposition(at))
    done = ingest_gpu(warehouse, [GpuInput(str(tmp_path))], Config())
    assert done.report.ok and done.report.rows("gpu_samples") == 8
    assert "duplicate series in one scrape" not in done.report.skipped
    samples = sql_rows(
        warehouse,
        """SELECT gpu_uuid, workload, workloads, utilization
        FROM gpu_samples WHERE ts = '2026-11-30 10:00:00+00' ORDER BY gpu_uuid""",
    )
    # the first pod's series names `workload`, as before; `workloads` lists them all
    assert samples == [("GPU-0", "llama-0", ["bge-0", "llama-0"], 80.0),
                       ("GPU-1", "llama-1", None, 60.0)]  # fmt: skip
    hour = sql_rows(warehouse, "SELECT gpu_uuid, workload, workloads, gpu_hours, state "
                              "FROM rollup_gpu_hours ORDER BY gpu_uuid")  # fmt: skip
    h = hour[1][3]  # the samples' time, as the gap cap counts it
    assert h > 0 and hour == [("GPU-0", "llama-0", ["bge-0", "llama-0"], h, "busy"),
                              ("GPU-1", "llama-1", None, h, "busy")]  # fmt: skip
    held = sql_rows(warehouse, "SELECT workload, sum(gpu_hours) FROM workload_gpu_hours() "
                              "GROUP BY ALL ORDER BY ALL")  # fmt: skip
    assert held == [("bge-0", h / 2), ("llama-0", h / 2), ("llama-1", h)]
    # the GPUs page says who holds it
    fleet = gpu_reads.fleet(warehouse, T0, T0 + timedelta(hours=1))
    assert fleet.sort("gpu_uuid")["workload"].to_list() == ["bge-0, llama-0", "llama-1"]


def test_another_source_s_per_pod_readings_fold_into_one_row_the_same_pod_twice_does_not() -> None:
    """The Prometheus API gives each pod's series a reading of its own: the builder folds
    them into the GPU's row. A second reading of the same workload is a duplicate, a row
    that the publish dedupes as it always did."""
    llama = reading(namespace="serving", pod="llama-70b-0")  # the config names it llama-70b
    bge = reading(namespace="search", pod="bge-0")
    got = build(llama, bge, llama, reading(UUID="GPU-bbbb", pod="bge-1"))
    assert [(r["gpu_uuid"], r["workload"], r["workloads"]) for r in got] == [
        ("GPU-aaaa", "llama-70b", ["bge-0", "llama-70b"]),
        ("GPU-aaaa", "llama-70b", ["bge-0", "llama-70b"]),  # the duplicate
        ("GPU-bbbb", "bge-1", None),
    ]
    # two pods of one workload share a GPU without splitting it: a duplicate again
    same = build(reading(namespace="serving", pod="llama-70b-0"),
                 reading(namespace="serving", pod="llama-70b-1"))  # fmt: skip
    assert [(r["workload"], r["workloads"]) for r in same] == [("llama-70b", None)] * 2


def _shared_hour(wh: Warehouse, day: int, hours: float, workloads: list[str] | None) -> None:
    with wh.write() as con:
        con.execute(
            "INSERT INTO rollup_gpu_hours (hour, environment, pool, host, gpu_uuid, "
            "mig_instance, gpu_share, workload, samples, gpu_hours, state, workloads) VALUES "
            "(make_timestamptz(2026, 10, ?, 5, 0, 0, 'UTC'), ?, 'p', 'h', ?, '', 1, ?, 60, ?, "
            "'busy', ?)",
            [day, ENV, f"GPU-{len(workloads or [])}", (workloads or ["m1"])[0], hours, workloads],
        )


def test_the_allocation_splits_a_shared_gpu_s_hours_between_its_workloads(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    """m1 holds one GPU alone for 1 h and shares another with m2 for 2 h: m1 held 2 h and
    m2 1 h, so the day's 3.00 of environment cost splits 2.00 and 1.00 (before, all to m1,
    the shared GPU's first pod)."""
    _shared_hour(warehouse, 2, 1.0, None)
    _shared_hour(warehouse, 2, 2.0, ["m1", "m2"])
    load(warehouse, bill(tmp_path / "b.csv", [{"day": 2, "cost": "3.00",
                                              "tags": {"environment": ENV}}]))  # fmt: skip
    got = allocation(warehouse)
    d2 = date(2026, 10, 2)
    assert got[(d2, ENV, "m1", "gpu-seconds")] == Decimal("2")
    assert got[(d2, ENV, "m2", "gpu-seconds")] == Decimal("1")
    assert totals(warehouse) == (Decimal("3"), Decimal("3"))
    start = datetime(2026, 10, 2, tzinfo=UTC)
    unit = daily_unit_costs(warehouse, Config(), start, start + timedelta(days=1))
    by_model = unit.sort("model").select("model", "gpu_hours", "cost_per_gpu_hour").rows()
    assert by_model == [("m1", 2.0, 1.0), ("m2", 1.0, 1.0)]


def test_a_thousand_pods_on_one_gpu_list_the_first_64_and_count_the_rest() -> None:
    pods = [reading(namespace="x", pod=f"p-{i:04d}") for i in range(1000)]
    table, rejected, counts = rows(pods, config(), ReadOptions(), "dcgm", now=NOW)
    assert not rejected and table.num_rows == 1
    assert len(table.column("workloads")[0].as_py()) == MAX_SHARED_WORKLOADS == 64
    assert counts["workloads past 64 on one time-sliced GPU"] == 1000 - 64


@pytest.mark.parametrize("pod_first", [True, False])
def test_a_series_without_the_pod_s_labels_still_fills_the_gpu_s_row(pod_first: bool) -> None:
    """With the pod's labels in the DCGM reader's identity, a GPU whose series do not all
    carry them is two readings at one time: one row, with the values of both and the pod."""
    held = reading(namespace="search", pod="bge-0", fields={UTIL: 42.0})
    bare = reading(fields={FB_USED: 1024.0})
    got = build(*((held, bare) if pod_first else (bare, held)))
    assert [(r["workload"], r["pod"], r["workloads"], r["utilization"], r["memory_used_mib"])
            for r in got] == [("bge-0", "bge-0", None, 42.0, 1024.0)]  # fmt: skip

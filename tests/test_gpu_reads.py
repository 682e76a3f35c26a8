"""The GPU page's reads over rollup_gpu_hours: hours by state, idle streaks, energy per day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from warehouse import gpu_reads
from warehouse.db import Warehouse

T0 = datetime(2026, 11, 20, tzinfo=UTC)


def rollup(wh: Warehouse, rows: list[tuple[object, ...]]) -> None:
    """(hour offset, environment, host, uuid, workload, util, sm, energy Wh, state) rows."""
    with wh.write() as con:
        for h, env, host, uuid, workload, util, sm, wh_, state in rows:
            con.execute(
                "INSERT INTO rollup_gpu_hours VALUES "
                "(?, ?, 'pool-a', ?, ?, '', 'NVIDIA H100', 1.0, ?, 12, 1.0, ?, ?, ?, 1000, 79000, "
                "300, ?, ?, NULL, NULL)",
                [T0 + timedelta(hours=h), env, host, uuid, workload, util, util, sm, wh_, state],
            )


@pytest.fixture
def wh(tmp_path: Path) -> Warehouse:
    wh = Warehouse(tmp_path / "w.duckdb")
    rows: list[tuple[object, ...]] = []
    for h in range(48):
        busy = h < 30  # busy for 30 hours, then held idle by its workload
        rows.append((h, "dc", "h1", "GPU-a", "llama", 60.0 if busy else 1.0, 0.5, 400.0,
                     "busy" if busy else "idle-held"))  # fmt: skip
        rows.append((h, "dc", "h1", "GPU-b", None, 0.0, 0.0, 70.0, "idle-free"))
        rows.append((h, "cloud", "c1", "GPU-c", "bge", 96.0, 0.05, 650.0, "busy"))
    rollup(wh, rows)
    return wh


def test_fleet_counts_hours_by_state_and_the_current_idle_streak(wh: Warehouse) -> None:
    fleet = gpu_reads.fleet(wh, T0, T0 + timedelta(days=2)).sort("gpu_uuid")
    a, b, c = fleet.rows(named=True)
    assert (a["busy_gpu_hours"], a["idle_held_gpu_hours"], a["idle_free_gpu_hours"]) == (30, 18, 0)
    assert a["idle_streak_hours"] == 18 and a["workload"] == "llama"
    assert b["idle_streak_hours"] == 48 and b["workload"] is None and b["last_busy"] is None
    assert c["idle_streak_hours"] == 0
    assert a["util_mean"] == pytest.approx((30 * 60 + 18 * 1) / 48)
    assert c["energy_wh"] == pytest.approx(48 * 650)


def test_environment_filter_and_daily_energy(wh: Warehouse) -> None:
    daily = gpu_reads.daily(wh, T0, T0 + timedelta(days=2), ["dc"])
    assert daily["environment"].unique().to_list() == ["dc"]
    assert daily["energy_kwh"].to_list() == pytest.approx([24 * 470 / 1000] * 2)
    assert daily["gpu_hours"].sum() == 96


def test_utilization_per_day_weights_by_gpu_hours(wh: Warehouse) -> None:
    util = gpu_reads.utilization(wh, T0, T0 + timedelta(days=2), grain="day")
    first = util.filter(util["gpu_uuid"] == "GPU-a").sort("period")["util_mean"].to_list()
    assert first == pytest.approx([60.0, (6 * 60 + 18 * 1) / 24])
    with pytest.raises(ValueError, match="grain"):
        gpu_reads.utilization(wh, T0, T0, grain="minute")

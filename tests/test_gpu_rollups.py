"""rollup_gpu_hours as the after-publish hook keeps it: hand-computed hours, settings
changes and hostile readings (random fleets and arrival orders: test_gpu_rollups_oracle.py).

Samples go in through the real write path (a `Stage`, `publish`), so the hook, the merge
dedupe and the stored config are the ones a collector's load meets.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pytest

from ingest.gpu.samples import SCHEMA
from warehouse.db import Warehouse
from warehouse.gpu_rollups import affected_ranges, rebuild_gpu_hours
from warehouse.load import store_config
from warehouse.publish import publish
from warehouse.report import InputReport, LoadReport
from warehouse.stage import Stage

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)

ROLLUP_COLUMNS = (
    "hour, environment, pool, host, gpu_uuid, mig_instance, gpu_model, gpu_share, workload, "
    "samples, gpu_hours, util_mean, util_max, sm_active_mean, memory_used_mib_mean, "
    "memory_headroom_mib_min, power_w_mean, energy_wh, state"
)
KEY = ("host", "gpu_uuid", "mig_instance")


def sample(ts: datetime, **values: Any) -> dict[str, Any]:
    """One gpu_samples row (as a collector stages it), a whole idle-free GPU by default."""
    row: dict[str, Any] = {f.name: None for f in SCHEMA}
    row |= {
        "ts": ts,
        "environment": "onprem-fra",
        "pool": "h100",
        "host": "fra-gpu-01",
        "gpu_uuid": "GPU-0",
        "gpu_index": 0,
        "mig_instance": "",
        "gpu_share": 1.0,
        "gpu_model": "NVIDIA H100 80GB HBM3",
        "source": "test",
    }
    return row | values


def every(start: datetime, step: timedelta, n: int, **values: Any) -> list[dict[str, Any]]:
    return [sample(start + i * step, **values) for i in range(n)]


def publish_samples(
    warehouse: Warehouse, rows: list[dict[str, Any]], uri: str = "samples"
) -> LoadReport:
    stage = Stage()
    stage.add("gpu_samples", pa.Table.from_pylist(rows, SCHEMA), stage.begin(InputReport(uri)))
    return publish(warehouse, stage, source="gpu")


def use_config(warehouse: Warehouse, gpu: dict[str, Any]) -> None:
    store_config(warehouse, "test", json.dumps({"gpu": gpu}))


def rollup(warehouse: Warehouse) -> list[dict[str, Any]]:
    with warehouse.read() as con:
        cur = con.execute(
            f"SELECT {ROLLUP_COLUMNS} FROM rollup_gpu_hours "
            "ORDER BY hour, host, gpu_uuid, mig_instance, environment"
        )
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def assert_same_rollup(got: list[dict[str, Any]], want: list[dict[str, Any]]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g.keys() == w.keys()
        for name in g:
            if isinstance(w[name], float) and g[name] is not None:
                assert g[name] == pytest.approx(w[name], rel=1e-9, abs=1e-9), (name, g, w)
            else:
                assert g[name] == w[name], (name, g, w)


# -- hand-computed hours (docs/gpu-hours.md works the same example) ---------------------
def worked_example() -> list[dict[str, Any]]:
    """One GPU: 10:55, 10:58, 11:01, then a 19-minute gap, 11:20, 11:30 and silence."""
    at = T0.replace(minute=0)
    llama = "llama-70b"
    return [
        sample(
            at + timedelta(minutes=55),
            utilization=60.0,
            power_w=300.0,
            energy_mj=1.0e9,
            workload=llama,
            memory_used_mib=40000.0,
            memory_free_mib=41000.0,
        ),
        sample(
            at + timedelta(minutes=58),
            utilization=0.0,
            power_w=100.0,
            energy_mj=1.054e9,
            workload=llama,
            memory_used_mib=20000.0,
            memory_free_mib=61000.0,
        ),
        # the counter was reset: 18e6 mJ since, counted from zero
        sample(at + timedelta(minutes=61), utilization=2.0, power_w=120.0, energy_mj=18.0e6),
        sample(
            at + timedelta(minutes=80),
            utilization=3.0,
            power_w=90.0,
            energy_mj=400.0e6,
            workload=llama,
        ),
        sample(at + timedelta(minutes=90), utilization=4.0, power_w=80.0, workload=llama),
    ]


def test_the_worked_example_by_hand(warehouse: Warehouse) -> None:
    publish_samples(warehouse, worked_example())
    ten, eleven = rollup(warehouse)
    assert ten["hour"] == T0 and eleven["hour"] == T0 + timedelta(hours=1)
    # 10:55-10:58 and 10:58-11:00: five minutes, the 10:58 sample's last minute is 11's
    assert ten["samples"] == 2 and ten["gpu_hours"] == pytest.approx(5 / 60)
    assert ten["util_mean"] == pytest.approx((60 * 3 + 0 * 2) / 5)
    assert ten["util_max"] == 60.0 and ten["state"] == "busy" and ten["workload"] == "llama-70b"
    assert ten["power_w_mean"] == pytest.approx((300 * 3 + 100 * 2) / 5)
    assert ten["memory_used_mib_mean"] == pytest.approx((40000 * 3 + 20000 * 2) / 5)
    assert ten["memory_headroom_mib_min"] == 41000.0
    # counter: 54e6 mJ = 15 Wh over 10:55-10:58; the reset's 18e6 mJ = 5 Wh over 10:58-11:01,
    # two thirds of it before 11:00
    assert ten["energy_wh"] == pytest.approx(15 + 5 * 2 / 3)
    # 11:00-11:01 (the 10:58 sample), 11:01-11:06 (capped: the next is 19 minutes on),
    # 11:20-11:25 (capped), 11:30-11:35 (the last sample): 16 minutes
    assert eleven["samples"] == 3 and eleven["gpu_hours"] == pytest.approx(16 / 60)
    assert eleven["util_mean"] == pytest.approx((0 * 1 + 2 * 5 + 3 * 5 + 4 * 5) / 16)
    assert eleven["util_max"] == 4.0
    # llama-70b held it 1 + 5 + 5 minutes, nothing 5: idle, and held
    assert eleven["workload"] == "llama-70b" and eleven["state"] == "idle-held"
    assert eleven["power_w_mean"] == pytest.approx((100 * 1 + 120 * 5 + 90 * 5 + 80 * 5) / 16)
    # past the cap the counter's increase cannot be placed: integrated power instead,
    # 120 W, 90 W and 80 W for 5 minutes each
    assert eleven["energy_wh"] == pytest.approx(5 / 3 + (120 + 90 + 80) * 300 / 3600)
    assert eleven["sm_active_mean"] is None


def test_a_mig_instance_counts_its_share_and_a_sample_on_the_hour_belongs_to_it(
    warehouse: Warehouse,
) -> None:
    step = timedelta(seconds=15)
    rows = every(
        T0,
        step,
        241,
        mig_instance="3",
        mig_profile="1g.10gb",
        gpu_share=1 / 7,
        utilization=40.0,
        gr_engine_active=0.4,
    )
    publish_samples(warehouse, rows)
    ten, eleven = rollup(warehouse)
    assert ten["samples"] == 240 and ten["gpu_hours"] == pytest.approx(1 / 7)
    assert ten["gpu_share"] == pytest.approx(1 / 7) and ten["mig_instance"] == "3"
    # no SM activity collected: the graphics engine's stands in
    assert ten["sm_active_mean"] == pytest.approx(0.4)
    assert eleven["samples"] == 1  # 11:00:00 itself, standing for 11:00-11:05
    assert eleven["gpu_hours"] == pytest.approx(5 / 60 / 7)


def test_the_stored_cap_and_threshold_apply_and_a_rebuild_follows_a_change(
    warehouse: Warehouse,
) -> None:
    use_config(warehouse, {"sample_cap_minutes": 1, "idle_threshold_percent": 50})
    rows = every(T0, timedelta(minutes=2), 30, utilization=40.0, workload="bert")
    publish_samples(warehouse, rows)
    (hour,) = rollup(warehouse)
    assert hour["gpu_hours"] == pytest.approx(0.5)  # each 2-minute step covers its first minute
    assert hour["state"] == "idle-held"
    use_config(warehouse, {"sample_cap_minutes": 5, "idle_threshold_percent": 5})
    rebuild_gpu_hours(warehouse)
    ten, eleven = rollup(warehouse)
    assert ten["gpu_hours"] == pytest.approx(1.0) and ten["state"] == "busy"
    assert eleven["gpu_hours"] == pytest.approx(3 / 60)  # the 10:58 sample runs on to 11:03


def test_below_the_threshold_with_nothing_held_is_idle_free_and_no_utilization_is_unknown(
    warehouse: Warehouse,
) -> None:
    free = every(T0, timedelta(minutes=1), 60, utilization=4.99)
    blank = every(T0, timedelta(minutes=1), 60, gpu_uuid="GPU-1", power_w=70.0)
    publish_samples(warehouse, free + blank)
    states = {(r["gpu_uuid"], r["hour"].hour): r["state"] for r in rollup(warehouse)}
    assert states[("GPU-0", 10)] == "idle-free" and states[("GPU-1", 10)] == "unknown"


def test_the_hook_widens_each_hour_by_the_cap_and_cuts_long_ranges_in_passes() -> None:
    five = timedelta(minutes=5)
    assert affected_ranges([T0 + timedelta(minutes=30)], five) == [
        (T0 - timedelta(hours=1), T0 + timedelta(hours=2))
    ]
    day = timedelta(days=1)
    wide = affected_ranges([T0], day)  # a day's cap reaches a day back and on
    assert wide[0][0] == T0 - day and wide[-1][1] == T0 + timedelta(hours=1) + day
    assert all(hi - lo <= day for lo, hi in wide)
    apart = affected_ranges([T0, T0 + timedelta(hours=12)], five)
    assert len(apart) == 2  # more than the merge gap between them: two passes


def test_republishing_adds_nothing_and_hostile_names_are_kept_as_text(
    warehouse: Warehouse,
) -> None:
    host = 'fra\'; DROP TABLE gpu_samples; --\n"x"'
    rows = every(T0, timedelta(seconds=15), 40, host=host, workload="w'\"; --", utilization=1e3)
    publish_samples(warehouse, rows)
    first = rollup(warehouse)
    report = publish_samples(warehouse, rows, uri="again")
    assert report.inputs[0].rows == {"gpu_samples": 0}
    assert rollup(warehouse) == first
    (hour,) = first
    assert hour["host"] == host and hour["workload"] == "w'\"; --" and hour["samples"] == 40


def test_a_rebuild_of_an_empty_warehouse_leaves_no_rows(warehouse: Warehouse) -> None:
    publish_samples(warehouse, worked_example())
    with warehouse.write() as con:
        con.execute("DELETE FROM gpu_samples")
    rebuild_gpu_hours(warehouse)
    assert rollup(warehouse) == []


def test_a_gpu_load_after_a_settings_change_rebuilds_every_hour(warehouse: Warehouse) -> None:
    publish_samples(warehouse, every(T0, timedelta(minutes=2), 30, utilization=40.0))
    use_config(warehouse, {"sample_cap_minutes": 1, "idle_threshold_percent": 50})
    later = T0 + timedelta(days=3)
    publish_samples(warehouse, every(later, timedelta(minutes=2), 30, utilization=40.0), "later")
    old = [r for r in rollup(warehouse) if r["hour"] < later]
    assert [r["gpu_hours"] for r in old] == [pytest.approx(0.5)]  # rebuilt with a 1-minute cap
    assert {r["state"] for r in rollup(warehouse)} == {"idle-free"}


def test_huge_and_nan_readings_do_not_fail_the_load_or_touch_other_gpus(
    warehouse: Warehouse,
) -> None:
    sane = every(T0, timedelta(minutes=1), 60, utilization=50.0, power_w=300.0)
    wild = every(T0, timedelta(minutes=1), 60, gpu_uuid="GPU-9", utilization=float("nan"),
                 power_w=1e308, energy_mj=1e308)  # fmt: skip
    report = publish_samples(warehouse, sane + wild)
    assert report.inputs[0].rows == {"gpu_samples": 120}
    by_gpu = {(r["gpu_uuid"], r["hour"].hour): r for r in rollup(warehouse)}
    assert by_gpu["GPU-0", 10]["power_w_mean"] == pytest.approx(300.0)
    assert by_gpu["GPU-0", 10]["state"] == "busy"
    assert by_gpu["GPU-9", 10]["state"] == "unknown"  # NaN utilization judges nothing
    assert by_gpu["GPU-9", 10]["gpu_hours"] == pytest.approx(1.0)

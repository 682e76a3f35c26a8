"""rollup_gpu_hours against an independent Python recomputation of random fleets, and in
every order a load can arrive (late hours, single samples, everything twice).

Each fleet mixes jittered steps, gaps past the cap, counter resets, blanks, MIG instances,
workloads that come and go and duplicates; the recomputation follows docs/gpu-hours.md
second by second.
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import timedelta
from typing import Any

import pytest
from test_gpu_rollups import KEY, T0, assert_same_rollup, publish_samples, rollup, sample

from warehouse.db import Warehouse
from warehouse.gpu_definitions import MJ_PER_WH, energy_increase_mj, gpu_state


# -- an independent recomputation -------------------------------------------------------
def oracle(rows: list[dict[str, Any]], cap: timedelta, threshold: float) -> list[dict[str, Any]]:
    """rollup_gpu_hours recomputed in plain Python, second by second of the definition."""
    by_gpu: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    seen: set[tuple[Any, ...]] = set()
    for r in rows:  # the merge keeps the first of a key
        key = (*(r[k] for k in KEY), r["ts"])
        if key not in seen:
            seen.add(key)
            by_gpu[tuple(r[k] for k in KEY)].append(r)
    acc: dict[tuple[Any, ...], dict[str, Any]] = {}
    for samples in by_gpu.values():
        samples.sort(key=lambda r: r["ts"])
        for i, s in enumerate(samples):
            nxt = samples[i + 1] if i + 1 < len(samples) else None
            end = min(nxt["ts"], s["ts"] + cap) if nxt else s["ts"] + cap
            counter = nxt["energy_mj"] if nxt and nxt["ts"] - s["ts"] <= cap else None
            if nxt and s["energy_mj"] is not None and counter is not None:
                gap_s = (nxt["ts"] - s["ts"]).total_seconds()
                rate = energy_increase_mj(s["energy_mj"], counter) / MJ_PER_WH / gap_s
            elif s["power_w"] is not None:
                rate = s["power_w"] / 3600.0
            else:
                rate = None
            hour = s["ts"].replace(minute=0, second=0, microsecond=0)
            first = True
            while hour < end:
                lo, hi = max(s["ts"], hour), min(end, hour + timedelta(hours=1))
                secs = (hi - lo).total_seconds()
                group = (hour, s["environment"], s["pool"], *(s[k] for k in KEY))
                a = acc.setdefault(group, {"pieces": [], "samples": 0})
                a["pieces"].append((s, secs, rate))
                a["samples"] += first
                first = False
                hour += timedelta(hours=1)
    out = []
    for (hour, env, pool, host, uuid, mig), a in sorted(
        acc.items(), key=lambda kv: (kv[0][0], kv[0][3], kv[0][4], kv[0][5], kv[0][1])
    ):
        pieces = a["pieces"]

        def mean(field: str, pieces: list[Any] = pieces) -> float | None:
            got = [(p[0][field], p[1]) for p in pieces if p[0][field] is not None]
            return sum(v * t for v, t in got) / sum(t for _, t in got) if got else None

        sm = [
            (p[0]["sm_active"] if p[0]["sm_active"] is not None else p[0]["gr_engine_active"], p[1])
            for p in pieces
        ]
        sm = [(v, t) for v, t in sm if v is not None]
        held: dict[str | None, float] = defaultdict(float)
        for s, secs, _ in pieces:
            held[s["workload"]] += secs
        workload = max(held, key=lambda w: (held[w], w or ""))
        utils = [p[0]["utilization"] for p in pieces if p[0]["utilization"] is not None]
        frees = [p[0]["memory_free_mib"] for p in pieces if p[0]["memory_free_mib"] is not None]
        energies = [p[2] * p[1] for p in pieces if p[2] is not None]
        util_mean = mean("utilization")
        out.append(
            {
                "hour": hour,
                "environment": env,
                "pool": pool,
                "host": host,
                "gpu_uuid": uuid,
                "mig_instance": mig,
                "gpu_model": max(p[0]["gpu_model"] for p in pieces),
                "gpu_share": max(p[0]["gpu_share"] for p in pieces),
                "workload": workload,
                "samples": a["samples"],
                "gpu_hours": sum(p[1] * p[0]["gpu_share"] for p in pieces) / 3600,
                "util_mean": util_mean,
                "util_max": max(utils) if utils else None,
                "sm_active_mean": sum(v * t for v, t in sm) / sum(t for _, t in sm) if sm else None,
                "memory_used_mib_mean": mean("memory_used_mib"),
                "memory_headroom_mib_min": min(frees) if frees else None,
                "power_w_mean": mean("power_w"),
                "energy_wh": sum(energies) if energies else None,
                "state": gpu_state(util_mean, workload, threshold),
            }
        )
    return out


def random_fleet(seed: int) -> list[dict[str, Any]]:
    """A few GPUs and MIG instances over a few hours: jittered steps, gaps past the cap,
    counter resets, blanks, workloads that come and go, duplicates."""
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    gpus = [
        ("fra-gpu-01", "GPU-a", "", None, 1.0, "onprem-fra", "h100"),
        ("fra-gpu-01", "GPU-b", "1", "1g.10gb", 1 / 7, "onprem-fra", "h100"),
        ("fra-gpu-01", "GPU-b", "2", "3g.40gb", 3 / 7, "onprem-fra", "h100"),
        ("edge-07", "GPU-c", "", None, 1.0, "edge-muc", None),
    ]
    for host, uuid, mig, profile, share, env, pool in gpus:
        ts = T0 + timedelta(seconds=rng.uniform(0, 600))
        energy = rng.uniform(0, 1e9)
        while ts < T0 + timedelta(hours=5):
            util = rng.choice([None, 0.0, 1.0, 3.0, 50.0, 99.0, rng.uniform(0, 100)])
            power = rng.choice([None, rng.uniform(50, 700)])
            energy += rng.uniform(0, 700) * 15 * 1000
            if rng.random() < 0.02:
                energy = rng.uniform(0, 1e5)  # a reset
            rows.append(
                sample(
                    ts,
                    host=host,
                    gpu_uuid=uuid,
                    mig_instance=mig,
                    mig_profile=profile,
                    gpu_share=share,
                    environment=env,
                    pool=pool,
                    workload=rng.choice([None, "llama-70b", "mistral-7b"]),
                    utilization=util,
                    sm_active=rng.choice([None, rng.random()]),
                    gr_engine_active=rng.choice([None, rng.random()]),
                    memory_used_mib=rng.choice([None, rng.uniform(0, 80000)]),
                    memory_free_mib=rng.choice([None, rng.uniform(0, 80000)]),
                    power_w=power,
                    energy_mj=rng.choice([None, energy, energy, energy]),
                )
            )
            if rng.random() < 0.03:
                rows.append(dict(rows[-1]))  # a duplicate sample
            ts += timedelta(seconds=rng.choice([15, 15, 15, 30, 60, 299, 301, 900, 7200]))
    return rows


@pytest.mark.parametrize("seed", range(6))
def test_the_rollup_equals_a_recomputation_from_the_definition(
    warehouse: Warehouse, seed: int
) -> None:
    rows = random_fleet(seed)
    publish_samples(warehouse, rows)
    assert_same_rollup(rollup(warehouse), oracle(rows, timedelta(minutes=5), 5.0))


@pytest.mark.parametrize("seed", range(3))
def test_loads_in_any_order_and_repeated_give_the_same_rollup(tmp_path: Any, seed: int) -> None:
    rows = random_fleet(100 + seed)
    in_order = Warehouse(tmp_path / "in-order.duckdb")
    publish_samples(in_order, rows)
    want = rollup(in_order)
    shuffled = Warehouse(tmp_path / "shuffled.duckdb")
    rng = random.Random(seed)
    hours = sorted({r["ts"].replace(minute=0, second=0, microsecond=0) for r in rows})
    rng.shuffle(hours)  # whole hours arriving late, newest first, and so on
    for hour in hours:
        part = [r for r in rows if r["ts"].replace(minute=0, second=0, microsecond=0) == hour]
        publish_samples(shuffled, part, uri=f"hour-{hour:%H}")
    assert_same_rollup(rollup(shuffled), want)
    publish_samples(shuffled, rows, uri="again")  # everything again: nothing changes
    assert_same_rollup(rollup(shuffled), want)
    rng.shuffle(rows)  # single samples in random order, in small loads
    scattered = Warehouse(tmp_path / "scattered.duckdb")
    for i in range(0, len(rows), 97):
        publish_samples(scattered, rows[i : i + 97], uri=f"part-{i}")
    assert_same_rollup(rollup(scattered), want)

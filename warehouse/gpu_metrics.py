"""The GPU keys of `metrics`: per environment (and for the fleet), what its GPUs did.

The keys are figures of an environment as a whole (a GPU's time is split to models only
by the cost allocation, `warehouse.allocation`, for the unit costs): they fill the rows
that stand for an environment (`--by environment`, or a row whose model and version are
null) and the fleet row, and are null on rows split by model or version and under a model
filter. An environment with GPU samples
but no requests in the range still gets its row, so idle capacity is never out of sight.

`co2e_kg` comes from the on-prem/edge cost model's rows in `billing`. `cost_per_gpu_hour`
is what a GPU-hour of the environment cost on the full basis, so that a pool you own and a
cloud compare: a modelled pool's cost over its capacity GPU-hours, and a cloud's allocated
bill over the GPU-hours its samples cover, on the days that have samples. It is in the
reporting currency, each day at its currency's rate (as `warehouse.money` converts), and
null where a day has no rate.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from warehouse.config import Config
from warehouse.db import read_sql, run
from warehouse.gpu_definitions import IDLE_FREE, IDLE_HELD, unmonitored_gpu_hours
from warehouse.money import rate_params
from warehouse.session import Session, Source, connection

if TYPE_CHECKING:
    import polars as pl

GPU_COLUMNS = (
    "gpu_util_mean",
    "gpu_hours",
    "idle_held_gpu_hours",
    "idle_free_gpu_hours",
    "energy_kwh",
    "co2e_kg",
    "cost_per_gpu_hour",
)
COST_COLUMNS = ("co2e_kg", "cost_per_gpu_hour")


Row = dict[str, Any]


def gpu_rows(
    s: Session, config: Config, group: tuple[str, ...], params: dict[str, Any]
) -> dict[Any, Row] | None:
    """The GPU keys per environment (`group` names it) or for the fleet (`group` empty), keyed
    by the environment (or "all"); None when the rows are split in a way GPU time is not (by
    model or version alone, or a model filter), so every key stays null. Plain rows, so
    `hybridlens metrics` imports no Polars."""
    if params.get("models") or (group and "environment" not in group):
        return None
    found = s.rows("metrics_gpu", read_sql("metrics_gpu"),
                   {**params, "idle_held": IDLE_HELD, "idle_free": IDLE_FREE})  # fmt: skip
    costs = s.rows(
        "metrics_gpu_cost",
        read_sql("metrics_gpu_cost").format(
            rates=read_sql("money_rates"), billed_days=read_sql("cost_billed_gpu_days")
        ),
        {**params, "rates": rate_params(config), "reporting": config.billing.reporting_currency},
    )
    if not group:  # the fleet: every environment's sums added up (no samples: no row)
        if not found:
            return {}
        found = [{"environment": "all"} | {
            k: sum(float(r[k] or 0) for r in found)
            for k in ("gpu_hours", "idle_held_gpu_hours", "idle_free_gpu_hours", "energy_wh",
                      "util_sum", "util_n")
        }]  # fmt: skip
        costs = _fleet_cost(costs)
    by_env = {r["environment"]: r for r in costs}
    out: dict[Any, Row] = {}
    for r in found:
        cost = by_env.get(r["environment"], {})
        n = float(r["util_n"] or 0)
        out[r["environment"]] = {
            "gpu_util_mean": float(r["util_sum"]) / n if n > 0 else None,
            "gpu_hours": _float(r["gpu_hours"]),
            "idle_held_gpu_hours": _float(r["idle_held_gpu_hours"]),
            "idle_free_gpu_hours": _float(r["idle_free_gpu_hours"]),
            "energy_kwh": float(r["energy_wh"]) / 1000.0 if r["energy_wh"] is not None else None,
            "co2e_kg": _float(cost.get("co2e_kg")),
            "cost_per_gpu_hour": _float(cost.get("cost_per_gpu_hour")),
        }
    return out


def _float(value: Any) -> float | None:
    return float(value) if value is not None else None


def _fleet_cost(costs: list[Row]) -> list[Row]:
    """The fleet's emissions and its total cost over its total capacity, in the reporting
    currency (null when some day has no rate: a sum without it would be wrong)."""
    if not costs:
        return []
    co2 = [float(r["co2e_kg"]) for r in costs if r["co2e_kg"] is not None]
    converted = not any(r["unconverted"] for r in costs)
    capacity = sum(float(r["capacity_gpu_hours"] or 0) for r in costs)
    cost = sum(float(r["cost"] or 0) for r in costs)
    return [
        {
            "environment": "all",
            "co2e_kg": sum(co2) if co2 else None,
            "cost_per_gpu_hour": cost / capacity if converted and capacity else None,
        }
    ]


def join_gpu(
    rows: list[Row], keys: tuple[str, ...], gpu: dict[Any, Row] | None, blank: Row
) -> list[Row]:
    """`rows` (metrics' rows: the group columns, or `fleet`, then the request figures) with
    the GPU keys; a row split by model or version gets nulls, and an environment with GPU
    figures but no row gains one (`blank`'s figures: no requests), so idle capacity is never
    out of sight."""
    nulls = dict.fromkeys(GPU_COLUMNS)
    if gpu is None:
        for r in rows:
            r.update(nulls)
        return rows
    key = "environment" if "environment" in keys else "fleet"
    others = [k for k in keys if k != key]
    present = set()
    for r in rows:
        present.add(r[key])
        whole = all(r[k] is None for k in others)
        r.update(gpu.get(r[key], nulls) if whole else nulls)
    if not gpu:
        return rows
    for name, figures in gpu.items():
        if name in present:
            continue
        rows.append({key: name, **dict.fromkeys(others), **blank, **figures})
    return sorted(rows, key=lambda r: tuple((r[k] is None, r[k] or "") for k in keys))


def unmonitored_by_pool(
    warehouse: Source, config: Config, start: datetime, end: datetime
) -> pl.DataFrame:
    """Per configured pool with a stated `count`: its capacity GPU-hours over the whole hours
    [start, end), the monitored GPU-hours, and the unmonitored rest (never below 0): the
    hours whose cost the cost model keeps and pages show as unmonitored."""
    import polars as pl

    hours = (end - start).total_seconds() / 3600.0
    with connection(warehouse) as con:
        found = run(con, "gpu_pool_hours", read_sql("gpu_pool_hours"), {"start": start, "end": end})
    monitored = {
        (r["environment"], r["pool"]): r["monitored_gpu_hours"] for r in found.iter_rows(named=True)
    }
    rows = []
    for env in config.environments:
        for pool in env.gpu_pools:
            if pool.count <= 0:
                continue
            seen = float(monitored.get((env.name, pool.name)) or 0.0)
            rows.append(
                {
                    "environment": env.name,
                    "pool": pool.name,
                    "capacity_gpu_hours": pool.count * hours,
                    "monitored_gpu_hours": seen,
                    "unmonitored_gpu_hours": unmonitored_gpu_hours(pool.count, hours, seen),
                }
            )
    schema = {"environment": pl.String, "pool": pl.String} | {
        c: pl.Float64
        for c in ("capacity_gpu_hours", "monitored_gpu_hours", "unmonitored_gpu_hours")
    }
    return pl.DataFrame(rows, schema=schema, orient="row")

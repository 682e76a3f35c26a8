"""The GPU keys of `metrics`: per environment (and for the fleet), what its GPUs did.

GPU time is not yet allocated to models (issue [4] does that), so the keys are figures of
an environment as a whole: they fill the rows that stand for an environment (`--by
environment`, or a row whose model and version are null) and the fleet row, and are null on
rows split by model or version and under a model filter. An environment with GPU samples
but no requests in the range still gets its row, so idle capacity is never out of sight.

`co2e_kg` and `cost_per_gpu_hour` come from the on-prem/edge cost model's rows in
`billing` (`cost_figures`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import polars as pl

from warehouse.config import Config
from warehouse.db import read_sql, run
from warehouse.definitions import availability, error_rate
from warehouse.gpu_definitions import IDLE_FREE, IDLE_HELD, unmonitored_gpu_hours
from warehouse.session import Source, connection

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


def gpu_figures(con: Any, group: tuple[str, ...], params: dict[str, Any]) -> pl.DataFrame | None:
    """The GPU keys per environment (`group` names it) or for the fleet (`group` empty);
    None when the rows are split in a way GPU time is not (by model or version alone, or a
    model filter), so every key stays null."""
    if params.get("models") or (group and "environment" not in group):
        return None
    key = "environment" if group else "fleet"
    params = {**params, "idle_held": IDLE_HELD, "idle_free": IDLE_FREE}
    found = run(con, "metrics_gpu", read_sql("metrics_gpu"), params)
    if not group:  # the fleet: every environment's sums added up (no samples: no row)
        summed = found.select(pl.lit("all").alias("fleet"), pl.exclude("environment").sum())
        found = summed.head(min(found.height, 1))
    figures = found.select(
        key,
        gpu_util_mean=pl.when(pl.col("util_n") > 0).then(pl.col("util_sum") / pl.col("util_n")),
        gpu_hours="gpu_hours",
        idle_held_gpu_hours="idle_held_gpu_hours",
        idle_free_gpu_hours="idle_free_gpu_hours",
        energy_kwh=pl.col("energy_wh") / 1000.0,
    )
    costs = cost_figures(con, key, params)
    return figures.join(costs, on=key, how="left").select(key, *GPU_COLUMNS)


def cost_figures(con: Any, key: str, params: dict[str, Any]) -> pl.DataFrame:
    """Per `key` (environment, or `fleet`): `co2e_kg` and `cost_per_gpu_hour` over the range,
    from the cost model's modelled rows in `billing` (`metrics_gpu_cost.sql`). An environment
    without a cost model has no row, so both keys read null there; the fleet's cost per
    GPU-hour is its total cost over its total capacity, null across currencies."""
    found = run(con, "metrics_gpu_cost", read_sql("metrics_gpu_cost"), params)
    if key == "fleet":
        if found.is_empty():
            return pl.DataFrame(schema={key: pl.String} | {c: pl.Float64 for c in COST_COLUMNS})
        one_currency = found["currency"].n_unique() == 1 and bool((found["currencies"] == 1).all())
        capacity = float(found["capacity_gpu_hours"].sum() or 0)
        co2 = found["co2e_kg"].drop_nulls()
        return pl.DataFrame(
            {
                "fleet": ["all"],
                "co2e_kg": [float(co2.sum()) if len(co2) else None],
                "cost_per_gpu_hour": [
                    float(found["cost"].sum()) / capacity if one_currency and capacity else None
                ],
            },
            schema={"fleet": pl.String, "co2e_kg": pl.Float64, "cost_per_gpu_hour": pl.Float64},
        )
    return found.select(
        key, pl.col("co2e_kg").cast(pl.Float64), pl.col("cost_per_gpu_hour").cast(pl.Float64)
    )


def join_gpu(frame: pl.DataFrame, group: tuple[str, ...], gpu: pl.DataFrame | None) -> pl.DataFrame:
    """`frame` (metrics' rows: its group columns, or `fleet`, then the request figures) with
    the GPU keys, sorted as `metrics` sorts; an environment with GPU figures but no row
    gains one."""
    keys = list(group) or ["fleet"]
    nulls = [pl.lit(None, dtype=pl.Float64).alias(c) for c in GPU_COLUMNS]
    if gpu is None or gpu.is_empty():
        return frame.with_columns(nulls)  # already sorted by `assemble`
    key = keys[0] if group else "fleet"
    others = [k for k in keys if k != key]
    whole = pl.all_horizontal([pl.col(k).is_null() for k in others]) if others else pl.lit(True)
    present = frame.select(key).unique()
    joined = frame.join(gpu, on=key, how="left")
    # rows split by model or version carry no GPU figures of their own
    joined = joined.with_columns(
        [pl.when(whole).then(pl.col(c)).otherwise(None).alias(c) for c in GPU_COLUMNS]
    )
    missing = gpu.join(present, on=key, how="anti")
    if missing.is_empty():
        return joined.sort(keys, nulls_last=True)
    rows = missing.with_columns(
        [pl.lit(None, dtype=pl.String).alias(k) for k in others],
        requests=pl.lit(0, dtype=pl.Int64),
        errors=pl.lit(0, dtype=pl.Int64),
        error_rate=pl.lit(error_rate(0.0, 0.0), dtype=pl.Float64),
        availability=pl.lit(availability(0.0, 0.0), dtype=pl.Float64),
        accuracy_n=pl.lit(0, dtype=pl.Int64),
    )
    both = pl.concat([joined, rows], how="diagonal_relaxed").select(joined.columns)
    return both.sort(keys, nulls_last=True)


def unmonitored_by_pool(
    warehouse: Source, config: Config, start: datetime, end: datetime
) -> pl.DataFrame:
    """Per configured pool with a stated `count`: its capacity GPU-hours over the whole hours
    [start, end), the monitored GPU-hours, and the unmonitored rest (never below 0): the
    hours whose cost the cost model keeps and pages show as unmonitored."""
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

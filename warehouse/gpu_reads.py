"""Read-side queries over the GPU rollup, for the GPUs page and the weekly report.

Each runs one `warehouse/queries/gpu_*.sql` file over `rollup_gpu_hours` with bound
parameters, so every GPU figure on a page is a query a user can run in DuckDB. Like
`warehouse.reads`, each takes a `Warehouse` or a `Session`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import polars as pl

from warehouse.db import read_sql, run
from warehouse.metrics import filter_params
from warehouse.session import Source, connection


def _query(source: Source, name: str, params: dict[str, Any]) -> pl.DataFrame:
    with connection(source) as con:
        return run(con, name, read_sql(name), params)


def utilization(
    source: Source,
    start: datetime | None,
    end: datetime | None,
    environments: list[str] | None = None,
    *,
    grain: str = "hour",
) -> pl.DataFrame:
    """Utilization and SM activity per GPU and period (`grain`: hour or day)."""
    if grain not in ("hour", "day"):
        raise ValueError(f"grain must be hour or day, got {grain!r}")
    params = {**filter_params(start, end, environments, None), "grain": grain}
    return _query(source, "gpu_utilization", params)


def fleet(
    source: Source,
    start: datetime | None,
    end: datetime | None,
    environments: list[str] | None = None,
) -> pl.DataFrame:
    """One row per GPU over the range: hours by state, headroom, energy, idle streak."""
    return _query(source, "gpu_fleet", filter_params(start, end, environments, None))


def daily(
    source: Source,
    start: datetime | None,
    end: datetime | None,
    environments: list[str] | None = None,
) -> pl.DataFrame:
    """GPU-hours by state, utilization and energy per environment and day."""
    return _query(source, "gpu_daily", filter_params(start, end, environments, None))


def modelled_costs(
    source: Source,
    start: datetime | None,
    end: datetime | None,
    environments: list[str] | None = None,
) -> pl.DataFrame:
    """The cost model's rows per environment, day and currency in [start, end): full cost,
    its busy / idle-held / idle-free / unmonitored split, capacity, energy and emissions
    (`cost_environment_days.sql`, the query `metrics` and the cost docs use)."""
    params = {
        "lo": start or datetime(1970, 1, 1, tzinfo=UTC),
        "hi": end or datetime(9999, 1, 1, tzinfo=UTC),
    }
    frame = _query(source, "cost_environment_days", params)
    if environments:
        frame = frame.filter(pl.col("environment").is_in(environments))
    return frame


def billed_costs(
    source: Source,
    start: datetime | None,
    end: datetime | None,
    environments: list[str] | None = None,
) -> pl.DataFrame:
    """What each environment without a cost model (a cloud) paid per day with GPU samples,
    beside the GPU-hours they cover (`cost_billed_gpu_days.sql`, which `metrics`' cost per
    GPU-hour reads too)."""
    frame = _query(source, "cost_billed_gpu_days", {"start": start, "end": end})
    if environments:
        frame = frame.filter(pl.col("environment").is_in(environments))
    return frame

"""Read-side queries behind the dashboard pages and the weekly report.

Each function runs one `warehouse/queries/*.sql` file with bound parameters and returns a
Polars frame, so a page never holds SQL and every number on screen can be reproduced by
running that file in DuckDB. Percentiles come from `latency_percentiles.sql` and uptime
from `uptime_minutes.sql`, the same files `metrics` runs, so a chart and
`hybridlens metrics` never disagree about the same range. Every function takes a
`Warehouse` or a `Session` (`warehouse.session`), so a page's reads share one connection.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

import polars as pl

from warehouse.config import Config
from warehouse.db import read_sql, run
from warehouse.metrics import filter_params, latency_percentiles, metrics
from warehouse.session import Source, connection
from warehouse.uptime import slo_params, with_uptime_minutes

Grain = Literal["hour", "day"]
GRAINS: tuple[Grain, ...] = ("hour", "day")
BUDGET_WINDOW_DAYS = 30


def _query(warehouse: Source, name: str, params: dict[str, Any], sql: str = "") -> pl.DataFrame:
    with connection(warehouse) as con:
        return run(con, name, sql or read_sql(name), params)


def _check_grain(grain: str) -> str:
    """The grain goes into date_trunc as a bound value; refuse anything but hour or day."""
    if grain not in GRAINS:
        raise ValueError(f"grain must be one of {', '.join(GRAINS)}, got {grain!r}")
    return grain


def bounds(warehouse: Source, *, horizon: datetime | None = None) -> pl.DataFrame:
    """One row: first/last request start, request span count, first/last time of any data
    (requests, GPU samples, billing charges), newest load id and config time.

    Rows after `horizon` (now + the ingest clock skew, say) do not count as first or last,
    so a row from the future cannot move a default range. The newest load
    id and config time are the dashboard's cache key: a new load or a newly stored config
    changes them, so cached figures are recomputed.
    """
    return _query(warehouse, "dash_bounds", {"horizon": horizon})


def dimensions(warehouse: Source) -> pl.DataFrame:
    """(environment, model) pairs that have requests, with first/last hour and requests."""
    return _query(warehouse, "dash_dimensions", {})


def latency_series(
    warehouse: Source,
    *,
    start: datetime | None,
    end: datetime | None,
    grain: Grain,
    environments: Sequence[str] | None = None,
    models: Sequence[str] | None = None,
) -> pl.DataFrame:
    """p50/p95/p99 per (environment, model, period), period = UTC hour or UTC day."""
    params = filter_params(start, end, list(environments or []), list(models or []))
    with connection(warehouse) as con:
        frame = latency_percentiles(
            con, ("environment", "model", "period"), params, _check_grain(grain)
        )
    return frame.sort("environment", "model", "period")


def fleet_latency(
    warehouse: Source,
    *,
    start: datetime | None,
    end: datetime | None,
    environments: Sequence[str] | None = None,
    models: Sequence[str] | None = None,
) -> pl.DataFrame:
    """One row of p50/p95/p99 over all selected requests together (empty when none)."""
    params = filter_params(start, end, list(environments or []), list(models or []))
    with connection(warehouse) as con:
        return latency_percentiles(con, (), params)


def traffic_series(
    warehouse: Source,
    *,
    start: datetime | None,
    end: datetime | None,
    grain: Grain,
    environments: Sequence[str] | None = None,
    models: Sequence[str] | None = None,
) -> pl.DataFrame:
    """Requests, errors and availability per (environment, model, period)."""
    params = filter_params(start, end, list(environments or []), list(models or []))
    return _query(warehouse, "dash_traffic_series", {**params, "grain": _check_grain(grain)})


def uptime_daily(
    warehouse: Source,
    config: Config,
    *,
    start: datetime | None,
    end: datetime | None,
    environments: Sequence[str] | None = None,
) -> pl.DataFrame:
    """Up/down/no-data minutes and uptime per environment and UTC day (all models together)."""
    params = {**filter_params(start, end, list(environments or []), None), **slo_params(config)}
    return _query(warehouse, "dash_uptime_daily", params, with_uptime_minutes("dash_uptime_daily"))


def down_minutes(
    warehouse: Source,
    config: Config,
    *,
    start: datetime | None,
    end: datetime | None,
    environments: Sequence[str] | None = None,
) -> pl.DataFrame:
    """Every down minute per environment with its requests, errors, expected traffic, cause."""
    params = {**filter_params(start, end, list(environments or []), None), **slo_params(config)}
    return _query(warehouse, "dash_down_minutes", params, with_uptime_minutes("dash_down_minutes"))


def minute_traces(
    warehouse: Source,
    wanted: pl.DataFrame,
    *,
    per_minute: int = 3,
) -> pl.DataFrame:
    """Up to `per_minute` failed request spans for each (environment, minute) row of `wanted`.

    One query for all minutes, so a page listing a hundred bad minutes stays one round trip.
    """
    columns: dict[str, pl.DataType] = {
        "environment": pl.String(),
        "minute": pl.Datetime("us", "UTC"),
        "start_time": pl.Datetime("us", "UTC"),
        "trace_id": pl.String(),
        "span_id": pl.String(),
        "service": pl.String(),
        "model": pl.String(),
        "version": pl.String(),
        "name": pl.String(),
        "status_message": pl.String(),
        "duration_ms": pl.Float64(),
    }
    if wanted.is_empty():
        return pl.DataFrame(schema=columns)
    params = {
        "minute_environments": wanted["environment"].to_list(),
        "minutes": wanted["minute"].to_list(),
        "per_minute": int(per_minute),
    }
    return _query(warehouse, "dash_minute_traces", params)


def version_changes(
    warehouse: Source,
    *,
    environments: Sequence[str] | None = None,
    models: Sequence[str] | None = None,
) -> pl.DataFrame:
    """First and last request of every version per (environment, model), over all data.

    Over all data rather than the selected range, so "first seen" means the rollout and not
    the left edge of the chart.
    """
    params = filter_params(None, None, list(environments or []), list(models or []))
    return _query(warehouse, "dash_version_changes", params)


def versions(
    warehouse: Source,
    config: Config,
    *,
    start: datetime | None,
    end: datetime | None,
    environments: Sequence[str] | None = None,
    models: Sequence[str] | None = None,
) -> pl.DataFrame:
    """`metrics` per (environment, model, version): versions compared on the same definitions."""
    return metrics(
        warehouse,
        config,
        start=start,
        end=end,
        by=("environment", "model", "version"),
        environments=list(environments or []) or None,
        models=list(models or []) or None,
    )


def error_budget(
    warehouse: Source,
    config: Config,
    *,
    environments: Sequence[str] | None = None,
) -> pl.DataFrame:
    """Rolling 30-day error budget per environment, ending at the newest hour of data.

    budget_errors = (1 - availability target) x requests; budget_left = 1 - errors / budget.
    Environments without an availability target get nulls (the page says "no SLO set").
    """
    names = [e.name for e in config.environments]
    targets = [e.slo.availability for e in config.environments]
    params = {
        "slo_environments": names or [""],
        "slo_availability": targets or [None],
        "environments": list(environments or []),
    }
    return _query(warehouse, "dash_error_budget", params)

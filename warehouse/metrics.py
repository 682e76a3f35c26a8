"""The figures of DESIGN.md's definitions, computed once for `metrics`, pages and reports.

Every figure comes from the rollups, so a month of data answers in well under a second;
`tests/test_warehouse_metrics.py` checks each one against numpy on the raw spans.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import polars as pl
from scipy import stats

from warehouse.config import Config
from warehouse.db import Warehouse, read_sql, run
from warehouse.load import LATENCY_GAMMA

GROUP_COLUMNS = ("environment", "model", "version")
METRIC_COLUMNS = (
    "requests",
    "errors",
    "error_rate",
    "availability",
    "uptime",
    "latency_p50_ms",
    "latency_p95_ms",
    "latency_p99_ms",
    "accuracy",
    "accuracy_n",
    "accuracy_lo",
    "accuracy_hi",
    "input_tokens",
    "output_tokens",
)


def check_group(by: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Validate a --by list against the allowed group columns (they go into SQL text)."""
    by = tuple(dict.fromkeys(c.strip() for c in by if c.strip()))
    if not by:
        raise ValueError("--by needs at least one of: " + ", ".join(GROUP_COLUMNS))
    bad = [c for c in by if c not in GROUP_COLUMNS]
    if bad:
        raise ValueError(
            f"cannot group by {', '.join(bad)}: choose from {', '.join(GROUP_COLUMNS)}"
        )
    return by


def filter_params(
    start: datetime | None,
    end: datetime | None,
    environments: list[str] | None,
    models: list[str] | None,
) -> dict[str, Any]:
    return {
        "start": start,
        "end": end,
        "environments": list(environments or []),
        "models": list(models or []),
    }


def slo_params(config: Config) -> dict[str, Any]:
    return {
        "slo_environments": [e.name for e in config.environments] or [""],
        "slo_thresholds": [e.slo.down_error_ratio for e in config.environments] or [0.05],
        "slo_min_requests": [e.slo.uptime_min_requests for e in config.environments] or [5],
        "slo_min_expected": [e.slo.uptime_min_expected for e in config.environments] or [1.0],
    }


def metrics(
    warehouse: Warehouse,
    config: Config,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    by: tuple[str, ...] | list[str] = ("environment", "model"),
    environments: list[str] | None = None,
    models: list[str] | None = None,
) -> pl.DataFrame:
    """One row per group with exactly the group columns and METRIC_COLUMNS, sorted."""
    group = check_group(by)
    cols = ", ".join(group)
    params = filter_params(start, end, environments, models)
    with warehouse.read() as con:
        counts = run(con, "metrics_counts", read_sql("metrics_counts").format(group=cols), params)
        latency = run(
            con,
            "metrics_latency",
            read_sql("metrics_latency").format(group=cols),
            {**params, "gamma": LATENCY_GAMMA},
        )
        named = [m for m in config.models if m.evaluation]
        accuracy = run(
            con,
            "metrics_accuracy",
            read_sql("metrics_accuracy").format(group=", ".join(f"a.{c}" for c in group)),
            {
                **params,
                "eval_models": [m.name for m in named] or [""],
                "eval_names": [m.evaluation for m in named] or ["accuracy"],
            },
        )
        uptime = uptime_by_environment(con, config, params) if "environment" in group else None
    return assemble(group, counts, latency, accuracy, uptime)


def uptime_by_environment(con: Any, config: Config, params: dict[str, Any]) -> pl.DataFrame:
    sql = (
        "SELECT environment, count(*) FILTER (WHERE state = 'up') AS up_minutes, "
        "count(*) FILTER (WHERE state = 'down') AS down_minutes, "
        "count(*) FILTER (WHERE state = 'nodata') AS nodata_minutes "
        f"FROM ({read_sql('uptime_minutes')}) GROUP BY environment"
    )
    frame = run(con, "uptime_by_environment", sql, {**params, **slo_params(config)})
    return frame.with_columns(
        uptime=pl.when(pl.col("up_minutes") + pl.col("down_minutes") > 0)
        .then(pl.col("up_minutes") / (pl.col("up_minutes") + pl.col("down_minutes")))
        .otherwise(None)
    )


def assemble(
    group: tuple[str, ...],
    counts: pl.DataFrame,
    latency: pl.DataFrame,
    accuracy: pl.DataFrame,
    uptime: pl.DataFrame | None,
) -> pl.DataFrame:
    keys = list(group)
    frame = counts.join(latency, on=keys, how="full", coalesce=True).join(
        accuracy, on=keys, how="full", coalesce=True
    )
    if uptime is not None:
        frame = frame.join(uptime.select("environment", "uptime"), on="environment", how="left")
    else:
        frame = frame.with_columns(uptime=pl.lit(None, dtype=pl.Float64))
    rows = []
    for r in frame.iter_rows(named=True):
        requests = r["requests"] or 0.0
        errors = r["errors"] or 0.0
        lo, mean, hi = interval(r["accuracy_n"], r["score_sum"], r["score_sumsq"], r["n_binary"])
        rows.append(
            {
                **{k: r[k] for k in keys},
                "requests": round(requests),
                "errors": round(errors),
                "error_rate": errors / requests if requests else None,
                "availability": 1 - errors / requests if requests else None,
                "uptime": r["uptime"],
                "latency_p50_ms": r["latency_p50_ms"],
                "latency_p95_ms": r["latency_p95_ms"],
                "latency_p99_ms": r["latency_p99_ms"],
                "accuracy": mean,
                "accuracy_n": int(r["accuracy_n"] or 0),
                "accuracy_lo": lo,
                "accuracy_hi": hi,
                "input_tokens": int(r["input_tokens"]) if r["input_tokens"] is not None else None,
                "output_tokens": int(r["output_tokens"])
                if r["output_tokens"] is not None
                else None,
            }
        )
    schema = {k: pl.String for k in keys} | {
        "requests": pl.Int64,
        "errors": pl.Int64,
        "error_rate": pl.Float64,
        "availability": pl.Float64,
        "uptime": pl.Float64,
        "latency_p50_ms": pl.Float64,
        "latency_p95_ms": pl.Float64,
        "latency_p99_ms": pl.Float64,
        "accuracy": pl.Float64,
        "accuracy_n": pl.Int64,
        "accuracy_lo": pl.Float64,
        "accuracy_hi": pl.Float64,
        "input_tokens": pl.Int64,
        "output_tokens": pl.Int64,
    }
    return pl.DataFrame(rows, schema=schema, orient="row").sort(keys, nulls_last=True)


def interval(
    n: float | None, total: float | None, sumsq: float | None, n_binary: float | None
) -> tuple[float | None, float | None, float | None]:
    """(low, mean, high) of a 95% interval: Wilson for 0/1 scores, Student's t otherwise."""
    if not n or total is None:
        return None, None, None
    n = float(n)
    mean = total / n
    if n_binary == n:
        z = 1.959963984540054
        denom = 1 + z * z / n
        centre = (mean + z * z / (2 * n)) / denom
        half = z * math.sqrt(mean * (1 - mean) / n + z * z / (4 * n * n)) / denom
        return max(0.0, centre - half), mean, min(1.0, centre + half)
    if n < 2:
        return None, mean, None
    var = max(0.0, (sumsq - n * mean * mean) / (n - 1)) if sumsq is not None else 0.0
    half = float(stats.t.ppf(0.975, n - 1)) * math.sqrt(var / n)
    return max(0.0, mean - half), mean, min(1.0, mean + half)

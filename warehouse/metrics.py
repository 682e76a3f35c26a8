"""The figures of DESIGN.md's definitions, computed once for `metrics`, pages and reports.

Every figure comes from the rollups, so a month of data answers in well under a second;
`tests/test_warehouse_metrics.py` checks each one against numpy on the raw spans.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import polars as pl

from warehouse.config import Config
from warehouse.db import read_sql, run
from warehouse.definitions import accuracy_interval, availability, error_rate
from warehouse.definitions import uptime as fleet_uptime
from warehouse.gpu_metrics import GPU_COLUMNS, gpu_figures, join_gpu
from warehouse.session import Source, connection
from warehouse.uptime import uptime_by_environment

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
    *GPU_COLUMNS,
)


def check_group(by: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Validate a --by list against the allowed group columns (they go into SQL text).

    Nothing, "" or "none" groups by nothing: one row of fleet totals. A list of empty names
    ("," say) is a typo, not a request for totals.
    """
    raw = [c.strip() for c in by]
    if raw in ([], [""], ["none"]):
        return ()
    cleaned = tuple(dict.fromkeys(c for c in raw if c))
    if not cleaned:
        raise ValueError(
            "--by needs at least one of: " + ", ".join(GROUP_COLUMNS) + " (or none for totals)"
        )
    bad = [c for c in cleaned if c not in GROUP_COLUMNS]
    if bad:
        raise ValueError(
            f"cannot group by {', '.join(bad)}: choose from {', '.join(GROUP_COLUMNS)}"
        )
    return cleaned


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


def latency_percentiles(
    con: Any, group: tuple[str, ...], params: dict[str, Any], grain: str = "hour"
) -> pl.DataFrame:
    """p50/p95/p99 and requests per `group` from latency_percentiles.sql, the one
    percentile query. `group` may name `period` (the UTC `grain`); () is the whole fleet."""
    cols = ", ".join(group) or "fleet"
    sql = read_sql("latency_percentiles").format(group=cols)
    frame = run(con, "latency_percentiles", sql, {**params, "grain": grain})
    return frame if group else frame.drop("fleet")


def metrics(
    warehouse: Source,
    config: Config,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    by: tuple[str, ...] | list[str] = ("environment", "model"),
    environments: list[str] | None = None,
    models: list[str] | None = None,
) -> pl.DataFrame:
    """One row per group with exactly the group columns and METRIC_COLUMNS, sorted.

    `by=()` is one row of fleet totals over the filters; its uptime counts the minutes of
    every environment that served a selected model. `warehouse` may be a `Session`, so a
    page's reads share one connection.
    """
    group = check_group(by)
    cols = ", ".join(group) or "'all' AS fleet"
    keys = list(group) or ["fleet"]
    params = filter_params(start, end, environments, models)
    with connection(warehouse) as con:
        counts = run(con, "metrics_counts", read_sql("metrics_counts").format(group=cols), params)
        latency = latency_percentiles(con, group, params).drop("requests")
        named = [m for m in config.models if m.evaluation]
        accuracy = run(
            con,
            "metrics_accuracy",
            read_sql("metrics_accuracy").format(
                group=", ".join(f"a.{c}" for c in group) or "'all' AS fleet"
            ),
            {
                **params,
                "eval_models": [m.name for m in named] or [""],
                "eval_names": [m.evaluation for m in named] or ["accuracy"],
            },
        )
        uptime = None
        if "environment" in group or not group:
            uptime = uptime_by_environment(con, config, params)
        gpu = gpu_figures(con, group, params)
    if not group:  # an aggregate over no rows is one row of nulls: no rows, no fleet row
        counts = counts.filter(pl.col("requests").is_not_null())
        accuracy = accuracy.filter(pl.col("accuracy_n").is_not_null())
        latency = latency.with_columns(fleet=pl.lit("all"))
        if uptime is not None:
            up, down = int(uptime["up_minutes"].sum()), int(uptime["down_minutes"].sum())
            uptime = pl.DataFrame(
                {"fleet": ["all"], "uptime": [fleet_uptime(up, down)]},
                schema={"fleet": pl.String, "uptime": pl.Float64},
            )
    frame = join_gpu(assemble(tuple(keys), counts, latency, accuracy, uptime), group, gpu)
    return frame if group else frame.drop("fleet")


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
        key = "environment" if "environment" in keys else "fleet"
        frame = frame.join(uptime.select(key, "uptime"), on=key, how="left")
    else:
        frame = frame.with_columns(uptime=pl.lit(None, dtype=pl.Float64))
    rows = []
    for r in frame.iter_rows(named=True):
        requests = r["requests"] or 0.0
        errors = r["errors"] or 0.0
        lo, mean, hi = accuracy_interval(
            r["accuracy_n"], r["score_sum"], r["score_sumsq"], r["n_binary"]
        )
        rows.append(
            {
                **{k: r[k] for k in keys},
                "requests": round(requests),
                "errors": round(errors),
                "error_rate": error_rate(requests, errors),
                "availability": availability(requests, errors),
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
        "input_tokens": pl.Int128,
        "output_tokens": pl.Int128,
    }
    return pl.DataFrame(rows, schema=schema, orient="row").sort(keys, nulls_last=True)

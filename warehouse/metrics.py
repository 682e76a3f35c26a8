"""The figures of DESIGN.md's definitions, computed once for `metrics`, pages and reports.

Every figure comes from the rollups, so a month of data answers in well under a second;
`tests/test_warehouse_metrics.py` checks each one against numpy on the raw spans.

`metric_rows` computes them as plain Python rows straight from DuckDB, so the command line
prints them without importing Polars and pyarrow (half of `hybridlens metrics`'s time);
`metrics` is the same rows as a Polars frame for pages and reports. Columns that exist per
environment only (uptime now, GPU figures next) are read as their own rows keyed by
environment and joined onto every row of that environment in `assemble`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from warehouse.config import Config
from warehouse.db import read_sql, run
from warehouse.definitions import accuracy_interval, availability, error_rate
from warehouse.definitions import uptime as fleet_uptime
from warehouse.gpu_metrics import GPU_COLUMNS, gpu_rows, join_gpu
from warehouse.money import MoneyError
from warehouse.session import Source, reading
from warehouse.unit_costs import COST_KEYS, COST_TYPES, cost_rows, join_cost
from warehouse.uptime import slo_params, with_uptime_minutes

if TYPE_CHECKING:
    import polars as pl

log = logging.getLogger(__name__)
Row = dict[str, Any]

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
    "cached_input_tokens",
    "reasoning_output_tokens",
    *GPU_COLUMNS,
    *COST_KEYS,
)

# The figures of a group that has GPU time or cost but no requests: nothing served, which
# is neither an error nor an outage
BLANK: Row = {
    **dict.fromkeys(METRIC_COLUMNS),
    "requests": 0,
    "errors": 0,
    "error_rate": error_rate(0.0, 0.0),
    "availability": availability(0.0, 0.0),
    "accuracy_n": 0,
}

# What `metric_rows` can compute beyond the request counts, each from its own queries; a
# panel that draws only some of them asks for those (`figures=`), the rest stay null.
FIGURE_COLUMNS = {
    "latency": ("latency_p50_ms", "latency_p95_ms", "latency_p99_ms"),
    "accuracy": ("accuracy", "accuracy_n", "accuracy_lo", "accuracy_hi"),
    "uptime": ("uptime",),
    "gpu": GPU_COLUMNS,
    "cost": COST_KEYS,
}
FIGURES = frozenset(FIGURE_COLUMNS)


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


def _latency_sql(group: tuple[str, ...]) -> str:
    return read_sql("latency_percentiles").format(group=", ".join(group) or "fleet")


def _latency_params(group: tuple[str, ...], params: dict[str, Any], grain: str) -> dict[str, Any]:
    """The percentile query's parameters, with [day_lo, day_hi): the UTC days the range
    holds whole, which it reads from the daily histogram (rollup_latency_daily); none
    when the periods are hours."""
    lo = hi = _FAR
    if grain != "hour" or "period" not in group:
        start, end = params["start"], params["end"]
        lo = _EARLY if start is None else _day(start, up=True)
        hi = _FAR if end is None else _day(end, up=False)
        if hi <= lo:
            lo = hi = _FAR
    return {**params, "grain": grain, "day_lo": lo, "day_hi": hi}


_EARLY = datetime(1, 1, 1, tzinfo=UTC)
_FAR = datetime(9999, 1, 1, tzinfo=UTC)


def _day(t: datetime, *, up: bool) -> datetime:
    """`t`'s UTC midnight, or the next one unless `t` is a midnight itself (`up`)."""
    utc = t.astimezone(UTC) if t.tzinfo is not None else t.replace(tzinfo=UTC)
    midnight = utc.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight + timedelta(days=1) if up and midnight != utc else midnight


def latency_percentiles(
    con: Any, group: tuple[str, ...], params: dict[str, Any], grain: str = "hour"
) -> pl.DataFrame:
    """p50/p95/p99 and requests per `group` from latency_percentiles.sql, the one
    percentile query. `group` may name `period` (the UTC `grain`); () is the whole fleet."""
    frame = run(
        con, "latency_percentiles", _latency_sql(group), _latency_params(group, params, grain)
    )
    return frame if group else frame.drop("fleet")


# Polars types of `metric_rows`'s columns, by name, for the frame `metrics` returns; a group
# column is a string. Names, not types, so this module imports no Polars.
METRIC_TYPES = {
    "requests": "Int64",
    "errors": "Int64",
    "error_rate": "Float64",
    "availability": "Float64",
    "uptime": "Float64",
    "latency_p50_ms": "Float64",
    "latency_p95_ms": "Float64",
    "latency_p99_ms": "Float64",
    "accuracy": "Float64",
    "accuracy_n": "Int64",
    "accuracy_lo": "Float64",
    "accuracy_hi": "Float64",
    "input_tokens": "Int128",
    "output_tokens": "Int128",
    "cached_input_tokens": "Int128",
    "reasoning_output_tokens": "Int128",
    **dict.fromkeys(GPU_COLUMNS, "Float64"),
    **COST_TYPES,
}


@dataclass(frozen=True)
class MetricRows:
    """`metrics`'s result as plain rows: `columns` in order, each row a dict of them."""

    columns: tuple[str, ...]
    rows: list[Row]
    # figures that could not be computed, each a sentence saying why and what to change
    # (a cost in a currency without a rate): their columns are null, the others are there
    problems: tuple[str, ...] = ()


def metric_rows(
    warehouse: Source,
    config: Config,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    by: tuple[str, ...] | list[str] = ("environment", "model"),
    environments: list[str] | None = None,
    models: list[str] | None = None,
    figures: frozenset[str] = FIGURES,
    basis: str = "full",
) -> MetricRows:
    """One row per group with exactly the group columns and METRIC_COLUMNS, sorted.

    `by=()` is one row of fleet totals over the filters; its uptime counts the minutes of
    every environment that served a selected model. `warehouse` may be a `Session`, so a
    page's reads share one connection. `figures` (a subset of FIGURES) skips the queries
    of the others, whose columns are then null: a page's accuracy panel needs no
    percentiles, uptime or GPU time. `basis` is the cost basis of the cost keys (`full` or
    `marginal`, DESIGN.md); when a cost has no rate into the reporting currency the cost
    keys are null and `problems` names the currency and the rate to add.
    """
    if not figures <= FIGURES:
        raise ValueError(f"unknown figures: {', '.join(sorted(figures - FIGURES))}")
    group = check_group(by)
    cols = ", ".join(group) or "'all' AS fleet"
    keys = tuple(group) or ("fleet",)
    params = filter_params(start, end, environments, models)
    named = [m for m in config.models if m.evaluation]
    with reading(warehouse) as s:
        counts = s.rows("metrics_counts", read_sql("metrics_counts").format(group=cols), params)
        # its `requests` is the histogram's count: `counts` has the real one
        latency = (
            [
                {k: v for k, v in r.items() if k != "requests"}
                for r in s.rows(
                    "latency_percentiles",
                    _latency_sql(group),
                    _latency_params(group, params, "hour"),
                )
            ]
            if "latency" in figures
            else []
        )
        accuracy = (
            []
            if "accuracy" not in figures
            else s.rows(
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
        )
        uptime = None
        if "uptime" in figures and ("environment" in group or not group):
            uptime = s.rows(
                "metrics_uptime",
                with_uptime_minutes("metrics_uptime"),
                {**params, **slo_params(config)},
            )
        gpu = gpu_rows(s, config, group, params) if "gpu" in figures else None
        costs = None
        problems: tuple[str, ...] = ()
        if "cost" in figures:
            try:
                costs = cost_rows(s, config, group, params, basis=basis)
            except MoneyError as exc:  # a latency report without costs is still one
                problems = (f"no cost figures: {exc}",)
    if not group:  # an aggregate over no rows is one row of nulls: no rows, no fleet row
        counts = [r for r in counts if r["requests"] is not None]
        accuracy = [r for r in accuracy if r["accuracy_n"] is not None]
        if uptime is not None:
            up = sum(int(r["up_minutes"]) for r in uptime)
            down = sum(int(r["down_minutes"]) for r in uptime)
            uptime = [{"fleet": "all", "uptime": fleet_uptime(up, down)}]
    rows = join_gpu(assemble(keys, counts, latency, accuracy, uptime), keys, gpu, BLANK)
    rows = join_cost(rows, keys, costs, BLANK)
    for skipped in FIGURES - figures:  # not computed: null, never a zero count
        for r in rows:
            r.update(dict.fromkeys(FIGURE_COLUMNS[skipped]))
    if not group:
        for r in rows:
            del r["fleet"]
    return MetricRows(tuple(group) + METRIC_COLUMNS, rows, problems)


def metrics(
    warehouse: Source,
    config: Config,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    by: tuple[str, ...] | list[str] = ("environment", "model"),
    environments: list[str] | None = None,
    models: list[str] | None = None,
    figures: frozenset[str] = FIGURES,
    basis: str = "full",
) -> pl.DataFrame:
    """`metric_rows` as a Polars frame (group columns as strings, METRIC_TYPES)."""
    import polars as pl

    result = metric_rows(
        warehouse,
        config,
        start=start,
        end=end,
        by=by,
        environments=environments,
        models=models,
        figures=figures,
        basis=basis,
    )
    for problem in result.problems:
        log.warning("%s", problem)
    schema = {c: getattr(pl, METRIC_TYPES.get(c, "String")) for c in result.columns}
    return pl.DataFrame(
        [tuple(r[c] for c in result.columns) for r in result.rows], schema=schema, orient="row"
    )


def _merge(keys: tuple[str, ...], *parts: list[Row]) -> dict[tuple[Any, ...], Row]:
    """Rows of every part joined on `keys` (a full join: a group in any part is a row)."""
    merged: dict[tuple[Any, ...], Row] = {}
    for part in parts:
        for r in part:
            merged.setdefault(tuple(r[k] for k in keys), {}).update(r)
    return merged


def _sort_key(keys: tuple[str, ...]) -> Any:
    """Ascending by each key, a missing value after every present one."""
    return lambda r: tuple((r[k] is None, r[k] or "") for k in keys)


def assemble(
    keys: tuple[str, ...],
    counts: list[Row],
    latency: list[Row],
    accuracy: list[Row],
    uptime: list[Row] | None,
) -> list[Row]:
    """The figures of each group from the sums the queries return.

    `uptime` has one row per environment (or the one fleet row): it is joined onto every
    row of that environment, the way a further per-environment set of columns would be.
    """
    per_environment: dict[Any, Row] = {}
    key = "environment" if "environment" in keys else "fleet"
    for r in uptime or []:
        per_environment[r[key]] = {"uptime": r["uptime"]}
    out = []
    for r in sorted(_merge(keys, counts, latency, accuracy).values(), key=_sort_key(keys)):
        got = r.get
        requests = got("requests") or 0.0
        errors = got("errors") or 0.0
        lo, mean, hi = accuracy_interval(
            got("accuracy_n"), got("score_sum"), got("score_sumsq"), got("n_binary")
        )
        extra = per_environment.get(r[key], {}) if uptime is not None else {}
        tokens_in, tokens_out = got("input_tokens"), got("output_tokens")
        cached, reasoning = got("cached_input_tokens"), got("reasoning_output_tokens")
        out.append(
            {
                **{k: r[k] for k in keys},
                "requests": round(requests),
                "errors": round(errors),
                "error_rate": error_rate(requests, errors),
                "availability": availability(requests, errors),
                "uptime": extra.get("uptime"),
                "latency_p50_ms": got("latency_p50_ms"),
                "latency_p95_ms": got("latency_p95_ms"),
                "latency_p99_ms": got("latency_p99_ms"),
                "accuracy": mean,
                "accuracy_n": int(got("accuracy_n") or 0),
                "accuracy_lo": lo,
                "accuracy_hi": hi,
                "input_tokens": int(tokens_in) if tokens_in is not None else None,
                "output_tokens": int(tokens_out) if tokens_out is not None else None,
                "cached_input_tokens": int(cached) if cached is not None else None,
                "reasoning_output_tokens": int(reasoning) if reasoning is not None else None,
            }
        )
    return out

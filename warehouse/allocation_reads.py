"""What the pages read of the allocation: unit costs over time, totals by any of its keys,
and the hybrid counterfactual.

All amounts are `cost_allocation`'s, in the reporting currency, on the basis asked for
(DESIGN.md: full has the hardware amortized, marginal is what one more unit costs now), so
a page's table and `hybridlens metrics` agree. A cost without a rate is a MoneyError naming
the currency, as for `warehouse.money`: the page shows its sentence instead of a wrong sum.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import polars as pl

from warehouse.config import Config
from warehouse.db import read_sql, run
from warehouse.money import MoneyError, refuse_unconverted
from warehouse.session import Source, connection
from warehouse.unit_costs import check_basis

TOTAL_GROUPS = ("environment", "model", "cost_center", "method")


def _refuse(frame: pl.DataFrame, config: Config) -> None:
    if frame.is_empty() or not frame["unconverted"].sum():
        return
    refuse_unconverted(frame.filter(pl.col("unconverted") > 0).to_dicts(), config)


def daily_unit_costs(
    source: Source,
    config: Config,
    start: datetime,
    end: datetime,
    *,
    basis: str = "full",
    environments: list[str] | None = None,
    models: list[str] | None = None,
) -> pl.DataFrame:
    """Per (day, environment, model) that cost something in [start, end): cost, requests,
    tokens by kind, GPU-hours held, accuracy, and cost per 1k requests, per 1M tokens, per
    GPU-hour and per correct answer (null where the divisor is 0 or unknown)."""
    named = [m for m in config.models if m.evaluation]
    params = {
        "start": start,
        "end": end,
        "marginal": check_basis(basis) == "marginal",
        "environments": environments or [],
        "models": models or [],
        "eval_models": [m.name for m in named] or [""],
        "eval_names": [m.evaluation for m in named] or ["accuracy"],
    }
    cost = read_sql("metrics_cost").format(group="day, environment, model")
    sql = read_sql("unit_costs_daily").format(metrics_cost=cost)
    with connection(source) as con:
        frame = run(con, "unit_costs_daily", sql, params)
    _refuse(frame, config)
    return frame.drop("unconverted", "unconverted_currencies", "unconverted_from")


def allocation_totals(
    source: Source,
    config: Config,
    start: datetime,
    end: datetime,
    *,
    by: tuple[str, ...] = ("environment", "model"),
    basis: str = "full",
) -> pl.DataFrame:
    """The allocated cost per `by` (from TOTAL_GROUPS) in [start, end), largest first."""
    bad = [g for g in by if g not in TOTAL_GROUPS]
    if not by or bad:
        raise ValueError(f"group the allocation by some of {', '.join(TOTAL_GROUPS)}")
    sql = read_sql("metrics_cost").format(group=", ".join(by))
    params = {
        "start": start,
        "end": end,
        "marginal": check_basis(basis) == "marginal",
        "environments": [],
        "models": [],
    }
    with connection(source) as con:
        frame = run(con, "metrics_cost", sql, params)
    _refuse(frame, config)
    return frame.select(*by, pl.col("cost").cast(pl.Float64)).sort(
        "cost", *by, descending=[True, *(False for _ in by)], nulls_last=True
    )


@dataclass(frozen=True)
class Scenario:
    """One "what if every model ran there" answer, on both cost bases."""

    name: str  # an environment, or "all on-prem"
    full: float
    marginal: float
    priced: list[str]  # the models with an observed cost per request there
    kept: list[str]  # the models it never served, kept at their actual cost


@dataclass(frozen=True)
class Counterfactual:
    actual_full: float  # what the models that served requests cost, as allocated
    actual_marginal: float
    scenarios: list[Scenario]


def counterfactual(
    source: Source, config: Config, start: datetime, end: datetime
) -> Counterfactual:
    """The models' actual cost over [start, end) and, per cloud environment and for all
    on-prem environments together, what the same requests would have cost at the cost per
    request each model had there (a model never served there keeps its actual cost).
    What environments keep (idle,
    unmapped) and unallocated cost are not the models' and stay out of every figure: moving
    traffic does not retire hardware or end a commitment (DESIGN.md)."""
    params = {"start": start, "end": end}
    with connection(source) as con:
        frame = run(con, "allocation_model_work", read_sql("allocation_model_work"), params)
    rows = frame.to_dicts()
    kinds = {e.name: e.kind for e in config.environments}
    models = sorted({r["model"] for r in rows if r["requests"] > 0})
    actual = {m: [0.0, 0.0, 0.0] for m in models}  # full, marginal, requests
    for r in rows:
        if r["model"] in actual:
            got = actual[r["model"]]
            got[0] += r["full_cost"]
            got[1] += r["marginal_cost"]
            got[2] += r["requests"]
    places = [(e, [e]) for e in sorted({r["environment"] for r in rows}) if kinds.get(e) == "cloud"]
    onprem = sorted(e for e, kind in kinds.items() if kind == "onprem")
    if onprem:
        places.append(("all on-prem", onprem))
    scenarios = []
    for name, envs in places:
        there = [r for r in rows if r["environment"] in envs]
        full = marginal = 0.0
        priced, kept = [], []
        for m in models:
            cost_full = sum(r["full_cost"] for r in there if r["model"] == m)
            cost_marginal = sum(r["marginal_cost"] for r in there if r["model"] == m)
            served = sum(r["requests"] for r in there if r["model"] == m)
            if served > 0 and cost_full > 0:
                full += cost_full / served * actual[m][2]
                marginal += cost_marginal / served * actual[m][2]
                priced.append(m)
            else:
                full += actual[m][0]
                marginal += actual[m][1]
                kept.append(m)
        scenarios.append(Scenario(name, full, marginal, priced, kept))
    total_full = sum(a[0] for a in actual.values())
    total_marginal = sum(a[1] for a in actual.values())
    return Counterfactual(total_full, total_marginal, scenarios)


__all__ = [
    "Counterfactual",
    "MoneyError",
    "Scenario",
    "allocation_totals",
    "counterfactual",
    "daily_unit_costs",
]

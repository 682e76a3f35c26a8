"""The Spend page's cost-per-model panels: unit costs per environment over time for one
model, the per-model table, what the allocation could not place, cost centers, and the
hybrid counterfactual. Nothing here reads the warehouse or imports Streamlit, so the
weekly report draws the same panels."""

from __future__ import annotations

import math
from typing import Any

import plotly.graph_objects as go
import polars as pl

from dashboard.figure_parts import color_of, empty_figure, environment_colors, layout
from dashboard.formatting import DASH, fmt_count, fmt_number, fmt_pct, fmt_shares, safe
from warehouse.allocation_reads import Counterfactual

UNALLOCATED = "unallocated"
KEPT_LABEL = "(kept by the environment)"  # idle, unmapped, no usage: see "Not given to a model"
NO_COST_CENTER = "(no cost center)"
# what a day's unit cost is over, by the label the page offers
UNIT_COSTS = {
    "per 1k requests": "cost_per_1k_requests",
    "per 1M tokens": "cost_per_1m_tokens",
    "per GPU-hour held": "cost_per_gpu_hour",
    "per correct answer": "cost_per_correct_answer",
}
KEPT = ("idle", "unmapped", "no-usage")


def _unit(value: Any) -> str:
    """A unit cost: four significant places below 1 (a cent per request is common), in
    plain decimals with their trailing zeros, so a column reads 0.4677 above 0.1950 and
    never 1.234e-05."""
    if value is None:
        return DASH
    number = float(value)
    if abs(number) >= 1 or number == 0:
        return f"{number:,.2f}"
    places = min(12, 3 - math.floor(math.log10(abs(number))))
    return f"{number:.{places}f}"


def allocation_shares(by_method: pl.DataFrame) -> dict[str, float]:
    """The allocated cost in three parts: given to models, kept by environments (idle,
    busy time no workload is mapped to, days with no usage), and placed nowhere."""
    if by_method.is_empty():
        return {"models": 0.0, "kept": 0.0, "unallocated": 0.0}
    nowhere = pl.col("environment") == UNALLOCATED
    kept = ~nowhere & (pl.col("model") == UNALLOCATED)
    return {
        "models": float(by_method.filter(~nowhere & ~kept)["cost"].sum()),
        "kept": float(by_method.filter(kept)["cost"].sum()),
        "unallocated": float(by_method.filter(nowhere)["cost"].sum()),
    }


def models_table(by_model: pl.DataFrame, currency: str) -> pl.DataFrame:
    """Per environment and model that cost something: the cost and unit costs `metrics`
    computes, biggest first."""
    if by_model.is_empty():
        return pl.DataFrame()
    rows = by_model.sort("cost", descending=True)
    return pl.DataFrame(
        {
            "Environment": rows["environment"].to_list(),
            "Model": [
                _model_label(env, model)
                for env, model in zip(rows["environment"], rows["model"], strict=True)
            ],
            f"Cost ({currency})": [fmt_number(v) for v in rows["cost"].to_list()],
            "Requests": [fmt_count(v) for v in rows["requests"].to_list()],
            "Per 1k requests": [_unit(v) for v in rows["cost_per_1k_requests"].to_list()],
            "Per 1M tokens": [_unit(v) for v in rows["cost_per_1m_tokens"].to_list()],
            "Accuracy": [fmt_pct(v, 1) for v in rows["accuracy"].to_list()],
            "Per correct answer": [_unit(v) for v in rows["cost_per_correct_answer"].to_list()],
        }
    )


def _model_label(environment: str, model: str) -> str:
    """`metrics` calls what an environment keeps `unallocated` too; beside the page's
    Unallocated card (cost no rule gave an environment) that reads as a contradiction."""
    if model == UNALLOCATED and environment != UNALLOCATED:
        return KEPT_LABEL
    return model


def unit_cost_figure(daily: pl.DataFrame, model: str, unit: str, currency: str) -> go.Figure:
    """One model's cost per unit per UTC day, one line per environment it ran in, so the
    same model's cost can be compared across on-prem, clouds and edge."""
    column = UNIT_COSTS[unit]
    title = f"{safe(model)}: cost {unit} ({currency})"
    part = daily.filter((pl.col("model") == model) & pl.col(column).is_not_null())
    if part.is_empty():
        return empty_figure(title, f"No day with a cost {unit} for this model in the range")
    colors = environment_colors(sorted(part["environment"].unique().to_list()))
    fig = go.Figure()
    for env in sorted(part["environment"].unique().to_list()):
        line = part.filter(pl.col("environment") == env).sort("day")
        fig.add_trace(
            go.Scatter(
                x=line["day"].to_list(),
                y=line[column].to_list(),
                name=safe(env),
                mode="lines+markers",
                line={"color": color_of(colors, env), "width": 2},
                hovertemplate=f"%{{x|%Y-%m-%d}}: %{{y:,.4g}} {currency}<extra>{safe(env)}</extra>",
            )
        )
    layout(fig, title, 320)
    fig.update_yaxes(title=f"{currency} {unit}", rangemode="tozero")
    fig.update_xaxes(title="day (UTC)")
    return fig


def cost_center_table(by_cost_center: pl.DataFrame, currency: str) -> pl.DataFrame:
    if by_cost_center.is_empty():
        return pl.DataFrame()
    costs = by_cost_center["cost"].to_list()
    return pl.DataFrame(
        {
            "Cost center": [
                NO_COST_CENTER if c == UNALLOCATED else c
                for c in by_cost_center["cost_center"].to_list()
            ],
            f"Cost ({currency})": [fmt_number(v) for v in costs],
            "Share": fmt_shares(costs),
        }
    )


def kept_table(by_method: pl.DataFrame, currency: str) -> pl.DataFrame:
    """What the allocation could not give a model, per environment and why, biggest first."""
    rows = by_method.filter(pl.col("model") == UNALLOCATED).sort("cost", descending=True)
    if rows.is_empty():
        return pl.DataFrame()
    why = {
        "idle": "idle GPUs (idle-free, unmonitored)",
        "unmapped": "busy GPU time no workload is mapped to",
        "no-usage": "no GPU time or requests that day",
        "unallocated": "no rule gave an environment",
    }
    return pl.DataFrame(
        {
            "Environment": rows["environment"].to_list(),
            "Why": [why.get(m, m) for m in rows["method"].to_list()],
            f"Cost ({currency})": [fmt_number(v) for v in rows["cost"].to_list()],
        }
    )


def counterfactual_table(what_if: Counterfactual, currency: str) -> pl.DataFrame:
    """Per scenario, its cost on both bases beside the actual one, and which models it could
    price (the others are counted at their actual cost)."""
    if not what_if.scenarios:
        return pl.DataFrame()

    def change(value: float, actual: float) -> str:
        return f"{value - actual:+,.2f} ({(value - actual) / actual:+.0%})" if actual else DASH

    s = what_if.scenarios
    return pl.DataFrame(
        {
            "If every model ran in": ["(as it ran)", *(x.name for x in s)],
            f"Full ({currency})": [
                fmt_number(what_if.actual_full),
                *(fmt_number(x.full) for x in s),
            ],
            "Full vs actual": [DASH, *(change(x.full, what_if.actual_full) for x in s)],
            f"Marginal ({currency})": [
                fmt_number(what_if.actual_marginal),
                *(fmt_number(x.marginal) for x in s),
            ],
            "Marginal vs actual": [DASH, *(change(x.marginal, what_if.actual_marginal) for x in s)],
            "Priced there": [DASH, *(", ".join(x.priced) or DASH for x in s)],
            "Kept at actual cost": [DASH, *(", ".join(x.kept) or DASH for x in s)],
        }
    )

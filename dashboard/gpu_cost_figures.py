"""The GPUs page's cost panels: what the GPU capacity costs, and how much of it sat idle.

On-prem and edge figures are the cost model's rows in `billing` (`x_Modelled`), read by
`warehouse.gpu_reads.modelled_costs`: amortization, energy and fixed cost per environment
and day, split by GPU-hours into busy, idle-held, idle-free and unmonitored. A cloud has no
modelled rows; its cost is its bill as the allocation placed it, on the days its GPUs
reported (`warehouse.gpu_reads.billed_costs`), so both kinds have a cost per GPU-hour to
compare. Nothing here reads the warehouse or imports Streamlit.
"""

from __future__ import annotations

from datetime import datetime

import plotly.graph_objects as go
import polars as pl

from dashboard.figure_parts import empty_figure, layout, naive_utc
from dashboard.formatting import DASH, fmt_number, md_text, safe

COST_PARTS = (  # column, label, colour
    ("busy_cost", "busy", "#0072B2"),
    ("idle_held_cost", "idle-held", "#E69F00"),
    ("idle_free_cost", "idle-free", "#BBBBBB"),
    ("unmonitored_cost", "unmonitored", "#8C6D31"),
)


def cost_table(costs: pl.DataFrame, billed: pl.DataFrame) -> pl.DataFrame:
    """Per environment and currency: full cost, cost per GPU-hour (a modelled pool's
    capacity, a cloud's sampled hours), idle cost; modelled pools first, then clouds."""
    out = _modelled_rows(costs) + _billed_rows(billed)
    return pl.DataFrame(out) if out else pl.DataFrame()


def _modelled_rows(costs: pl.DataFrame) -> list[dict[str, str]]:
    if costs.is_empty():
        return []
    money = [c for c, _, _ in COST_PARTS] + ["cost"]
    totals = (
        costs.with_columns([pl.col(c).cast(pl.Float64) for c in money])
        .group_by(["environment", "currency"], maintain_order=True)
        .agg(
            pl.col("cost").sum(),
            pl.col("capacity_gpu_hours").sum(),
            (pl.col("idle_held_cost") + pl.col("idle_free_cost") + pl.col("unmonitored_cost"))
            .sum()
            .alias("idle"),
            pl.col("energy_kwh").sum(),
            pl.col("co2e_kg").sum(),
            pl.col("co2e_kg").is_null().all().alias("no_co2"),
        )
        .sort("environment")
    )
    rows = totals.iter_rows(named=True)
    out = []
    for r in rows:
        per_hour = r["cost"] / r["capacity_gpu_hours"] if r["capacity_gpu_hours"] else None
        out.append(
            {
                "Environment": r["environment"],
                "Basis": "modelled (full cost)",
                "Currency": r["currency"],
                "Cost": f"{r['cost']:,.2f}",
                "Per GPU-hour": f"{per_hour:,.2f}" if per_hour is not None else DASH,
                "Idle cost": f"{r['idle']:,.2f}",
                "Idle share": f"{r['idle'] / r['cost']:.0%}" if r["cost"] else DASH,
                "GPU energy (kWh)": f"{r['energy_kwh'] or 0.0:,.1f}",
                "CO₂e (kg)": f"{r['co2e_kg']:,.1f}" if not r["no_co2"] else DASH,
            }
        )
    return out


def _billed_rows(billed: pl.DataFrame) -> list[dict[str, str]]:
    """A cloud's bill over the GPU-hours its samples cover, its idle share split by those
    hours as a modelled pool's is. In the billing currency when every day has one and the
    same, else in the reporting currency (dashes where a day has no rate)."""
    out = []
    for (env,), days in billed.sort("environment").group_by("environment", maintain_order=True):
        currencies = days["currency"].unique().to_list()
        native = len(currencies) == 1 and currencies[0] is not None
        column, currency = ("cost", currencies[0]) if native else (
            "reporting_cost", days["reporting_currency"][0])  # fmt: skip
        hours = float(days["gpu_hours"].sum())
        idle = float(days["idle_gpu_hours"].sum()) / hours
        cost = (
            float(days[column].cast(pl.Float64).sum()) if days[column].null_count() == 0 else None
        )
        energy = days["energy_kwh"].drop_nulls()
        out.append(
            {
                "Environment": str(env),
                "Basis": "cloud bill (full cost)",
                "Currency": currency,
                "Cost": fmt_number(cost),
                "Per GPU-hour": fmt_number(cost / hours if cost is not None else None),
                "Idle cost": fmt_number(cost * idle if cost is not None else None),
                "Idle share": f"{idle:.0%}",
                "GPU energy (kWh)": f"{energy.sum():,.1f}" if len(energy) else DASH,
                "CO₂e (kg)": DASH,
            }
        )
    return out


def provisional_note(billed: pl.DataFrame, since: datetime, lag_hours: int) -> str | None:
    """Which clouds' rows lean on days still inside the billing lag (from `since`, UTC),
    which the provider may restate; None when none does."""
    if billed.is_empty():
        return None
    recent = billed.filter(pl.col("day") >= since.date())
    if recent.is_empty():
        return None
    per_env = recent.group_by("environment").len().sort("environment")
    parts = ", ".join(f"{md_text(e)} {n} {'day' if n == 1 else 'days'}"
                      for e, n in per_env.iter_rows())  # fmt: skip
    return (
        f"Provisional: the cloud rows include days inside the {lag_hours} h billing lag "
        f"({parts}), which the provider may still restate."
    )


def idle_cost_figure(costs: pl.DataFrame) -> go.Figure:
    """Modelled cost per day, stacked by what the GPU-hours did (one currency per figure)."""
    title = "Modelled on-prem and edge cost per day, by what the GPUs did"
    if costs.is_empty():
        return empty_figure(title, "No environment in the selection has a cost model.")
    frame = naive_utc(
        costs.with_columns([pl.col(c).cast(pl.Float64) for c, _, _ in COST_PARTS]), "day"
    )
    currencies = sorted(frame["currency"].unique().to_list())
    currency = currencies[0]
    part = frame.filter(pl.col("currency") == currency)
    daily = part.group_by("day").agg([pl.col(c).sum() for c, _, _ in COST_PARTS]).sort("day")
    fig = go.Figure()
    for column, label, color in COST_PARTS:
        fig.add_bar(
            x=daily["day"].to_list(),
            y=daily[column].to_list(),
            name=label,
            marker_color=color,
            hovertemplate=f"%{{x|%Y-%m-%d}}<br>{label}: %{{y:,.2f}} {safe(currency)}"
            "<extra></extra>",
        )
    fig = layout(fig, title if len(currencies) == 1 else f"{title} ({currency} only)", 320,
                 barmode="stack")  # fmt: skip
    fig.update_yaxes(title_text=safe(currency))
    return fig

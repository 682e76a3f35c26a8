"""The GPUs page's cost panels: what the on-prem and edge capacity cost, and how much of it
sat idle.

The figures are the cost model's rows in `billing` (`x_Modelled`), read by
`warehouse.gpu_reads.modelled_costs`: amortization, energy and fixed cost per environment
and day, split by GPU-hours into busy, idle-held, idle-free and unmonitored. Cloud
environments have no modelled rows; their cost is their bill (issue [4]). Nothing here
reads the warehouse or imports Streamlit.
"""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl

from dashboard.figure_parts import empty_figure, layout, naive_utc
from dashboard.formatting import DASH, safe

COST_PARTS = (  # column, label, colour
    ("busy_cost", "busy", "#0072B2"),
    ("idle_held_cost", "idle-held", "#E69F00"),
    ("idle_free_cost", "idle-free", "#BBBBBB"),
    ("unmonitored_cost", "unmonitored", "#8C6D31"),
)


def cost_table(costs: pl.DataFrame) -> pl.DataFrame:
    """Per environment and currency: full cost, cost per capacity GPU-hour, idle cost."""
    if costs.is_empty():
        return pl.DataFrame()
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
    return pl.DataFrame(out)


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

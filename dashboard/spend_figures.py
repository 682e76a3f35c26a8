"""The Spend page's figure and tables: spend per day by provider, the providers' services,
and how much of the commitments bought was used. Nothing here reads the warehouse or
imports Streamlit, so the weekly report draws the same panels."""

from __future__ import annotations

from decimal import Decimal

import plotly.graph_objects as go
import polars as pl

from dashboard.figure_parts import PALETTE, empty_figure, layout
from dashboard.formatting import DASH, safe
from warehouse.money import Commitment

PROVISIONAL_OPACITY = 0.45


def money_label(value: float | Decimal | None, currency: str) -> str:
    if value is None:
        return DASH
    return f"{float(value):,.2f} {currency}"


def daily_spend_figure(daily: pl.DataFrame, currency: str, measure: str) -> go.Figure:
    """Spend per UTC day stacked by provider; days inside the billing lag are drawn faded,
    since the providers may still restate them."""
    title = f"Spend per day by provider ({measure}, {currency})"
    if daily.is_empty():
        return empty_figure(title, "No costs in the selected range")
    per_day = (
        daily.group_by(["day", "provider"])
        .agg(pl.col("cost").sum(), pl.col("provisional").any())
        .sort(["provider", "day"])
    )
    providers = sorted(per_day["provider"].unique().to_list())
    fig = go.Figure()
    for i, provider in enumerate(providers):
        part = per_day.filter(pl.col("provider") == provider)
        fig.add_trace(
            go.Bar(
                x=part["day"].to_list(),
                y=part["cost"].to_list(),
                name=safe(provider),
                marker={
                    "color": PALETTE[i % len(PALETTE)],
                    "opacity": [
                        PROVISIONAL_OPACITY if p else 1.0 for p in part["provisional"].to_list()
                    ],
                },
                customdata=["provisional" if p else "final" for p in part["provisional"]],
                hovertemplate=f"{safe(provider)}: %{{y:,.2f}} {currency} (%{{customdata}})"
                "<extra></extra>",
            )
        )
    fig.update_layout(barmode="stack")
    fig.update_yaxes(title_text=currency, rangemode="tozero", tickformat=",.0f")
    fig.update_xaxes(title_text="day (UTC)")
    return layout(fig, title, 380, hovermode="x unified")


def services_table(services: pl.DataFrame, currency: str) -> pl.DataFrame:
    """Per provider, service and charge category, biggest first, with its share."""
    if services.is_empty():
        return pl.DataFrame()
    total = float(services["cost"].sum()) or None
    ordered = services.sort("cost", descending=True)
    return pl.DataFrame(
        {
            "Provider": ordered["provider"].to_list(),
            "Service": ordered["service"].to_list(),
            "Charge category": ordered["category"].to_list(),
            f"Cost ({currency})": [f"{c:,.2f}" for c in ordered["cost"].to_list()],
            "Share": [f"{c / total:.1%}" if total else DASH for c in ordered["cost"].to_list()],
            "Line items": [f"{n:,}" for n in ordered["line_items"].to_list()],
            "Billed in": [", ".join(b) for b in ordered["billed_in"].to_list()],
        }
    )


def commitments_table(commitments: list[Commitment], currency: str) -> pl.DataFrame:
    """Each commitment discount's used and unused cost and its utilization."""
    return pl.DataFrame(
        {
            "Commitment": [c.id for c in commitments],
            "Type": [c.type or DASH for c in commitments],
            f"Used ({currency})": [f"{c.used:,.2f}" for c in commitments],
            f"Unused ({currency})": [f"{c.unused:,.2f}" for c in commitments],
            "Utilization": [
                f"{c.utilization:.1%}" if c.utilization is not None else DASH for c in commitments
            ],
        },
        schema={
            "Commitment": pl.String, "Type": pl.String, f"Used ({currency})": pl.String,
            f"Unused ({currency})": pl.String, "Utilization": pl.String,
        },
    )  # fmt: skip

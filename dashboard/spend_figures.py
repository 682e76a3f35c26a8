"""The Spend page's figure and tables: spend per day by provider, the providers' services,
and how much of the commitments bought was used. Nothing here reads the warehouse or
imports Streamlit, so the weekly report draws the same panels."""

from __future__ import annotations

from decimal import Decimal

import plotly.graph_objects as go
import polars as pl

from dashboard.figure_parts import PALETTE, empty_figure, layout
from dashboard.formatting import DASH, fmt_shares, safe
from warehouse.money import Commitment

PROVISIONAL_OPACITY = 0.45


def money_label(value: float | Decimal | None, currency: str) -> str:
    if value is None:
        return DASH
    return f"{float(value):,.2f} {currency}"


def kpi_money(value: float | Decimal | None, currency: str) -> str:
    """A card's amount: whole units from 1,000 up, so a month's spend fits its card."""
    if value is None:
        return DASH
    number = float(value)
    return f"{number:,.0f} {currency}" if abs(number) >= 1000 else f"{number:,.2f} {currency}"


def weighted_utilization(commitments: list[Commitment]) -> float | None:
    """All commitments together: used / (used + unused) over their summed cost."""
    used = sum((c.used for c in commitments), Decimal(0))
    whole = used + sum((c.unused for c in commitments), Decimal(0))
    return float(used / whole) if whole else None


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
    ordered = services.sort("cost", descending=True)
    return pl.DataFrame(
        {
            "Provider": ordered["provider"].to_list(),
            "Service": ordered["service"].to_list(),
            "Charge category": ordered["category"].to_list(),
            f"Cost ({currency})": [f"{c:,.2f}" for c in ordered["cost"].to_list()],
            "Share": fmt_shares(ordered["cost"].to_list()),
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


def environments_table(environments: pl.DataFrame) -> pl.DataFrame:
    """Cost per environment as attributed (docs/billing.md "Attribution"), in the currency
    billed, with the rules that placed it; `unallocated` is what no rule placed."""
    if environments.is_empty():
        return pl.DataFrame()
    charges = pl.col("cost").filter(pl.col("cost") > 0).sum()  # the base of `fmt_shares`
    totals = environments.group_by("BillingCurrency").agg(charges.alias("all"))
    joined = environments.join(totals, on="BillingCurrency", maintain_order="left")
    return pl.DataFrame(
        {
            "Environment": joined["environment"].to_list(),
            "Currency": joined["BillingCurrency"].to_list(),
            "Cost": [f"{c:,.2f}" for c in joined["cost"].to_list()],
            "Share of the currency": [
                f"{c / a:.1%}" if a else DASH
                for c, a in zip(joined["cost"].to_list(), joined["all"].to_list(), strict=True)
            ],
            "Line items": [f"{n:,}" for n in joined["line_items"].to_list()],
            "Placed by": [", ".join(h) for h in joined["hows"].to_list()],
        }
    )


def unmodelled_table(unmodelled: pl.DataFrame) -> pl.DataFrame:
    """The biggest resources no rule ties to a model: what to tag first."""
    if unmodelled.is_empty():
        return pl.DataFrame()
    return pl.DataFrame(
        {
            "Resource": [r or DASH for r in unmodelled["ResourceId"].to_list()],
            "Name": [n or DASH for n in unmodelled["ResourceName"].to_list()],
            "Provider": unmodelled["ProviderName"].to_list(),
            "Service": unmodelled["ServiceName"].to_list(),
            "Cost": [
                f"{float(c):,.2f} {cur}"
                for c, cur in zip(
                    unmodelled["EffectiveCost"].to_list(),
                    unmodelled["BillingCurrency"].to_list(),
                    strict=True,
                )
            ],
            "Line items": [f"{n:,}" for n in unmodelled["rows"].to_list()],
        }
    )

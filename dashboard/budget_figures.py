"""The Spend page's budget panel: each monthly budget's month-to-date spend as a bullet
chart (spent, the part of it on provisional days, the projection to the month's end, the
budget as 100%) and the table behind it. `warehouse.budgets` computes every figure; this
only draws and labels them, and neither reads the warehouse nor imports Streamlit, so the
weekly report can draw the same panel."""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl

from dashboard.figure_parts import BAD, layout
from dashboard.formatting import fmt_pct, safe
from warehouse.budgets import HEADING_OVER, OVER, BudgetStatus, MonthToDate

# status -> (bar colour, label); amber for "projected over" as a warning, red once over
STATUS = {
    OVER: (BAD, "Over budget"),
    HEADING_OVER: ("#E69F00", "Projected over"),
}
ON_TRACK = ("#0072B2", "On track")
PROVISIONAL_OPACITY = 0.45
TRACK = "#E5E7EB"  # the 0-100% band every bar sits in
INK = "#111827"
ROW_PX = 46


def scope_label(b: BudgetStatus) -> str:
    if b.scope is None:
        return "whole ledger"
    kind, value = b.scope
    return f"{kind.replace('_', ' ')} {value}"


def _status(b: BudgetStatus) -> tuple[str, str]:
    return STATUS.get(b.status, ON_TRACK)


def month_label(mtd: MonthToDate) -> str:
    """ "November 2026, 10 of 30 days (3 provisional)", or "…, the whole month"."""
    days = "the whole month" if mtd.complete else f"{mtd.days_elapsed} of {mtd.days_in_month} days"
    if mtd.provisional_days:
        days += f" ({mtd.provisional_days} provisional)"
    return f"{mtd.month:%B %Y}, {days}"


def budget_figure(mtd: MonthToDate) -> go.Figure:
    """One bullet per budget on a shared axis of the budget's share: a grey band to 100%,
    the month-to-date bar (its provisional days faded), a tick at the projection and a
    line at 100%. Hover gives the amounts."""
    rows = list(reversed(mtd.budgets))  # plotly draws the first category at the bottom
    names = [safe(b.name) for b in rows]
    cur = mtd.currency
    final = [float((b.spent - b.provisional) / b.amount) for b in rows]
    provisional = [float(b.provisional / b.amount) for b in rows]
    colors = [_status(b)[0] for b in rows]
    fig = go.Figure()
    fig.add_trace(
        go.Bar(
            y=names, x=[1.0] * len(rows), orientation="h", width=0.8, name="budget",
            marker={"color": TRACK}, hoverinfo="skip", showlegend=False,
        )
    )  # fmt: skip
    spent_hover = [
        f"{safe(b.name)}: {b.spent:,.2f} {cur} of {b.amount:,.2f} ({fmt_pct(b.used, 1)}), "
        f"{_status(b)[1].lower()}"
        for b in rows
    ]
    fig.add_trace(
        go.Bar(
            y=names, x=final, orientation="h", width=0.4, name="month to date",
            marker={"color": colors}, customdata=spent_hover, showlegend=False,
            hovertemplate="%{customdata}<extra></extra>",
        )
    )  # fmt: skip
    fig.add_trace(
        go.Bar(
            y=names, x=provisional, base=final, orientation="h", width=0.4,
            name="on provisional days", showlegend=False,
            marker={"color": colors, "opacity": PROVISIONAL_OPACITY},
            customdata=[f"{b.provisional:,.2f} {cur}" for b in rows],
            hovertemplate="on provisional days: %{customdata}<extra></extra>",
        )
    )  # fmt: skip
    fig.add_trace(
        go.Scatter(
            y=names, x=[b.projected_used for b in rows], mode="markers",
            name="projected at month end",
            marker={"symbol": "line-ns", "size": 26, "line": {"width": 3, "color": INK}},
            customdata=[
                f"projected {b.projected:,.2f} {cur} ({fmt_pct(b.projected_used, 1)})"
                for b in rows
            ],
            hovertemplate="%{customdata}<extra></extra>",
        )
    )  # fmt: skip
    ends = [max(b.used, b.projected_used) for b in rows]
    fig.add_trace(
        go.Scatter(
            y=names, x=ends, mode="text", textposition="middle right", showlegend=False,
            text=[f"  {fmt_pct(b.used, 0)} used, {_status(b)[1].lower()}" for b in rows],
            textfont={"color": [_status(b)[0] for b in rows], "size": 13},
            hoverinfo="skip",
        )
    )  # fmt: skip
    # the legend, in the page's neutral grey: the bars' colours are the statuses
    for name, opacity in (("month to date", 1.0), ("on provisional days", PROVISIONAL_OPACITY)):
        fig.add_trace(
            go.Bar(
                y=[None], x=[None], orientation="h", name=name,
                marker={"color": "#6B7280", "opacity": opacity},
            )
        )  # fmt: skip
    widest = max([1.0, *ends])
    fig.add_vline(x=1.0, line={"color": "#374151", "width": 1, "dash": "dot"})
    fig.update_layout(barmode="overlay", bargap=0.3)
    fig.update_xaxes(
        range=[0, widest * 1.35], tickformat=".0%", title_text="share of the monthly budget",
        zeroline=False,
    )  # fmt: skip
    fig.update_yaxes(automargin=True)
    title = f"Month to date against budget: {month_label(mtd)} ({cur}, EffectiveCost)"
    return layout(fig, title, 140 + ROW_PX * len(rows))


def budget_table(mtd: MonthToDate) -> pl.DataFrame:
    """Each budget's month to date, share used, projection and status, as labels."""
    cur = mtd.currency
    bs = mtd.budgets
    return pl.DataFrame(
        {
            "Budget": [b.name for b in bs],
            "Scope": [scope_label(b) for b in bs],
            f"Month to date ({cur})": [f"{b.spent:,.2f}" for b in bs],
            f"Budget ({cur})": [f"{b.amount:,.2f}" for b in bs],
            "Used": [fmt_pct(b.used, 1) for b in bs],
            f"Projected ({cur})": [f"{b.projected:,.2f}" for b in bs],
            "Projected use": [fmt_pct(b.projected_used, 1) for b in bs],
            f"On provisional days ({cur})": [f"{b.provisional:,.2f}" for b in bs],
            "Status": [_status(b)[1] for b in bs],
        },
        schema=dict.fromkeys(
            [
                "Budget", "Scope", f"Month to date ({cur})", f"Budget ({cur})", "Used",
                f"Projected ({cur})", "Projected use", f"On provisional days ({cur})", "Status",
            ],
            pl.String,
        ),
    )  # fmt: skip

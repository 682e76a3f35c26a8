"""The fleet overview's figures: requests by environment, uptime per day, error budget."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import plotly.graph_objects as go
import polars as pl

from dashboard.figure_parts import (
    BAD,
    GRAIN_LABEL,
    color_of,
    empty_figure,
    layout,
    naive_utc,
    period_axis,
)
from dashboard.formatting import fmt_pct, fmt_time, safe
from warehouse import slo
from warehouse.definitions import finite


def requests_figure(traffic: pl.DataFrame, colors: Mapping[str, str], grain: str) -> go.Figure:
    """Requests per period, stacked by environment (all selected models together)."""
    title = f"Requests per {GRAIN_LABEL.get(grain, grain)} by environment"  # stacked
    if traffic.is_empty():
        return empty_figure(title, "No requests in the selected range")
    per_env = naive_utc(
        traffic.group_by("environment", "period").agg(pl.col("requests").sum()).sort("period"),
        "period",
    )
    fig = go.Figure()
    for env in colors:
        rows = per_env.filter(pl.col("environment") == env)
        if rows.is_empty():
            continue
        fig.add_trace(
            go.Scatter(
                x=rows["period"].to_list(),
                y=rows["requests"].to_list(),
                name=safe(env),
                mode="lines",
                stackgroup="one",
                line={"width": 0.5, "color": color_of(colors, env)},
                hovertemplate="%{y:,.0f} requests<extra>%{fullData.name}</extra>",
                **period_axis(grain),
            )
        )
    fig.update_yaxes(title_text="requests", tickformat=",d", rangemode="tozero")
    fig.update_xaxes(title_text="time (UTC)")
    fig.update_layout(legend={"traceorder": "normal"})
    return layout(fig, title, 360, hovermode="x unified")


def uptime_heatmap(
    uptime: pl.DataFrame, order: Sequence[str], targets: Mapping[str, float | None]
) -> go.Figure:
    """Uptime per environment and day; a day below its target is labelled with its value."""
    title = "Uptime per environment and day (%)"
    if uptime.is_empty():
        return empty_figure(title, "No minutes to judge in the selected range")
    frame = naive_utc(uptime, "day")
    days = sorted(set(frame["day"].to_list()))
    envs = [e for e in order if e in set(frame["environment"].to_list())]
    lookup = {(r["environment"], r["day"]): r for r in frame.iter_rows(named=True)}
    z: list[list[float | None]] = []
    text: list[list[str]] = []
    hover: list[list[str]] = []
    for env in envs:
        target = targets.get(env)
        z_row, text_row, hover_row = [], [], []
        for day in days:
            row = lookup.get((env, day))
            value = finite(row["uptime"]) if row else None
            z_row.append(value)
            below = slo.below_target(value, target)
            text_row.append(fmt_pct(value, 1) if below else "")
            hover_row.append(
                f"{safe(env)} · {fmt_time(day, minutes=False)}<br>uptime {fmt_pct(value)}"
                + (
                    f"<br>{row['down_minutes']:,} down · {row['up_minutes']:,} up · "
                    f"{row['nodata_minutes']:,} not judged (min)"
                    if row
                    else ""
                )
            )
        z.append(z_row)
        text.append(text_row)
        hover.append(hover_row)
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=days,
            y=[safe(e) for e in envs],
            text=text,
            texttemplate="%{text}",
            textfont={"size": 10},
            customdata=hover,
            hovertemplate="%{customdata}<extra></extra>",
            zmin=0.95,
            zmax=1.0,
            colorscale=[[0, BAD], [0.6, "#FDAE61"], [0.85, "#FFFFBF"], [1, "#1A9850"]],
            colorbar={"title": {"text": "uptime"}, "tickformat": ".0%", "len": 0.9},
            xgap=2,
            ygap=2,
            hoverongaps=False,
        )
    )
    fig.update_xaxes(title_text="day (UTC)")
    fig.update_yaxes(autorange="reversed")
    return layout(fig, title, 120 + 45 * max(1, len(envs)))


def error_budget_figure(budget: pl.DataFrame, colors: Mapping[str, str]) -> go.Figure:
    """Error budget left per environment over the rolling 30 days (below 0 = overspent)."""
    title = "Error budget left, rolling 30 days (%)"
    rows = budget.filter(pl.col("budget_left").is_not_null())
    if rows.is_empty():
        return empty_figure(title, "No environment has an availability SLO set")
    envs = rows["environment"].to_list()
    left = rows["budget_left"].to_list()
    fig = go.Figure(
        go.Bar(
            x=left,
            y=[safe(e) for e in envs],
            orientation="h",
            marker={
                "color": [
                    BAD if v < 0 else color_of(colors, e) for e, v in zip(envs, left, strict=True)
                ]
            },
            text=[f"{fmt_pct(v, 1)} left" for v in left],
            textposition=["inside" if v < 0 else "outside" for v in left],  # clear of names
            cliponaxis=False,
            hovertemplate="%{y}: %{x:.1%} of the budget left<extra></extra>",
        )
    )
    low = min(0.0, *left) - 0.05
    fig.update_xaxes(range=[low, 1.15], tickformat=".0%", title_text="budget left", zeroline=True)
    fig.update_yaxes(autorange="reversed")
    fig.add_vline(x=0, line_color="#444", line_width=1)
    return layout(fig, title, 120 + 45 * len(envs))

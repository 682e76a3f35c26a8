"""The environment page's figures: latency, availability, uptime, accuracy, versions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import plotly.graph_objects as go
import polars as pl

from dashboard.figure_parts import (
    BAD,
    CHANGE_COLOR,
    GOOD,
    GRAIN_LABEL,
    PALETTE,
    PERCENTILES,
    ROW_HEIGHT_PX,
    SLO_COLOR,
    add_shapes,
    assembled,
    color_of,
    down_shapes,
    empty_figure,
    layout,
    naive_utc,
    period_axis,
    plain,
    stacked_rows,
    target_line,
)
from dashboard.formatting import fmt_interval, fmt_ms, fmt_pct, safe
from warehouse import definitions, slo
from warehouse.definitions import finite


def _slo_in_view(rows: pl.DataFrame, slo_ms: float | None) -> bool:
    """Draw the p95 SLO on a model's row only when it is near that model's usual p95; for a
    50 ms classifier under a 4 s LLM SLO the line would flatten the data to the floor."""
    high = rows["latency_p95_ms"].quantile(0.98)
    return slo_ms is not None and isinstance(high, float) and slo_ms <= 2.5 * high


def _latency_ceiling(rows: pl.DataFrame, slo_ms: float | None) -> float | None:
    """A y-axis top that keeps p95 readable: a few p99 spikes of single slow requests
    would otherwise flatten every other line (hover still shows their values)."""
    p99_top = rows["latency_p99_ms"].max()
    p95_high = rows["latency_p95_ms"].quantile(0.98)
    if not isinstance(p99_top, float) or not isinstance(p95_high, float):
        return None
    ceiling = min(1.05 * p99_top, 1.6 * p95_high)
    if slo_ms is not None and _slo_in_view(rows, slo_ms):
        ceiling = max(ceiling, 1.15 * slo_ms)
    return ceiling


def latency_figure(
    series: pl.DataFrame,
    *,
    models: Sequence[str],
    slo_ms: float | None,
    incidents: pl.DataFrame,
    changes: pl.DataFrame,
    start: datetime,
    end: datetime,
    grain: str,
) -> go.Figure:
    """p50/p95/p99 per period, one row per model, with the p95 SLO, down periods shaded and
    each version rollout drawn as a vertical line (so a regression lines up with its cause).

    Built as plain dicts and assembled once without plotly's per-property validation
    (`stacked_rows`, `assembled`): validating 15 traces and 50 shapes took 200 ms of the
    page; the tests validate the same figure in full.
    """
    title = f"Latency per {GRAIN_LABEL.get(grain, grain)}: p50, p95, p99 (ms)"
    present = [m for m in models if m in set(series["model"].to_list())]
    if not present:
        return empty_figure(title, "No requests in the selected range")
    frame = naive_utc(series, "period")
    row_titles = []
    for model in present:
        suffix = ""
        if slo_ms is not None:
            far = not _slo_in_view(frame.filter(pl.col("model") == model), slo_ms)
            suffix = f" · p95 SLO {fmt_ms(slo_ms)}" + (" (far above)" if far else "")
        row_titles.append(safe(model) + suffix)
    x0, x1 = plain(start), plain(end)
    figure = stacked_rows(row_titles, min(0.08, 0.5 / len(present)), x_range=[x0, x1])
    axes, traces = figure["layout"], figure["data"]
    shapes, notes = down_shapes(incidents, grain, label=False)
    for i, model in enumerate(present, start=1):
        rows = frame.filter(pl.col("model") == model).sort("period")
        axis = "" if i == 1 else str(i)
        for column, label, color, dash in PERCENTILES:
            traces.append(
                {
                    "type": "scatter",
                    "x": rows["period"].to_list(),
                    "y": rows[column].to_list(),
                    "name": label,
                    "legendgroup": label,
                    "showlegend": i == 1,
                    "mode": "lines",
                    "line": {"color": color, "dash": dash, "width": 2 if label == "p95" else 1.3},
                    "customdata": rows["requests"].to_list(),
                    "hovertemplate": f"{label} %{{y:,.0f}} ms (%{{customdata:,.0f}} requests)"
                    "<extra></extra>",
                    "xaxis": f"x{axis}",
                    "yaxis": f"y{axis}",
                    **period_axis(grain),
                }
            )
        if slo_ms is not None and _slo_in_view(rows, slo_ms):
            shapes.append(
                {
                    "type": "line",
                    "xref": f"x{axis} domain",
                    "yref": f"y{axis}",
                    "x0": 0,
                    "x1": 1,
                    "y0": slo_ms,
                    "y1": slo_ms,
                    "line": {"color": SLO_COLOR, "width": 1.5, "dash": "dash"},
                }
            )
        _version_lines(changes.filter(pl.col("model") == model), axis, x0, x1, shapes, notes)
        ceiling = _latency_ceiling(rows, slo_ms)
        y = axes[f"yaxis{axis}"]
        y.update({"title": {"text": "ms"}, "tickformat": ",d", "rangemode": "tozero"})
        if ceiling:
            y["range"] = [0, ceiling]
    axes[f"xaxis{'' if len(present) == 1 else len(present)}"]["title"] = {"text": "time (UTC)"}
    axes["shapes"] = shapes
    axes["annotations"] = [*axes["annotations"], *notes]
    height = 90 + ROW_HEIGHT_PX * len(present) + (90 if len(present) == 1 else 0)
    return layout(assembled(figure), title, height, hovermode="x unified")


def _version_lines(
    changes: pl.DataFrame,
    axis: str,
    start: datetime,
    end: datetime,
    shapes: list[dict[str, Any]],
    notes: list[dict[str, Any]],
) -> None:
    """A dashed line where each version after the first started serving, labelled."""
    if changes.height < 2:
        return
    ordered = changes.sort("first_seen")
    for change in ordered.tail(ordered.height - 1).iter_rows(named=True):
        at = plain(change["first_seen"])
        if not start <= at < end:
            continue
        shapes.append(
            {
                "type": "line",
                "x0": at,
                "x1": at,
                "y0": 0,
                "y1": 1,
                "xref": f"x{axis}",
                "yref": f"y{axis} domain",
                "line": {"color": CHANGE_COLOR, "width": 1.5, "dash": "dash"},
            }
        )
        notes.append(
            {
                "x": at,
                "y": 1,
                "xref": f"x{axis}",
                "yref": f"y{axis} domain",
                "xanchor": "left",
                "yanchor": "top",
                "showarrow": False,
                "text": f"→ v{safe(change['version'])}",
                "font": {"size": 11, "color": CHANGE_COLOR},
                "bgcolor": "rgba(255,255,255,0.7)",
            }
        )


def availability_figure(
    traffic: pl.DataFrame,
    *,
    slo_target: float | None,
    incidents: pl.DataFrame,
    start: datetime,
    end: datetime,
    grain: str,
) -> go.Figure:
    """Availability per period (all rows of `traffic` together) against its SLO."""
    title = f"Availability per {GRAIN_LABEL.get(grain, grain)} (%)"
    if traffic.is_empty():
        return empty_figure(title, "No requests in the selected range")
    frame = naive_utc(
        definitions.availability_per(traffic, ["period"]),
        "period",
    )
    fig = go.Figure(
        go.Scatter(
            x=frame["period"].to_list(),
            y=frame["availability"].to_list(),
            name="availability",
            mode="lines",
            line={"color": PALETTE[0], "width": 1.6},
            customdata=list(
                zip(frame["errors"].to_list(), frame["requests"].to_list(), strict=True)
            ),
            hovertemplate="%{y:.2%} (%{customdata[0]:,.0f} errors of "
            "%{customdata[1]:,.0f})<extra></extra>",
            **period_axis(grain),
        )
    )
    lowest = finite(frame["availability"].min())
    low = min(1.0 if lowest is None else lowest, 1.0 if slo_target is None else slo_target)
    shapes, notes = down_shapes(incidents, grain)
    if slo_target is not None:
        target_line(shapes, notes, slo_target, f"SLO {fmt_pct(slo_target)}")
    add_shapes(fig, shapes, notes)
    fig.update_yaxes(
        tickformat=".1%",
        range=[max(0.0, low - (1 - low) * 0.15 - 0.002), 1.001],
        title_text="good / all requests",
    )
    fig.update_xaxes(range=[plain(start), plain(end)], title_text="time (UTC)")
    return layout(fig, title, 320, showlegend=False)


def uptime_figure(uptime: pl.DataFrame, *, target: float | None) -> go.Figure:
    """Uptime per day (up / judged minutes) as bars, red below the target."""
    title = "Uptime per day (%)"
    frame = naive_utc(uptime.filter(pl.col("uptime").is_not_null()), "day").sort("day")
    if frame.is_empty():
        return empty_figure(title, "Too little traffic to judge any minute")
    values = frame["uptime"].to_list()
    colors = [BAD if slo.below_target(v, target) else GOOD for v in values]
    fig = go.Figure(
        go.Bar(
            x=frame["day"].to_list(),
            y=values,
            marker={"color": colors},
            customdata=list(
                zip(
                    frame["down_minutes"].to_list(),
                    frame["up_minutes"].to_list(),
                    frame["nodata_minutes"].to_list(),
                    strict=True,
                )
            ),
            hovertemplate="%{x|%Y-%m-%d}: %{y:.2%}<br>%{customdata[0]:,} down · "
            "%{customdata[1]:,} up · %{customdata[2]:,} not judged (min)<extra></extra>",
            **period_axis("day"),
        )
    )
    low = min(min(values), target or 1.0)
    if target is not None:
        shapes: list[dict[str, Any]] = []
        notes: list[dict[str, Any]] = []
        target_line(shapes, notes, target, f"availability SLO {fmt_pct(target)}")
        add_shapes(fig, shapes, notes)
    fig.update_yaxes(
        tickformat=".1%",
        range=[max(0.0, low - (1 - low) * 0.3 - 0.002), 1.001],
        title_text="up / judged minutes",
    )
    fig.update_xaxes(title_text="day (UTC)")
    return layout(fig, title, 320, showlegend=False)


def accuracy_figure(
    accuracy: pl.DataFrame,
    colors: Mapping[str, str],
    floors: Mapping[str, float | None],
    *,
    highlight: str | None = None,
) -> go.Figure:
    """Accuracy per model with its 95% interval, one marker per environment, floor as a bar.

    Two environments differ only where their intervals do not overlap; drawing the
    intervals side by side is what lets a reader see that.
    """
    title = "Accuracy by model and environment, with 95% intervals (%)"
    rows = accuracy.filter(pl.col("accuracy_n") > 0, pl.col("accuracy").is_not_null())
    if rows.is_empty():
        return empty_figure(title, "No evaluations in the selected range")
    model_order = list(dict.fromkeys(rows["model"].to_list()))
    fig = go.Figure()
    for env in [e for e in colors if e in set(rows["environment"].to_list())]:
        part = rows.filter(pl.col("environment") == env)
        acc = part["accuracy"].to_list()
        lows, highs = part["accuracy_lo"].to_list(), part["accuracy_hi"].to_list()
        lo = [a - (v if v is not None else a) for a, v in zip(acc, lows, strict=True)]
        hi = [(v if v is not None else a) - a for a, v in zip(acc, highs, strict=True)]
        faded = highlight is not None and env != highlight
        fig.add_trace(
            go.Scatter(
                x=[safe(m) for m in part["model"].to_list()],
                y=acc,
                name=safe(env),
                mode="markers",
                opacity=0.45 if faded else 1.0,
                marker={"color": color_of(colors, env), "size": 9 if faded else 12},
                error_y={"type": "data", "array": hi, "arrayminus": lo, "thickness": 1.6},
                customdata=[
                    [fmt_interval(a, b), f"{n:,}"]
                    for a, b, n in zip(
                        part["accuracy_lo"], part["accuracy_hi"], part["accuracy_n"], strict=True
                    )
                ],
                hovertemplate="%{x} · %{fullData.name}: %{y:.1%} "
                "(95%: %{customdata[0]}, n=%{customdata[1]})<extra></extra>",
            )
        )
    shapes: list[dict[str, Any]] = []
    for i, model in enumerate(model_order):
        floor = floors.get(model)
        if floor is None:
            continue
        shapes.append(
            {
                "type": "line",
                "xref": "x",
                "yref": "y",
                "x0": i - 0.42,
                "x1": i + 0.42,
                "y0": floor,
                "y1": floor,
                "line": {"color": SLO_COLOR, "width": 2, "dash": "dash"},
            }
        )
    if shapes:  # a legend entry for the floor lines
        fig.add_trace(
            go.Scatter(
                x=[None],
                y=[None],
                mode="lines",
                name="accuracy floor",
                line={"color": SLO_COLOR, "width": 2, "dash": "dash"},
            )
        )
    add_shapes(fig, shapes, [])
    lows = [v for v in rows["accuracy_lo"].to_list() if v is not None]
    lows += [f for m in model_order if (f := floors.get(m)) is not None]
    bottom = max(0.0, min([*lows, *rows["accuracy"].to_list()]) - 0.05)
    fig.update_xaxes(
        categoryorder="array",
        categoryarray=[safe(m) for m in model_order],
        range=[-0.5, len(model_order) - 0.5],
    )
    fig.update_yaxes(tickformat=".0%", title_text="mean evaluation score", range=[bottom, 1.0])
    return layout(fig, title, 380, scattermode="group")


def versions_figure(versions: pl.DataFrame, changes: pl.DataFrame) -> go.Figure:
    """p95 latency of each version, grouped by model, in rollout order."""
    title = "p95 latency by model version (ms)"
    rows = versions.filter(pl.col("latency_p95_ms").is_not_null())
    if rows.is_empty():
        return empty_figure(title, "No requests in the selected range")
    order = changes.select("model", "version", "first_seen")
    rows = rows.join(order, on=["model", "version"], how="left").sort(
        "model", "first_seen", nulls_last=True
    )
    fig = go.Figure(
        go.Bar(
            x=[
                [safe(m) for m in rows["model"].to_list()],
                [f"v{safe(v)}" for v in rows["version"].to_list()],
            ],
            y=rows["latency_p95_ms"].to_list(),
            marker={"color": PALETTE[0]},
            text=[fmt_ms(v, unit=False) for v in rows["latency_p95_ms"].to_list()],
            textposition="outside",
            cliponaxis=False,
            customdata=rows["requests"].to_list(),
            hovertemplate="%{x}: p95 %{y:,.0f} ms (%{customdata:,} requests)<extra></extra>",
        )
    )
    fig.update_yaxes(title_text="p95 (ms)", tickformat=",d", rangemode="tozero")
    return layout(fig, title, 360, showlegend=False)

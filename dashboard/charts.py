"""Figure and table builders: pure functions from Polars frames to plotly figures and to
display tables, shared by the pages and the weekly report so both show the same numbers.

Nothing here reads the warehouse or imports Streamlit. Ratios arrive as fractions (0..1)
and leave as percent labels; a missing, NaN or infinite value is shown as "—", never as
"nan" or "None". Names that come from telemetry (environments, models, versions, trace
ids) are HTML-escaped before they reach plotly, whose text accepts a subset of HTML.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import quote

import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from dashboard import slo

DASH = "—"
# Colour-blind-safe qualitative palette (Okabe-Ito without red, which means "bad" here).
PALETTE = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#CC79A7",
    "#56B4E9",
    "#F0E442",
    "#000000",
    "#8C6D31",
    "#7F7F7F",
)
BAD = "#D62728"
GOOD = "#2CA02C"
SLO_COLOR = "#B22222"
CHANGE_COLOR = "#6A3D9A"
DOWN_FILL = "rgba(214, 39, 40, 0.14)"
PERCENTILES = (
    ("latency_p50_ms", "p50", "#9ECAE1", "solid"),
    ("latency_p95_ms", "p95", "#08519C", "solid"),
    ("latency_p99_ms", "p99", "#6BAED6", "dot"),
)
ROW_HEIGHT_PX = 230
GRAIN_LABEL = {"hour": "hour", "day": "day"}
# Down periods are shaded at least this wide so a short outage shows on a month-wide axis.
MIN_SHADE = {"hour": timedelta(minutes=30), "day": timedelta(hours=3)}
# Only periods with this many down minutes are shaded: a lone silent minute is in the
# tables, but shading every one would hide the outage among them.
MIN_SHADED_DOWN_MINUTES = 3
PERIOD_MS = {"hour": 3_600_000, "day": 86_400_000}
INCIDENT_GAP_MINUTES = 30


# -- formatting ---------------------------------------------------------------------------------
def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def fmt_count(value: Any) -> str:
    """12,345 (rounded), or "—"."""
    number = _number(value)
    return DASH if number is None else f"{round(number):,}"


def fmt_pct(value: Any, digits: int = 2) -> str:
    """A fraction as a percent label: 0.99617 -> "99.62%"."""
    number = _number(value)
    return DASH if number is None else f"{number * 100:.{digits}f}%"


def fmt_ms(value: Any, unit: bool = True) -> str:
    """Milliseconds: one decimal below 100 ms, whole numbers above ("48.2 ms", "4,794 ms")."""
    number = _number(value)
    if number is None:
        return DASH
    text = f"{number:,.1f}" if abs(number) < 100 else f"{number:,.0f}"
    return f"{text} ms" if unit else text


def fmt_interval(low: Any, high: Any, digits: int = 1) -> str:
    """A 95% interval of fractions: "90.3% – 93.7%"."""
    lo, hi = _number(low), _number(high)
    if lo is None or hi is None:
        return DASH
    return f"{lo * 100:.{digits}f}% – {hi * 100:.{digits}f}%"


def fmt_pp(value: Any, digits: int = 2) -> str:
    """A difference of fractions in percentage points: +0.38 pp."""
    number = _number(value)
    return DASH if number is None else f"{number * 100:+.{digits}f} pp"


def fmt_time(value: datetime | date | None, *, minutes: bool = True) -> str:
    """UTC time as "2026-11-16 09:45" (or a date), or "—"."""
    if value is None:
        return DASH
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M" if minutes else "%Y-%m-%d")
    return value.isoformat()


def safe(text: Any) -> str:
    """Telemetry text made inert for plotly's HTML-like labels."""
    return html.escape(str(text), quote=False)


def _naive_utc(frame: pl.DataFrame, *columns: str) -> pl.DataFrame:
    """Plotly draws naive datetimes as given; ours are UTC, and the axes say so."""
    exprs = []
    for c in columns:
        dtype = frame.schema.get(c)
        if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
            exprs.append(pl.col(c).dt.convert_time_zone("UTC").dt.replace_time_zone(None))
    return frame.with_columns(exprs) if exprs else frame


def _period(grain: str) -> dict[str, Any]:
    """Draw a value that covers an hour or a day in the middle of it, not at its start."""
    if grain not in PERIOD_MS:
        return {}
    return {"xperiod": PERIOD_MS[grain], "xperiodalignment": "middle"}


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


def _plain(value: datetime) -> datetime:
    return value.replace(tzinfo=None) if value.tzinfo else value


# -- colours ------------------------------------------------------------------------------------
def environment_colors(names: Iterable[str]) -> dict[str, str]:
    """A stable colour per environment, by its position in the full list (config order)."""
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(dict.fromkeys(names))}


def _color(colors: Mapping[str, str], name: str) -> str:
    return colors.get(name) or PALETTE[sum(map(ord, name)) % len(PALETTE)]


# -- layout -------------------------------------------------------------------------------------
def _layout(fig: go.Figure, title: str, height: int, **extra: Any) -> go.Figure:
    fig.update_layout(
        title={"text": title, "x": 0, "xanchor": "left", "font": {"size": 16}},
        template="plotly_white",
        height=height,
        margin={"l": 10, "r": 10, "t": 60, "b": 10},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 1, "xanchor": "right"},
        hoverlabel={"namelength": -1},
        **extra,
    )
    return fig


def empty_figure(title: str, message: str, height: int = 260) -> go.Figure:
    """A titled figure that says why it is empty, instead of a blank grid."""
    fig = go.Figure()
    fig.add_annotation(
        text=safe(message),
        x=0.5,
        y=0.5,
        xref="paper",
        yref="paper",
        showarrow=False,
        font={"size": 14, "color": "#666"},
    )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _layout(fig, title, height)


def _down_shapes(
    incidents: pl.DataFrame, grain: str, *, label: bool = True
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Shapes shading each down period (widened to stay visible) and labels for the longest.

    Shapes are built as plain dicts and set once: plotly's add_vrect revalidates every
    shape on each call, which takes seconds for a month of scattered down minutes.
    """
    shapes: list[dict[str, Any]] = []
    notes: list[dict[str, Any]] = []
    if incidents.is_empty():
        return shapes, notes
    widen = MIN_SHADE.get(grain, timedelta(0))
    longest = incidents["down_minutes"].max()
    for row in incidents.filter(pl.col("down_minutes") >= MIN_SHADED_DOWN_MINUTES).iter_rows(
        named=True
    ):
        x0, x1 = _plain(row["start"]), _plain(row["end"])
        if x1 - x0 < widen:
            middle = x0 + (x1 - x0) / 2
            x0, x1 = middle - widen / 2, middle + widen / 2
        shapes.append(
            {
                "type": "rect",
                "xref": "x",
                "yref": "paper",
                "x0": x0,
                "x1": x1,
                "y0": 0,
                "y1": 1,
                "fillcolor": DOWN_FILL,
                "line": {"width": 0},
                "layer": "below",
            }
        )
        if label and row["down_minutes"] >= max(10, longest or 0):
            notes.append(
                {
                    "x": x1,
                    "y": 1,
                    "xref": "x",
                    "yref": "paper",
                    "yanchor": "top",
                    "xanchor": "left",
                    "text": f"down {row['down_minutes']} min",
                    "showarrow": False,
                    "font": {"size": 11, "color": BAD},
                }
            )
    return shapes, notes


def _target_line(
    shapes: list[dict[str, Any]], notes: list[dict[str, Any]], y: float, text: str
) -> None:
    """A dashed red line across the plot at `y`, labelled at its right end."""
    shapes.append(
        {
            "type": "line",
            "xref": "paper",
            "yref": "y",
            "x0": 0,
            "x1": 1,
            "y0": y,
            "y1": y,
            "line": {"color": SLO_COLOR, "width": 1.5, "dash": "dash"},
        }
    )
    notes.append(
        {
            "x": 1,
            "y": y,
            "xref": "paper",
            "yref": "y",
            "xanchor": "right",
            "yanchor": "bottom",
            "text": text,
            "showarrow": False,
            "font": {"size": 11, "color": SLO_COLOR},
            "bgcolor": "rgba(255,255,255,0.85)",
        }
    )


def _add(fig: go.Figure, shapes: list[dict[str, Any]], notes: list[dict[str, Any]]) -> None:
    """Append shapes and annotations in one layout update."""
    fig.update_layout(
        shapes=[*fig.layout.shapes, *shapes], annotations=[*fig.layout.annotations, *notes]
    )


# -- overview figures ---------------------------------------------------------------------------
def requests_figure(traffic: pl.DataFrame, colors: Mapping[str, str], grain: str) -> go.Figure:
    """Requests per period, stacked by environment (all selected models together)."""
    title = f"Requests per {GRAIN_LABEL.get(grain, grain)} by environment"  # stacked
    if traffic.is_empty():
        return empty_figure(title, "No requests in the selected range")
    per_env = _naive_utc(
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
                line={"width": 0.5, "color": _color(colors, env)},
                hovertemplate="%{y:,.0f} requests<extra>%{fullData.name}</extra>",
                **_period(grain),
            )
        )
    fig.update_yaxes(title_text="requests", tickformat=",d", rangemode="tozero")
    fig.update_xaxes(title_text="time (UTC)")
    fig.update_layout(legend={"traceorder": "normal"})
    return _layout(fig, title, 360, hovermode="x unified")


def uptime_heatmap(
    uptime: pl.DataFrame, order: Sequence[str], targets: Mapping[str, float | None]
) -> go.Figure:
    """Uptime per environment and day; a day below its target is labelled with its value."""
    title = "Uptime per environment and day (%)"
    if uptime.is_empty():
        return empty_figure(title, "No minutes to judge in the selected range")
    frame = _naive_utc(uptime, "day")
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
            value = _number(row["uptime"]) if row else None
            z_row.append(value)
            below = value is not None and target is not None and value < target
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
    return _layout(fig, title, 120 + 45 * max(1, len(envs)))


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
                    BAD if v < 0 else _color(colors, e) for e, v in zip(envs, left, strict=True)
                ]
            },
            text=[f"{fmt_pct(v, 1)} left" for v in left],
            textposition="outside",
            cliponaxis=False,
            hovertemplate="%{y}: %{x:.1%} of the budget left<extra></extra>",
        )
    )
    low = min(0.0, *left) - 0.05
    fig.update_xaxes(range=[low, 1.15], tickformat=".0%", title_text="budget left", zeroline=True)
    fig.update_yaxes(autorange="reversed")
    fig.add_vline(x=0, line_color="#444", line_width=1)
    return _layout(fig, title, 120 + 45 * len(envs))


# -- environment figures ------------------------------------------------------------------------
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
    """
    title = f"Latency per {GRAIN_LABEL.get(grain, grain)}: p50, p95, p99 (ms)"
    present = [m for m in models if m in set(series["model"].to_list())]
    if not present:
        return empty_figure(title, "No requests in the selected range")
    frame = _naive_utc(series, "period")
    row_titles = []
    for model in present:
        suffix = ""
        if slo_ms is not None:
            far = not _slo_in_view(frame.filter(pl.col("model") == model), slo_ms)
            suffix = f" · p95 SLO {fmt_ms(slo_ms)}" + (" (far above)" if far else "")
        row_titles.append(safe(model) + suffix)
    fig = make_subplots(
        rows=len(present),
        cols=1,
        shared_xaxes=True,
        vertical_spacing=min(0.08, 0.5 / len(present)),
        subplot_titles=row_titles,
    )
    x0, x1 = _plain(start), _plain(end)
    shapes, notes = _down_shapes(incidents, grain, label=False)
    for i, model in enumerate(present, start=1):
        rows = frame.filter(pl.col("model") == model).sort("period")
        axis = "" if i == 1 else str(i)
        for column, label, color, dash in PERCENTILES:
            fig.add_trace(
                go.Scatter(
                    x=rows["period"].to_list(),
                    y=rows[column].to_list(),
                    name=label,
                    legendgroup=label,
                    showlegend=i == 1,
                    mode="lines",
                    line={"color": color, "dash": dash, "width": 2 if label == "p95" else 1.3},
                    customdata=rows["requests"].to_list(),
                    hovertemplate=f"{label} %{{y:,.0f}} ms (%{{customdata:,.0f}} requests)"
                    "<extra></extra>",
                    **_period(grain),
                ),
                row=i,
                col=1,
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
        fig.update_yaxes(
            title_text="ms",
            tickformat=",d",
            range=[0, ceiling] if ceiling else None,
            rangemode="tozero",
            row=i,
            col=1,
        )
    _add(fig, shapes, notes)
    fig.update_xaxes(range=[x0, x1])
    fig.update_xaxes(title_text="time (UTC)", row=len(present), col=1)
    height = 90 + ROW_HEIGHT_PX * len(present) + (90 if len(present) == 1 else 0)
    return _layout(fig, title, height, hovermode="x unified")


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
        at = _plain(change["first_seen"])
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
    frame = _naive_utc(
        traffic.group_by("period")
        .agg(pl.col("requests").sum(), pl.col("errors").sum())
        .with_columns(availability=1 - pl.col("errors") / pl.col("requests"))
        .sort("period"),
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
            **_period(grain),
        )
    )
    lowest = _number(frame["availability"].min())
    low = min(1.0 if lowest is None else lowest, 1.0 if slo_target is None else slo_target)
    shapes, notes = _down_shapes(incidents, grain)
    if slo_target is not None:
        _target_line(shapes, notes, slo_target, f"SLO {fmt_pct(slo_target)}")
    _add(fig, shapes, notes)
    fig.update_yaxes(
        tickformat=".1%",
        range=[max(0.0, low - (1 - low) * 0.15 - 0.002), 1.001],
        title_text="good / all requests",
    )
    fig.update_xaxes(range=[_plain(start), _plain(end)], title_text="time (UTC)")
    return _layout(fig, title, 320, showlegend=False)


def uptime_figure(uptime: pl.DataFrame, *, target: float | None) -> go.Figure:
    """Uptime per day (up / judged minutes) as bars, red below the target."""
    title = "Uptime per day (%)"
    frame = _naive_utc(uptime.filter(pl.col("uptime").is_not_null()), "day").sort("day")
    if frame.is_empty():
        return empty_figure(title, "Too little traffic to judge any minute")
    values = frame["uptime"].to_list()
    colors = [BAD if target is not None and v < target else GOOD for v in values]
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
            **_period("day"),
        )
    )
    low = min(min(values), target or 1.0)
    if target is not None:
        shapes: list[dict[str, Any]] = []
        notes: list[dict[str, Any]] = []
        _target_line(shapes, notes, target, f"availability SLO {fmt_pct(target)}")
        _add(fig, shapes, notes)
    fig.update_yaxes(
        tickformat=".1%",
        range=[max(0.0, low - (1 - low) * 0.3 - 0.002), 1.001],
        title_text="up / judged minutes",
    )
    fig.update_xaxes(title_text="day (UTC)")
    return _layout(fig, title, 320, showlegend=False)


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
                marker={"color": _color(colors, env), "size": 9 if faded else 12},
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
    _add(fig, shapes, [])
    lows = [v for v in rows["accuracy_lo"].to_list() if v is not None]
    lows += [f for m in model_order if (f := floors.get(m)) is not None]
    bottom = max(0.0, min([*lows, *rows["accuracy"].to_list()]) - 0.05)
    fig.update_xaxes(
        categoryorder="array",
        categoryarray=[safe(m) for m in model_order],
        range=[-0.5, len(model_order) - 0.5],
    )
    fig.update_yaxes(tickformat=".0%", title_text="mean evaluation score", range=[bottom, 1.0])
    return _layout(fig, title, 380, scattermode="group")


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
    return _layout(fig, title, 360, showlegend=False)


# -- tables ------------------------------------------------------------------------------------
STATUS_STYLE = {
    slo.BREACH: "background-color: #FDE2E1; color: #9B1C1C; font-weight: 600",
    slo.AT_RISK: "background-color: #FEF3C7; color: #92400E; font-weight: 600",
    slo.MET: "background-color: #DCFCE7; color: #166534",
    slo.NO_SLO: "color: #6B7280",
}


# Columns that hold numbers formatted as text (so "—" can stand in for a missing one):
# pages right-align them like the numeric columns beside them.
RIGHT_ALIGNED = frozenset(
    {
        "Availability",
        "Availability SLO",
        "Uptime",
        "p50 (ms)",
        "p95 (ms)",
        "p95 SLO (ms)",
        "p99 (ms)",
        "Accuracy",
        "Accuracy 95% interval",
        "95% interval",
        "Accuracy floor",
        "Floor",
        "Input tokens",
        "Output tokens",
        "Error rate",
        "Error budget left (30 d)",
        "Usual requests",
    }
)
COUNT_COLUMNS = frozenset({"Requests", "Errors", "Evaluations", "Down minutes"})


def styled(table: pl.DataFrame) -> Any:
    """A pandas Styler colouring the Status column (Streamlit and HTML reports both take it)."""
    frame = table.to_pandas()
    style = frame.style
    if "Status" in frame.columns:
        style = style.map(lambda v: STATUS_STYLE.get(v, ""), subset=["Status"])
    return style


def _slo_cell(configured: bool | None, value: str) -> str:
    return value if configured else slo.NO_SLO


def slo_table(report: pl.DataFrame) -> pl.DataFrame:
    """environment x model rows (already worst first) as display strings, one per metric."""
    out = []
    for r in report.iter_rows(named=True):
        configured = bool(r.get("configured"))
        n = int(r.get("accuracy_n") or 0)
        out.append(
            {
                "Status": slo.STATUS_LABELS.get(r["status"], r["status"]),
                "Environment": r["environment"],
                "Model": r.get("model", DASH),
                "Missed": r["breaches"] or DASH,
                "Requests": int(r["requests"] or 0),
                "Errors": int(r["errors"] or 0),
                "Availability": fmt_pct(r["availability"]),
                "Availability SLO": _slo_cell(configured, fmt_pct(r["availability_slo"])),
                "Uptime": fmt_pct(r["uptime"]),
                "p50 (ms)": fmt_ms(r["latency_p50_ms"], unit=False),
                "p95 (ms)": fmt_ms(r["latency_p95_ms"], unit=False),
                "p95 SLO (ms)": _slo_cell(configured, fmt_ms(r["latency_p95_slo_ms"], unit=False)),
                "p99 (ms)": fmt_ms(r["latency_p99_ms"], unit=False),
                "Accuracy": fmt_pct(r["accuracy"], 1) if n else "no evaluations",
                "Accuracy 95% interval": fmt_interval(r["accuracy_lo"], r["accuracy_hi"]),
                "Evaluations": n,
                "Accuracy floor": fmt_pct(r.get("accuracy_floor"), 1),
                "Input tokens": fmt_count(r.get("input_tokens")),
                "Output tokens": fmt_count(r.get("output_tokens")),
            }
        )
    return pl.DataFrame(out, schema=_SLO_TABLE_SCHEMA, orient="row")


_SLO_TABLE_SCHEMA = {
    "Status": pl.String,
    "Environment": pl.String,
    "Model": pl.String,
    "Missed": pl.String,
    "Requests": pl.Int64,
    "Errors": pl.Int64,
    "Availability": pl.String,
    "Availability SLO": pl.String,
    "Uptime": pl.String,
    "p50 (ms)": pl.String,
    "p95 (ms)": pl.String,
    "p95 SLO (ms)": pl.String,
    "p99 (ms)": pl.String,
    "Accuracy": pl.String,
    "Accuracy 95% interval": pl.String,
    "Evaluations": pl.Int64,
    "Accuracy floor": pl.String,
    "Input tokens": pl.String,
    "Output tokens": pl.String,
}


def environment_table(
    report: pl.DataFrame,
    targets: pl.DataFrame,
    budget: pl.DataFrame,
    uptime: pl.DataFrame,
) -> pl.DataFrame:
    """One row per environment: where it is, its SLOs, how it did, and its error budget."""
    down = (
        uptime.group_by("environment").agg(pl.col("down_minutes").sum())
        if not uptime.is_empty()
        else pl.DataFrame(schema={"environment": pl.String, "down_minutes": pl.Int64})
    )
    frame = (
        report.join(
            targets.select("environment", "kind", "provider", "region"),
            on="environment",
            how="left",
        )
        .join(down, on="environment", how="left")
        .join(budget.select("environment", "budget_left"), on="environment", how="left")
    )
    out = []
    for r in frame.iter_rows(named=True):
        configured = bool(r.get("configured"))
        place = " / ".join(p for p in (r["provider"], r["region"]) if p) or DASH
        out.append(
            {
                "Status": slo.STATUS_LABELS.get(r["status"], r["status"]),
                "Environment": r["environment"],
                "Kind": r["kind"] or DASH,
                "Provider / region": place,
                "Missed": r["breaches"] or DASH,
                "Requests": int(r["requests"] or 0),
                "Availability": fmt_pct(r["availability"]),
                "Availability SLO": _slo_cell(configured, fmt_pct(r["availability_slo"])),
                "Uptime": fmt_pct(r["uptime"]),
                "Down minutes": int(r["down_minutes"] or 0),
                "p95 SLO (ms)": _slo_cell(configured, fmt_ms(r["latency_p95_slo_ms"], unit=False)),
                "Error budget left (30 d)": _slo_cell(configured, fmt_pct(r["budget_left"], 1)),
            }
        )
    schema = {
        "Status": pl.String,
        "Environment": pl.String,
        "Kind": pl.String,
        "Provider / region": pl.String,
        "Missed": pl.String,
        "Requests": pl.Int64,
        "Availability": pl.String,
        "Availability SLO": pl.String,
        "Uptime": pl.String,
        "Down minutes": pl.Int64,
        "p95 SLO (ms)": pl.String,
        "Error budget left (30 d)": pl.String,
    }
    return pl.DataFrame(out, schema=schema, orient="row")


def accuracy_table(
    accuracy: pl.DataFrame, environment: str, floors: Mapping[str, float | None]
) -> pl.DataFrame:
    """One row per model of `environment`: accuracy, interval, n, floor, and how it compares
    with the same model elsewhere, claimed only where the 95% intervals do not overlap."""
    mine = accuracy.filter(pl.col("environment") == environment)
    others = accuracy.filter(pl.col("environment") != environment, pl.col("accuracy_n") > 0)
    out = []
    for r in mine.iter_rows(named=True):
        n = int(r["accuracy_n"] or 0)
        floor = floors.get(r["model"])
        lower, higher, same = [], [], []
        if n and r["accuracy_lo"] is not None and r["accuracy_hi"] is not None:
            for o in others.filter(pl.col("model") == r["model"]).iter_rows(named=True):
                if o["accuracy_lo"] is None or o["accuracy_hi"] is None:
                    continue
                if r["accuracy_hi"] < o["accuracy_lo"]:
                    lower.append(o["environment"])
                elif r["accuracy_lo"] > o["accuracy_hi"]:
                    higher.append(o["environment"])
                else:
                    same.append(o["environment"])
        parts = []
        if lower:
            parts.append("lower than " + ", ".join(lower))
        if higher:
            parts.append("higher than " + ", ".join(higher))
        if same:
            parts.append("no clear difference from " + ", ".join(same))
        if not n:
            verdict = DASH
        elif floor is None:
            verdict = "no floor set"
        elif r["accuracy_hi"] is not None and r["accuracy_hi"] < floor:
            verdict = "below floor"
        elif r["accuracy"] < floor:
            verdict = "below floor, within the interval"
        else:
            verdict = "meets floor"
        out.append(
            {
                "Model": r["model"],
                "Accuracy": fmt_pct(r["accuracy"], 1) if n else "no evaluations",
                "95% interval": fmt_interval(r["accuracy_lo"], r["accuracy_hi"]),
                "Evaluations": n,
                "Floor": fmt_pct(floor, 1),
                "Against the floor": verdict,
                "Compared with other environments": "; ".join(parts) if parts else DASH,
            }
        )
    schema = {
        "Model": pl.String,
        "Accuracy": pl.String,
        "95% interval": pl.String,
        "Evaluations": pl.Int64,
        "Floor": pl.String,
        "Against the floor": pl.String,
        "Compared with other environments": pl.String,
    }
    return pl.DataFrame(out, schema=schema, orient="row")


def versions_table(versions: pl.DataFrame, changes: pl.DataFrame) -> pl.DataFrame:
    """Each (model, version) side by side, in rollout order, on `metrics`'s definitions."""
    frame = versions.join(
        changes.select("model", "version", "first_seen", "last_seen"),
        on=["model", "version"],
        how="left",
    ).sort("model", "first_seen", nulls_last=True)
    out = []
    for r in frame.iter_rows(named=True):
        n = int(r["accuracy_n"] or 0)
        out.append(
            {
                "Model": r["model"],
                "Version": r["version"],
                "First request (UTC)": fmt_time(r["first_seen"]),
                "Last request (UTC)": fmt_time(r["last_seen"]),
                "Requests": int(r["requests"] or 0),
                "Error rate": fmt_pct(r["error_rate"]),
                "p50 (ms)": fmt_ms(r["latency_p50_ms"], unit=False),
                "p95 (ms)": fmt_ms(r["latency_p95_ms"], unit=False),
                "p99 (ms)": fmt_ms(r["latency_p99_ms"], unit=False),
                "Accuracy": fmt_pct(r["accuracy"], 1) if n else "no evaluations",
                "95% interval": fmt_interval(r["accuracy_lo"], r["accuracy_hi"]),
                "Evaluations": n,
            }
        )
    schema = {
        "Model": pl.String,
        "Version": pl.String,
        "First request (UTC)": pl.String,
        "Last request (UTC)": pl.String,
        "Requests": pl.Int64,
        "Error rate": pl.String,
        "p50 (ms)": pl.String,
        "p95 (ms)": pl.String,
        "p99 (ms)": pl.String,
        "Accuracy": pl.String,
        "95% interval": pl.String,
        "Evaluations": pl.Int64,
    }
    return pl.DataFrame(out, schema=schema, orient="row")


def incidents(down: pl.DataFrame, gap_minutes: int = INCIDENT_GAP_MINUTES) -> pl.DataFrame:
    """Down minutes merged into periods: minutes at most `gap_minutes` apart are one period.

    The minutes between them were judged up or not judged, so a period is where trouble
    was, not a claim that every minute in it was down.
    """
    schema: dict[str, pl.DataType] = {
        "environment": pl.String(),
        "start": pl.Datetime("us", "UTC"),
        "end": pl.Datetime("us", "UTC"),
        "down_minutes": pl.Int64(),
        "error_minutes": pl.Int64(),
        "silent_minutes": pl.Int64(),
        "requests": pl.Float64(),
        "errors": pl.Float64(),
    }
    if down.is_empty():
        return pl.DataFrame(schema=schema)
    gap = timedelta(minutes=gap_minutes)
    return (
        down.sort("environment", "minute")
        .with_columns(_new=(pl.col("minute").diff().over("environment") > gap).fill_null(True))
        .with_columns(_id=pl.col("_new").cum_sum())
        .group_by("environment", "_id")
        .agg(
            start=pl.col("minute").min(),
            end=pl.col("minute").max() + timedelta(minutes=1),
            down_minutes=pl.len().cast(pl.Int64),
            error_minutes=(pl.col("cause") == "errors").sum().cast(pl.Int64),
            silent_minutes=(pl.col("cause") == "no traffic").sum().cast(pl.Int64),
            requests=pl.col("requests").sum().cast(pl.Float64),
            errors=pl.col("errors").sum().cast(pl.Float64),
        )
        .drop("_id")
        .sort("environment", "start")
        .select(list(schema))
        .cast(pl.Schema(schema))
    )


def incidents_table(periods: pl.DataFrame) -> pl.DataFrame:
    """Down periods, longest first, with what made their minutes down."""
    out = []
    for r in periods.sort("down_minutes", "start", descending=[True, False]).iter_rows(named=True):
        causes = []
        if r["error_minutes"]:
            causes.append(f"{r['error_minutes']} min of errors")
        if r["silent_minutes"]:
            causes.append(f"{r['silent_minutes']} min without expected traffic")
        out.append(
            {
                "Start (UTC)": fmt_time(r["start"]),
                "End (UTC)": fmt_time(r["end"]),
                "Down minutes": int(r["down_minutes"]),
                "Cause": ", ".join(causes) or DASH,
                "Requests": round(r["requests"] or 0),
                "Errors": round(r["errors"] or 0),
            }
        )
    schema = {
        "Start (UTC)": pl.String,
        "End (UTC)": pl.String,
        "Down minutes": pl.Int64,
        "Cause": pl.String,
        "Requests": pl.Int64,
        "Errors": pl.Int64,
    }
    return pl.DataFrame(out, schema=schema, orient="row")


def trace_url(template: str, trace_id: str) -> str:
    """The configured trace link for one id; the id is percent-encoded, so it stays an id."""
    return template.replace("{trace_id}", quote(str(trace_id), safe=""))


def trace_display_pattern(template: str) -> str:
    """A regular expression whose first group pulls the trace id back out of its link."""
    head, _, tail = template.partition("{trace_id}")
    return f"^{re.escape(head)}(.*){re.escape(tail)}$"


TRACE_COLUMNS = ("Trace 1", "Trace 2", "Trace 3")


def bad_minutes_table(down: pl.DataFrame, traces: pl.DataFrame, template: str) -> pl.DataFrame:
    """Every down minute, most failed requests first, with up to three failed traces as links.

    With no trace link configured the trace columns hold the bare ids. A minute that was
    down for silence has no failed requests, hence no traces.
    """
    by_minute: dict[tuple[str, datetime], list[str]] = {}
    for t in traces.iter_rows(named=True):
        by_minute.setdefault((t["environment"], t["minute"]), []).append(t["trace_id"])
    out = []
    for r in down.sort(["errors", "minute"], descending=True).iter_rows(named=True):
        ids = by_minute.get((r["environment"], r["minute"]), [])
        cells = [trace_url(template, i) if template else i for i in ids[: len(TRACE_COLUMNS)]]
        cells += [""] * (len(TRACE_COLUMNS) - len(cells))
        row = {
            "Minute (UTC)": fmt_time(r["minute"]),
            "Cause": "errors" if r["cause"] == "errors" else "no traffic (expected some)",
            "Requests": round(r["requests"] or 0),
            "Errors": round(r["errors"] or 0),
            "Usual requests": fmt_count(r["expected"]),
        }
        row.update(zip(TRACE_COLUMNS, cells, strict=True))
        out.append(row)
    schema = {
        "Minute (UTC)": pl.String,
        "Cause": pl.String,
        "Requests": pl.Int64,
        "Errors": pl.Int64,
        "Usual requests": pl.String,
    } | dict.fromkeys(TRACE_COLUMNS, pl.String)
    return pl.DataFrame(out, schema=schema, orient="row")

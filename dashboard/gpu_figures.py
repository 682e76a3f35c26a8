"""The GPUs page's figures and tables: fleet heatmap, idle GPUs, headroom, energy, hours.

Like the other figure modules, nothing here reads the warehouse or imports Streamlit; the
frames come from `warehouse.gpu_reads` and the rules (the states, the busy-looking idle
GPU) from `warehouse.gpu_definitions`, so the page and `metrics` cannot disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

import plotly.graph_objects as go
import polars as pl

from dashboard.figure_parts import color_of, empty_figure, layout, legend_below, naive_utc
from dashboard.formatting import DASH, safe
from warehouse.gpu_definitions import (
    BUSY_LOOKING_SM_RATIO,
    BUSY_LOOKING_UTIL_PERCENT,
    IDLE_FREE,
    IDLE_HELD,
    is_busy_looking_idle,
)

STATE_COLORS = {"busy": "#0072B2", "idle-held": "#E69F00", "idle-free": "#BBBBBB"}
BUSY_LOOKING_UTIL = BUSY_LOOKING_UTIL_PERCENT  # the rule is warehouse.gpu_definitions'
BUSY_LOOKING_SM = BUSY_LOOKING_SM_RATIO
HEATMAP_ROW_PX = 14


def gpu_label(row: Mapping[str, object]) -> str:
    """`host · GPU-1234abcd` (plus the MIG instance): short enough for an axis."""
    uuid = str(row["gpu_uuid"])
    short = uuid[:12] if uuid.startswith("GPU-") else uuid[:8]
    mig = f" · MIG {row['mig_instance']}" if row.get("mig_instance") else ""
    return f"{row['environment']} · {row['host']} · {short}{mig}"


GRAIN_STEPS = {"hour": timedelta(hours=1), "day": timedelta(days=1)}


def utilization_heatmap(util: pl.DataFrame, grain: str) -> go.Figure:
    """Every GPU (rows, grouped by environment and host) × period, coloured by utilization."""
    title = f"Utilization per GPU and {grain} (percent)"
    if util.is_empty():
        return empty_figure(title, "No GPU samples in this range.")
    frame = naive_utc(util, "period").with_columns(
        pl.struct(["environment", "host", "gpu_uuid", "mig_instance"])
        .map_elements(gpu_label, return_dtype=pl.String)
        .alias("gpu")
    )
    rows = frame.select("gpu").unique(maintain_order=True)["gpu"].to_list()
    periods = sorted(frame["period"].unique().to_list())
    index = {p: i for i, p in enumerate(periods)}
    z: list[list[float | None]] = [[None] * len(periods) for _ in rows]
    sm: list[list[float | None]] = [[None] * len(periods) for _ in rows]
    position = {g: i for i, g in enumerate(rows)}
    for r in frame.iter_rows(named=True):
        z[position[r["gpu"]]][index[r["period"]]] = r["util_mean"]
        sm[position[r["gpu"]]][index[r["period"]]] = r["sm_active_mean"]
    # one period alone would be a cell as wide as plotly's default (a millisecond, with
    # ticks to match): give it its period's edges instead, so it spans its day or hour
    step = GRAIN_STEPS.get(grain)
    x = [periods[0], periods[0] + step] if len(periods) == 1 and step else periods
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=x,
            y=[safe(g) for g in rows],
            customdata=sm,
            zmin=0,
            zmax=100,
            colorscale="Blues",
            colorbar={"title": "%"},
            hovertemplate="%{y}<br>%{x|%Y-%m-%d %H:%M} UTC<br>utilization %{z:.0f}%"
            "<br>SM activity %{customdata:.2f}<extra></extra>",
        )
    )
    height = max(320, 120 + HEATMAP_ROW_PX * len(rows))
    fig = layout(fig, title, height)
    fig.update_yaxes(autorange="reversed", tickfont={"size": 9})
    fig.update_xaxes(title_text="UTC")
    return fig


def hours_by_state_figure(daily: pl.DataFrame, colors: Mapping[str, str]) -> go.Figure:
    """GPU-hours per day, stacked busy / idle-held / idle-free, per environment side by side."""
    title = "GPU-hours per day by state"
    if daily.is_empty():
        return empty_figure(title, "No GPU samples in this range.")
    frame = naive_utc(daily, "day")
    fig = go.Figure()
    for state, column in (
        ("busy", "busy_gpu_hours"),
        ("idle-held", "idle_held_gpu_hours"),
        ("idle-free", "idle_free_gpu_hours"),
    ):
        totals = frame.group_by("day").agg(pl.col(column).sum()).sort("day")
        fig.add_bar(
            x=totals["day"].to_list(),
            y=totals[column].to_list(),
            name=state,
            marker_color=STATE_COLORS[state],
            hovertemplate=f"%{{x|%Y-%m-%d}}<br>{state}: %{{y:,.1f}} GPU-hours<extra></extra>",
        )
    fig = legend_below(layout(fig, title, 360, barmode="stack"))  # as its neighbour's
    fig.update_yaxes(title_text="GPU-hours")
    del colors  # one colour per state; environments are told apart in the table
    return fig


def energy_figure(daily: pl.DataFrame, colors: Mapping[str, str]) -> go.Figure:
    """The GPUs' own energy per day and environment (before PUE and server power)."""
    title = "GPU energy per day (kWh)"
    if daily.is_empty() or daily["energy_kwh"].drop_nulls().is_empty():
        return empty_figure(title, "No power or energy readings in this range.")
    frame = naive_utc(daily, "day")
    fig = go.Figure()
    for env in frame["environment"].unique(maintain_order=True).to_list():
        part = frame.filter(pl.col("environment") == env)
        fig.add_bar(
            x=part["day"].to_list(),
            y=part["energy_kwh"].to_list(),
            name=safe(env),
            marker_color=color_of(colors, env),
            hovertemplate="%{x|%Y-%m-%d}<br>%{y:,.1f} kWh<extra>" + safe(env) + "</extra>",
        )
    fig = legend_below(layout(fig, title, 360, barmode="stack"))
    fig.update_yaxes(title_text="kWh")
    return fig


def _hours(value: object) -> str:
    if value is None:
        return DASH
    hours = float(value)  # type: ignore[arg-type]
    return f"{hours / 24:,.1f} d" if hours >= 48 else f"{hours:,.0f} h"


def idle_table(fleet: pl.DataFrame, threshold: float) -> pl.DataFrame:
    """GPUs idle now (their newest hour below the threshold), longest idle first."""
    idle = fleet.filter(pl.col("idle_streak_hours") > 0).sort(
        ["idle_streak_hours", "environment", "host"], descending=[True, False, False]
    )
    return pl.DataFrame(
        {
            "Environment": idle["environment"].to_list(),
            "Pool": [p or DASH for p in idle["pool"].to_list()],
            "Host": idle["host"].to_list(),
            "GPU": [u[:12] for u in idle["gpu_uuid"].to_list()],
            "State": [IDLE_HELD if w else IDLE_FREE for w in idle["workload"].to_list()],
            "Held by": [w or DASH for w in idle["workload"].to_list()],
            "Idle for": [_hours(h) for h in idle["idle_streak_hours"].to_list()],
            "Idle GPU-hours": [
                round(a + b, 1)
                for a, b in zip(
                    idle["idle_held_gpu_hours"].to_list(),
                    idle["idle_free_gpu_hours"].to_list(),
                    strict=True,
                )
            ],
            f"Mean util (%, idle < {threshold:g})": [
                _num(v, 1) for v in idle["util_mean"].to_list()
            ],
        },
    )


def busy_looking_idle(fleet: pl.DataFrame) -> pl.DataFrame:
    """GPUs whose utilization looks busy while their SMs mostly wait."""
    mask = [
        is_busy_looking_idle(u, sm)
        for u, sm in zip(
            fleet["util_mean"].to_list(), fleet["sm_active_mean"].to_list(), strict=True
        )
    ]
    found = fleet.filter(pl.Series(mask, dtype=pl.Boolean))
    return pl.DataFrame(
        {
            "Environment": found["environment"].to_list(),
            "Host": found["host"].to_list(),
            "GPU": [u[:12] for u in found["gpu_uuid"].to_list()],
            "Held by": [w or DASH for w in found["workload"].to_list()],
            "Utilization (%)": [_num(v, 1) for v in found["util_mean"].to_list()],
            "SM activity": [_num(v, 3) for v in found["sm_active_mean"].to_list()],
        }
    )


def headroom_table(fleet: pl.DataFrame) -> pl.DataFrame:
    """Per pool: GPUs, mean memory used and the least free memory any of its GPUs had."""
    if fleet.is_empty():
        return pl.DataFrame()
    pools = (
        fleet.group_by(["environment", "pool"], maintain_order=True)
        .agg(
            pl.len().alias("gpus"),
            pl.col("gpu_model").first(),
            pl.col("memory_used_mib_mean").mean(),
            pl.col("memory_headroom_mib_min").min(),
            pl.col("power_w_mean").mean(),
        )
        .sort(["environment", "pool"])
    )
    gib = 1024.0
    return pl.DataFrame(
        {
            "Environment": pools["environment"].to_list(),
            "Pool": [p or DASH for p in pools["pool"].to_list()],
            "GPU": [m or DASH for m in pools["gpu_model"].to_list()],
            "GPUs seen": pools["gpus"].to_list(),
            "Mean memory used (GiB)": [_gib(v, gib) for v in pools["memory_used_mib_mean"]],
            "Least headroom (GiB)": [_gib(v, gib) for v in pools["memory_headroom_mib_min"]],
            "Mean power (W)": [
                round(v, 0) if v is not None else None for v in pools["power_w_mean"]
            ],
        }
    )


def _gib(value: float | None, gib: float) -> str:
    return _num(value / gib if value is not None else None, 1)


def _num(value: float | None, digits: int) -> str:
    """A figure as the tables print it; a missing one (not measured) as a dash."""
    return f"{value:,.{digits}f}" if value is not None else DASH

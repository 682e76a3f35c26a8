"""What every figure shares: colours, layout, empty figures, shaded down periods, target
lines, and UTC times as plotly draws them.

Nothing here reads the warehouse or imports Streamlit, so the weekly report draws the same
figures as the pages.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio
import polars as pl

from dashboard.formatting import safe

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


def naive_utc(frame: pl.DataFrame, *columns: str) -> pl.DataFrame:
    """Plotly draws naive datetimes as given; ours are UTC, and the axes say so."""
    exprs = []
    for c in columns:
        dtype = frame.schema.get(c)
        if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
            exprs.append(pl.col(c).dt.convert_time_zone("UTC").dt.replace_time_zone(None))
    return frame.with_columns(exprs) if exprs else frame


def period_axis(grain: str) -> dict[str, Any]:
    """Draw a value that covers an hour or a day in the middle of it, not at its start."""
    if grain not in PERIOD_MS:
        return {}
    return {"xperiod": PERIOD_MS[grain], "xperiodalignment": "middle"}


def plain(value: datetime) -> datetime:
    return value.replace(tzinfo=None) if value.tzinfo else value


# -- colours ------------------------------------------------------------------------------------
def environment_colors(names: Iterable[str]) -> dict[str, str]:
    """A stable colour per environment, by its position in the full list (config order)."""
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(dict.fromkeys(names))}


def color_of(colors: Mapping[str, str], name: str) -> str:
    return colors.get(name) or PALETTE[sum(map(ord, name)) % len(PALETTE)]


# -- layout -------------------------------------------------------------------------------------
TEMPLATE = "plotly_white"


def _set_template(fig: go.Figure) -> None:
    """Give `fig` the registered template as plotly gives a new figure its default one:
    unvalidated. Assigning it by name validates a copy of every trace type's defaults,
    100 ms of a page's 300 per figure on the shared machine, for a template plotly ships."""
    layout_obj = fig.layout
    layout_obj._validate = False
    try:
        layout_obj.template = pio.templates[TEMPLATE]
    finally:
        layout_obj._validate = fig._validate


def stacked_rows(titles: Sequence[str], spacing: float, *, x_range: list[Any]) -> dict[str, Any]:
    """A figure dict of one column of rows sharing their x axis, each titled, laid out as
    plotly's `make_subplots(rows=n, shared_xaxes=True, subplot_titles=...)` lays it out,
    for figures assembled without validation (`assembled`)."""
    n = len(titles)
    height = (1 - spacing * (n - 1)) / n
    axes: dict[str, Any] = {}
    notes = []
    for i, text in enumerate(titles, start=1):
        axis = "" if i == 1 else str(i)
        top = 1 - (i - 1) * (height + spacing)
        x: dict[str, Any] = {"anchor": f"y{axis}", "domain": [0.0, 1.0], "range": x_range}
        if i < n:
            x.update({"matches": f"x{n}", "showticklabels": False})
        axes[f"xaxis{axis}"] = x
        axes[f"yaxis{axis}"] = {"anchor": f"x{axis}", "domain": [max(0.0, top - height), top]}
        notes.append(
            {
                "font": {"size": 16},
                "showarrow": False,
                "text": text,
                "x": 0.5,
                "xanchor": "center",
                "xref": "paper",
                "y": top,
                "yanchor": "bottom",
                "yref": "paper",
            }
        )
    return {"data": [], "layout": {**axes, "annotations": notes}}


def assembled(figure: dict[str, Any]) -> go.Figure:
    """A figure from plain dicts without plotly's per-property validation, which costs a few
    milliseconds per trace and shape; `tests/test_dashboard_figures.py` validates the same
    figures in full, so a misspelt property still fails a test."""
    return go.Figure(figure, _validate=False)


def layout(fig: go.Figure, title: str, height: int, **extra: Any) -> go.Figure:
    _set_template(fig)
    fig.update_layout(
        title={"text": title, "x": 0, "xanchor": "left", "font": {"size": 16}},
        height=height,
        margin={"l": 10, "r": 10, "t": 60, "b": 10},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 1, "xanchor": "right"},
        hoverlabel={"namelength": -1},
        **extra,
    )
    return fig


def legend_below(fig: go.Figure) -> go.Figure:
    """The legend under the plot, for a chart in a half-width column: above it, a legend
    that wraps to a second row covers the title."""
    fig.update_layout(legend={"orientation": "h", "yanchor": "top", "y": -0.2, "x": 0,
                              "xanchor": "left"})  # fmt: skip
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
    return layout(fig, title, height)


def down_shapes(
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
        x0, x1 = plain(row["start"]), plain(row["end"])
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


def target_line(
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


def add_shapes(fig: go.Figure, shapes: list[dict[str, Any]], notes: list[dict[str, Any]]) -> None:
    """Append shapes and annotations in one layout update."""
    fig.update_layout(
        shapes=[*fig.layout.shapes, *shapes], annotations=[*fig.layout.annotations, *notes]
    )

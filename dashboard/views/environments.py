"""One environment in depth: latency over time, availability and uptime against their
SLOs, error budget, accuracy with intervals, versions side by side and the bad minutes
with the traces behind them.

The environment, model and resolution pickers are bound to the URL (`focus`,
`focus_model`, `res`) like the sidebar filters, so a link opens this exact view.
"""

from __future__ import annotations

import polars as pl
import streamlit as st

from dashboard import data, tables
from dashboard.environment_figures import (
    accuracy_figure,
    availability_figure,
    latency_figure,
    uptime_figure,
    versions_figure,
)
from dashboard.figure_parts import environment_colors
from dashboard.formatting import (
    DASH,
    fmt_count,
    fmt_ms,
    fmt_ms_change,
    fmt_pct,
    fmt_pp,
    fmt_time,
    md_text,
)
from dashboard.page_data import Environment
from dashboard.table_display import csv_name, show_table
from warehouse import definitions

ALL_MODELS = "All models"
PLOT_CONFIG = {"displaylogo": False}


def _pickers(f: data.Filters) -> tuple[str, str | None, data.Grain] | None:
    envs = [e for e in data.environments() if not f.environments or e in f.environments]
    if not envs:
        st.info("No environment matches the sidebar filters. Clear the environment filter.")
        return None
    left, middle, right = st.columns([3, 3, 2])
    env = left.selectbox("Environment", envs, key="focus", bind="query-params")
    dims = data.dimensions()
    present = set(dims.filter(pl.col("environment") == env)["model"].to_list())
    models = [m for m in data.models() if m in present and (not f.models or m in f.models)]
    choice = middle.selectbox(
        "Model", [ALL_MODELS, *models], key="focus_model", bind="query-params"
    )
    grain = right.segmented_control(
        "Resolution",
        ["hour", "day"],
        default=f.grain,
        key="res",
        bind="query-params",
        help="Per hour shows short outages; per day smooths a month.",
    )
    resolution: data.Grain = "hour" if (grain or f.grain) == "hour" else "day"
    return env, (None if choice == ALL_MODELS else choice), resolution


def _kpis(e: Environment, target: dict[str, float | None]) -> None:
    r = e.kpis
    n_eval = int(r.get("accuracy_n") or 0)
    p95 = r.get("latency_p95_ms")
    left = e.budget.get("budget_left")
    avail_slo, p95_slo = target.get("availability"), target.get("latency_p95_ms")
    availability, uptime = r.get("availability"), r.get("uptime")
    availability_margin = definitions.difference(availability, avail_slo)
    uptime_margin = definitions.difference(uptime, avail_slo)
    p95_margin = definitions.difference(p95, p95_slo)

    cols = [*st.columns(3), *st.columns(3)]  # two rows: no value or delta is cut short
    cols[0].metric("Requests", fmt_count(r.get("requests")), border=True)
    cols[1].metric(
        "Availability",
        fmt_pct(availability),
        delta=f"{fmt_pp(availability_margin)} vs SLO" if availability_margin is not None else None,
        border=True,
        help=f"Good requests / all requests; SLO {fmt_pct(avail_slo)}.",
    )
    cols[2].metric(
        "Uptime",
        fmt_pct(uptime),
        delta=f"{fmt_pp(uptime_margin)} vs SLO" if uptime_margin is not None else None,
        border=True,
        help="Up minutes / judged minutes of the environment (all models together), shown "
        "against the availability SLO for reference.",
    )
    cols[3].metric(
        "p95 latency (ms)",
        fmt_ms(p95, unit=False),
        delta=f"{fmt_ms_change(p95_margin)} vs SLO" if p95_margin is not None else None,
        delta_color="inverse",
        border=True,
        help=f"Over every selected request of this environment together; SLO {fmt_ms(p95_slo)}.",
    )
    cols[4].metric(
        "Accuracy",
        fmt_pct(r.get("accuracy"), 1) if n_eval else DASH,
        delta=f"{n_eval:,} evaluations" if n_eval else "no evaluations",
        delta_color="off",
        delta_arrow="off",
        border=True,
    )
    cols[5].metric(
        "Error budget left",
        fmt_pct(left, 1) if avail_slo is not None else "no SLO set",
        delta="last 30 days" if avail_slo is not None else None,
        delta_color="off",
        delta_arrow="off",
        border=True,
        help="1 − errors / ((1 − availability SLO) × requests), over the 30 days ending at "
        "the newest data, all models of the environment.",
    )


def main() -> None:
    st.title("Environments")
    snap = data.require_data()
    if snap is None:
        return
    if not snap.requests:
        st.info(data.NO_REQUESTS)
        return
    f = data.current_filters()
    picked = _pickers(f)
    if picked is None:
        return
    env, model, grain = picked
    ef = data.Filters(f.start, f.end, (env,), (model,) if model else f.models)
    targets = data.slo_targets().filter(pl.col("environment") == env)
    target = targets.row(0, named=True) if not targets.is_empty() else {}
    configured = bool(target.get("configured"))
    slo_target = {
        "availability": target.get("availability_slo"),
        "latency_p95_ms": target.get("latency_p95_slo_ms"),
    }
    if configured:
        place = " · ".join(
            md_text(v)
            for v in dict.fromkeys((target["kind"], target["provider"], target["region"]))
            if v
        )
        st.caption(
            f"{place}. SLOs: p95 ≤ {fmt_ms(slo_target['latency_p95_ms'])}, "
            f"availability ≥ {fmt_pct(slo_target['availability'])}. "
            f"{fmt_time(f.start, minutes=False)} to "
            f"{fmt_time(f.last_day, minutes=False)} (UTC)."
        )
    else:
        st.warning(
            "No SLO set: this environment is in the data but not in the config, so nothing "
            "here is judged against a target. Add it under [[environments]] to set its SLOs."
        )
    everywhere = data.Filters(f.start, f.end, (), ef.models)
    e = data.environment(ef, everywhere, grain)
    if not e.kpis:
        st.info("No requests for this selection in the range. Widen the time range.")
        return
    _kpis(e, slo_target)

    down = e.down
    periods = definitions.down_periods(down)
    changes = e.changes
    models = [model] if model else [m for m in data.models() if not ef.models or m in ef.models]

    st.subheader("Latency")
    st.plotly_chart(
        latency_figure(
            e.latency,
            models=models,
            slo_ms=slo_target["latency_p95_ms"],
            incidents=periods,
            changes=changes,
            start=f.start,
            end=f.end,
            grain=grain,
        ),
        config=PLOT_CONFIG,
    )
    st.caption(
        "p50, p95 and p99 request duration per period from the latency histograms (within "
        "1% of exact). Red dashes: the environment's p95 SLO. Purple dashes: a new version "
        "started serving. Shaded: periods with at least three down minutes (all are listed "
        "at the bottom of the page). The y axis stops a little above the usual p95, so a "
        "single slow request does not flatten the chart; hover shows every value."
    )

    st.subheader("Availability and uptime")
    left, right = st.columns(2)
    with left:
        st.plotly_chart(
            availability_figure(
                e.traffic,
                slo_target=slo_target["availability"],
                incidents=periods,
                start=f.start,
                end=f.end,
                grain=grain,
            ),
            config=PLOT_CONFIG,
        )
        st.caption("Good requests / all requests per period, against the availability SLO.")
    with right:
        st.plotly_chart(
            uptime_figure(e.uptime, target=slo_target["availability"]),
            config=PLOT_CONFIG,
        )
        st.caption(
            "Up minutes / judged minutes per UTC day, all models together, drawn against the "
            "availability SLO for reference. Minutes with too little traffic are not judged, and "
            "silence is judged against the weeks before, so the first week counts errors only."
        )

    st.subheader("Accuracy")
    accuracy = e.accuracy
    floors = dict(
        zip(
            data.accuracy_floors()["model"].to_list(),
            data.accuracy_floors()["accuracy_floor"].to_list(),
            strict=True,
        )
    )
    colors = environment_colors(data.environments())
    st.plotly_chart(accuracy_figure(accuracy, colors, floors, highlight=env), config=PLOT_CONFIG)
    st.caption(
        "Mean evaluation score with its 95% interval (Wilson for pass/fail, t otherwise), "
        "this environment in full colour and the others faded; the red bar is the model's "
        "floor. An environment is better or worse only where the intervals do not overlap."
    )
    accuracy_table = tables.accuracy_table(accuracy, env, floors)
    span = (env, f"{f.start:%Y-%m-%d}", f"{f.last_day:%Y-%m-%d}")
    show_table(accuracy_table, csv_name("accuracy", *span), key="csv_accuracy")

    st.subheader("Versions side by side")
    versions = e.versions
    st.plotly_chart(versions_figure(versions, changes), config=PLOT_CONFIG)
    versions_table = tables.versions_table(versions, changes)
    show_table(versions_table, csv_name("versions", *span), key="csv_versions")
    st.caption(
        "Every version that served requests in the range, in rollout order, with the same "
        "definitions as above. First and last request are over all data."
    )

    st.subheader("Down periods and bad minutes")
    if down.is_empty():
        st.success("No down minutes in this range.")
        return
    st.caption(
        "Down minutes less than half an hour apart are grouped into one period, longest "
        "first; the minutes between them were up or had too little traffic to judge."
    )
    periods_table = tables.incidents_table(periods)
    show_table(periods_table, csv_name("down-periods", *span), key="csv_down_periods")
    template = data.trace_link()
    table = tables.bad_minutes_table(e.bad_minutes, e.traces, template)
    trace_column = (
        st.column_config.LinkColumn(
            display_text=tables.trace_display_pattern(template), width="medium"
        )
        if template
        else st.column_config.TextColumn(width="medium")
    )
    show_table(table, csv_name("bad-minutes", *span), key="csv_bad_minutes",
               column_config=dict.fromkeys(tables.TRACE_COLUMNS, trace_column))  # fmt: skip
    st.caption(
        f"Each down minute, most failed requests first ({len(e.bad_minutes):,} of "
        f"{len(down):,}), with up to three failed requests from it"
        + (
            ", linked to the trace viewer."
            if template
            else ". Set [dashboard] trace_link in the config to turn trace ids into links."
        )
    )


main()

"""Fleet overview: is anything breaking an SLO right now, and where?

KPIs for the whole selection, then every environment x model with its SLO verdict (worst
first, so the rows that need a person are on top), then one row per environment with its
uptime and rolling error budget.
"""

from __future__ import annotations

import streamlit as st

from dashboard import data, tables
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
from dashboard.overview_figures import error_budget_figure, requests_figure, uptime_heatmap
from dashboard.page_data import Overview
from dashboard.table_display import csv_name, show_table, styled
from warehouse import definitions, slo

PLOT_CONFIG = {"displaylogo": False}


def _kpis(f: data.Filters, o: Overview) -> None:
    now, before = o.fleet, o.previous
    n_eval = int(now.get("accuracy_n") or 0)
    down = int(o.uptime["down_minutes"].sum()) if not o.uptime.is_empty() else 0
    versus = f"vs the {f.days} days before"
    growth = definitions.relative_change(now.get("requests"), before.get("requests"))
    availability_change = definitions.difference(
        now.get("availability"), before.get("availability")
    )
    p95_change = definitions.difference(now.get("latency_p95_ms"), before.get("latency_p95_ms"))
    met, judged, breached = slo.summary(o.report)

    requests_delta = f"{growth:+.1%} {versus}" if growth is not None else None
    unlike = None
    if o.unlike:
        requests_delta = "no like span before"
        unlike = (
            f"No change is shown: the data of {', '.join(map(md_text, o.unlike))} starts "
            f"after the first of the {f.days} days before, which would count its start as "
            "growth."
        )

    cols = [*st.columns(3), *st.columns(3)]  # two rows: no value or delta is cut short
    cols[0].metric(
        "Requests",
        fmt_count(now.get("requests")),
        delta=requests_delta,
        delta_color="off",
        delta_arrow="off" if o.unlike else "auto",
        border=True,
        help=unlike,
    )
    cols[1].metric(
        "Availability",
        fmt_pct(now.get("availability")),
        delta=f"{fmt_pp(availability_change)} {versus}"
        if availability_change is not None
        else None,
        border=True,
        help="Good requests / all requests in the range.",
    )
    cols[2].metric(
        "p95 latency (ms)",
        fmt_ms(now.get("latency_p95_ms"), unit=False),
        delta=f"{fmt_ms_change(p95_change)} {versus}" if p95_change is not None else None,
        delta_color="inverse",
        border=True,
        help="Over every selected request together; each model's p95 is in the table below.",
    )
    cols[3].metric(
        "Accuracy",
        fmt_pct(now.get("accuracy"), 1) if n_eval else DASH,
        delta=f"{n_eval:,} evaluations" if n_eval else "no evaluations",
        delta_color="off",
        delta_arrow="off",
        border=True,
        help="Mean evaluation score over every evaluated request in the range.",
    )
    cols[4].metric(
        "Uptime",
        fmt_pct(now.get("uptime")),
        delta=f"{down:,} down minutes",
        delta_color="off",
        delta_arrow="off",
        border=True,
        help="Up minutes / judged minutes over all selected environments (all models).",
    )
    cols[5].metric(
        "SLOs met",
        f"{met} of {judged}" if judged else "no SLO set",
        delta=f"{breached} breached" if judged else None,
        delta_color="inverse" if breached else "off",
        delta_arrow="off",
        border=True,
        help="Environment x model rows meeting every SLO that applies to them.",
    )


def main() -> None:
    st.title("Fleet overview")
    snap = data.require_data()
    if snap is None:
        return
    f = data.current_filters()
    st.caption(
        f"{fmt_time(f.start, minutes=False)} to {fmt_time(f.last_day, minutes=False)}"
        f" (UTC, {f.days} days). Every figure is computed from the warehouse rollups with the "
        "definitions `hybridlens metrics` uses."
    )
    if not snap.requests:
        st.info(data.NO_REQUESTS)
        return
    o = data.overview(f)
    if o.report.is_empty():
        st.info("No requests match these filters. Widen the time range or clear a filter.")
        return
    _kpis(f, o)

    st.subheader("Models by environment, worst SLOs first")
    st.caption(
        "Each row is one model in one environment over the selected range. A row breaches "
        "when its p95 is above the environment's latency SLO, its availability is below the "
        "availability SLO, or its whole 95% accuracy interval is below the model's floor "
        '("at risk": the mean is below the floor but the interval still reaches it). '
        "Uptime is per environment, all models together, and informs without judging: the "
        "config sets no uptime SLO."
    )
    models_table = tables.slo_table(o.report)
    span = (f"{f.start:%Y-%m-%d}", f"{f.last_day:%Y-%m-%d}")
    show_table(models_table, csv_name("models-by-environment", *span), key="csv_models",
               shown=styled(models_table))  # fmt: skip

    st.subheader("Environments")
    targets = data.slo_targets()
    st.caption(
        "One row per environment, all selected models together. The error budget is "
        "(1 − availability SLO) × requests over the 30 days ending at the newest data, "
        'whatever range is selected; "left" is the share not yet spent on errors.'
    )
    env_table = tables.environment_table(o.environments, targets, o.budget, o.uptime)
    show_table(env_table, csv_name("environments", *span), key="csv_environments",
               shown=styled(env_table))  # fmt: skip
    colors = environment_colors(data.environments())
    left, right = st.columns([3, 2])
    with left:
        st.plotly_chart(requests_figure(o.traffic, colors, f.grain), config=PLOT_CONFIG)
        st.caption("Requests per period, stacked by environment, sampling-weighted.")
    with right:
        st.plotly_chart(error_budget_figure(o.budget, colors), config=PLOT_CONFIG)
        st.caption(
            "Share of each environment's 30-day error budget still unspent; a red bar is "
            "overspent. Environments without an availability SLO are not shown."
        )
    availability_targets = dict(
        zip(targets["environment"].to_list(), targets["availability_slo"].to_list(), strict=True)
    )
    st.plotly_chart(
        uptime_heatmap(o.uptime, data.environments(), availability_targets), config=PLOT_CONFIG
    )
    st.caption(
        "Uptime per UTC day: up minutes / judged minutes. A minute is down when its error "
        "ratio is above the environment's threshold, or when it is silent although that "
        "minute of the week usually has traffic (read from the weeks before it, so an "
        "environment's first week is judged on errors only). Days below the availability SLO "
        "show their value."
    )


main()

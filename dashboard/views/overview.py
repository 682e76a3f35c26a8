"""Fleet overview: is anything breaking an SLO right now, and where?

KPIs for the whole selection, then every environment x model with its SLO verdict (worst
first, so the rows that need a person are on top), then one row per environment with its
uptime and rolling error budget.
"""

from __future__ import annotations

from typing import Any

import polars as pl
import streamlit as st

from dashboard import charts, data, slo


def _columns(table: pl.DataFrame, **extra: Any) -> dict[str, Any]:
    """Counts with thousands separators, numbers-as-text right-aligned, plus `extra`."""
    config: dict[str, Any] = {}
    for column in table.columns:
        if column in charts.COUNT_COLUMNS:
            config[column] = st.column_config.NumberColumn(format="localized")
        elif column in charts.RIGHT_ALIGNED:
            config[column] = st.column_config.TextColumn(alignment="right")
    return config | extra


def _kpis(f: data.Filters, report: pl.DataFrame, uptime: pl.DataFrame) -> None:
    requests = int(report["requests"].sum()) if not report.is_empty() else 0
    errors = int(report["errors"].sum()) if not report.is_empty() else 0
    availability = 1 - errors / requests if requests else None
    latency = data.fleet_latency(f)
    p95 = latency["latency_p95_ms"][0] if not latency.is_empty() else None
    evaluated = report.filter(pl.col("accuracy_n") > 0)
    n_eval = int(evaluated["accuracy_n"].sum()) if not evaluated.is_empty() else 0
    accuracy = (
        float((evaluated["accuracy"] * evaluated["accuracy_n"]).sum()) / n_eval if n_eval else None
    )
    up = int(uptime["up_minutes"].sum()) if not uptime.is_empty() else 0
    down = int(uptime["down_minutes"].sum()) if not uptime.is_empty() else 0
    uptime_value = up / (up + down) if up + down else None

    previous = data.metrics_by(f.previous(), ("environment", "model"))
    prev_requests = int(previous["requests"].sum()) if not previous.is_empty() else 0
    prev_errors = int(previous["errors"].sum()) if not previous.is_empty() else 0
    prev_latency = data.fleet_latency(f.previous()) if prev_requests else None
    prev_p95 = (
        prev_latency["latency_p95_ms"][0]
        if prev_latency is not None and not prev_latency.is_empty()
        else None
    )
    versus = f"vs the {f.days} days before"

    met = report.filter(pl.col("status").is_in([slo.MET, slo.AT_RISK])).height
    judged = report.filter(pl.col("status") != slo.NO_SLO).height
    breached = report.filter(pl.col("status") == slo.BREACH).height

    cols = st.columns(6)
    cols[0].metric(
        "Requests",
        charts.fmt_count(requests),
        delta=f"{(requests - prev_requests) / prev_requests:+.1%} {versus}"
        if prev_requests
        else None,
        delta_color="off",
        border=True,
    )
    cols[1].metric(
        "Availability",
        charts.fmt_pct(availability),
        delta=f"{charts.fmt_pp(availability - (1 - prev_errors / prev_requests))} {versus}"
        if prev_requests and availability is not None
        else None,
        border=True,
        help="Good requests / all requests in the range.",
    )
    cols[2].metric(
        "p95 latency (ms)",
        charts.fmt_ms(p95, unit=False),
        delta=f"{charts.fmt_ms(p95 - prev_p95)} {versus}"
        if p95 is not None and prev_p95 is not None
        else None,
        delta_color="inverse",
        border=True,
        help="Over every selected request together; each model's p95 is in the table below.",
    )
    cols[3].metric(
        "Accuracy",
        charts.fmt_pct(accuracy, 1) if n_eval else charts.DASH,
        delta=f"{n_eval:,} evaluations" if n_eval else "no evaluations",
        delta_color="off",
        delta_arrow="off",
        border=True,
        help="Mean evaluation score over every evaluated request in the range.",
    )
    cols[4].metric(
        "Uptime",
        charts.fmt_pct(uptime_value),
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
        f"{charts.fmt_time(f.start, minutes=False)} to {charts.fmt_time(f.last_day, minutes=False)}"
        f" (UTC, {f.days} days). Every figure is computed from the warehouse rollups with the "
        "definitions `hybridlens metrics` uses."
    )
    report = data.slo_report(f)
    if report.is_empty():
        st.info("No requests match these filters. Widen the time range or clear a filter.")
        return
    # Uptime is per environment (all models); judge the environments that serve the selection.
    serving = tuple(sorted(set(report["environment"].to_list())))
    uptime = data.uptime_daily(data.Filters(f.start, f.end, serving, f.models))
    _kpis(f, report, uptime)

    st.subheader("Models by environment, worst SLOs first")
    st.caption(
        "Each row is one model in one environment over the selected range. A row breaches "
        "when its p95 is above the environment's latency SLO, its availability is below the "
        "availability SLO, or its whole 95% accuracy interval is below the model's floor "
        '("at risk": the mean is below the floor but the interval still reaches it). '
        "Uptime is per environment, all models together, and informs without judging: the "
        "config sets no uptime SLO."
    )
    models_table = charts.slo_table(report)
    st.dataframe(charts.styled(models_table), hide_index=True, column_config=_columns(models_table))

    st.subheader("Environments")
    env_report = data.slo_report(f, ("environment",))
    budget = data.error_budget(f)
    targets = data.slo_targets()
    st.caption(
        "One row per environment, all selected models together. The error budget is "
        "(1 − availability SLO) × requests over the 30 days ending at the newest data, "
        'whatever range is selected; "left" is the share not yet spent on errors.'
    )
    env_table = charts.environment_table(env_report, targets, budget, uptime)
    st.dataframe(charts.styled(env_table), hide_index=True, column_config=_columns(env_table))
    colors = charts.environment_colors(data.environments())
    left, right = st.columns([3, 2])
    with left:
        st.plotly_chart(
            charts.requests_figure(data.traffic_series(f), colors, f.grain),
            config={"displaylogo": False},
        )
        st.caption("Requests per period, stacked by environment, sampling-weighted.")
    with right:
        st.plotly_chart(charts.error_budget_figure(budget, colors), config={"displaylogo": False})
        st.caption(
            "Share of each environment's 30-day error budget still unspent; a red bar is "
            "overspent. Environments without an availability SLO are not shown."
        )
    availability_targets = dict(
        zip(targets["environment"].to_list(), targets["availability_slo"].to_list(), strict=True)
    )
    st.plotly_chart(
        charts.uptime_heatmap(uptime, data.environments(), availability_targets),
        config={"displaylogo": False},
    )
    st.caption(
        "Uptime per UTC day: up minutes / judged minutes. A minute is down when its error "
        "ratio is above the environment's threshold, or when it is silent although that "
        "minute of the week usually has traffic. Days below the availability SLO show "
        "their value."
    )


main()

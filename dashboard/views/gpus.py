"""GPUs: how busy every GPU is, wherever it sits, and which ones sit idle.

Ops reads the heatmap for hot and cold spots and the idle table for capacity to reclaim:
an idle-held GPU is held by a workload that does not use it (a finished job whose pod was
never deleted), an idle-free one is capacity nobody holds. Utilization is DCGM's percent;
a GPU whose utilization looks busy while its SMs mostly wait is listed on its own.
"""

from __future__ import annotations

import streamlit as st

from dashboard import data
from dashboard.figure_parts import environment_colors
from dashboard.formatting import DASH, fmt_count, fmt_number, fmt_time
from dashboard.gpu_cost_figures import cost_table, idle_cost_figure, provisional_note
from dashboard.gpu_figures import (
    BUSY_LOOKING_SM,
    BUSY_LOOKING_UTIL,
    busy_looking_idle,
    energy_figure,
    headroom_table,
    hours_by_state_figure,
    idle_table,
    utilization_heatmap,
)
from dashboard.gpu_page_data import GpuPage
from dashboard.table_display import csv_name, show_table
from warehouse.money import provisional_from

PLOT_CONFIG = {"displaylogo": False}


def _kpis(g: GpuPage) -> None:
    fleet = g.fleet
    hours = float(fleet["gpu_hours"].sum())
    busy = float(fleet["busy_gpu_hours"].sum())
    util = (
        float((fleet["util_mean"].fill_null(0) * fleet["gpu_hours"]).sum()) / hours
        if hours
        else None
    )
    energy = fleet["energy_wh"].sum()
    cols = [*st.columns(3), *st.columns(3)]
    cols[0].metric("GPUs reporting", fmt_count(fleet.height), border=True,
                   help="GPUs (and MIG instances) with samples in the range.")  # fmt: skip
    cols[1].metric(
        "Mean utilization",
        f"{util:.1f}%" if util is not None else DASH,
        border=True,
        help="GPU-hour-weighted mean of DCGM's utilization percent.",
    )
    cols[2].metric(
        "Busy GPU-hours",
        fmt_number(busy, 0),
        delta=f"{busy / hours:.0%} of {hours:,.0f} monitored" if hours else None,
        delta_color="off",
        delta_arrow="off",
        border=True,
        help=f"Hours whose mean utilization is at least {g.idle_threshold:g}%.",
    )
    cols[3].metric("Idle-held GPU-hours", fmt_number(fleet["idle_held_gpu_hours"].sum(), 0),
                   border=True, help="Idle hours of GPUs a workload holds.")  # fmt: skip
    cols[4].metric("Idle-free GPU-hours", fmt_number(fleet["idle_free_gpu_hours"].sum(), 0),
                   border=True, help="Idle hours of GPUs nobody holds.")  # fmt: skip
    cols[5].metric(
        "GPU energy (kWh)",
        fmt_number(energy / 1000 if energy is not None else None, 1),
        border=True,
        help="The GPUs' own measured energy, before PUE and the servers' other power.",
    )


def main() -> None:
    st.title("GPUs")
    snap = data.require_data()
    if snap is None:
        return
    f = data.current_filters()
    g = data.gpus(f)
    st.caption(
        f"{fmt_time(f.start, minutes=False)} to {fmt_time(f.last_day, minutes=False)} (UTC, "
        f"{f.days} days), every GPU of the selected environments (the model filter does not "
        "apply: a GPU may hold no model). A sample stands for the time to the next one, at "
        "most the configured cap; a GPU-hour is busy at or above "
        f"{g.idle_threshold:g}% mean utilization."
    )
    if g.fleet.is_empty():
        st.info(
            "No GPU samples in this range. Load GPU telemetry with `hybridlens ingest gpu "
            "SOURCE` (DCGM exporter scrapes or URLs, nvidia-smi logs, OTLP metrics)."
        )
        return
    _kpis(g)
    colors = environment_colors(data.environments())

    st.subheader("Utilization per GPU")
    st.plotly_chart(utilization_heatmap(g.utilization, f.grain), config=PLOT_CONFIG)
    st.caption("Rows are GPUs grouped by environment and host; hover for SM activity.")

    span = (f"{f.start:%Y-%m-%d}", f"{f.last_day:%Y-%m-%d}")
    st.subheader("Idle GPUs now")
    idle = idle_table(g.fleet, g.idle_threshold)
    if idle.is_empty():
        st.success("Every GPU was busy in its newest hour.")
    else:
        show_table(idle, csv_name("gpus-idle", *span), key="csv_gpus_idle")
        st.caption(
            "GPUs whose newest hours are idle, longest first. Idle for: hours since the last "
            "busy hour (the whole range when it never was). Idle-held GPUs are held by the "
            "workload named; freeing them returns capacity without buying any."
        )
    odd = busy_looking_idle(g.fleet)
    if not odd.is_empty():
        st.warning(
            f"{odd.height} {'GPU looks' if odd.height == 1 else 'GPUs look'} busy "
            f"(utilization ≥ {BUSY_LOOKING_UTIL:g}%) while their "
            f"SMs are active less than {BUSY_LOOKING_SM:.0%} of the time: DCGM's utilization "
            "counts any kernel running, so a server that spin-polls looks busy while idle.",
            icon=":material/warning:",
        )
        show_table(odd, csv_name("gpus-busy-looking-idle", *span), key="csv_gpus_odd")

    left, right = st.columns(2)
    with left:
        st.plotly_chart(hours_by_state_figure(g.daily, colors), config=PLOT_CONFIG)
    with right:
        st.plotly_chart(energy_figure(g.daily, colors), config=PLOT_CONFIG)
    st.subheader("What the capacity costs")
    costs = cost_table(g.costs, g.billed)
    if costs.is_empty():
        st.info(
            "No selected environment has a cost model or a bill for its GPUs' days. Give an "
            "on-prem or edge pool a `cost` table in the config (docs/cost-model.md), or load a "
            "cloud's bill (`hybridlens ingest billing`), to see what its GPUs cost."
        )
    else:
        show_table(costs, csv_name("gpus-cost", *span), key="csv_gpus_cost")
        st.caption(
            "Modelled for on-prem and edge pools: amortization from the purchase date, fixed "
            "monthly cost and energy × PUE × the power price, per day, split by GPU-hours into "
            "busy, idle-held, idle-free and unmonitored (hours with no samples keep their "
            "cost); per GPU-hour is over the pools' whole capacity. A cloud's cost is its "
            "bill as the allocation placed it, on the days its GPUs reported, over the "
            "GPU-hours they cover: an idle cloud GPU costs what a busy one does. So both "
            "read as a price per GPU-hour."
        )
        lag = data.config().billing.lag_hours
        note = provisional_note(g.billed, provisional_from(data.config()), lag)
        if note:
            st.caption(note)
    if not g.costs.is_empty():
        st.plotly_chart(idle_cost_figure(g.costs), config=PLOT_CONFIG)
    st.subheader("Memory headroom and power by pool")
    headroom = headroom_table(g.fleet)
    show_table(headroom, csv_name("gpus-headroom", *span), key="csv_gpus_headroom")
    st.caption(
        "Least headroom is the least free memory any GPU of the pool reported in the range. "
        "Energy comes from the GPUs' energy counters where they have one (resets handled as "
        "Prometheus's increase() does), else from integrated power."
    )


main()

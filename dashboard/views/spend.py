"""Spend: what the fleet costs, in one currency, cloud bills and modelled on-prem and edge
hardware side by side.

Finance reads the daily trend for the month's shape, the budgets for the month so far
against what was planned, the services table for where the money goes, and the
commitments for what was bought and not used. Every table downloads as CSV. Every amount is
`warehouse.money.spend`'s: one measure (amortized `EffectiveCost` unless the billed one is
picked), each line item at its currency's rate on its day, recent days provisional.
"""

from __future__ import annotations

from datetime import timedelta

import streamlit as st

from dashboard import allocation_section, data
from dashboard.budget_figures import budget_figure, budget_table, month_label
from dashboard.formatting import DASH, fmt_pct, fmt_time, md_text
from dashboard.spend_figures import (
    commitments_table,
    daily_spend_figure,
    environments_table,
    kpi_money,
    services_table,
    unmodelled_table,
    weighted_utilization,
)
from dashboard.spend_page_data import SpendPage
from dashboard.table_display import csv_name, show_table

PLOT_CONFIG = {"displaylogo": False}
BASES = {"Effective (amortized)": "EffectiveCost", "Billed (invoiced)": "BilledCost"}


def _kpis(p: SpendPage) -> None:
    daily = p.daily
    cloud = float(daily.filter(~daily["modelled"])["cost"].sum())
    modelled = float(daily.filter(daily["modelled"])["cost"].sum())
    provisional = float(daily.filter(daily["provisional"])["cost"].sum())
    delta = None if p.change.ratio is None else f"{p.change.ratio:+.1%} vs the span before"
    unlike = ""
    if p.change.unlike:
        delta = "no like span before"
        unlike = (
            f" No change is shown: {', '.join(map(md_text, p.change.unlike))} had no bills yet "
            "at the start of the span before, so the two spans are not alike."
        )
    billed_in = sorted({c for currencies in p.services["billed_in"].to_list() for c in currencies})
    used = weighted_utilization(p.commitments)
    cols = [*st.columns(3), *st.columns(3)]
    cols[0].metric("Spend", kpi_money(p.total, p.currency), delta=delta, delta_color="off",
                   delta_arrow="off" if unlike else "auto", border=True,
                   help="Every charge category summed: usage, purchases, taxes, credits, "
                   f"adjustments.{unlike}")  # fmt: skip
    cols[1].metric("Cloud bills", kpi_money(cloud, p.currency), border=True,
                   help="Line items the providers billed (their exports).")  # fmt: skip
    cols[2].metric("On-prem and edge (modelled)", kpi_money(modelled, p.currency),
                   border=True, help="The cost model's days: amortization, energy, fixed "
                   "cost (docs/cost-model.md).")  # fmt: skip
    cols[3].metric(
        "Provisional", kpi_money(provisional, p.currency),
        delta=f"{provisional / float(p.total):.0%} of spend" if p.total else None,
        delta_color="off", delta_arrow="off", border=True,
        help="Days whose end is within the billing lag: the providers may still restate them.",
    )  # fmt: skip
    cols[4].metric("Commitments used", fmt_pct(used, 1) if used is not None else DASH,
                   border=True, help="Used / (used + unused) amortized cost of every "
                   "commitment discount together.")  # fmt: skip
    cols[5].metric("Billed in", ", ".join(billed_in) or DASH, border=True,
                   help=f"The currencies of the line items, each converted to {p.currency} at "
                   "its day's rate ([[billing.rates]]).")  # fmt: skip


def _budgets(p: SpendPage) -> None:
    st.subheader("Budgets")
    mtd = p.budgets
    if mtd is None or not mtd.configured:
        st.info(
            "No budgets yet: add a `[[billing.budgets]]` table (a name and a monthly amount, "
            'optionally one provider, environment or cost center) to the config, see "Monthly '
            'budgets" in docs/config.md.',
            icon=":material/savings:",
        )
        return
    if not mtd.budgets:
        st.info(f"None of the {mtd.configured} budgets applies yet in {mtd.month:%B %Y} (each "
                "starts in its `since` month).")  # fmt: skip
        return
    st.plotly_chart(budget_figure(mtd), config=PLOT_CONFIG)
    show_table(budget_table(mtd), csv_name("budgets", f"{mtd.month:%Y-%m}"), key="csv_budgets")
    provisional = (
        f" {mtd.provisional_days} of them are provisional (inside the billing lag, faded): "
        "the providers may still restate them, and the projection leans on them too."
        if mtd.provisional_days
        else ""
    )
    st.caption(
        f"{month_label(mtd)}: {mtd.start:%Y-%m-%d} to {mtd.end - timedelta(days=1):%Y-%m-%d} "
        "(UTC), whatever day the range above starts on. Budgets "
        f"are held against EffectiveCost in {mtd.currency}, whichever basis is picked above; "
        "the tick is a straight line to the month's end: spend so far over the days "
        f"elapsed, times the month's {mtd.days_in_month} days.{provisional} A scoped budget "
        "counts the provider's line items, or those attributed to its environment or cost "
        "center (see By environment)."
    )


def main() -> None:
    st.title("Spend")
    snap = data.require_data()
    if snap is None:
        return
    f = data.current_filters()
    basis = st.radio("Cost basis", list(BASES), horizontal=True, key="spend_basis")
    p = data.spend(f, BASES[basis])
    st.caption(
        f"{fmt_time(f.start, minutes=False)} to {fmt_time(f.last_day, minutes=False)} (UTC, "
        f"{f.days} days), the whole ledger in {p.currency}: each line item at its currency's "
        "rate on its charge day. The environment and model filters apply to the cost per "
        "model below, not to these ledger totals."
    )
    if p.refused:
        st.error(p.refused, icon=":material/currency_exchange:")
        return
    if p.daily.is_empty():
        st.info(
            "No costs in this range. Load cloud bills with `hybridlens ingest billing PATH` "
            "(FOCUS, AWS CUR, Google Cloud, Azure exports), or give an on-prem pool a `cost` "
            "table in the config for its modelled cost."
        )
        return
    _kpis(p)
    st.plotly_chart(daily_spend_figure(p.daily, p.currency, p.measure), config=PLOT_CONFIG)
    st.caption(
        "Faded bars are provisional days (inside the configured billing lag). On-prem and "
        "edge providers (`on-prem:…`, `edge:…`) are the cost model's days; they bill nothing."
    )

    _budgets(p)
    span = (f"{f.start:%Y-%m-%d}", f"{f.last_day:%Y-%m-%d}")

    st.subheader("Where it goes")
    show_table(services_table(p.services, p.currency), csv_name("spend-services", *span),
               key="csv_services")  # fmt: skip

    st.subheader("By environment")
    show_table(environments_table(p.environments), csv_name("spend-environments", *span),
               key="csv_environments")  # fmt: skip
    st.caption(
        "Each line item's environment from its tags, the tags it inherits (a GCP project's "
        "labels, an Azure resource group), `[[attribution.resources]]` rules, the GPU host "
        'behind it or its region, in that order (docs/billing.md, "Attribution"); what no '
        "rule places is `unallocated`, shown and never dropped. Amounts are in the currency "
        "billed, as attributed."
    )
    if not p.unmodelled.is_empty():
        st.subheader("Spend no model is tagged with")
        show_table(unmodelled_table(p.unmodelled), csv_name("spend-untagged-models", *span),
                   key="csv_unmodelled")  # fmt: skip
        st.caption(
            "The biggest resources whose line items no rule ties to a model, biggest first "
            "(EffectiveCost, in the currency billed): tag these first to allocate them."
        )

    st.subheader("Commitments")
    if not p.commitments:
        st.info("No commitment discount (reservation, savings plan) was used in this range.")
    else:
        show_table(commitments_table(p.commitments, p.currency),
                   csv_name("spend-commitments", *span), key="csv_commitments")  # fmt: skip
        covered = ", ".join(
            f"{md_text(provider)} {fmt_pct(share, 0)}"
            for provider, share in p.coverage.items()
            if share
        )
        st.caption(
            "Utilization: used / (used + unused) amortized cost of each commitment. Coverage "
            f"of usage by commitments, at list prices: {covered or 'none'} (other providers' "
            "usage is all on demand)."
        )
    allocation_section.render(f)


main()

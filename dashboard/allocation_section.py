"""The Spend page's cost-per-model part: what each model costs where it runs, on a stated
cost basis, and what the allocation could not give a model.

Kept apart from `views/spend.py` so the page stays short: the page calls `render` after its
own panels. Amounts are `cost_allocation`'s (docs/billing.md, "Allocation"), the table is
`hybridlens metrics --by environment,model`'s own rows.
"""

from __future__ import annotations

import streamlit as st

from dashboard import data
from dashboard.allocation_figures import (
    UNIT_COSTS,
    allocation_shares,
    cost_center_table,
    counterfactual_table,
    kept_table,
    models_table,
    unit_cost_figure,
)
from dashboard.allocation_page_data import AllocationView
from dashboard.formatting import DASH, fmt_shares
from dashboard.page_data import Filters
from dashboard.spend_figures import kpi_money
from dashboard.table_display import csv_name, show_table

PLOT_CONFIG = {"displaylogo": False}
KEPT_HELP = "Idle GPUs, busy time no workload is mapped to, and days without usage to split by."
BASES = {"Full (hardware amortized)": "full", "Marginal (owned hardware: energy only)": "marginal"}


def _shares(view: AllocationView) -> None:
    parts = allocation_shares(view.by_method)
    shares = dict(zip(parts, fmt_shares(list(parts.values())), strict=True))
    cols = st.columns(3)
    labels = (
        ("models", "Allocated to models", "Tagged to a model, or split by the allocation key."),
        (
            "kept",
            "Kept by environments",
            "Idle GPUs, busy time no workload is mapped to, and days without usage to split by.",
        ),
        ("unallocated", "Unallocated", "Line items no rule gave an environment."),
    )
    for col, (key, label, why) in zip(cols, labels, strict=True):
        share = f"{shares[key]} of the total" if shares[key] != DASH else None
        col.metric(label, kpi_money(parts[key], view.currency), delta=share, delta_color="off",
                   delta_arrow="off", border=True, help=why)  # fmt: skip


def render(f: Filters) -> None:
    st.header("Cost per model")
    label = st.radio("Allocation basis", list(BASES), horizontal=True, key="allocation_basis")
    view = data.allocation(f, BASES[label])
    if view.refused:
        st.error(view.refused, icon=":material/currency_exchange:")
        return
    if view.by_method.is_empty():
        st.info("Nothing is allocated in this range: load bills, or GPU samples of a pool with "
                "a `cost` table, for the days shown.")  # fmt: skip
        return
    _shares(view)
    span = (f"{f.start:%Y-%m-%d}", f"{f.last_day:%Y-%m-%d}", view.basis)
    st.caption(
        "Each day's cost goes to models: a line item tagged with a model is that model's; a "
        "modelled on-prem or edge day follows its pool's GPU time per workload; the rest of "
        "an environment's cost follows `[allocation] key` (GPU time held, else requests). "
        "Rounded by largest remainder, so the parts add up to the ledger exactly."
    )
    models = sorted(
        view.daily.filter(view.daily["requests"] > 0)["model"].unique().to_list()
        if not view.daily.is_empty()
        else []
    )
    if models:
        left, right = st.columns(2)
        model = left.selectbox("Model", models, key="allocation_model")
        unit = right.selectbox("Unit", list(UNIT_COSTS), key="allocation_unit")
        st.plotly_chart(
            unit_cost_figure(view.daily, model, unit, view.currency), config=PLOT_CONFIG
        )
    st.subheader("By environment and model")
    show_table(models_table(view.by_model, view.currency),
               csv_name("cost-per-model", *span), key="csv_models")  # fmt: skip
    st.caption(
        "`hybridlens metrics --by environment,model` over the same range: cost per correct "
        "answer is cost / (requests × accuracy)."
    )
    kept = kept_table(view.by_method, view.currency)
    if not kept.is_empty():
        st.subheader("Not given to a model")
        show_table(kept, csv_name("cost-not-given-to-a-model", *span), key="csv_kept")
    st.subheader("By cost center")
    show_table(cost_center_table(view.by_cost_center, view.currency),
               csv_name("cost-per-cost-center", *span), key="csv_cost_centers")  # fmt: skip
    if view.counterfactual is not None and view.counterfactual.scenarios:
        st.subheader("If every model ran in one place")
        show_table(counterfactual_table(view.counterfactual, view.currency),
                   csv_name("cost-if-moved", *span), key="csv_what_if")  # fmt: skip
        st.caption(
            "Each model's requests priced at the cost per request it had there, on both "
            "bases; a model that never ran there keeps its actual cost. Idle and unallocated "
            "cost is left out: moving traffic retires no hardware and ends no commitment. So "
            "is a model with cost but no requests in the range (a training or batch job): it "
            "has no cost per request to move."
        )

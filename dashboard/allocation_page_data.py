"""What the Spend page's cost-per-model part draws, read in one go (see `page_data`).

The per-model table is `warehouse.metrics`' own rows (cost and accuracy figures), so the
page and `hybridlens metrics --by environment,model` show the same numbers; the rest is
`warehouse.allocation_reads`. A cost without a rate is not drawn: the page shows the
sentence that says which rate to add.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from dashboard.page_data import Filters
from warehouse import allocation_reads as reads
from warehouse.config import Config
from warehouse.metrics import metrics
from warehouse.money import MoneyError
from warehouse.session import Source, reading

MODEL_FIGURES = frozenset({"cost", "accuracy"})


@dataclass(frozen=True)
class AllocationView:
    currency: str
    basis: str
    by_model: pl.DataFrame = field(default_factory=pl.DataFrame)  # metrics by environment, model
    daily: pl.DataFrame = field(default_factory=pl.DataFrame)  # reads.daily_unit_costs
    by_method: pl.DataFrame = field(default_factory=pl.DataFrame)  # environment, model, method
    by_cost_center: pl.DataFrame = field(default_factory=pl.DataFrame)
    counterfactual: reads.Counterfactual | None = None
    refused: str | None = None


def allocation_view(source: Source, config: Config, f: Filters, basis: str) -> AllocationView:
    currency = config.billing.reporting_currency
    envs, models = list(f.environments) or None, list(f.models) or None
    try:
        with reading(source) as s:
            by_model = metrics(
                s, config, start=f.start, end=f.end, by=("environment", "model"),
                environments=envs, models=models, figures=MODEL_FIGURES, basis=basis,
            )  # fmt: skip
            daily = reads.daily_unit_costs(
                s, config, f.start, f.end, basis=basis, environments=envs, models=models
            )
            by_method = reads.allocation_totals(
                s, config, f.start, f.end, by=("environment", "model", "method"), basis=basis
            )
            by_cost_center = reads.allocation_totals(
                s, config, f.start, f.end, by=("cost_center",), basis=basis
            )
            what_if = reads.counterfactual(s, config, f.start, f.end)
    except MoneyError as exc:
        return AllocationView(currency, basis, refused=str(exc))
    return AllocationView(
        currency,
        basis,
        by_model=by_model.filter(pl.col("cost").is_not_null()),
        daily=daily,
        by_method=by_method,
        by_cost_center=by_cost_center,
        counterfactual=what_if,
    )

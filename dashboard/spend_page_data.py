"""What the Spend page draws, read in one go over one connection (see `page_data`).

Every amount comes from `warehouse.money` (one measure, the reporting currency, days inside
the billing lag provisional), so the page and the report agree with `spend`; the budgets'
month to date from `warehouse.budgets`, which sums with `spend` too. A ledger in a
currency without a rate is not drawn at all: the page shows money's sentence instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

import polars as pl

from dashboard.page_data import Filters
from warehouse import attribution, money
from warehouse.budgets import MonthToDate, month_to_date
from warehouse.config import Config
from warehouse.session import Source, reading

SERVICES = {"provider": pl.String, "service": pl.String, "category": pl.String,
            "cost": pl.Float64}  # fmt: skip


@dataclass(frozen=True)
class SpendPage:
    currency: str
    measure: str
    daily: pl.DataFrame  # day, provider, modelled, cost (float), provisional
    services: pl.DataFrame  # provider, service, category, cost, line_items, billed_in
    total: Decimal = Decimal(0)
    # against the same span just before
    change: money.Change = field(default_factory=lambda: money.Change(None))
    commitments: list[money.Commitment] = field(default_factory=list)
    coverage: dict[str, float | None] = field(default_factory=dict)
    refused: str | None = None  # money's sentence when it cannot report the ledger
    # per environment and billing currency: the measure, and which rule attributed it
    environments: pl.DataFrame = field(default_factory=pl.DataFrame)
    unmodelled: pl.DataFrame = field(default_factory=pl.DataFrame)  # biggest, no model found
    # the budgets' month to date, for the month of the range's end (always EffectiveCost)
    budgets: MonthToDate | None = None


def _frame(rows: list[dict[str, object]], schema: dict[str, type[pl.DataType]]) -> pl.DataFrame:
    if not rows:
        return pl.DataFrame(schema=schema)
    frame = pl.DataFrame(rows, infer_schema_length=None)
    return frame.with_columns(pl.col("cost").cast(pl.Float64))


def spend_page(warehouse: Source, config: Config, f: Filters, measure: str) -> SpendPage:
    currency = config.billing.reporting_currency
    try:
        with reading(warehouse) as s:
            daily = money.spend(
                s, config, start=f.start, end=f.end, by=("day", "provider", "modelled"),
                measure=measure,
            )  # fmt: skip
            services = money.spend(
                s, config, start=f.start, end=f.end, by=("provider", "service", "category"),
                measure=measure,
            )  # fmt: skip
            before = f.previous()
            change = money.change(
                services,
                money.spend(s, config, start=before.start, end=before.end, by=(), measure=measure),
                money.spend(s, config, start=money.FIRST, end=before.start + timedelta(days=1),
                            by=("provider",), measure=measure),
            )  # fmt: skip
            used = money.commitments(s, config, start=f.start, end=f.end)
            covered = money.coverage(s, config, start=f.start, end=f.end)
            rows = attribution.attributed(s, config, f.start, f.end)
            unmodelled = attribution.untagged(
                s, config, f.start, f.end, dimension="model", rows=rows
            )
            month = month_to_date(s, config, end=f.end)
    except money.MoneyError as exc:
        empty = pl.DataFrame()
        return SpendPage(currency, measure, empty, empty, refused=str(exc))
    return SpendPage(
        currency=currency,
        measure=measure,
        daily=_frame(
            daily.rows,
            {"day": pl.Date, "provider": pl.String, "modelled": pl.Boolean, "cost": pl.Float64},
        ),
        services=_frame(services.rows, SERVICES),
        total=daily.total,
        change=change,
        commitments=used,
        coverage=covered,
        environments=_by_environment(rows, measure),
        unmodelled=unmodelled,
        budgets=month,
    )


def _by_environment(rows: pl.DataFrame, measure: str) -> pl.DataFrame:
    """The measure per attributed environment and billing currency (rows keep the currency
    they were billed in: attribution converts nothing), with the share no rule placed."""
    if rows.is_empty():
        return pl.DataFrame()
    return (
        rows.group_by(["environment", "BillingCurrency"])
        .agg(
            pl.col(measure).cast(pl.Float64).sum().alias("cost"),
            pl.len().alias("line_items"),
            pl.col("environment_how").unique().sort().alias("hows"),
        )
        .sort(["BillingCurrency", "cost"], descending=[False, True])
    )

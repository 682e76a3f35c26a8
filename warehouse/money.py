"""Cost as finance reads it: one measure, in one reporting currency, with recent days marked
provisional. The definitions of DESIGN.md's cost bases build on these sums; pages, the
report and `metrics` call `spend`, never their own SQL.

- **Measure**: `EffectiveCost` (amortized: what the usage cost once commitments and
  credits are spread over it) unless `BilledCost`, `ListCost` or `ContractedCost` is asked
  for. Every charge category counts (usage, purchases, taxes, credits, adjustments), as
  FOCUS means its measures to be summed: an amortized commitment purchase carries
  `EffectiveCost` 0, so it is not counted twice against the usage it covers, while its
  `BilledCost` is what was invoiced.
- **Currency**: every line item keeps its `BillingCurrency`; its reporting amount is its
  measure times the rate of that currency on its charge day (`[[billing.rates]]`, the
  latest entry on or before the day). A currency other than the reporting one without a
  rate on that day is an error naming it and the first day it lacks one: a sum that
  silently left it out, or added euros to dollars, would be wrong without saying so.
- **Provisional**: a day whose end is less than `billing.lag_hours` (72 by default) ago can
  still change (providers restate recent days), so every row says whether it holds one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from warehouse.config import Config
from warehouse.db import read_sql
from warehouse.errors import UserError, WarehouseError
from warehouse.session import Source, reading

MEASURES = ("EffectiveCost", "BilledCost", "ListCost", "ContractedCost")
DEFAULT_MEASURE = "EffectiveCost"
FIRST, LAST = datetime(1900, 1, 1, tzinfo=UTC), datetime(2200, 1, 1, tzinfo=UTC)
# What spend can be grouped by, and the SQL behind each (the names are allow-listed: they
# become SQL text).
GROUPS = {
    "day": "charge_day::DATE",
    "month": "date_trunc('month', charge_day)::DATE",
    "provider": "ProviderName",
    "account": "BillingAccountId",
    "service": "ServiceName",
    "category": "ChargeCategory",
    "environment": "x_Environment",
    "billed_currency": "BillingCurrency",
    "modelled": "x_Modelled",
}


class MoneyError(WarehouseError, UserError):
    """Costs cannot be reported as asked (a currency without a rate): the message says why."""


@dataclass(frozen=True)
class Spend:
    """Spend rows: the group columns, then `cost` (Decimal, in `currency`), `line_items`,
    `billed_in` (the currencies billed) and `provisional`."""

    currency: str
    measure: str
    by: tuple[str, ...]
    rows: list[dict[str, Any]]

    @property
    def total(self) -> Decimal:
        return sum((r["cost"] for r in self.rows if r["cost"] is not None), Decimal(0))


def check_measure(measure: str) -> str:
    if measure not in MEASURES:
        raise MoneyError(f"cost measure {measure!r} is not one of {', '.join(MEASURES)}")
    return measure


def check_by(by: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    bad = [g for g in by if g not in GROUPS]
    if bad:
        raise MoneyError(f"cannot group spend by {', '.join(bad)}: choose from {', '.join(GROUPS)}")
    return tuple(dict.fromkeys(by))


def rate_params(config: Config) -> list[dict[str, str]]:
    """The configured rates as query parameters (text: DuckDB casts them to decimals)."""
    return [
        {"currency": r.currency, "since": r.since, "rate": repr(r.rate)}
        for r in config.billing.rates
        if r.currency != config.billing.reporting_currency
    ]


def spend(
    warehouse: Source,
    config: Config,
    *,
    start: datetime,
    end: datetime,
    by: tuple[str, ...] | list[str] = ("day",),
    measure: str = DEFAULT_MEASURE,
    now: datetime | None = None,
) -> Spend:
    """Spend over the charge periods starting in [start, end), per `by`, in the reporting
    currency; a MoneyError when a line item's currency has no rate on its day."""
    group = check_by(by)
    measure = check_measure(measure)
    with reading(warehouse) as s:
        found = s.rows("spend", *_query(config, group, measure, start, end, now))
    _refuse_unconverted(found, config)
    keep = [*group, "cost", "line_items", "billed_in", "provisional"]
    rows = [{k: r[k] for k in keep} for r in found]
    if not group:
        rows = [r for r in rows if r["line_items"]]
    return Spend(config.billing.reporting_currency, measure, group, rows)


def missing_rates(warehouse: Source, config: Config) -> dict[str, datetime]:
    """Each currency of the ledger with no rate into the reporting currency on some charge
    day, and the first such day: what `ingest billing` warns about after a load."""
    with reading(warehouse) as s:
        found = s.rows("spend", *_query(config, (), DEFAULT_MEASURE, FIRST, LAST, None))
    return _lacking(found)


def _query(
    config: Config,
    group: tuple[str, ...],
    measure: str,
    start: datetime,
    end: datetime,
    now: datetime | None,
) -> tuple[str, dict[str, Any]]:
    columns = ", ".join(f"{GROUPS[g]} AS {g}" for g in group) or "'all' AS total"
    params = {
        "start": start,
        "end": end,
        "rates": rate_params(config),
        "reporting": config.billing.reporting_currency,
        "lag_hours": config.billing.lag_hours,
        "now": now or datetime.now(UTC),
    }
    return read_sql("spend").format(group=columns, measure=measure), params


def _lacking(found: list[dict[str, Any]]) -> dict[str, datetime]:
    lacking: dict[str, datetime] = {}
    for r in found:
        if not r["unconverted"]:
            continue
        for currency in r["unconverted_currencies"] or []:
            first = r["unconverted_from"]
            if currency not in lacking or first < lacking[currency]:
                lacking[currency] = first
    return lacking


def _refuse_unconverted(found: list[dict[str, Any]], config: Config) -> None:
    lacking = _lacking(found)
    if not lacking:
        return
    reporting = config.billing.reporting_currency
    named = "; ".join(
        f"{c} from {when.astimezone(UTC).date()}" for c, when in sorted(lacking.items())
    )
    example = min(lacking)
    raise MoneyError(
        f"the ledger has costs in a currency with no rate to {reporting} on their day ({named}):"
        f" add one to the config ({config.origin}), e.g. [[billing.rates]] currency = "
        f'"{example}", rate = ..., since = {lacking[example].astimezone(UTC).date()}'
    )

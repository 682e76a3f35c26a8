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
- **Attributed groups**: `attributed_environment`, `attributed_model` and `cost_center` are
  `warehouse.attribution`'s placement of each line item (tags, inherited labels, resource
  rules, GPU host, region; `unallocated` when none places it), so spend can be summed per
  attributed environment in the reporting currency. `environment` is the modelled rows'
  own `x_Environment`, and is null on cloud bills.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from warehouse.config import Config
from warehouse.db import read_sql
from warehouse.definitions import relative_change
from warehouse.errors import UserError, WarehouseError
from warehouse.session import Session, Source, reading

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
    "commitment": "CommitmentDiscountId",
    "commitment_type": "CommitmentDiscountType",
    "commitment_status": "CommitmentDiscountStatus",
    # warehouse.attribution's placement of each line item: these read the ledger's rows
    # through billing_attribution.sql instead of `billing` itself
    "attributed_environment": "environment",
    "attributed_model": "model",
    "cost_center": "cost_center",
}
ATTRIBUTED = frozenset({"attributed_environment", "attributed_model", "cost_center"})


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
        ledger, rules = "billing", dict[str, Any]()
        if ATTRIBUTED & set(group):
            ledger, rules = _attributed(s, config, start, end)
        sql, params = _query(config, group, measure, start, end, now, ledger)
        found = s.rows("spend", sql, {**params, **rules})
    refuse_unconverted(found, config)
    keep = [*group, "cost", "line_items", "billed_in", "provisional"]
    rows = [{k: r[k] for k in keep} for r in found]
    if not group:
        rows = [r for r in rows if r["line_items"]]
    return Spend(config.billing.reporting_currency, measure, group, rows)


@dataclass(frozen=True)
class Change:
    """A span's spend against the same span just before it: `ratio` is (now - before) /
    before, None when there is nothing before or the two are unlike; `unlike` names the
    providers that bill now but whose bills had not started by the first day before."""

    ratio: float | None
    unlike: tuple[str, ...] = ()


def change(current: Spend, previous: Spend, started: Spend) -> Change:
    """Spend now (`current`, grouped by at least `provider`) against the span before
    (`previous`, any grouping); `started` is spend per provider from the beginning up to the
    end of the span before's first day, i.e. the providers whose bills had started by then.

    A provider whose bills start inside the span before or later (a cloud account
    onboarded, a new export, hardware days modelled beside bills loaded only from last week)
    would make the sum grow by a whole bill or part of one, which says nothing about
    spending: then there is no ratio, and the providers are named. A provider billed before
    but not now is a real change, so it counts."""
    billing_now = {r["provider"] for r in current.rows if r["line_items"]}
    had_started = {r["provider"] for r in started.rows if r["line_items"]}
    unlike = tuple(sorted(str(p) for p in billing_now - had_started))
    if unlike or not previous.rows:
        return Change(None, unlike)
    return Change(relative_change(current.total, previous.total))


@dataclass(frozen=True)
class Commitment:
    """One commitment discount over a range: what its used and unused parts cost."""

    id: str
    type: str | None
    used: Decimal
    unused: Decimal

    @property
    def utilization(self) -> float | None:
        """Used / (used + unused), by EffectiveCost: the share of what was committed that
        usage consumed; None when it cost nothing in the range."""
        whole = self.used + self.unused
        return float(self.used / whole) if whole else None


def commitments(
    warehouse: Source, config: Config, *, start: datetime, end: datetime
) -> list[Commitment]:
    """Every commitment discount with usage in the range, from its `Used` and `Unused`
    rows (FOCUS's `CommitmentDiscountStatus`), in the reporting currency."""
    rows = spend(
        warehouse, config, start=start, end=end,
        by=("commitment", "commitment_type", "commitment_status"),
    ).rows  # fmt: skip
    found: dict[str, dict[str, Any]] = {}
    for r in rows:
        if r["commitment"] is None or r["commitment_status"] not in ("Used", "Unused"):
            continue
        entry = found.setdefault(
            r["commitment"],
            {"type": r["commitment_type"], "Used": Decimal(0), "Unused": Decimal(0)},
        )
        entry[r["commitment_status"]] += r["cost"] or Decimal(0)
    return [Commitment(key, v["type"], v["Used"], v["Unused"]) for key, v in sorted(found.items())]


def coverage(
    warehouse: Source, config: Config, *, start: datetime, end: datetime
) -> dict[str, float | None]:
    """Per provider, the share of usage a commitment covered, at list prices (`ListCost`,
    so a discounted hour weighs what it would have cost on demand): covered usage (rows a
    commitment was `Used` for) over all usage."""
    rows = spend(
        warehouse, config, start=start, end=end,
        by=("provider", "category", "commitment_status"), measure="ListCost",
    ).rows  # fmt: skip
    usage: dict[str, Decimal] = {}
    covered: dict[str, Decimal] = {}
    for r in rows:
        if r["category"] != "Usage":
            continue
        cost = r["cost"] or Decimal(0)
        usage[r["provider"]] = usage.get(r["provider"], Decimal(0)) + cost
        if r["commitment_status"] == "Used":
            covered[r["provider"]] = covered.get(r["provider"], Decimal(0)) + cost
    return {
        p: float(covered.get(p, Decimal(0)) / total) if total else None
        for p, total in sorted(usage.items())
    }


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
    ledger: str = "billing",
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
    rates = read_sql("money_rates")
    sql = read_sql("spend").format(columns=columns, measure=measure, rates=rates, ledger=ledger)
    return sql, params


def _attributed(
    s: Session, config: Config, start: datetime, end: datetime
) -> tuple[str, dict[str, Any]]:
    """The ledger's rows as attributed (billing_attribution.sql as a subquery), and the
    parameters its rules bind."""
    from warehouse import attribution  # it brings Polars, which plain spend does not need

    ledger = "(\n" + read_sql("billing_attribution") + "\n) AS attributed"
    return ledger, attribution.params_for(s.con, config, start, end)


def provisional_from(config: Config, now: datetime | None = None) -> datetime:
    """The start of the first provisional charge day (UTC): a day is provisional while its end
    plus `billing.lag_hours` is after now, the rule spend.sql applies to its rows."""
    edge = (now or datetime.now(UTC)).astimezone(UTC) - timedelta(
        hours=config.billing.lag_hours, days=1
    )  # a day starting after this ends less than the lag before now
    return edge.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)


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


def refuse_unconverted(found: list[dict[str, Any]], config: Config) -> None:
    """A MoneyError naming each currency of `found` (rows with `unconverted`,
    `unconverted_currencies`, `unconverted_from`) that has no rate, and the rate to add."""
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

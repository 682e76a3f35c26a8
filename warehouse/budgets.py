"""Month-to-date spend against the config's monthly budgets (`[[billing.budgets]]`).

For a month, up to a day of it (the Spend page: the month of its range's end, up to that
end), each budget that applies that month (`since` on or before it) gets:

- **spent**: EffectiveCost in the reporting currency from the month's first day up to the
  day, `warehouse.money.spend`'s sum of the ledger rows in its scope: the whole ledger, one
  provider (`ProviderName`, any case, or `aws` / `gcp` / `azure`), or one attributed
  environment or cost center (`warehouse.attribution`, `unallocated` included);
- **used**: spent / amount;
- **projected**: a straight line to the month's end, spent / days elapsed × days in the
  month (the month's whole spend once it is over);
- **provisional**: how much of spent falls on days inside `billing.lag_hours`, which the
  providers may still restate: the projection leans on them as much as on final days.

A currency without a rate is `money`'s MoneyError, as for every other sum.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from warehouse import money
from warehouse.config import Config
from warehouse.config_billing import Budget
from warehouse.session import Source, reading

# The three clouds by the short names environments use (`provider = "aws"`), as their
# exports spell ProviderName.
CLOUDS = {"aws": "aws", "gcp": "google cloud", "azure": "microsoft"}
# A budget's scope -> the spend group its value is compared with
SCOPE_GROUPS = {
    "provider": "provider",
    "environment": "attributed_environment",
    "cost_center": "cost_center",
}
OVER, HEADING_OVER, ON_TRACK = "over", "projected over", "on track"


@dataclass(frozen=True)
class BudgetStatus:
    """One budget's month to date, in the reporting currency."""

    name: str
    scope: tuple[str, str] | None  # (environment | provider | cost_center, value); None: all
    amount: Decimal
    spent: Decimal
    provisional: Decimal  # the part of spent on provisional days
    projected: Decimal  # spent carried on in a straight line to the month's end
    line_items: int

    @property
    def used(self) -> float:
        return float(self.spent / self.amount)

    @property
    def projected_used(self) -> float:
        return float(self.projected / self.amount)

    @property
    def status(self) -> str:
        """`over` once spent passes the amount, `projected over` when the projection does,
        else `on track`."""
        if self.spent > self.amount:
            return OVER
        return HEADING_OVER if self.projected > self.amount else ON_TRACK


@dataclass(frozen=True)
class MonthToDate:
    """The budgets of one month, as of a day of it."""

    currency: str
    month: date  # its first day
    start: datetime  # the month's first instant (UTC)
    end: datetime  # up to (excluded): the range's end, or the month's once it is over
    days_elapsed: int
    days_in_month: int
    provisional_days: int  # of the days elapsed, those inside the billing lag
    configured: int  # budgets in the config, whether or not they apply this month
    budgets: list[BudgetStatus] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.days_elapsed == self.days_in_month


def month_of(end: datetime) -> tuple[datetime, datetime]:
    """The UTC calendar month holding the last instant before `end`: (first, next first)."""
    last = end.astimezone(UTC) - timedelta(microseconds=1)
    first = datetime(last.year, last.month, 1, tzinfo=UTC)
    following = datetime(last.year + last.month // 12, last.month % 12 + 1, 1, tzinfo=UTC)
    return first, following


def applies(budget: Budget, month: date) -> bool:
    return budget.since is None or budget.since <= f"{month:%Y-%m}"


def matches(budget: Budget, row: dict[str, Any]) -> bool:
    """Whether a spend row (grouped by day, `provider` and, as needed, the attributed
    groups) is in the budget's scope."""
    if budget.scope is None:
        return True
    kind, value = budget.scope
    found = row[SCOPE_GROUPS[kind]]
    if kind != "provider":
        return bool(found == value)
    wanted = value.strip().lower()
    return found is not None and found.lower() in (wanted, CLOUDS.get(wanted))


def month_to_date(
    warehouse: Source, config: Config, *, end: datetime, now: datetime | None = None
) -> MonthToDate:
    """Each budget that applies in the month of the instant before `end`, with its spend from
    the month's start to `end` (but no later than the end of today), its share used and
    its straight-line projection; a MoneyError when a currency has no rate."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    first, following = month_of(end)
    today_ends = now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    until = max(min(end.astimezone(UTC), following, today_ends), first + timedelta(days=1))
    elapsed = -(-(until - first) // timedelta(days=1))  # a day begun counts as elapsed
    in_month = (following - first).days
    provisional_from = money.provisional_from(config, now)
    provisional_days = max(0, (until - max(provisional_from, first)) // timedelta(days=1))
    wanted = [b for b in config.billing.budgets if applies(b, first.date())]
    result = MonthToDate(
        currency=config.billing.reporting_currency,
        month=first.date(),
        start=first,
        end=until,
        days_elapsed=elapsed,
        days_in_month=in_month,
        provisional_days=min(provisional_days, elapsed),
        configured=len(config.billing.budgets),
    )
    if not wanted:
        return result
    scoped = {SCOPE_GROUPS[b.scope[0]] for b in wanted if b.scope is not None}
    by = ("day", "provider", *sorted(scoped - {"provider"}))
    with reading(warehouse) as s:
        rows = money.spend(s, config, start=first, end=until, by=by, now=now).rows
    for budget in wanted:
        mine = [r for r in rows if matches(budget, r)]
        spent = sum((r["cost"] or Decimal(0) for r in mine), Decimal(0))
        provisional = sum((r["cost"] or Decimal(0) for r in mine if r["provisional"]), Decimal(0))
        result.budgets.append(
            BudgetStatus(
                name=budget.name,
                scope=budget.scope,
                amount=Decimal(repr(budget.amount)),
                spent=spent,
                provisional=provisional,
                projected=spent * in_month / elapsed,
                line_items=sum(r["line_items"] for r in mine),
            )
        )
    return result

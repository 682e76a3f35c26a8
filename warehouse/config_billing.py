"""The config's billing keys: the folders `hybridlens ingest billing` reads by default
(`[[sources.billing]]`), and how money is reported (`[billing]`: the reporting currency,
the rates into it, how long the providers' billing lag keeps recent days provisional, and
the monthly budgets the Spend page holds month-to-date spend against).

Declared apart from `config_gpu` for the same reason it is apart from `config_schema`: each
source family adds its own section beside the others instead of growing one file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from warehouse.config_cost import MAX_MONEY, MONTH, Day
from warehouse.config_fields import Choice, Integer, Number, Sections, Text, setting

CURRENCY = Text(r"[A-Z]{3}", "a 3-letter ISO 4217 currency code (`EUR`)")

FORMATS = ("auto", "focus", "aws-cur", "gcp", "azure")
DATASETS = ("auto", "actual", "amortized")
# A month's budget: the config's bound on any number (under 1e9), far above a month's bill
# in dollars or euros, so a typo of a few zeros is caught.
MAX_BUDGET = 999_999_999.0
SCOPES = ("environment", "provider", "cost_center")
NAME = Text(r"(?s).*\S.*", "a name that is not empty")


@dataclass(frozen=True)
class BillingSource:
    path: str = setting(
        Text(), "a billing export file or a folder of them (read recursively)", required=True
    )
    format: str = setting(
        Choice(FORMATS),
        "`auto`: told from each file's columns; `focus`: every file must be FOCUS; "
        "`aws-cur`: every file must be an AWS CUR (legacy or 2.0); `gcp`: every file must be "
        "a Google Cloud billing export; `azure`: every file must be Azure cost details",
        "auto",
    )
    dataset: str = setting(
        Choice(DATASETS),
        "which dataset Azure cost details files hold (their columns do not say); `auto`: told "
        "from the file or folder name (`ActualCost`, `AmortizedCost`)",
        "auto",
    )


@dataclass(frozen=True)
class Rate:
    currency: str = setting(CURRENCY, "the currency converted from", required=True)
    rate: float = setting(
        Number(0, MAX_MONEY, low_open=True),
        "how many units of the reporting currency one unit of `currency` is worth",
        required=True,
    )
    since: str = setting(
        Day(),
        "the first day (UTC, a TOML date) the rate holds for; it holds until the next rate of "
        "the same currency",
        required=True,
    )


def _one_scope(budget: Budget) -> str | None:
    given = [s for s in SCOPES if getattr(budget, s)]
    if len(given) > 1:
        return (
            f"budget {budget.name!r} is scoped by both {given[0]} and {given[1]}: give at most "
            "one of environment, provider, cost_center (none: the whole ledger), or one budget "
            "per scope"
        )
    return None


@dataclass(frozen=True)
class Budget:
    CHECKS: ClassVar[tuple[Callable[[Budget], str | None], ...]] = (_one_scope,)

    name: str = setting(NAME, "what the budget is for, as the Spend page names it", required=True)
    amount: float = setting(
        Number(0, MAX_BUDGET, low_open=True),
        "the budget for one calendar month (UTC), in the reporting currency, measured in "
        "EffectiveCost (amortized)",
        required=True,
    )
    environment: str | None = setting(
        NAME,
        "only the line items attributed to this environment (`[attribution]`, docs/billing.md "
        '"Attribution"); at most one of `environment`, `provider`, `cost_center`, none: the '
        "whole ledger",
        None,
    )
    provider: str | None = setting(
        NAME,
        "only this provider's line items: its `ProviderName` in any case (`AWS`, `Google "
        "Cloud`, `Microsoft`, `on-prem:dc-frankfurt`), or `aws`, `gcp`, `azure`",
        None,
    )
    cost_center: str | None = setting(
        NAME,
        "only the line items attributed to this cost center (`cost_center_keys` tags, "
        "`[[attribution.resources]]` rules), exactly as spelled",
        None,
    )
    since: str | None = setting(
        Text(MONTH, "a month as YYYY-MM"),
        'the first month (UTC) the budget applies to, as a string (`"2026-10"`); none: every month',
        None,
    )

    @property
    def scope(self) -> tuple[str, str] | None:
        """(which of SCOPES, its value), or None for the whole ledger."""
        return next(((s, getattr(self, s)) for s in SCOPES if getattr(self, s)), None)


def _rates_unique(billing: BillingSettings) -> str | None:
    seen: set[tuple[str, str]] = set()
    for r in billing.rates:
        if (r.currency, r.since) in seen:
            return f"rates names {r.currency} twice for {r.since}: give one rate per day"
        seen.add((r.currency, r.since))
    return None


@dataclass(frozen=True)
class BillingSettings:
    CHECKS: ClassVar[tuple[Callable[[BillingSettings], str | None], ...]] = (_rates_unique,)

    reporting_currency: str = setting(
        CURRENCY,
        "the currency every cost is reported in, beside the currency it was billed in",
        "USD",
    )
    rates: tuple[Rate, ...] = setting(
        Sections(Rate),
        "conversion rates into the reporting currency, one `[[billing.rates]]` table each, "
        "with the day each starts; a cost in another currency without a rate on its day is an "
        "error naming the currency",
        (),
    )
    lag_hours: int = setting(
        Integer(0, 24 * 31),
        "how long after a day ends its cloud costs may still change (the providers' billing "
        "lag): days inside it are marked provisional",
        72,
    )
    budgets: tuple[Budget, ...] = setting(
        Sections(Budget, unique="name"),
        "monthly budgets, one `[[billing.budgets]]` table each: the Spend page shows each "
        "one's month-to-date spend, its share used and a straight-line projection to the "
        "month's end",
        (),
    )

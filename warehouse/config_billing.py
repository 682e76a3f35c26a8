"""The config's billing keys: the folders `hybridlens ingest billing` reads by default
(`[[sources.billing]]`), and how money is reported (`[billing]`: the reporting currency,
the rates into it, and how long the providers' billing lag keeps recent days provisional).

Declared apart from `config_gpu` for the same reason it is apart from `config_schema`: each
source family adds its own section beside the others instead of growing one file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from warehouse.config_cost import MAX_MONEY, Day
from warehouse.config_fields import Choice, Integer, Number, Sections, Text, setting

CURRENCY = Text(r"[A-Z]{3}", "a 3-letter ISO 4217 currency code (`EUR`)")

FORMATS = ("auto", "focus", "aws-cur", "gcp", "azure")
DATASETS = ("auto", "actual", "amortized")


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

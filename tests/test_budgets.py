"""`warehouse.budgets.month_to_date`: each budget's month-to-date EffectiveCost in the
reporting currency, its share used and its straight-line projection, on a hand-made
November whose every sum is worked out below; scoped budgets read the provider or the
attributed environment and cost center; no budgets, no query; a currency without a rate
is money's error."""

from __future__ import annotations

import json
import tomllib
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from hybridlens.ingest_billing import ingest_billing
from warehouse.budgets import HEADING_OVER, ON_TRACK, OVER, month_of, month_to_date
from warehouse.config import Config, parse
from warehouse.db import Warehouse
from warehouse.money import MoneyError, spend

HEADER = (
    "BilledCost,BillingAccountId,BillingAccountName,BillingCurrency,BillingPeriodEnd,"
    "BillingPeriodStart,ChargeCategory,ChargeClass,ChargeDescription,ChargeFrequency,"
    "ChargePeriodEnd,ChargePeriodStart,ContractedCost,EffectiveCost,InvoiceIssuerName,"
    "ListCost,PricingQuantity,PricingUnit,ProviderName,PublisherName,ServiceCategory,"
    "ServiceName,Tags"
)
RATES = '[billing]\nrates = [{ currency = "EUR", rate = 1.1, since = 2026-01-01 }]\n'
NOV, DEC = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)
AS_OF = datetime(2026, 11, 11, tzinfo=UTC)  # ten days of November elapsed
NOW = datetime(2026, 11, 11, 12, tzinfo=UTC)  # 72 h lag: the 8th, 9th and 10th provisional


def line(day: int, provider: str, cost: str, currency: str = "USD", tags: str = "") -> str:
    start, end = f"2026-11-{day:02d}T00:00:00Z", f"2026-11-{day + 1:02d}T00:00:00Z"
    quoted = '"' + tags.replace('"', '""') + '"' if tags else ""
    return (
        f"{cost},acct-{provider},{provider},{currency},2026-12-01T00:00:00Z,"
        f"2026-11-01T00:00:00Z,Usage,,GPU hours,Usage-Based,{end},{start},{cost},{cost},"
        f"{provider},{cost},24,Hours,{provider},{provider},Compute,GPU instances,{quoted}"
    )


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    """November 1-10: AWS 100 USD a day tagged environment aws-prod and team search; Google
    Cloud 50 USD a day untagged; one Azure line of 20 EUR (22 USD at 1.1) on the 5th."""
    root = tmp_path_factory.mktemp("budgets")
    tagged = json.dumps({"environment": "aws-prod", "team": "search"})
    rows = [line(d, "AWS", "100", tags=tagged) for d in range(1, 11)]
    rows += [line(d, "Google Cloud", "50") for d in range(1, 11)]
    rows.append(line(5, "Microsoft", "20", "EUR"))
    bill = root / "november.csv"
    bill.write_text(HEADER + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    wh = Warehouse(root / "w.duckdb")
    assert ingest_billing(wh, [bill], Config()).ok
    return wh


def budgets(text: str) -> Config:
    return parse(tomllib.loads(RATES + text), "budgets.toml")


def budget(name: str, amount: float, scope: str = "", since: str = "") -> str:
    extra = (f"{scope}\n" if scope else "") + (f'since = "{since}"\n' if since else "")
    return f'[[billing.budgets]]\nname = "{name}"\namount = {amount}\n{extra}'


def test_month_to_date_spend_share_and_projection(ledger: Warehouse) -> None:
    config = budgets(budget("all", 6000) + budget("small", 4000))
    got = month_to_date(ledger, config, end=AS_OF, now=NOW)
    assert (got.month, got.start, got.end) == (date(2026, 11, 1), NOV, AS_OF)
    assert (got.days_elapsed, got.days_in_month, got.provisional_days) == (10, 30, 3)
    assert got.currency == "USD" and got.configured == 2 and not got.complete
    whole, small = got.budgets
    assert whole.spent == Decimal("1522")  # 1000 + 500 + 20 EUR × 1.1
    assert whole.spent == spend(ledger, config, start=NOV, end=AS_OF, by=()).total
    assert whole.projected == Decimal("4566")  # 1522 / 10 days × 30
    assert whole.provisional == Decimal("450")  # the 8th to the 10th: 3 × (100 + 50)
    assert whole.used == pytest.approx(1522 / 6000) and whole.status == ON_TRACK
    assert whole.line_items == 21
    assert small.spent == whole.spent and small.projected_used == pytest.approx(4566 / 4000)
    assert small.status == HEADING_OVER  # under its amount now, over it by the month's end


def test_a_budget_spent_past_its_amount_is_over(ledger: Warehouse) -> None:
    config = budgets(budget("tight", 1500))
    (tight,) = month_to_date(ledger, config, end=AS_OF, now=NOW).budgets
    assert tight.spent > tight.amount and tight.status == OVER
    assert tight.used == pytest.approx(1522 / 1500)


def test_scoped_budgets_read_their_rows_only(ledger: Warehouse) -> None:
    config = budgets(
        budget("aws", 2000, 'provider = "aws"')
        + budget("google", 2000, 'provider = "GOOGLE CLOUD"')
        + budget("azure", 100, 'provider = "azure"')
        + budget("prod", 800, 'environment = "aws-prod"')
        + budget("nowhere", 800, 'environment = "unallocated"')
        + budget("search", 1000, 'cost_center = "search"')
        + budget("Search", 1000, 'cost_center = "Search"')  # spelled otherwise: not the tag
    )
    got = {b.name: b for b in month_to_date(ledger, config, end=AS_OF, now=NOW).budgets}
    assert {n: b.spent for n, b in got.items()} == {
        "aws": Decimal(1000),
        "google": Decimal(500),
        "azure": Decimal(22),
        "prod": Decimal(1000),
        "nowhere": Decimal(522),  # untagged Google Cloud and Azure: unallocated, still counted
        "search": Decimal(1000),
        "Search": Decimal(0),
    }
    assert got["aws"].provisional == Decimal(300) and got["azure"].provisional == 0
    assert got["aws"].status == HEADING_OVER and got["aws"].projected == Decimal(3000)
    assert got["prod"].status == OVER and got["search"].status == HEADING_OVER  # 1000 is not over
    assert got["google"].status == ON_TRACK and got["Search"].projected == 0
    assert got["prod"].scope == ("environment", "aws-prod")
    assert got["aws"].scope == ("provider", "aws")


def test_attributed_groups_sum_to_the_ledger(ledger: Warehouse) -> None:
    config = budgets("")
    whole = spend(ledger, config, start=NOV, end=DEC, by=())
    for group in ("attributed_environment", "cost_center", "attributed_model"):
        parts = spend(ledger, config, start=NOV, end=DEC, by=(group, "billed_currency"))
        assert parts.total == whole.total == Decimal("1522"), group
    envs = spend(ledger, config, start=NOV, end=DEC, by=("attributed_environment",))
    assert {r["attributed_environment"]: r["cost"] for r in envs.rows} == {
        "aws-prod": Decimal(1000),
        "unallocated": Decimal(522),
    }


def test_a_finished_month_projects_its_own_spend(ledger: Warehouse) -> None:
    config = budgets(budget("all", 6000))
    got = month_to_date(ledger, config, end=DEC, now=datetime(2027, 1, 20, tzinfo=UTC))
    assert (got.days_elapsed, got.provisional_days, got.complete) == (30, 0, True)
    (whole,) = got.budgets
    assert whole.projected == whole.spent == Decimal("1522") and whole.provisional == 0
    assert month_of(DEC) == month_of(datetime(2026, 11, 30, 23, tzinfo=UTC)) == (NOV, DEC)


def test_days_after_today_are_not_elapsed(ledger: Warehouse) -> None:
    """A range ending after today projects from the days that have begun, not the calendar."""
    config = budgets(budget("all", 6000))
    got = month_to_date(ledger, config, end=DEC, now=NOW)
    assert got.end == datetime(2026, 11, 12, tzinfo=UTC) and got.days_elapsed == 11
    assert got.provisional_days == 4  # the 8th to the 11th, today
    assert got.budgets[0].projected == Decimal("1522") * 30 / 11


def test_a_budget_applies_from_its_since_month(ledger: Warehouse) -> None:
    config = budgets(budget("old", 9000, since="2026-11") + budget("next", 9000, since="2026-12"))
    got = month_to_date(ledger, config, end=AS_OF, now=NOW)
    assert [b.name for b in got.budgets] == ["old"] and got.configured == 2


def test_no_budgets_no_rows_and_no_query(ledger: Warehouse) -> None:
    bare = parse({}, "bare.toml")  # no EUR rate either: nothing is summed, so nothing refuses
    got = month_to_date(ledger, bare, end=AS_OF, now=NOW)
    assert got.budgets == [] and got.configured == 0 and got.days_elapsed == 10


def test_a_currency_without_a_rate_is_money_error(ledger: Warehouse) -> None:
    unrated = parse(tomllib.loads(budget("all", 6000)), "unrated.toml")
    with pytest.raises(MoneyError, match=r"no rate to USD .*EUR from 2026-11-05.*unrated\.toml"):
        month_to_date(ledger, unrated, end=AS_OF, now=NOW)
    scoped = parse(tomllib.loads(budget("aws", 6000, 'provider = "aws"')), "unrated.toml")
    with pytest.raises(MoneyError, match="EUR"):  # the whole month is read, so it still refuses
        month_to_date(ledger, scoped, end=AS_OF, now=NOW)


def test_a_month_is_a_utc_calendar_month() -> None:
    assert month_of(datetime(2026, 12, 31, 23, 59, tzinfo=UTC)) == (
        DEC,
        datetime(2027, 1, 1, tzinfo=UTC),
    )
    assert month_of(datetime(2027, 3, 1, tzinfo=UTC))[0] == datetime(2027, 2, 1, tzinfo=UTC)

"""`warehouse.money.spend`: the ledger's cost in the reporting currency, each line item at
the rate of its currency on its charge day, checked against a sum computed row by row
with `Decimal`; a currency without a rate is an error naming it; recent days provisional."""

from __future__ import annotations

import json
import tomllib
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from test_export_focus import build_ledger

from warehouse.config import ConfigError, parse
from warehouse.db import Warehouse
from warehouse.money import (
    MoneyError,
    Spend,
    change,
    commitments,
    coverage,
    missing_rates,
    spend,
)

OCT, NOV = datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)
RATES = """
[billing]
rates = [
  { currency = "EUR", rate = 1.08, since = 2026-01-01 },
  { currency = "EUR", rate = 1.1, since = 2026-10-15 },
]
"""
PLACES = Decimal("1e-12")


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    return build_ledger(tmp_path_factory.mktemp("money"))


def by_hand(wh: Warehouse, measure: str = "EffectiveCost") -> dict[str, Decimal]:
    """October's cost per currency billed, converted line by line in Python."""
    with wh.read() as con:
        items = con.execute(
            f"SELECT BillingCurrency, ChargePeriodStart, {measure} FROM billing "
            "WHERE ChargePeriodStart >= $a AND ChargePeriodStart < $b",
            {"a": OCT, "b": NOV},
        ).fetchall()
    totals: dict[str, Decimal] = {}
    for currency, when, amount in items:
        rate = Decimal(1)
        if currency == "EUR":
            rate = Decimal("1.1") if when >= datetime(2026, 10, 15, tzinfo=UTC) else Decimal("1.08")
        totals[currency] = totals.get(currency, Decimal(0)) + (amount * rate).quantize(PLACES)
    return totals


def test_each_line_item_is_converted_at_the_rate_of_its_day(ledger: Warehouse) -> None:
    config = parse(tomllib.loads(RATES), "rates.toml")
    got = spend(ledger, config, start=OCT, end=NOV, by=("billed_currency",))
    assert got.currency == "USD" and got.measure == "EffectiveCost"
    assert {r["billed_currency"]: r["cost"] for r in got.rows} == by_hand(ledger)
    assert {r["billed_currency"]: r["line_items"] for r in got.rows} == {"EUR": 31, "USD": 2}
    total = spend(ledger, config, start=OCT, end=NOV, by=())
    assert total.total == sum(by_hand(ledger).values())
    assert total.rows[0]["billed_in"] == ["EUR", "USD"]
    billed = spend(ledger, config, start=OCT, end=NOV, by=("modelled",), measure="BilledCost")
    assert {r["modelled"]: r["cost"] for r in billed.rows} == {
        True: Decimal(0),  # nothing is invoiced for hardware we own
        False: by_hand(ledger, "BilledCost")["USD"],
    }


def test_a_reporting_currency_of_its_own_converts_the_others(ledger: Warehouse) -> None:
    config = parse(
        tomllib.loads(
            '[billing]\nreporting_currency = "EUR"\n'
            'rates = [{ currency = "USD", rate = 0.5, since = 2020-01-01 }]'
        ),
        "eur.toml",
    )
    got = spend(ledger, config, start=OCT, end=NOV, by=("provider",))
    costs = {r["provider"]: r["cost"] for r in got.rows}
    with ledger.read() as con:
        usd = con.execute(
            "SELECT sum(EffectiveCost) FROM billing WHERE BillingCurrency = 'USD' "
            "AND ChargePeriodStart >= $a AND ChargePeriodStart < $b",
            {"a": OCT, "b": NOV},
        ).fetchall()[0][0]
    assert costs["ExampleCloud"] == (usd * Decimal("0.5")).quantize(PLACES)
    assert got.currency == "EUR"


def test_a_currency_without_a_rate_is_an_error_naming_it(ledger: Warehouse) -> None:
    bare = parse({}, "hybridlens.toml")
    with pytest.raises(MoneyError, match=r"no rate to USD .*EUR from 2026-10-01.*hybridlens\.toml"):
        spend(ledger, bare, start=OCT, end=NOV)
    assert missing_rates(ledger, bare) == {"EUR": datetime(2026, 3, 14, tzinfo=UTC)}
    late = parse(
        tomllib.loads('[billing]\nrates = [{ currency = "EUR", rate = 1.1, since = 2026-10-15 }]'),
        "late.toml",
    )
    with pytest.raises(MoneyError, match="EUR from 2026-10-01"):  # no rate before the 15th
        spend(ledger, late, start=OCT, end=NOV)
    later = datetime(2026, 10, 15, tzinfo=UTC)
    assert spend(ledger, late, start=later, end=NOV).total > 0  # from the 15th it converts


def test_days_inside_the_billing_lag_are_provisional(ledger: Warehouse) -> None:
    config = parse(tomllib.loads(RATES), "rates.toml")
    now = datetime(2026, 10, 20, 12, tzinfo=UTC)
    rows = spend(ledger, config, start=OCT, end=NOV, by=("day",), now=now).rows
    provisional = [r["day"] for r in rows if r["provisional"]]
    # with a 72 h lag, a day is final three days after it ends: the 16th ended on the 17th
    assert provisional[0] == date(2026, 10, 17) and provisional[-1] == date(2026, 10, 31)
    none = parse(tomllib.loads(RATES + "lag_hours = 0\n"), "nolag.toml")
    rows = spend(ledger, none, start=OCT, end=NOV, by=("day",), now=now).rows
    assert next(r["day"] for r in rows if r["provisional"]) == date(2026, 10, 20)


def test_bad_measures_groups_and_rates_are_refused(ledger: Warehouse, tmp_path: Path) -> None:
    config = parse(tomllib.loads(RATES), "rates.toml")
    with pytest.raises(MoneyError, match="is not one of EffectiveCost"):
        spend(ledger, config, start=OCT, end=NOV, measure="Cost; DROP TABLE billing")
    with pytest.raises(MoneyError, match="cannot group spend by region"):
        spend(ledger, config, start=OCT, end=NOV, by=("region",))
    for text, said in [
        ('[billing]\nreporting_currency = "usd"', "billing.reporting_currency"),
        ('[billing]\nrates = [{ currency = "EUR", rate = 0, since = 2026-01-01 }]', "rate"),
        ('[billing]\nrates = [{ currency = "EUR", rate = 1.1 }]', "since"),
        ("[billing]\nlag_hours = -1", "billing.lag_hours"),
        (
            '[billing]\nrates = [{ currency = "EUR", rate = 1.1, since = 2026-01-01 }, '
            '{ currency = "EUR", rate = 1.2, since = 2026-01-01 }]',
            "EUR twice",
        ),
    ]:
        with pytest.raises(ConfigError, match=said):
            parse(tomllib.loads(text), "bad.toml")
    assert timedelta(hours=config.billing.lag_hours) == timedelta(days=3)


def test_a_currency_without_a_rate_is_an_error_of_ingest_and_metrics(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from test_export_focus import CLOUD

    from hybridlens.cli import main

    bill = tmp_path / "bill.csv"
    bill.write_text(CLOUD.replace(",USD,", ",CHF,"), encoding="utf-8")
    wh = str(tmp_path / "w.duckdb")
    assert main(["ingest", "billing", str(bill), "--warehouse", wh]) == 2
    err = capsys.readouterr().err
    assert "loaded 2 billing line items" in err  # loaded as billed: nothing is lost
    assert "error: CHF costs (from 2026-10-01) have no rate to USD" in err
    assert 'currency = "CHF", rate = ..., since = 2026-10-01' in err
    metrics = ["metrics", "--warehouse", wh, "--by", "none", "--format", "json"]
    assert main(metrics) == 2
    out, err = capsys.readouterr()
    assert json.loads(out) == []  # the ledger's cost was the only figure
    assert "hybridlens: error: no cost figures:" in err and "CHF from 2026-10-01" in err
    config = tmp_path / "hybridlens.toml"
    config.write_text(
        '[billing]\nrates = [{ currency = "CHF", rate = 1.13, since = 2026-01-01 }]\n'
    )
    assert main(["ingest", "billing", str(bill), "--warehouse", wh, "--config", str(config)]) == 0
    assert "error:" not in capsys.readouterr().err
    assert main([*metrics, "--config", str(config)]) == 0
    (fleet,) = json.loads(capsys.readouterr().out)
    assert fleet["currency"] == "USD" and fleet["cost"] > 0


COMMITTED = """\
BilledCost,BillingAccountId,BillingAccountName,BillingCurrency,BillingPeriodEnd,\
BillingPeriodStart,ChargeCategory,ChargeClass,ChargeDescription,ChargeFrequency,\
ChargePeriodEnd,ChargePeriodStart,ContractedCost,EffectiveCost,InvoiceIssuerName,ListCost,\
PricingQuantity,PricingUnit,ProviderName,PublisherName,ServiceCategory,ServiceName,\
CommitmentDiscountId,CommitmentDiscountType,CommitmentDiscountStatus
{rows}"""
ROW = (
    "{billed},acct,Acct,USD,2026-11-01T00:00:00Z,2026-10-01T00:00:00Z,{category},,x,{freq},"
    "2026-10-02T00:00:00Z,2026-10-01T00:00:00Z,{billed},{effective},ExampleCloud,{list},1,"
    "Hours,ExampleCloud,ExampleCloud,Compute,Virtual Machines,{cid},{ctype},{status}"
)


def test_commitment_utilization_coverage_and_a_purchase_counted_once(tmp_path: Path) -> None:
    """A one-year commitment bought up front (720 billed, 0 effective: its cost is in the
    usage it covers), 50 used and 10 unused of its amortized share on the day, 40 more of
    usage on demand."""
    from hybridlens.ingest_billing import ingest_billing
    from warehouse.config import Config

    rows = [
        ROW.format(billed="720", effective="0", list="720", category="Purchase",
                   freq="One-Time", cid="ri-1", ctype="Reservation", status=""),
        ROW.format(billed="0", effective="50", list="80", category="Usage",
                   freq="Usage-Based", cid="ri-1", ctype="Reservation", status="Used"),
        ROW.format(billed="0", effective="10", list="0", category="Usage",
                   freq="Usage-Based", cid="ri-1", ctype="Reservation", status="Unused"),
        ROW.format(billed="40", effective="40", list="40", category="Usage",
                   freq="Usage-Based", cid="", ctype="", status=""),
    ]  # fmt: skip
    bill = tmp_path / "committed.csv"
    bill.write_text(COMMITTED.format(rows="\n".join(rows)) + "\n", encoding="utf-8")
    wh = Warehouse(tmp_path / "w.duckdb")
    assert ingest_billing(wh, [bill], Config()).ok
    config = Config()
    (ri,) = commitments(wh, config, start=OCT, end=NOV)
    assert (ri.id, ri.type, ri.used, ri.unused) == ("ri-1", "Reservation", 50, 10)
    assert ri.utilization == pytest.approx(50 / 60)
    assert coverage(wh, config, start=OCT, end=NOV) == {"ExampleCloud": pytest.approx(80 / 120)}
    # amortized, the purchase is in the usage; billed, it is the invoice
    assert spend(wh, config, start=OCT, end=NOV, by=()).total == 100
    assert spend(wh, config, start=OCT, end=NOV, by=(), measure="BilledCost").total == 760


def by_provider(*items: tuple[str, str, int]) -> Spend:
    """Spend rows per provider: (provider, cost, line items)."""
    rows = [{"provider": p, "cost": Decimal(c), "line_items": n} for p, c, n in items]
    return Spend("USD", "EffectiveCost", ("provider",), rows)


def test_a_change_compares_like_with_like() -> None:
    now = by_provider(("AWS", "150", 30), ("on-prem:dc", "100", 30))
    before = by_provider(("AWS", "100", 30), ("on-prem:dc", "100", 30))
    both = by_provider(("AWS", "900", 300), ("on-prem:dc", "5000", 900))
    assert change(now, before, both).ratio == pytest.approx(0.25)
    assert change(now, before, both).unlike == ()
    # AWS's bills start inside the span before (or later): the sum would gain part of a
    # whole bill, so there is no ratio and AWS is named
    onprem_only = by_provider(("on-prem:dc", "5000", 900))
    assert change(now, by_provider(("on-prem:dc", "100", 30)), onprem_only).ratio is None
    assert change(now, before, onprem_only).unlike == ("AWS",)
    # a provider billed before and not now is a real change; nothing before is no change
    gone = by_provider(("on-prem:dc", "100", 30))
    assert change(gone, before, both).ratio == pytest.approx(-0.5)
    assert change(now, by_provider(), both).ratio is None
    assert change(now, by_provider(("AWS", "0", 2), ("on-prem:dc", "0", 1)), both).ratio is None
    # a provider with rows but no line item in range does not count as billing now
    idle = by_provider(("AWS", "0", 0), ("on-prem:dc", "100", 30))
    assert change(idle, gone, onprem_only).ratio == pytest.approx(0.0)

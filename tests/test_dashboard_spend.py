"""The Spend page (AppTest): its totals are `warehouse.money.spend`'s for the range it
shows, cloud and modelled apart, the billed basis switches the measure, commitments are
listed, and a currency without a rate is the page's one sentence, not a wrong sum."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from dashboard_support import (
    APP,
    Scenario,
    copy_scenario,
    dataframe_cells,
    markdown_texts,
    plotly_specs,
)
from streamlit.testing.v1 import AppTest

from dashboard.data import FILTERS_KEY
from dashboard.page_data import Filters
from dashboard.spend_figures import kpi_money
from hybridlens.ingest_billing import ingest_billing
from warehouse import money

PAGE = "views/spend.py"
Scope = tuple[str, str] | None
HOSTILE = "<img src=x onerror=alert(1)>"  # a service name from a bill
HEADER = (
    "BilledCost,BillingAccountId,BillingAccountName,BillingCurrency,BillingPeriodEnd,"
    "BillingPeriodStart,ChargeCategory,ChargeClass,ChargeDescription,ChargeFrequency,"
    "ChargePeriodEnd,ChargePeriodStart,ContractedCost,EffectiveCost,InvoiceIssuerName,"
    "ListCost,PricingQuantity,PricingUnit,ProviderName,PublisherName,ServiceCategory,"
    "ServiceName,CommitmentDiscountId,CommitmentDiscountType,CommitmentDiscountStatus"
)


def cloud_day(day: int, billed: str, effective: str, category: str, service: str,
              cid: str = "", status: str = "") -> str:  # fmt: skip
    start = f"2026-10-{day:02d}T00:00:00Z"
    end = f"2026-10-{day + 1:02d}T00:00:00Z"
    return (
        f"{billed},acct-1,Research,USD,2026-11-01T00:00:00Z,2026-10-01T00:00:00Z,{category},,"
        f"{service} hours,Usage-Based,{end},{start},{billed},{effective},ExampleCloud,"
        f"{billed},24,Hours,ExampleCloud,ExampleCloud,Compute,{service},{cid},"
        f"{'Reservation' if cid else ''},{status}"
    )


@pytest.fixture(scope="module")
def scenario(built_scenario: Scenario, tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    root = tmp_path_factory.mktemp("spend")
    mine = copy_scenario(built_scenario, root)
    bill = root / "cloud.csv"
    rows = [
        cloud_day(25, "120", "120", "Usage", "GPU instances"),
        cloud_day(26, "0", "30", "Usage", "GPU instances", "ri-7", "Used"),
        cloud_day(26, "0", "6", "Usage", "GPU instances", "ri-7", "Unused"),
        cloud_day(27, "-15", "-15", "Credit", "GPU instances"),
        cloud_day(30, "9.5", "9.5", "Usage", "Object storage"),
        cloud_day(30, "0.5", "0.5", "Usage", HOSTILE),
    ]
    bill.write_text(HEADER + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    assert ingest_billing(mine.warehouse, [bill], mine.config).ok
    return mine


def run(scenario: Scenario, monkeypatch: pytest.MonkeyPatch, config: Path | None = None) -> AppTest:
    monkeypatch.setenv("HYBRIDLENS_WAREHOUSE", str(scenario.warehouse.path))
    if config is None:
        monkeypatch.delenv("HYBRIDLENS_CONFIG", raising=False)
    else:
        monkeypatch.setenv("HYBRIDLENS_CONFIG", str(config))
    at = AppTest.from_file(str(APP), default_timeout=90)
    at.switch_page(PAGE)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.fixture
def page(scenario: Scenario, monkeypatch: pytest.MonkeyPatch) -> Iterator[AppTest]:
    yield run(scenario, monkeypatch)


def shown_range(at: AppTest) -> Filters:
    found = at.session_state[FILTERS_KEY]
    assert isinstance(found, Filters)
    return found


def test_the_kpis_are_money_spend_for_the_range_shown(page: AppTest, scenario: Scenario) -> None:
    assert [t.value for t in page.title] == ["Spend"]
    f = shown_range(page)
    config = scenario.config
    total = money.spend(scenario.warehouse, config, start=f.start, end=f.end, by=())
    parts = money.spend(scenario.warehouse, config, start=f.start, end=f.end, by=("modelled",))
    split = {r["modelled"]: r["cost"] for r in parts.rows}
    kpis = {m.label: m.value for m in page.metric}
    assert kpis["Spend"] == kpi_money(total.total, "USD")
    assert kpis["Cloud bills"] == f"{float(split[False]):,.2f} USD"  # under 1,000: cents
    assert split[False] == 120 + 30 + 6 - 15 + 9.5 + 0.5
    assert kpis["On-prem and edge (modelled)"] == kpi_money(split[True], "USD")
    assert kpis["Commitments used"] == "83.3%"
    assert kpis["Billed in"] == "EUR, USD"  # the pools are priced in euros
    services = next(df.value for df in page.dataframe if "Service" in df.value.columns)
    assert {"GPU instances", "Object storage", "GPU servers"} <= set(services["Service"])


def test_no_change_is_claimed_against_a_span_the_bills_did_not_cover(page: AppTest) -> None:
    """The cloud bill starts inside the range shown, so the span before holds only the
    modelled hardware days: a ratio would count the bill's arrival as a rise in spending."""
    spend_kpi = next(m for m in page.metric if m.label == "Spend")
    assert spend_kpi.delta == "no like span before"
    assert "ExampleCloud had no bills yet" in spend_kpi.help


def test_the_billed_basis_sums_what_was_invoiced(page: AppTest, scenario: Scenario) -> None:
    page.radio(key="spend_basis").set_value("Billed (invoiced)").run()
    assert not page.exception
    f = shown_range(page)
    billed = money.spend(
        scenario.warehouse, scenario.config, start=f.start, end=f.end, by=(), measure="BilledCost"
    )
    kpis = {m.label: m.value for m in page.metric}
    assert kpis["Spend"] == kpi_money(billed.total, "USD")
    assert kpis["On-prem and edge (modelled)"] == "0.00 USD"  # nothing invoiced for our own


def test_commitments_show_their_utilization(page: AppTest) -> None:
    table = next(df.value for df in page.dataframe if "Utilization" in df.value.columns)
    assert table["Commitment"].tolist() == ["ri-7"]
    assert table["Utilization"].tolist() == ["83.3%"]  # 30 used of 36
    assert any("Coverage of usage by commitments" in t for t in markdown_texts(page))


def test_no_raw_missing_values_and_names_from_bills_stay_text(page: AppTest) -> None:
    for text in markdown_texts(page) + dataframe_cells(page):
        assert "nan" not in text.split() and "None" not in text.split(), text
    assert all("<img" not in text for text in markdown_texts(page))
    assert all("<img" not in spec for spec in plotly_specs(page))
    assert HOSTILE in dataframe_cells(page)  # shown as text in the services table


def test_a_currency_without_a_rate_is_said_not_summed(
    scenario: Scenario, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bare = tmp_path / "hybridlens.toml"
    bare.write_text("[dashboard]\ndefault_days = 30\n", encoding="utf-8")
    at = run(scenario, monkeypatch, bare)
    (error,) = at.error
    assert "no rate to USD" in error.value and "EUR" in error.value
    assert not at.metric


def test_an_empty_ledger_says_how_to_fill_it(
    built_scenario: Scenario, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mine = copy_scenario(built_scenario, tmp_path)
    with mine.warehouse.write() as con:
        con.execute("DELETE FROM billing")
    at = run(mine, monkeypatch)
    assert any("hybridlens ingest billing" in i.value for i in at.info)


def test_cost_by_environment_is_attributed_and_nothing_is_dropped(
    page: AppTest, scenario: Scenario
) -> None:
    from warehouse.attribution import attributed

    table = next(df.value for df in page.dataframe if "Placed by" in df.value.columns)
    f = shown_range(page)
    rows = attributed(scenario.warehouse, scenario.config, f.start, f.end)
    for currency in ("EUR", "USD"):
        mine = rows.filter(rows["BillingCurrency"] == currency)
        shown = table[table["Currency"] == currency]
        assert sum(float(c.replace(",", "")) for c in shown["Cost"]) == pytest.approx(
            float(mine["EffectiveCost"].cast(float).sum()), abs=0.01 * len(shown)
        )
    # the test's cloud rows carry no tags and no region: unallocated, shown
    assert "unallocated" in set(table["Environment"])
    unmodelled = next(df.value for df in page.dataframe if "Resource" in df.value.columns)
    assert set(unmodelled["Provider"]) >= {"ExampleCloud"}


def test_a_credit_that_nearly_cancels_the_charges_does_not_inflate_their_shares() -> None:
    """Shares are of the charges (the positive costs): over the net 10.00 the two
    charges read 1000% and 500%; here they sum to 100% and the credit takes 93.3% back."""
    import polars as pl

    from dashboard.spend_figures import environments_table, services_table

    services = pl.DataFrame(
        {
            "provider": ["AWS"] * 3,
            "service": ["EC2", "S3", "EC2"],
            "category": ["Usage", "Usage", "Credit"],
            "cost": [100.0, 50.0, -140.0],
            "line_items": [3, 2, 1],
            "billed_in": [["USD"]] * 3,
        }
    )
    assert services_table(services, "USD")["Share"].to_list() == ["66.7%", "33.3%", "-93.3%"]
    environments = pl.DataFrame(
        {
            "environment": ["aws", "unallocated", "dc"],
            "BillingCurrency": ["USD", "USD", "EUR"],
            "cost": [150.0, -140.0, 0.0],
            "line_items": [5, 1, 1],
            "hows": [["tag"], ["none"], ["modelled"]],
        }
    )
    table = environments_table(environments)
    assert table["Environment"].to_list() == ["aws", "unallocated", "dc"]
    assert table["Share of the currency"].to_list() == ["100.0%", "-93.3%", "—"]


def test_budgets_show_their_month_to_date(page: AppTest, scenario: Scenario) -> None:
    from warehouse.budgets import month_to_date

    f = shown_range(page)
    mtd = month_to_date(scenario.warehouse, scenario.config, end=f.end)
    assert mtd.budgets, "the scenario config has budgets"
    table = next(df.value for df in page.dataframe if "Budget" in df.value.columns)
    assert table["Budget"].tolist() == [b.name for b in mtd.budgets]
    assert table["Month to date (USD)"].tolist() == [f"{b.spent:,.2f}" for b in mtd.budgets]
    assert table["Projected (USD)"].tolist() == [f"{b.projected:,.2f}" for b in mtd.budgets]
    assert set(table["Status"]) <= {"On track", "Projected over", "Over budget"}
    assert any(s.value == "Budgets" for s in page.subheader)
    (bullet,) = [s for s in plotly_specs(page) if "projected at month end" in s]
    assert f"{mtd.month:%B %Y}" in bullet


def test_every_table_downloads_as_csv_of_the_frame_it_shows(
    scenario: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each download button carries the CSV of the very table above it, under its own name."""
    import polars as pl
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    from dashboard.table_display import csv_bytes

    served: dict[str, bytes] = {}
    keep = MemoryMediaFileStorage.load_and_get_id

    def record(self: MemoryMediaFileStorage, data: str | bytes, mimetype: str, kind: Any,
               filename: str | None = None) -> str:  # fmt: skip
        if filename and isinstance(data, bytes):
            served[filename] = data
        return keep(self, data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", record)
    at = run(scenario, monkeypatch)
    buttons = at.get("download_button")
    assert len(buttons) == len(at.dataframe) == len(served) >= 5
    assert {b.label for b in buttons} == {"Download CSV"}
    f = shown_range(at)
    span = f"{f.start:%Y-%m-%d}-{f.last_day:%Y-%m-%d}"
    assert set(served) == {
        f"budgets-{f.last_day:%Y-%m}.csv",
        f"spend-services-{span}.csv",
        f"spend-environments-{span}.csv",
        f"spend-untagged-models-{span}.csv",
        f"spend-commitments-{span}.csv",
        # the cost-per-model part below them, on the basis shown
        f"cost-per-model-{span}-full.csv",
        f"cost-not-given-to-a-model-{span}-full.csv",
        f"cost-per-cost-center-{span}-full.csv",
        f"cost-if-moved-{span}-full.csv",
    }
    shown = [pl.from_pandas(df.value).cast(pl.String) for df in at.dataframe]
    for table, data in zip(shown, served.values(), strict=True):  # in the page's order
        assert data == csv_bytes(table), data[:200]
    services = next(t for t in shown if "Service" in t.columns)
    assert HOSTILE in served[f"spend-services-{span}.csv"].decode()  # text, not a formula
    assert services.height + 1 == len(served[f"spend-services-{span}.csv"].splitlines())


def test_without_budgets_the_page_says_how_to_add_one(
    scenario: Scenario, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    rated = tmp_path / "hybridlens.toml"
    rated.write_text(
        '[billing]\nrates = [{ currency = "EUR", rate = 1.08, since = 2024-01-01 }]\n',
        encoding="utf-8",
    )
    at = run(scenario, monkeypatch, rated)
    (hint,) = [i.value for i in at.info if "[[billing.budgets]]" in i.value]
    assert "docs/config.md" in hint
    assert not [df for df in at.dataframe if "Budget" in df.value.columns]
    assert not [s for s in plotly_specs(at) if "projected at month end" in s]


def test_a_csv_download_is_the_table_shown_with_formulas_made_inert() -> None:
    import polars as pl

    from dashboard.table_display import csv_bytes, csv_name

    table = pl.DataFrame(
        {
            "Service": ['=HYPERLINK("http://x")', "+cmd", "@SUM(A1)", "GPU, hours", HOSTILE],
            "Cost (USD)": ["-15.00", "+3.0%", "1,234.50", "-1,234.50", "—"],
            "Line items": [1, 2, 3, 4, 5],
        }
    )
    text = csv_bytes(table).decode("utf-8")
    assert text.splitlines()[0] == "Service,Cost (USD),Line items"
    assert text.splitlines()[1:] == [
        '"\'=HYPERLINK(""http://x"")",-15.00,1',
        "'+cmd,+3.0%,2",
        '\'@SUM(A1),"1,234.50",3',
        '"GPU, hours","-1,234.50",4',
        f"{HOSTILE},—,5",
    ]
    assert csv_name("spend-services", "2026-10-25", "2026-10-31") == (
        "spend-services-2026-10-25-2026-10-31.csv"
    )
    assert csv_name("Budgets", "2026-10") == "budgets-2026-10.csv" and csv_name("!") == "table.csv"


def test_columns_of_numbers_shown_as_text_are_right_aligned() -> None:
    import polars as pl

    from dashboard.table_display import column_config

    table = pl.DataFrame(
        {
            "Environment": ["dc-frankfurt", "aws-us-east-1", "edge-1"],
            "Cost": ["48,494.12", "-15.00", "—"],
            "Share": ["98.6%", "+1.4 %", "0.0%"],
            "Untagged": ["2,472.00 USD", "0.5 pp", "30.0 d"],
            "Kind": ["cloud · gcp", "12 GPUs", "—"],  # a number and a word: text
            "Nothing": ["—", "—", "—"],
            "Requests": [1, 2, 3],
        }
    )
    config = column_config(table)
    right = {c for c, v in config.items() if v.get("alignment") == "right"}
    assert right == {"Cost", "Share", "Untagged"}
    assert config["Requests"]["type_config"]["format"] == "localized"


def test_a_wide_table_pins_the_columns_that_name_its_rows() -> None:
    import polars as pl

    from dashboard.table_display import column_config

    names = {"Status": ["met"], "Environment": ["dc-1"], "Model": ["m"]}
    figures = {f"Figure {i}": [str(i)] for i in range(7)}
    wide = column_config(pl.DataFrame(names | figures | {"Version": ["1.0"]}))
    assert {c for c, v in wide.items() if v.get("pinned")} == set(names)  # not a late Version
    assert wide["Figure 0"]["alignment"] == "right" and not wide["Figure 0"].get("pinned")
    narrow = column_config(pl.DataFrame(names | {"Requests": [1], "Missed": ["accuracy"]}))
    assert not any(v.get("pinned") for v in narrow.values())
    assert narrow["Missed"]["width"] == "medium"  # "p95 latency" in a later row fits too


def test_a_long_resource_id_does_not_push_the_columns_after_it_off_the_table() -> None:
    import polars as pl

    from dashboard.table_display import column_config

    arn = "arn:aws:elasticloadbalancing:us-east-1:302118755612:loadbalancer/app/" + "x" * 200
    config = column_config(pl.DataFrame({"Resource": [arn], "Commitment": [arn], "Cost": ["1"]}))
    assert config["Resource"]["width"] == config["Commitment"]["width"] == "large"


def test_the_budget_figure_is_valid_plotly_and_escapes_names() -> None:
    from decimal import Decimal

    import plotly.graph_objects as go

    from dashboard.budget_figures import budget_figure, budget_table
    from warehouse.budgets import BudgetStatus, MonthToDate

    def status(name: str, spent: str, on_late_days: str, scope: Scope) -> BudgetStatus:
        got = Decimal(spent)
        return BudgetStatus(name, scope, Decimal(1000), got, Decimal(on_late_days), got * 3, 9)

    mtd = MonthToDate(
        "USD", date(2026, 11, 1), datetime(2026, 11, 1, tzinfo=UTC),
        datetime(2026, 11, 11, tzinfo=UTC), 10, 30, 3, 3,
        [status("all", "200", "50", None), status(HOSTILE, "500", "0", ("provider", "aws")),
         status("team", "1200", "100", ("cost_center", "search"))],
    )  # fmt: skip
    fig = budget_figure(mtd)
    go.Figure(fig.to_dict())  # full validation of every property
    spec = fig.to_json()
    assert "<img" not in spec and "November 2026, 10 of 30 days (3 provisional)" in spec
    table = budget_table(mtd)
    assert table["Status"].to_list() == ["On track", "Projected over", "Over budget"]
    assert table["Scope"].to_list() == ["whole ledger", "provider aws", "cost center search"]
    assert table["Used"].to_list() == ["20.0%", "50.0%", "120.0%"]
    assert table["Projected use"].to_list() == ["60.0%", "150.0%", "360.0%"]

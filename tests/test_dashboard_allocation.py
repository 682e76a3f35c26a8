"""The Spend page's cost-per-model part (AppTest): its table is `metrics --by
environment,model`, its three shares add up to the ledger, the basis switch gives the
marginal figures, the unit-cost chart compares one model across environments, and the
counterfactual prices every model in each place."""

from __future__ import annotations

import json
from collections.abc import Iterator

import polars as pl
import pytest
from dashboard_support import Scenario, copy_scenario, open_page, plotly_specs
from streamlit.testing.v1 import AppTest
from test_allocation import bill

from dashboard.allocation_figures import cost_center_table, models_table
from dashboard.data import FILTERS_KEY
from dashboard.page_data import Filters
from dashboard.spend_figures import kpi_money
from hybridlens.ingest_billing import ingest_billing
from warehouse import money
from warehouse.metrics import metrics

PAGE = "views/spend.py"


@pytest.fixture(scope="module")
def scenario(built_scenario: Scenario, tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    root = tmp_path_factory.mktemp("allocation-page")
    mine = copy_scenario(built_scenario, root)
    cloud = next(e.name for e in mine.config.environments if e.kind == "cloud")
    path = bill(root / "cloud.csv", [
        {"day": 24, "cost": "310.00", "tags": {"environment": cloud}},
        {"day": 25, "cost": "295.40", "tags": {"environment": cloud}},
        {"day": 25, "cost": "12.00", "tags": {"team": "search"}},  # no environment
    ])  # fmt: skip
    assert ingest_billing(mine.warehouse, [path], mine.config).ok
    return mine


@pytest.fixture
def page(scenario: Scenario, monkeypatch: pytest.MonkeyPatch) -> Iterator[AppTest]:
    yield open_page(scenario.warehouse.path, PAGE, monkeypatch)


def shown(at: AppTest) -> Filters:
    found = at.session_state[FILTERS_KEY]
    assert isinstance(found, Filters)
    return found


def table(at: AppTest, column: str) -> object:
    return next(df.value for df in at.dataframe if column in df.value.columns)


def test_the_model_table_is_metrics_by_environment_and_model(
    page: AppTest, scenario: Scenario
) -> None:
    f = shown(page)
    found = metrics(scenario.warehouse, scenario.config, start=f.start, end=f.end,
                    by=("environment", "model"))  # fmt: skip
    expected = models_table(found.filter(found["cost"].is_not_null()), "USD")
    drawn = table(page, "Per correct answer")
    assert drawn.to_dict("list") == {c: expected[c].to_list() for c in expected.columns}  # type: ignore[attr-defined]
    assert len(drawn) > 1  # type: ignore[arg-type]


def test_the_three_shares_add_up_to_the_ledger(page: AppTest, scenario: Scenario) -> None:
    f = shown(page)
    total = money.spend(scenario.warehouse, scenario.config, start=f.start, end=f.end, by=())
    cards = {m.label: m for m in page.metric}
    parts = ("Allocated to models", "Kept by environments", "Unallocated")
    assert all(p in cards for p in parts)
    assert cards["Unallocated"].value == kpi_money(12.0, "USD")
    assert total.total > 0 and f"{12 / float(total.total):.1%}" in str(cards["Unallocated"].delta)
    # the Spend KPI (the ledger) is what the three shares split
    assert cards["Spend"].value == kpi_money(total.total, "USD")


def test_the_marginal_basis_switches_every_figure(page: AppTest, scenario: Scenario) -> None:
    full = table(page, "Per correct answer").to_dict("list")  # type: ignore[attr-defined]
    page.radio(key="allocation_basis").set_value("Marginal (owned hardware: energy only)").run()
    assert not page.exception
    f = shown(page)
    found = metrics(scenario.warehouse, scenario.config, start=f.start, end=f.end,
                    by=("environment", "model"), basis="marginal")  # fmt: skip
    expected = models_table(found.filter(found["cost"].is_not_null()), "USD")
    marginal = table(page, "Per correct answer").to_dict("list")  # type: ignore[attr-defined]
    assert marginal == {c: expected[c].to_list() for c in expected.columns}
    assert marginal["Cost (USD)"] != full["Cost (USD)"]


def test_one_model_is_compared_across_environments(page: AppTest) -> None:
    assert page.selectbox(key="allocation_model").options
    page.selectbox(key="allocation_unit").set_value("per GPU-hour held").run()
    assert not page.exception
    specs = [json.loads(s) for s in plotly_specs(page)]
    titles = [s["layout"]["title"]["text"] for s in specs]
    assert any("cost per GPU-hour held (USD)" in t for t in titles), titles


def test_the_counterfactual_prices_each_model_in_each_place(page: AppTest) -> None:
    what_if = table(page, "If every model ran in")
    places = what_if["If every model ran in"].tolist()  # type: ignore[index]
    assert places[0] == "(as it ran)" and "all on-prem" in places
    cost_centers = table(page, "Cost center")
    assert "search" in cost_centers["Cost center"].tolist()  # type: ignore[index]


def test_what_an_environment_keeps_is_not_called_unallocated_beside_the_card() -> None:
    """`metrics` names both `unallocated`; the page's Unallocated card means no environment."""
    rows = pl.DataFrame(
        {
            "environment": ["dc-frankfurt", "unallocated", "dc-frankfurt"],
            "model": ["unallocated", "unallocated", "llama"],
            "cost": [3.0, 2.0, 1.0],
            "requests": [0, 0, 10],
            "cost_per_1k_requests": [None, None, 100.0],
            "cost_per_1m_tokens": [None, None, None],
            "accuracy": [None, None, 0.9],
            "cost_per_correct_answer": [None, None, 0.11],
        }
    )
    shown = models_table(rows, "USD")
    assert shown["Model"].to_list() == ["(kept by the environment)", "unallocated", "llama"]
    centers = pl.DataFrame({"cost_center": ["search", "unallocated"], "cost": [1.0, 3.0]})
    assert cost_center_table(centers, "USD")["Cost center"].to_list() == [
        "search",
        "(no cost center)",
    ]


def test_unit_costs_below_one_keep_four_places_in_plain_decimals() -> None:
    from dashboard.allocation_figures import _unit

    # a column read 0.4677 above 0.195, and a tiny cost came out as 1.234e-05
    assert [_unit(v) for v in (0.4677, 0.195, 0.0000123, 0.0, 12.3456, -0.5, None)] == [
        "0.4677", "0.1950", "0.00001230", "0.00", "12.35", "-0.5000", "—",
    ]  # fmt: skip

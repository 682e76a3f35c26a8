"""`metrics`' cost keys: the allocated cost in the reporting currency per group, on the
full or marginal basis, with a row for every environment that cost money (and one for
`unallocated`), so that `cost` summed over `--by environment` is the ledger's
EffectiveCost for the range; unit costs are that cost over the group's own requests,
tokens and correct answers."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from dashboard_support import Scenario, copy_scenario
from test_allocation import bill

from hybridlens import cli
from hybridlens.ingest_billing import ingest_billing
from warehouse import money
from warehouse.config import Config
from warehouse.load import store_config
from warehouse.metrics import metric_rows, metrics

START, END = datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def scenario(built_scenario: Scenario, tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    root = tmp_path_factory.mktemp("metrics-cost")
    mine = copy_scenario(built_scenario, root)
    env = mine.config.environments[0].name
    path = bill(root / "cloud.csv", [
        {"day": 25, "cost": "120.50", "tags": {"environment": env}},
        {"day": 26, "cost": "-15", "tags": {"environment": env}, "category": "Credit"},
        {"day": 27, "cost": "9.25", "tags": {"environment": env, "model": "tagged-model"}},
        {"day": 28, "cost": "3.10"},  # no rule places it: unallocated
    ])  # fmt: skip
    assert ingest_billing(mine.warehouse, [path], mine.config).ok
    return mine


def rows(scenario: Scenario, by: tuple[str, ...], **kw: Any) -> list[dict[str, Any]]:
    return metric_rows(scenario.warehouse, scenario.config, start=START, end=END, by=by, **kw).rows


def test_cost_by_environment_adds_up_to_the_ledger(scenario: Scenario) -> None:
    found = rows(scenario, ("environment",))
    ledger = money.spend(scenario.warehouse, scenario.config, start=START, end=END, by=())
    total = sum(Decimal(str(r["cost"])) for r in found if r["cost"] is not None)
    assert abs(total - ledger.total) < Decimal("1e-6")  # floats of exact decimals
    assert {r["currency"] for r in found if r["cost"] is not None} == {"USD"}
    unallocated = next(r for r in found if r["environment"] == "unallocated")
    assert unallocated["cost"] == pytest.approx(3.10)
    assert unallocated["requests"] == 0 and unallocated["cost_per_1k_requests"] is None
    # every environment that costs money has a row, whether or not it served requests
    with scenario.warehouse.read() as con:
        costly = con.execute(
            "SELECT DISTINCT environment FROM cost_allocation WHERE day >= ? AND day < ?",
            [START.date(), END.date()],
        ).fetchall()
    assert {e for (e,) in costly} <= {r["environment"] for r in found}


def test_cost_by_model_and_the_fleet_add_up_too(scenario: Scenario) -> None:
    by_env = sum(r["cost"] or 0 for r in rows(scenario, ("environment",)))
    by_model = rows(scenario, ("environment", "model"))
    fleet = rows(scenario, ())
    assert sum(r["cost"] or 0 for r in by_model) == pytest.approx(by_env)
    assert fleet[0]["cost"] == pytest.approx(by_env)
    tagged = next(r for r in by_model if r["model"] == "tagged-model")
    assert tagged["cost"] == pytest.approx(9.25) and tagged["requests"] == 0


def test_unit_costs_are_the_cost_over_the_groups_own_work(scenario: Scenario) -> None:
    served = [r for r in rows(scenario, ("environment", "model")) if r["requests"] and r["cost"]]
    assert served, "the scenario has models that served requests and cost money"
    for r in served:
        assert r["cost_per_1k_requests"] == pytest.approx(r["cost"] / r["requests"] * 1000)
        tokens = (r["input_tokens"] or 0) + (r["output_tokens"] or 0)
        if tokens:
            assert r["cost_per_1m_tokens"] == pytest.approx(r["cost"] / tokens * 1e6)
        if r["accuracy"]:
            correct = r["requests"] * r["accuracy"]
            assert r["cost_per_correct_answer"] == pytest.approx(r["cost"] / correct)


def test_the_marginal_basis_keeps_only_energy_of_owned_hardware(scenario: Scenario) -> None:
    full = {r["environment"]: r["cost"] for r in rows(scenario, ("environment",))}
    marginal = {
        r["environment"]: r["cost"] for r in rows(scenario, ("environment",), basis="marginal")
    }
    with scenario.warehouse.read() as con:
        energy = dict(
            con.execute(
                "SELECT x_Environment, sum(x_EnergyCost * 1.08)::DOUBLE FROM billing "
                "WHERE x_Modelled AND ChargePeriodStart >= ? AND ChargePeriodStart < ? GROUP BY 1",
                [START, END],
            ).fetchall()
        )  # fmt: skip  (the pools are priced in EUR, at 1.08 USD)
    tagged = scenario.config.environments[0].name  # its cloud rows cost the same on both
    cloud = 120.50 - 15 + 9.25
    for env, value in energy.items():
        expected = value + (cloud if env == tagged else 0.0)
        assert marginal[env] == pytest.approx(expected, rel=1e-9)
        assert marginal[env] < full[env]
    assert marginal["unallocated"] == pytest.approx(full["unallocated"])  # a cloud row


def test_by_version_the_cost_keys_are_null(scenario: Scenario) -> None:
    found = rows(scenario, ("environment", "model", "version"))
    assert found and all(r["cost"] is None and r["currency"] is None for r in found)


def test_a_currency_without_a_rate_leaves_cost_null_and_says_so(
    built_scenario: Scenario, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    mine = copy_scenario(built_scenario, tmp_path)
    body = json.loads(mine.config.to_json())
    body["billing"]["rates"] = []  # the pools are priced in EUR
    config = Config.from_json(json.dumps(body), "no-rates.toml")
    store_config(mine.warehouse, config.origin, config.to_json())  # reallocates every day
    result = metric_rows(mine.warehouse, config, start=START, end=END)
    assert all(r["cost"] is None for r in result.rows)
    assert any(r["requests"] for r in result.rows)  # the other figures are still there
    (problem,) = result.problems
    assert "EUR" in problem and "[[billing.rates]]" in problem and "no-rates.toml" in problem
    with caplog.at_level(logging.WARNING):  # the frame a page draws says so in the log
        metrics(mine.warehouse, config, start=START, end=END)
    assert problem in caplog.text
    store_config(mine.warehouse, mine.config.origin, mine.config.to_json())  # with its rate
    rated = metric_rows(mine.warehouse, mine.config, start=START, end=END)
    assert rated.problems == () and any(r["cost"] is not None for r in rated.rows)


def test_the_cli_prints_the_cost_keys_on_either_basis(
    scenario: Scenario, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    args = ["metrics", "--warehouse", str(scenario.warehouse.path), "--by", "environment",
            "--from", "2026-10-01", "--to", "2026-11-01", "--format", "json"]  # fmt: skip
    assert cli.main(args) == 0
    full = json.loads(capsys.readouterr().out)
    assert cli.main([*args, "--basis", "marginal"]) == 0
    marginal = json.loads(capsys.readouterr().out)
    keys = {"cost", "currency", "cost_per_1k_requests", "cost_per_1m_tokens"}
    keys |= {"cost_per_correct_answer", "cached_input_tokens", "reasoning_output_tokens"}
    assert keys <= set(full[0]) and keys <= set(marginal[0])
    assert [r["environment"] for r in full] == [r["environment"] for r in marginal]
    assert sum(r["cost"] or 0 for r in marginal) < sum(r["cost"] or 0 for r in full)
    with pytest.raises(SystemExit) as bad:
        cli.main([*args, "--basis", "cheap"])
    assert bad.value.code == 2

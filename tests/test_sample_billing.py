"""The demo's cloud bills: real CUR 2.0 and FOCUS files that load clean, whose ledger
totals after every delivery are the summary's, with the restatement, credits, commitment,
untagged rows and the anomaly where `scenario.json` says."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from test_export_focus import failed_mandatory, validate

from hybridlens.cli import main
from hybridlens.ingest_billing import ingest_billing
from sample_data.billing_items import PURCHASE_AT
from sample_data.fleet import FLEET
from sample_data.generator import generate
from sample_data.gpu_inventory import inventory
from sample_data.ids import instance_id
from warehouse.config import Config, load_file
from warehouse.db import Warehouse

ROOT = Path(__file__).resolve().parents[1]
END = datetime(2026, 11, 2, tzinfo=UTC)  # 3 days: 30 and 31 October, 1 November
DAYS = 3
ARGS: dict[str, Any] = {"days": DAYS, "seed": 7, "scale": 0.05, "end": END, "gpu": False}
PROVIDERS = {"AWS": "aws-us-east-1", "Google Cloud": "gcp-europe-west4"}


def rows(wh: Warehouse, sql: str) -> list[tuple[Any, ...]]:
    with wh.read() as con:
        return con.execute(sql).fetchall()


def load_deliveries(
    wh: Warehouse, data: Path, summary: dict[str, Any], config: Config
) -> list[Any]:
    """Every delivery in order, one `ingest_billing` call each, as the demo does."""
    return [
        ingest_billing(wh, [data / f for f in d["files"]], config)
        for d in summary["billing"]["deliveries"]
    ]


def month_totals(wh: Warehouse) -> dict[tuple[str, str], dict[str, Any]]:
    found = rows(wh, """
        SELECT ProviderName, strftime(BillingPeriodStart AT TIME ZONE 'UTC', '%Y-%m'),
               sum(BilledCost), sum(EffectiveCost), count(*)
        FROM billing WHERE NOT x_Modelled GROUP BY ALL""")  # fmt: skip
    return {
        (PROVIDERS[p], m): {"billed_cost": b, "effective_cost": e, "line_items": n}
        for p, m, b, e, n in found
    }


def as_decimal(totals: dict[str, Any]) -> dict[str, Any]:
    return {k: Decimal(v) if isinstance(v, str) else v for k, v in totals.items()}


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("billing")
    return out, generate(out, **ARGS)


@pytest.fixture(scope="module")
def loaded(
    scenario: tuple[Path, dict[str, Any]], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Warehouse, list[Any]]:
    data, summary = scenario
    wh = Warehouse(tmp_path_factory.mktemp("wh") / "w.duckdb")
    config = load_file(ROOT / "sample_data" / "scenario.toml")
    return wh, load_deliveries(wh, data, summary, config)


def test_every_delivery_loads_with_nothing_quarantined_or_failed(
    scenario: tuple[Path, dict[str, Any]], loaded: tuple[Warehouse, list[Any]]
) -> None:
    data, summary = scenario
    wh, reports = loaded
    assert [d["name"] for d in summary["billing"]["deliveries"]] == ["exports", "restatement"]
    for report in reports:
        assert report.ok and not report.quarantined and not report.failures
    formats = dict(rows(wh, "SELECT DISTINCT x_SourceFormat, ProviderName FROM billing"))
    assert formats == {"aws-cur-2.0": "AWS", "focus-1.2": "Google Cloud",
                       "focus-1.4": "Google Cloud"}  # fmt: skip
    listed = sorted(summary["billing"]["files"])
    assert listed == sorted(p.relative_to(data).as_posix() for p in (data / "billing").rglob("*")
                            if p.is_file())  # fmt: skip
    assert summary["files"] == sum(
        1 for p in data.rglob("*") if p.is_file() and p.name != "scenario.json"
    )


def test_ledger_totals_after_every_delivery_are_the_summary_s(
    scenario: tuple[Path, dict[str, Any]], loaded: tuple[Warehouse, list[Any]]
) -> None:
    _, summary = scenario
    want = {
        (env, month): as_decimal(t)
        for env, cloud in summary["billing"]["clouds"].items()
        for month, t in cloud["months"].items()
    }
    assert month_totals(loaded[0]) == want
    assert set(want) == {(e, m) for e in PROVIDERS.values() for m in ("2026-10", "2026-11")}


def test_the_restated_month_holds_the_restatement(
    scenario: tuple[Path, dict[str, Any]], loaded: tuple[Warehouse, list[Any]], tmp_path: Path
) -> None:
    data, summary = scenario
    restated = summary["billing"]["restated"]
    month = restated["month"]
    # the first delivery alone (the restatement not yet on disk) gives the first totals
    first = tmp_path / "first"
    shutil.copytree(data, first)
    for rel in summary["billing"]["deliveries"][1]["files"]:
        (first / rel).unlink()
    wh = Warehouse(tmp_path / "first.duckdb")
    report = ingest_billing(wh, [first / f for f in summary["billing"]["deliveries"][0]["files"]],
                            Config())  # fmt: skip
    assert report.ok
    got = month_totals(wh)
    for env, t in restated["before"].items():
        assert got[(env, month)] == as_decimal(t)
    for rel in summary["billing"]["deliveries"][1]["files"]:
        shutil.copy2(data / rel, first / rel)
    assert ingest_billing(wh, [first / f for f in summary["billing"]["deliveries"][1]["files"]],
                          Config()).ok  # fmt: skip
    got, final = month_totals(wh), month_totals(loaded[0])
    for env, t in restated["after"].items():
        assert got[(env, month)] == final[(env, month)] == as_decimal(t)
        assert t != restated["before"][env]
    late = rows(loaded[0], "SELECT count(*) FROM billing WHERE ServiceName IN "
                "('AmazonCloudWatch', 'Cloud Logging')")  # fmt: skip
    assert late == [(2,)], "the lines the restatement added"


def test_the_commitment_purchase_is_not_counted_twice(
    scenario: tuple[Path, dict[str, Any]], loaded: tuple[Warehouse, list[Any]]
) -> None:
    _, summary = scenario
    wh = loaded[0]
    covered_days = DAYS - min(DAYS - 1, int(PURCHASE_AT * DAYS))
    for env, c in summary["billing"]["commitments"].items():
        found = rows(
            wh,
            f"""
            SELECT ChargeCategory, CommitmentDiscountStatus, sum(BilledCost), sum(EffectiveCost)
            FROM billing WHERE CommitmentDiscountId = '{c["id"]}' GROUP BY ALL""",
        )
        by = {(cat, status): (b, e) for cat, status, b, e in found}
        upfront = rows(
            wh,
            f"""SELECT BilledCost, EffectiveCost FROM billing
            WHERE CommitmentDiscountId = '{c["id"]}' AND ChargeFrequency = 'One-Time'""",
        )
        assert upfront == [(Decimal(c["upfront"]), Decimal(0))], env
        effective = sum((e for _, e in by.values()), Decimal(0))
        per_day = Decimal(c["upfront"]) / Decimal(365)  # the fee spread over its year
        assert effective == per_day * covered_days, env
        if env.startswith("gcp"):
            assert {s for _, s in by} == {None, "Used", "Unused"}
    assert summary["billing"]["commitments"]["aws-us-east-1"]["purchased"] == "2026-10-31"


def test_credits_are_negative_and_untagged_rows_exist(
    scenario: tuple[Path, dict[str, Any]], loaded: tuple[Warehouse, list[Any]]
) -> None:
    _, summary = scenario
    wh = loaded[0]
    credits = rows(
        wh,
        """SELECT ProviderName, strftime(BillingPeriodStart AT TIME ZONE 'UTC',
        '%Y-%m'), BilledCost, EffectiveCost FROM billing WHERE ChargeCategory = 'Credit'""",
    )
    assert credits and all(b < 0 and e == b for _, _, b, e in credits)
    assert {(PROVIDERS[p], m): b for p, m, b, _ in credits} == {
        (env, m): Decimal(v) for env, ms in summary["billing"]["credits"].items()
        for m, v in ms.items()
    }  # fmt: skip
    untagged = dict(rows(wh, "SELECT ProviderName, count(*) FROM billing WHERE Tags IS NULL "
                        "GROUP BY 1"))  # fmt: skip
    assert {PROVIDERS[p]: n for p, n in untagged.items()} == summary["billing"]["untagged"]
    snapshots = rows(wh, "SELECT count(*) FROM billing WHERE Tags IS NULL AND ChargeCategory = "
                     "'Usage' AND ChargeDescription ILIKE '%snapshot%'")  # fmt: skip
    assert snapshots == [(2 * DAYS,)]


def test_the_demo_bills_meet_focus_rules_the_validator_checks(
    loaded: tuple[Warehouse, list[Any]],
) -> None:
    """The validator's ListCost-C-003-M (not null) and ServiceName-C-005-C (one category per
    service) failed on the demo's own export: its CUR left the public on-demand cost empty
    on fee, negation and credit lines, and its FOCUS file filed Compute Engine's disks as
    Storage beside its instances' Compute. ChargeFrequency-C-002-M (not null) and
    PricingUnit-C-000-M (a unit exactly where there is a quantity, in FOCUS's UnitFormat)
    failed on the CUR's credit, on its upfront fee's quantity without a unit and on AWS's
    `GB-Mo`."""
    wh = loaded[0]
    assert rows(wh, "SELECT count(*) FROM billing WHERE ChargeFrequency IS NULL") == [(0,)]
    assert rows(wh, "SELECT count(*) FROM billing WHERE "
                    "(PricingQuantity IS NULL) <> (PricingUnit IS NULL)") == [(0,)]  # fmt: skip
    units = {u for (u,) in rows(wh, "SELECT DISTINCT PricingUnit FROM billing")}
    assert {"Hours", "GB-Months"} <= units and not units & {"Hrs", "GB-Mo"}
    upfront = "x_SourceRow->>'line_item_line_item_type' = 'SavingsPlanUpfrontFee'"
    assert rows(wh, f"SELECT PricingUnit, ChargeFrequency FROM billing WHERE {upfront}") == [
        ("Hours", "One-Time")
    ]
    assert rows(wh, "SELECT count(*) FROM billing WHERE NOT x_Modelled AND ListCost IS NULL") == [
        (0,)
    ]
    assert rows(wh, "SELECT ServiceName FROM billing GROUP BY 1 "
                    "HAVING count(DISTINCT ServiceCategory) > 1") == []  # fmt: skip


@pytest.mark.parametrize("month", ["2026-10", "2026-11"])
def test_the_validator_passes_every_mandatory_rule_on_the_demo_export(
    loaded: tuple[Warehouse, list[Any]], tmp_path: Path, month: str
) -> None:
    """The October month with its restatement, commitment purchase and credit too. The
    CUR's invoicing entity `Amazon Web Services, Inc.` is AWS itself, so the export names
    the issuer `AWS`: the validator's BilledCost-C-005-C reads a ProviderName unlike the
    InvoiceIssuerName as a marketplace charge that must bill 0 (docs/export.md)."""
    out = tmp_path / f"{month}.parquet"
    args = ["export", "focus", "--warehouse", str(loaded[0].path), "--month", month]
    assert main([*args, "--out", str(out)]) == 0
    report = validate(out)
    failures = [line for line in report.splitlines() if "❌" in line]
    assert failed_mandatory(report) == [], "\n".join(failures)
    aws = pq.read_table(out, filters=[("ProviderName", "=", "AWS")]).to_pylist()
    assert aws and {r["InvoiceIssuerName"] for r in aws} == {"AWS"}
    assert {r["x_InvoiceIssuerBilledName"] for r in aws} == {"Amazon Web Services, Inc."}


def test_gpu_hours_are_the_pools_and_tagged_by_deployment(
    loaded: tuple[Warehouse, list[Any]],
) -> None:
    wh = loaded[0]
    aws = rows(
        wh,
        """SELECT sum(PricingQuantity) FROM billing WHERE ProviderName = 'AWS'
        AND x_SourceRow->>'line_item_usage_type' LIKE 'BoxUsage:%'
        AND x_SourceRow->>'line_item_line_item_type' <> 'SavingsPlanNegation'""",
    )
    gcp = rows(
        wh,
        """SELECT sum(PricingQuantity) FROM billing WHERE ProviderName = 'Google Cloud'
        AND ChargeDescription LIKE 'Nvidia%' AND ChargeCategory = 'Usage'""",
    )
    pools = {p.environment: p.count for p in FLEET.pools}
    assert aws == [(Decimal(pools["aws-us-east-1"] // 8 * 24 * DAYS),)]  # 8 GPUs an instance
    assert gcp == [(Decimal(pools["gcp-europe-west4"] * 24 * DAYS),)]
    models = {m for (m,) in rows(wh, """SELECT DISTINCT coalesce(Tags->>'model',
        Tags->>'user_model') FROM billing WHERE Tags IS NOT NULL""")}  # fmt: skip
    deployed = {d.model for d in FLEET.deployments if d.env in PROVIDERS.values()}
    assert models - {None} == deployed
    teams = rows(wh, "SELECT count(*) FROM billing WHERE Tags IS NOT NULL AND "
                 "coalesce(Tags->>'team', Tags->>'user_team') IS NULL")  # fmt: skip
    assert teams == [(0,)], "every tagged row has a team"
    hosts = {g.host for g in inventory(FLEET) if g.env == "aws-us-east-1"}
    billed = rows(wh, """SELECT DISTINCT ResourceId FROM billing WHERE ProviderName = 'AWS'
        AND x_SourceRow->>'line_item_usage_type' LIKE 'BoxUsage:%'""")  # fmt: skip
    assert {r for (r,) in billed} == {instance_id(h) for h in hosts}  # the GPU samples' host.id


def test_the_anomaly_day_stands_out(
    scenario: tuple[Path, dict[str, Any]], loaded: tuple[Warehouse, list[Any]]
) -> None:
    _, summary = scenario
    anomaly = summary["billing"]["anomaly"]
    assert anomaly["environment"] == "aws-us-east-1" and anomaly["day"] == "2026-11-01"
    per_day = dict(
        rows(
            loaded[0],
            f"""
        SELECT strftime(ChargePeriodStart AT TIME ZONE 'UTC', '%Y-%m-%d'), sum(EffectiveCost)
        FROM billing WHERE ServiceName = '{anomaly["service"]}' GROUP BY 1""",
        )
    )
    spike = per_day.pop(anomaly["day"])
    assert spike == Decimal(anomaly["effective_cost"])
    assert per_day and all(spike > 4 * v for v in per_day.values())


def test_same_arguments_give_identical_bytes(
    scenario: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    data, summary = scenario
    again = generate(tmp_path / "again", **ARGS)
    assert again["billing"] == summary["billing"]
    for rel in summary["billing"]["files"]:
        assert (tmp_path / "again" / rel).read_bytes() == (data / rel).read_bytes(), rel
        assert (tmp_path / "again" / rel).stat().st_mtime == (data / rel).stat().st_mtime
    other = generate(tmp_path / "other", **{**ARGS, "seed": 8})
    assert other["billing"]["clouds"] != summary["billing"]["clouds"], "the load follows the seed"

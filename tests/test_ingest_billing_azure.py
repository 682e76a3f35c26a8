"""`hybridlens ingest billing` on Azure Cost Management cost details: the public EA samples
load with totals equal to an independent `csv` + `Decimal` sum, the dataset comes from
`--dataset` or the export's name, actual and amortized share a month's measures, Azure's
FOCUS export and its cost details replace each other, and bad input is quarantined or
refused in one sentence."""

from __future__ import annotations

import csv
import shutil
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from hybridlens.cli import main
from hybridlens.ingest_billing import ingest_billing
from warehouse.config import Config
from warehouse.db import Warehouse
from warehouse.report import LoadReport, Status

CASES = Path(__file__).parent / "cases" / "billing"
MCA = CASES / "azure-mca-ActualCost-2026-10.csv"
BAD = CASES / "azure-ea-bad-values-AmortizedCost.csv"
ACTUAL = "azure-EA_ActualCost_Small.csv"
AMORTIZED = "azure-EA_AmortizedCost_Small.csv"
CONVERTERS = "azure-ea-export-sample-focus-converters.csv"  # its name says no dataset
EA_ACCOUNT = "/providers/Microsoft.Billing/billingAccounts/8611537"
MEASURES = "sum(BilledCost), sum(EffectiveCost), sum(ListCost), sum(PricingQuantity)"
TWELVE = Decimal("1e-12")


def rows(wh: Warehouse, sql: str) -> list[tuple[Any, ...]]:
    with wh.read() as con:
        return con.execute(sql).fetchall()


def load(wh: Warehouse, *paths: Path, fmt: str = "auto", dataset: str = "auto") -> LoadReport:
    return ingest_billing(wh, list(paths), Config(), fmt=fmt, dataset=dataset)


def records(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return [{k.lower(): v for k, v in r.items()} for r in csv.DictReader(fh)]


def number(text: str) -> Decimal | None:
    """A value as the ledger keeps it: DECIMAL(38, 12), more decimals rounded half up."""
    return Decimal(text).quantize(TWELVE, ROUND_HALF_UP) if text not in ("", "NULL") else None


def expected(path: Path) -> tuple[Decimal, Decimal, Decimal]:
    """The file's cost, list cost and quantity, summed with csv + Decimal as the docs map
    them: ListCost = paygCostInBillingCurrency, else PayGPrice x Quantity (to 12 places),
    else the cost."""
    cost = listed = quantity = Decimal(0)
    for r in records(path):
        c = number(r.get("costinbillingcurrency") or r.get("cost", "")) or Decimal(0)
        q, price = number(r.get("quantity", "")), number(r.get("paygprice", ""))
        payg = number(r.get("paygcostinbillingcurrency", ""))
        if payg is None and q is not None and price is not None:
            payg = (q * price).quantize(TWELVE, ROUND_HALF_UP)
        cost += c
        listed += c if payg is None else payg
        quantity += q or 0
    return cost, listed, quantity


def measures(wh: Warehouse, where: str = "true") -> tuple[Decimal, ...]:
    (found,) = rows(wh, f"SELECT {MEASURES} FROM billing WHERE {where}")
    return tuple(v if v is not None else Decimal(0) for v in found)


def units(wh: Warehouse) -> list[str]:
    return [u.rsplit("/", 1)[-1] for (u,) in rows(wh, "SELECT DISTINCT x_ReplaceUnit FROM billing")]


# -- the public samples --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "dataset", "n"),
    [(ACTUAL, "actual", 11), (AMORTIZED, "amortized", 28), (CONVERTERS, "actual", 27)],
)
def test_the_azure_samples_load_and_their_totals_match_a_decimal_sum(
    warehouse: Warehouse, fixtures_dir: Path, name: str, dataset: str, n: int
) -> None:
    sample = fixtures_dir / "billing" / name
    report = load(warehouse, sample, dataset="auto" if name != CONVERTERS else dataset)
    assert report.ok and report.quarantined == 0, report.failures
    assert report.rows("billing") == len(records(sample)) == n
    cost, listed, quantity = expected(sample)
    assert measures(warehouse) == (cost, cost, listed, quantity)  # alone: both measures
    (found,) = rows(
        warehouse,
        "SELECT DISTINCT ProviderName, BillingAccountId LIKE '/providers/Microsoft.Billing/%', "
        "x_SourceFormat, BillingPeriodStart::DATE::VARCHAR, BillingPeriodEnd::DATE::VARCHAR, "
        "typeof(BilledCost), typeof(Tags) FROM billing",
    )
    assert found == (
        "Microsoft", True, f"azure-ea-{dataset}", "2023-09-01", "2023-10-01",
        "DECIMAL(38,12)", "JSON",
    )  # fmt: skip
    assert rows(warehouse, "SELECT count(*) FROM billing WHERE ChargePeriodEnd - "
                "ChargePeriodStart <> INTERVAL 1 DAY") == [(0,)]  # fmt: skip


def test_a_parquet_export_loads_and_maps_the_same_line_items(
    warehouse: Warehouse, fixtures_dir: Path, tmp_path: Path
) -> None:
    sample = fixtures_dir / "billing" / AMORTIZED
    parquet = tmp_path / "AmortizedCost.parquet"
    con = duckdb.connect()  # typed, as Azure's Parquet exports are: dates DATE, costs DOUBLE
    con.execute(
        f"COPY (SELECT * FROM read_csv('{sample}', dateformat = '%m/%d/%Y')) TO '{parquet}' "
        "(FORMAT parquet)"
    )
    con.close()
    report = load(warehouse, parquet)
    assert report.ok and report.rows("billing") == 28, report.failures
    cost, listed, quantity = expected(sample)
    assert measures(warehouse) == (cost, cost, listed, quantity)
    # and maps onto FOCUS columns, the rest kept in the raw row
    found = rows(
        warehouse,
        "SELECT BillingAccountId, ChargeCategory, ChargeFrequency, PricingCategory, "
        "CommitmentDiscountType, CommitmentDiscountStatus, ServiceName, ServiceCategory, "
        "SubAccountId, RegionId, Tags->>'env', x_SourceRow->>'ResourceGroup', "
        "ChargePeriodStart::DATE::VARCHAR FROM billing ORDER BY x_SourceRowNumber LIMIT 2",
    )
    assert found == [
        (EA_ACCOUNT, "Usage", "Usage-Based", "Committed", "Reservation", "Used",
         "Virtual Machines", "Compute", "/subscriptions/9ec51cfd-5ca7-4d76-8101-dd0a4abc5674",
         "eastus", "prod", "MC_ANALYTICSENGINE_ANALYTICSENGINE_EASTUS", "2023-09-22"),
        (EA_ACCOUNT, "Usage", "Usage-Based", "Committed", "Savings Plan", "Used",
         "Virtual Machines", "Compute", "/subscriptions/9ec51cfd-5ca7-4d76-8101-dd0a4abc5674",
         "eastus", "prod", "MC_ANALYTICSENGINE_ANALYTICSENGINE_EASTUS", "2023-09-03"),
    ]  # fmt: skip


def test_an_mca_export_maps_its_charge_types_as_microsoft_does(warehouse: Warehouse) -> None:
    report = load(warehouse, MCA)
    assert report.ok, report.failures
    cost, listed, quantity = expected(MCA)
    assert measures(warehouse) == (cost, cost, listed, quantity)
    found = rows(
        warehouse,
        "SELECT ChargePeriodStart::DATE::VARCHAR, ChargeCategory, ChargeClass, PricingCategory, "
        "CommitmentDiscountStatus, CommitmentDiscountCategory, ServiceCategory, Tags->>'team' "
        "FROM billing ORDER BY x_SourceRowNumber",
    )
    assert found == [
        ("2026-10-02", "Usage", None, "Standard", None, None, "Compute", "ml"),
        ("2026-10-03", "Purchase", "Correction", "Committed", None, "Usage", "Compute", None),
        ("2026-10-04", "Usage", None, "Committed", "Unused", "Usage", "Compute", None),
        ("2026-10-05", "Tax", None, None, None, None, "Compute", None),
        ("2026-10-06", "Adjustment", None, None, None, None, "Compute", None),
        ("2026-10-07", "Usage", None, "Dynamic", None, None, "Compute", "ml"),
        ("2026-10-08", "Usage", None, "Committed", "Used", "Spend", "AI and Machine Learning",
         "ml"),
    ]  # fmt: skip
    (head,) = rows(
        warehouse,
        "SELECT DISTINCT BillingAccountId, BillingAccountName, x_SourceFormat, x_ReplaceUnit, "
        "BillingCurrency, InvoiceId FROM billing",
    )
    assert head == (
        "/providers/Microsoft.Billing/billingAccounts/aaaa-bbbb-cccc:dddd_2019-05-31"
        "/billingProfiles/ABCD-EFGH-IJK",
        "Contoso ML",
        "azure-mca-actual",
        "billed/Microsoft/%2Fproviders%2FMicrosoft.Billing%2FbillingAccounts%2Faaaa-bbbb-cccc"
        "%3Adddd_2019-05-31%2FbillingProfiles%2FABCD-EFGH-IJK/2026-10-01/actual",
        "EUR",
        "G012345678",
    )


def test_block_units_are_spelled_as_focus_unit_format_wants(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    """`10K` and `1/Month` failed the validator's PricingUnit-C-000-M (through the UnitFormat
    rule) on the public EA samples; the right-hand spellings are Microsoft's own FOCUS rows'
    (FinOps Foundation FOCUS 1.0 sample) or FOCUS's `<count> <units>`. The quantity stays in
    the blocks Azure counts, and the raw row keeps the unit as delivered."""
    units = {"10K": "10000 Units", "1/Month": "Units/Month", "1 GB/Month": "GB/Month",
             "1 Hour": "1 Hour", "100 Hours": "100 Hours", "1/Day": "Units/Day",
             "1 GB": "1 GB"}  # fmt: skip
    with MCA.open(encoding="utf-8-sig", newline="") as fh:
        source = list(csv.DictReader(fh))
    path = tmp_path / "x-ActualCost-2026-10.csv"
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(source[0]))
        writer.writeheader()
        writer.writerows(r | {"unitOfMeasure": u} for r, u in zip(source, units, strict=True))
    assert load(warehouse, path).ok
    found = rows(
        warehouse,
        "SELECT x_SourceRow->>'unitOfMeasure', PricingUnit, PricingQuantity::VARCHAR, "
        "x_SourceRow->>'quantity' FROM billing ORDER BY x_SourceRowNumber",
    )
    assert [(u, unit) for u, unit, *_ in found] == list(units.items())

    def number(text: str | None) -> Decimal | None:
        return Decimal(text) if text else None

    assert [number(q) for *_, q, _ in found] == [number(raw) for *_, raw in found]


# -- which dataset -------------------------------------------------------------------------
def cad_rate(folder: Path) -> Path:
    """A config with a rate for the sample's Canadian dollars: without one, a load of it
    exits 2 naming the currency (tests/test_money.py)."""
    config = folder / "hybridlens.toml"
    config.write_text(
        '[billing]\nrates = [{ currency = "CAD", rate = 0.74, since = 2023-01-01 }]\n'
    )
    return config


def test_a_file_whose_name_says_no_dataset_needs_dataset(
    warehouse: Warehouse, fixtures_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sample = fixtures_dir / "billing" / CONVERTERS
    (entry,) = load(warehouse, sample).inputs
    assert entry.status is Status.FAILED
    message = entry.message or ""
    assert "is an Azure cost details export, but neither --dataset nor its file or folder" in (
        message
    )
    assert "give --dataset actual or --dataset amortized" in message and "\n" not in message
    assert rows(warehouse, "SELECT count(*) FROM billing") == [(0,)]
    folder = tmp_path / "exports" / "Monthly-AmortizedCost" / "20230901-20230930"
    folder.mkdir(parents=True)
    shutil.copy(sample, folder / "part_0_0001.csv")  # the folder says
    assert load(warehouse, folder).ok
    assert units(warehouse) == ["amortized"]
    wh = str(warehouse.path)  # --dataset wins over the name
    command = ["ingest", "billing", "--warehouse", wh, "--format", "azure", "--dataset", "actual"]
    assert main([*command, "--config", str(cad_rate(tmp_path)), str(folder)]) == 0
    assert "loaded 27 billing line items from 1 files" in capsys.readouterr().err
    assert sorted(units(warehouse)) == ["actual", "amortized"]


def test_the_config_takes_a_dataset(fixtures_dir: Path, tmp_path: Path) -> None:
    sample = fixtures_dir / "billing" / CONVERTERS
    config = cad_rate(tmp_path)
    config.write_text(
        f'{config.read_text()}[[sources.billing]]\npath = "{sample}"\ndataset = "amortized"\n'
    )
    wh = tmp_path / "w.duckdb"
    assert main(["ingest", "billing", "--warehouse", str(wh), "--config", str(config)]) == 0
    assert units(Warehouse(wh)) == ["amortized"]


def test_dataset_given_for_a_format_that_says_its_own_is_reported_not_applied(
    warehouse: Warehouse,
) -> None:
    """A FOCUS file's dataset is its own; `--dataset amortized` on it used to pass in
    silence, as if it had been applied."""
    report = load(warehouse, CASES / "focus-1.2-small.csv", dataset="amortized")
    assert report.ok
    assert report.skipped == {
        "files read without --dataset amortized, which only Azure's cost details take "
        "(focus says its own dataset)": 1
    }
    assert set(units(warehouse)) == {"focus"}


# -- actual and amortized together ---------------------------------------------------------
@pytest.mark.parametrize("order", ["actual first", "amortized first"])
def test_actual_and_amortized_share_a_month_and_count_each_measure_once(
    warehouse: Warehouse, fixtures_dir: Path, order: str
) -> None:
    actual, amortized = fixtures_dir / "billing" / ACTUAL, fixtures_dir / "billing" / AMORTIZED
    first, second = (actual, amortized) if order == "actual first" else (amortized, actual)
    load(warehouse, first)
    assert load(warehouse, second).ok
    billed, _, _ = expected(actual)
    effective, listed, quantity = expected(amortized)
    assert measures(warehouse) == (billed, effective, listed, quantity)
    assert measures(warehouse, "x_ReplaceUnit LIKE '%/actual'")[1:] == (Decimal(0),) * 3
    assert measures(warehouse, "x_ReplaceUnit LIKE '%/amortized'")[0] == 0
    if order == "amortized first":
        return
    before = rows(warehouse, "SELECT * EXCLUDE (load_id) FROM billing ORDER BY ALL")
    again = load(warehouse, actual)  # re-delivered with full measures, split again
    assert again.ok and again.rows("billing") == 11
    assert measures(warehouse) == (billed, effective, listed, quantity)
    assert rows(warehouse, "SELECT * EXCLUDE (load_id) FROM billing ORDER BY ALL") == before


def test_a_dataset_alone_keeps_both_measures_after_a_restatement(
    warehouse: Warehouse, fixtures_dir: Path, tmp_path: Path
) -> None:
    amortized = fixtures_dir / "billing" / AMORTIZED
    load(warehouse, amortized)
    restated = tmp_path / "AmortizedCost.csv"
    lines = amortized.read_text(encoding="utf-8-sig").splitlines(keepends=True)
    restated.write_text("".join(lines[:-2]), encoding="utf-8-sig")  # two rows fewer
    assert load(warehouse, restated).rows("billing") == 26
    cost, listed, quantity = expected(restated)
    assert measures(warehouse) == (cost, cost, listed, quantity)


# -- Azure's FOCUS export and its cost details ---------------------------------------------
def focus_of_september_2023(fixtures_dir: Path, tmp_path: Path) -> Path:
    """The FOCUS sample's Microsoft rows (account 8611537, as the EA samples) moved to the
    EA samples' month: Azure's FOCUS export of the same charges."""
    sample = fixtures_dir / "billing" / "focus-1.0-sample-excerpt.csv"
    with sample.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        kept = [r for r in reader if r["ProviderName"] == "Microsoft"]
        fields = reader.fieldnames or []
    for r in kept:
        r["BillingPeriodStart"], r["BillingPeriodEnd"] = "2023-09-01", "2023-10-01"
    path = tmp_path / "focus" / "FocusCost.csv"
    path.parent.mkdir()
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fields)
        writer.writeheader()
        writer.writerows(kept)
    return path


def test_a_focus_export_and_the_cost_details_of_its_month_replace_each_other(
    warehouse: Warehouse, fixtures_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    focus = focus_of_september_2023(fixtures_dir, tmp_path)
    actual, amortized = fixtures_dir / "billing" / ACTUAL, fixtures_dir / "billing" / AMORTIZED
    load(warehouse, actual, amortized)
    report = load(warehouse, focus)
    assert report.ok and units(warehouse) == ["focus"]
    said = {k: n for k, n in report.skipped.items() if "same charges" in k}
    assert sorted(said.values()) == [11, 28]
    assert any(f"{ACTUAL})" in k and "azure-ea-actual" in k for k in said), said
    focus_rows = report.rows("billing")
    # and back, through the command: the cost details replace the FOCUS unit, and say so
    assert main(["ingest", "billing", "--warehouse", str(warehouse.path), str(actual)]) == 0
    assert units(warehouse) == ["actual"]
    err = capsys.readouterr().err
    assert "line items of an earlier delivery of the same charges, replaced: billed/" in err
    assert f"/focus (focus-1.0, from {focus}): {focus_rows}" in err
    billed, _, _ = expected(actual)
    assert measures(warehouse)[:2] == (billed, billed)


# -- bad input -----------------------------------------------------------------------------
def test_bad_values_are_quarantined_per_row_and_the_rest_loads(warehouse: Warehouse) -> None:
    report = load(warehouse, BAD)
    (entry,) = report.inputs
    assert entry.status is Status.PARTIAL and report.rows("billing") == 4
    errors = dict(rows(warehouse, "SELECT location, error FROM quarantine"))
    assert errors["row 2"].startswith("Cost 'abc' is not a number")
    assert errors["row 3"].startswith("Date '02/30/2023' is not a date (M/D/YYYY or YYYY-MM-DD)")
    assert errors["row 4"].startswith("Date '13/01/2023' is not a date")
    assert "Cost '1e400' is out of range" in errors["row 5"]
    assert errors["row 8"].startswith("Tags '\"env\": prod' is not a JSON object")
    assert errors["row 9"].startswith("BillingAccountId is null")
    assert errors["line 12"].startswith("not a row: Expected Number of Columns")
    assert len(errors) == 7
    found = rows(
        warehouse,
        "SELECT ResourceId, ServiceName, EffectiveCost, ListCost, ContractedCost FROM billing "
        "WHERE x_SourceRowNumber IN (7, 10) ORDER BY x_SourceRowNumber",
    )
    assert found == [
        ("<script>alert('x')</script>", "'; DROP TABLE billing; --", 2, 1, 1),
        ("/subscriptions/x/resourceGroups/rg/providers/p/r", "Storage", 3, 3, 3),
    ]  # the product too big for DECIMAL falls back to the cost
    assert rows(warehouse, "SELECT max(BilledCost) FROM billing") == [
        (Decimal("99999999999999.999999999999"),)
    ]


def test_a_file_missing_mandatory_columns_fails_naming_them(
    warehouse: Warehouse, fixtures_dir: Path, tmp_path: Path
) -> None:
    sample = records(fixtures_dir / "billing" / ACTUAL)
    cut = tmp_path / "ActualCost.csv"
    with cut.open("w", encoding="utf-8", newline="") as fh:
        names = [k for k in sample[0] if k not in ("date", "billingaccountid")]
        writer = csv.DictWriter(fh, names, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(sample)
    (entry,) = load(warehouse, cut).inputs
    assert entry.status is Status.FAILED
    assert "is not a complete AZURE file: the mandatory column(s) Date or UsageDate, " in (
        entry.message or ""
    )
    assert "BillingAccountId are missing" in (entry.message or "")
    (forced,) = load(warehouse, CASES / "focus-1.2-small.csv", fmt="azure").inputs
    assert "is not a complete AZURE file" in (forced.message or "")
    assert rows(warehouse, "SELECT count(*) FROM billing") == [(0,)]


def short_rows(fixtures_dir: Path, path: Path) -> Path:
    """The actual sample with the columns the reader needs only: rows under 500 characters."""
    kept = ("billingaccountid", "billingperiodstartdate", "billingperiodenddate", "date",
            "metercategory", "cost", "billingcurrency", "accountname", "chargetype")  # fmt: skip
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, kept, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(records(fixtures_dir / "billing" / ACTUAL))
    return path


def test_a_truncated_export_loads_nothing_and_keeps_the_previous_delivery(
    warehouse: Warehouse, fixtures_dir: Path, tmp_path: Path
) -> None:
    whole = short_rows(fixtures_dir, tmp_path / "ActualCost.csv")
    load(warehouse, whole)
    before = measures(warehouse)
    cut = tmp_path / "cut" / "ActualCost.csv"
    cut.parent.mkdir()
    cut.write_bytes(whole.read_bytes().rstrip(b"\r\n")[:-30])  # inside the last row
    (entry,) = load(warehouse, cut).inputs
    assert entry.status is Status.FAILED and "truncated" in (entry.message or "")
    assert measures(warehouse) == before


def test_a_truncated_export_with_long_rows_loads_nothing(
    warehouse: Warehouse, fixtures_dir: Path, tmp_path: Path
) -> None:
    """Real Azure rows are longer than the 500 characters of a rejected line's excerpt."""
    cut = tmp_path / "ActualCost.csv"
    cut.write_bytes((fixtures_dir / "billing" / ACTUAL).read_bytes()[:-200])
    (entry,) = load(warehouse, cut).inputs
    assert entry.status is Status.FAILED and "truncated" in (entry.message or "")


def test_a_copy_beside_it_loads_once_and_the_same_delivery_twice_changes_nothing(
    warehouse: Warehouse, fixtures_dir: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "ActualCost"
    folder.mkdir()
    shutil.copy(fixtures_dir / "billing" / ACTUAL, folder / "part_0.csv")
    shutil.copy(fixtures_dir / "billing" / ACTUAL, folder / "part_0 (1).csv")
    report = load(warehouse, folder)
    assert report.rows("billing") == 11 and report.duplicates("billing") == 11
    before = rows(warehouse, "SELECT * EXCLUDE (load_id) FROM billing ORDER BY ALL")
    load(warehouse, folder)
    assert rows(warehouse, "SELECT * EXCLUDE (load_id) FROM billing ORDER BY ALL") == before


def test_a_hostile_file_name_reads_only_itself(
    warehouse: Warehouse, fixtures_dir: Path, tmp_path: Path
) -> None:
    shutil.copy(fixtures_dir / "billing" / AMORTIZED, tmp_path / "a1_ActualCost.csv")
    target = tmp_path / "a[1]*?'; DROP TABLE billing; --_ActualCost.csv"  # a glob, SQL
    shutil.copy(fixtures_dir / "billing" / ACTUAL, target)
    report = load(warehouse, target)
    assert report.ok and report.rows("billing") == 11
    assert rows(warehouse, "SELECT DISTINCT x_SourceUri FROM billing") == [(str(target),)]

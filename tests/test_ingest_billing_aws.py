"""`hybridlens ingest billing` on AWS Cost and Usage Reports: the public legacy sample with
its totals checked against an independent `csv` + `Decimal` sum, generated CUR 2.0
deliveries read through their manifests, AWS's amortized EffectiveCost, and bad input."""

from __future__ import annotations

import csv
import gzip
import json
import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
from aws_cur_factory import (
    CATEGORY,
    FREQUENCY,
    ITEMS,
    PAYER,
    RI,
    SP,
    cur2_rows,
    delivery,
    edited,
    effective,
    ledger_by_category,
    legacy_name,
    legacy_sums,
    write_csv_gz,
    write_parquet,
)

from hybridlens.cli import main
from hybridlens.ingest_billing import ingest_billing
from ingest.billing.cur_manifest import FOREIGN, OLDER, SUPERSEDED
from warehouse.config import Config
from warehouse.db import Warehouse
from warehouse.report import LoadReport, Status

LEGACY = "aws-cur-legacy-sample-excerpt.csv"
UNIT = f"billed/AWS/{PAYER}/2026-10-01/cur"


def rows(wh: Warehouse, sql: str) -> list[tuple[Any, ...]]:
    with wh.read() as con:
        return con.execute(sql).fetchall()


def load(wh: Warehouse, *paths: Path, fmt: str = "auto") -> LoadReport:
    return ingest_billing(wh, list(paths), Config(), fmt=fmt)


# -- the public legacy sample --------------------------------------------------------------
def test_the_legacy_cur_sample_loads_and_its_totals_match_a_decimal_sum(
    warehouse: Warehouse, fixtures_dir: Path
) -> None:
    sample = fixtures_dir / "billing" / LEGACY
    report = load(warehouse, sample)
    assert report.ok and report.quarantined == 0
    expected = legacy_sums(sample)
    assert report.rows("billing") == sum(n for *_, n in expected.values()) == 200
    # the sample's types are Usage and Tax, each its own FOCUS category, costed unblended
    assert ledger_by_category(warehouse) == expected
    (effective_total, billed_total) = rows(
        warehouse, "SELECT sum(EffectiveCost), sum(BilledCost) FROM billing"
    )[0]
    assert effective_total == billed_total == sum(v[0] for v in expected.values())
    found = rows(
        warehouse,
        "SELECT DISTINCT x_ReplaceUnit, x_SourceFormat, ProviderName, PublisherName, "
        "InvoiceIssuerName, BillingAccountId, SubAccountId, typeof(BilledCost), "
        "typeof(BillingPeriodStart) FROM billing",
    )
    assert found == [
        (
            "billed/AWS/123412340534/2023-11-01/cur",
            "aws-cur-legacy",
            "AWS",
            "AWS",
            "Amazon Web Services Canada, Inc.",
            "123412340534",
            "123412340534",
            "DECIMAL(38,12)",
            "TIMESTAMP WITH TIME ZONE",
        )
    ]
    with sample.open(encoding="utf-8-sig", newline="") as fh:
        source = {n: r for n, r in enumerate(csv.DictReader(fh), 1)}
    mapped = rows(
        warehouse,
        "SELECT x_SourceRowNumber, ServiceName, ServiceCategory, RegionId, PricingUnit, SkuId, "
        "PricingQuantity, ChargeFrequency FROM billing",
    )
    for number, service, category, region, unit, sku, quantity, frequency in mapped:
        row = source[number]
        assert service == row["product/ProductName"], number
        assert region == (row["product/regionCode"] or row["product/region"] or None), number
        assert (unit, sku) == (row["pricing/unit"] or None, row["product/sku"] or None), number
        assert frequency == "Usage-Based", number
        # its Tax lines have a quantity of 1 and no unit: FOCUS wants both or neither
        tax = row["lineItem/LineItemType"] == "Tax"
        assert quantity == (None if tax else Decimal(row["lineItem/UsageAmount"])), number
        if row["lineItem/ProductCode"] == "AmazonS3":
            assert category == "Storage"


@pytest.mark.parametrize("kind", ["csv.gz", "legacy-parquet"])
def test_the_legacy_sample_as_gzip_and_as_legacy_parquet_loads_the_same_totals(
    warehouse: Warehouse, fixtures_dir: Path, tmp_path: Path, kind: str
) -> None:
    sample = fixtures_dir / "billing" / LEGACY
    if kind == "csv.gz":
        variant = tmp_path / "cur-00001.csv.gz"
        variant.write_bytes(gzip.compress(sample.read_bytes()))
    else:  # legacy Parquet: snake_case names, typed columns (costs DOUBLE)
        variant = tmp_path / "cur-00001.snappy.parquet"
        with sample.open(encoding="utf-8-sig", newline="") as fh:
            header = next(csv.reader(fh))
        select = ", ".join(f'"{c}" AS {legacy_name(c)}' for c in header)
        con = duckdb.connect()
        con.execute(
            f"COPY (SELECT {select} FROM read_csv('{sample}')) TO '{variant}' (FORMAT parquet)"
        )
        con.close()
    report = load(warehouse, variant)
    assert report.ok, report.failures
    assert ledger_by_category(warehouse) == legacy_sums(sample)
    assert rows(warehouse, "SELECT DISTINCT x_SourceFormat FROM billing") == [("aws-cur-legacy",)]


def test_legacy_tag_columns_become_one_tags_object_with_keys_as_delivered(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    head = (
        "identity/LineItemId,bill/PayerAccountId,bill/BillingPeriodStartDate,"
        "bill/BillingPeriodEndDate,lineItem/UsageAccountId,lineItem/LineItemType,"
        "lineItem/UsageStartDate,lineItem/UsageEndDate,lineItem/ProductCode,"
        "lineItem/CurrencyCode,lineItem/UnblendedCost,resourceTags/user:team,"
        "resourceTags/aws:createdBy\n"
    )
    common = f"{PAYER},2026-10-01T00:00:00Z,2026-11-01T00:00:00Z,{PAYER},Usage,"
    common += "2026-10-02T00:00:00Z,2026-10-02T01:00:00Z,AmazonSageMaker,USD"
    path = tmp_path / "tags.csv"
    path.write_text(head + f"a,{common},1.5,ml,root\nb,{common},2.5,,\n", encoding="utf-8")
    assert load(warehouse, path).ok
    found = rows(
        warehouse, "SELECT Tags::VARCHAR, ServiceCategory FROM billing ORDER BY x_SourceRowNumber"
    )
    assert found == [
        ('{"user:team":"ml","aws:createdBy":"root"}', "AI and Machine Learning"),
        (None, "AI and Machine Learning"),
    ]


@pytest.mark.parametrize(
    ("delivered", "focus"),
    [("Hrs", "Hours"), ("GB-Mo", "GB-Months"), ("LCU-Hrs", "LCU-Hours"), ("ACU-Hr", "ACU-Hours"),
     ("IOPS-Mo", "IOPS-Months"), ("vCPU-Hours", "vCPU-Hours"), ("Requests", "Requests"),
     ("Hour", "Hour"), ("GB", "GB")],
)  # fmt: skip
def test_aws_time_abbreviations_in_units_are_spelled_as_focus_unit_format_wants(
    warehouse: Warehouse, tmp_path: Path, delivered: str, focus: str
) -> None:
    """The pairs on the left are CUR's, those on the right AWS's own FOCUS export's (the
    FinOps Foundation's FOCUS 1.0 sample data): the raw row keeps what was delivered."""
    items = [r | {"pricing_unit": delivered} for r in cur2_rows()[:1]]
    write_csv_gz(tmp_path / "cur-00001.csv.gz", items)
    assert load(warehouse, tmp_path / "cur-00001.csv.gz").ok
    assert rows(
        warehouse, "SELECT PricingUnit, ConsumedUnit, x_SourceRow->>'pricing_unit' FROM billing"
    ) == [(focus, focus, delivered)]


def test_a_credit_without_a_unit_has_no_quantity_but_a_usage_line_keeps_its_own(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    """FOCUS: PricingUnit is null exactly when PricingQuantity is, and a Usage or Purchase
    line's quantity may not be null, so only the other categories lose a unitless one."""
    items = [r | {"pricing_unit": ""} for r in cur2_rows() if r["line_item_line_item_type"]
             in ("Usage", "Fee", "Credit", "Tax")]  # fmt: skip
    write_csv_gz(tmp_path / "cur-00001.csv.gz", items)
    assert load(warehouse, tmp_path / "cur-00001.csv.gz").ok
    found = rows(
        warehouse,
        "SELECT x_SourceRow->>'line_item_line_item_type', PricingQuantity, PricingUnit "
        "FROM billing ORDER BY 1",
    )
    assert found == [
        ("Credit", None, None), ("Fee", Decimal(24), None), ("Tax", None, None),
        ("Usage", Decimal(24), None),
    ]  # fmt: skip


# -- CUR 2.0 deliveries ---------------------------------------------------------------------
@pytest.mark.parametrize("parquet", [False, True], ids=["csv.gz", "parquet"])
def test_a_cur2_delivery_maps_every_line_item_type_onto_focus(
    warehouse: Warehouse, tmp_path: Path, parquet: bool
) -> None:
    items = cur2_rows()
    delivery(tmp_path, [items[:5], items[5:]], parquet=parquet)
    report = load(warehouse, tmp_path / "exp")
    assert report.ok, report.failures
    assert report.rows("billing") == len(ITEMS)
    found = rows(
        warehouse,
        "SELECT x_SourceRow->>'line_item_line_item_type', ChargeCategory, ChargeClass, "
        "BilledCost, EffectiveCost, CommitmentDiscountId, CommitmentDiscountType, "
        "ChargeFrequency, PricingUnit FROM billing",
    )
    by_type = {t: rest for t, *rest in found}
    for kind, cost, _, extra in ITEMS:
        category, charge_class, billed, eff, commitment, commitment_type, freq, unit = by_type[kind]
        assert (category, billed, eff) == (CATEGORY[kind], Decimal(cost), effective(kind)), kind
        assert (freq, unit) == (FREQUENCY[kind], "Hours"), kind  # `Hrs` as FOCUS spells it
        assert charge_class == ("Correction" if kind == "Refund" else None), kind
        sp, ri = (
            extra.get(f"{c}_a_r_n")
            for c in ("savings_plan_savings_plan", "reservation_reservation")
        )
        assert (commitment, commitment_type) == (
            (SP, "Savings Plan") if sp else (RI, "Reserved Instance") if ri else (None, None)
        ), kind
    # a commitment is counted once: its purchase is 0 or its unused part, its usage amortized
    totals = rows(warehouse, "SELECT sum(BilledCost), sum(EffectiveCost) FROM billing")[0]
    assert totals == (
        sum(Decimal(c) for _, c, _, _ in ITEMS),
        sum(Decimal(e) for *_, e, _ in ITEMS),
    )
    assert totals == (Decimal("166.00"), Decimal("17.75"))
    one = rows(
        warehouse,
        "SELECT DISTINCT x_ReplaceUnit, x_SourceFormat, BillingAccountName, SubAccountName, "
        "Tags->>'user_team', ServiceName, ServiceCategory, RegionId FROM billing",
    )
    assert one == [
        (UNIT, "aws-cur-2.0", "Example Payer", "ml-team", "ml",
         "Amazon Elastic Compute Cloud", "Compute", "us-east-1"),
    ]  # fmt: skip


def test_only_the_parts_the_newest_manifest_lists_are_loaded(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    """An overwrite run with fewer parts leaves the older run's third part beside them."""
    items = cur2_rows()
    delivery(tmp_path, [items[:4], items[4:8], items[8:]])  # the older run: three parts
    delivery(tmp_path, [items[:6], items[6:]])  # the newer run overwrites two of them
    report = load(warehouse, tmp_path / "exp" / "metadata")  # the manifest's folder alone
    assert report.ok, report.failures
    assert report.rows("billing") == len(ITEMS)  # not the stale exp-00003's four again
    assert report.skipped[SUPERSEDED] == 1
    files = rows(warehouse, "SELECT DISTINCT regexp_extract(x_SourceUri, '[^/]+$') FROM billing")
    assert sorted(files) == [("exp-00001.csv.gz",), ("exp-00002.csv.gz",)]


def test_of_two_runs_kept_side_by_side_only_the_newest_manifest_loads(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    """ "Create new" deliveries: every run in its own folder, with its own manifest."""
    delivery(tmp_path, [cur2_rows(Decimal(3))], run="run-1", age=3600)
    delivery(tmp_path, [cur2_rows(Decimal(2))], run="run-2")
    report = load(warehouse, tmp_path / "exp")
    assert report.ok and report.rows("billing") == len(ITEMS)
    assert report.skipped[OLDER] == 1 and report.skipped[SUPERSEDED] == 1
    assert rows(warehouse, "SELECT sum(BilledCost) FROM billing") == [(Decimal("332.00"),)]


def test_a_manifest_naming_a_missing_part_loads_nothing_of_its_period(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    delivery(tmp_path / "before", [cur2_rows()])
    load(warehouse, tmp_path / "before")
    items = cur2_rows(Decimal(2))
    delivery(
        tmp_path / "now", [items[:6], items[6:]], listed=["exp-00001.csv.gz", "exp-00009.csv.gz"]
    )
    report = load(warehouse, tmp_path / "now")
    (entry,) = report.inputs
    assert entry.status is Status.FAILED and "\n" not in (entry.message or "")
    assert "exp-00009.csv.gz" in (entry.message or "")
    assert "none of the 2 data files of its delivery were loaded" in (entry.message or "")
    assert rows(warehouse, "SELECT sum(BilledCost) FROM billing") == [(Decimal("166.00"),)]


def test_a_manifest_that_is_not_json_holds_its_parts_back_and_a_foreign_one_is_no_cur_manifest(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    manifest = delivery(tmp_path, [cur2_rows()])
    manifest.write_text('{"dataFiles": ["exp-00001.csv.gz"', encoding="utf-8")
    (entry,) = load(warehouse, tmp_path / "exp").inputs
    assert entry.status is Status.FAILED
    assert "is named like a CUR manifest, but it is not JSON" in (entry.message or "")
    assert rows(warehouse, "SELECT count(*) FROM billing") == [(0,)]
    # an Azure export's manifest.json lists `blobs`: no CUR scope, its folder loads as given
    manifest.write_text('{"manifestVersion": "2024-04-01", "blobs": []}', encoding="utf-8")
    report = load(warehouse, tmp_path / "exp")
    assert report.ok and report.rows("billing") == len(ITEMS)
    assert report.skipped[FOREIGN] == 1


def test_a_restated_cur2_delivery_leaves_exactly_the_latest_totals(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    items = cur2_rows()
    delivery(tmp_path, [items[:6], items[6:]])
    load(warehouse, tmp_path / "exp")
    restated = cur2_rows(Decimal(2))[:-1]  # every cost doubled, the discount gone
    delivery(tmp_path, [restated])  # one part now; the old exp-00002 stays beside it
    report = load(warehouse, tmp_path / "exp")
    assert report.rows("billing") == len(restated)
    expected = sum(Decimal(r["line_item_unblended_cost"]) for r in restated)
    assert rows(warehouse, "SELECT sum(BilledCost), count(*) FROM billing") == [
        (expected, len(restated))
    ]
    before = rows(warehouse, "SELECT * EXCLUDE (load_id) FROM billing ORDER BY x_SourceRowNumber")
    again = load(warehouse, tmp_path / "exp")  # the same delivery twice changes nothing
    assert again.ok and again.rows("billing") == len(restated)
    assert (
        rows(warehouse, "SELECT * EXCLUDE (load_id) FROM billing ORDER BY x_SourceRowNumber")
        == before
    )


# -- bad input ------------------------------------------------------------------------------
def sample_lines(fixtures_dir: Path) -> tuple[str, list[str]]:
    text = (fixtures_dir / "billing" / LEGACY).read_text(encoding="utf-8-sig")
    head, *lines = text.splitlines(keepends=True)
    return head, lines


def test_bad_and_hostile_values_are_quarantined_or_kept_as_text(
    warehouse: Warehouse, fixtures_dir: Path, tmp_path: Path
) -> None:
    head, lines = sample_lines(fixtures_dir)
    columns = next(csv.reader([head]))
    cost = columns.index("lineItem/UnblendedCost")
    start = columns.index("lineItem/UsageStartDate")
    description = columns.index("lineItem/LineItemDescription")

    bad = [
        edited(lines[0], {cost: "abc"}),
        edited(lines[1], {start: "2023-11-01T30:00:00Z"}),
        edited(lines[2], {cost: "1e400"}),
        edited(lines[3], {cost: "99999999999999.999999999999",
                          description: "<script>x</script>'; DROP TABLE billing; --"}),
        "only,three,cells\n",
    ]  # fmt: skip
    path = tmp_path / "a[1]*?.csv"  # glob characters: DuckDB must read only this file
    path.write_text(head + "".join(bad) + "".join(lines[4:10]), encoding="utf-8")
    shutil.copy(fixtures_dir / "billing" / LEGACY, tmp_path / "a1.csv")
    report = load(warehouse, path)
    (entry,) = report.inputs
    assert entry.status is Status.PARTIAL and report.rows("billing") == 7
    errors = dict(rows(warehouse, "SELECT location, error FROM quarantine"))
    assert errors["row 1"].startswith("lineItem/UnblendedCost 'abc' is not a number")
    assert "lineItem/UsageStartDate '2023-11-01T30:00:00Z' is not an ISO 8601" in errors["row 2"]
    assert "'1e400' is out of range" in errors["row 3"]
    assert errors["line 6"].startswith("not a row")
    assert rows(warehouse, "SELECT max(BilledCost) FROM billing") == [
        (Decimal("99999999999999.999999999999"),)
    ]
    assert rows(warehouse, "SELECT ChargeDescription FROM billing WHERE BilledCost > 1000") == [
        ("<script>x</script>'; DROP TABLE billing; --",)
    ]


def test_a_truncated_cur_loads_nothing_and_keeps_the_previous_delivery(
    warehouse: Warehouse, fixtures_dir: Path, tmp_path: Path
) -> None:
    sample = fixtures_dir / "billing" / LEGACY
    load(warehouse, sample)
    cut = tmp_path / "cut.csv"
    cut.write_bytes(sample.read_bytes()[:-200])
    (entry,) = load(warehouse, cut).inputs
    assert entry.status is Status.FAILED and "truncated" in (entry.message or "")
    part = tmp_path / "exp-00001.csv.gz"
    write_csv_gz(part, cur2_rows())
    part.write_bytes(part.read_bytes()[:-40])
    (entry,) = load(warehouse, part).inputs
    assert entry.status is Status.FAILED and "\n" not in (entry.message or "")
    assert rows(warehouse, "SELECT count(*) FROM billing") == [(200,)]


def test_a_cur_without_its_mandatory_columns_names_them(
    warehouse: Warehouse, tmp_path: Path, fixtures_dir: Path
) -> None:
    items = [{k: v for k, v in r.items() if k != "bill_payer_account_id"} for r in cur2_rows()]
    part = write_parquet(tmp_path / "exp-00001.snappy.parquet", items)
    (entry,) = load(warehouse, part).inputs
    assert entry.status is Status.FAILED
    assert "is not a complete AWS-CUR file: the mandatory column(s) bill_payer_account_id" in (
        entry.message or ""
    )
    focus = fixtures_dir / "billing" / "focus-1.0-sample-excerpt.csv"
    (forced,) = load(warehouse, focus, fmt="aws-cur").inputs
    assert "the mandatory column(s) bill/PayerAccountId" not in (forced.message or "")
    assert "bill_payer_account_id, bill_billing_period_start_date" in (forced.message or "")
    assert rows(warehouse, "SELECT count(*) FROM billing") == [(0,)]


def test_a_legacy_report_folder_loads_only_the_assembly_its_manifest_lists(
    warehouse: Warehouse, fixtures_dir: Path, tmp_path: Path
) -> None:
    sample = fixtures_dir / "billing" / LEGACY
    period = tmp_path / "rep" / "20231101-20231201"
    for assembly in ("asm-1", "asm-2"):  # an earlier version of the month, and the current
        (period / assembly).mkdir(parents=True)
        (period / assembly / "rep-1.csv.gz").write_bytes(gzip.compress(sample.read_bytes()))
    keys = {"reportKeys": ["cur/rep/20231101-20231201/asm-2/rep-1.csv.gz"]}
    (period / "rep-Manifest.json").write_text(json.dumps(keys), encoding="utf-8")
    report = load(warehouse, tmp_path / "rep")
    assert report.ok and report.rows("billing") == 200 and report.skipped[SUPERSEDED] == 1
    assert ledger_by_category(warehouse) == legacy_sums(sample)


def test_a_copy_of_a_cur_file_beside_it_is_loaded_once(
    warehouse: Warehouse, fixtures_dir: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(fixtures_dir / "billing" / LEGACY, folder / "cur-1.csv")
    shutil.copy(fixtures_dir / "billing" / LEGACY, folder / "cur-1 (1).csv")
    report = load(warehouse, folder)
    assert report.rows("billing") == 200 and report.duplicates("billing") == 200


def test_the_command_reads_a_cur2_export_and_says_what_it_left_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    items = cur2_rows()
    delivery(tmp_path / "in", [items[:4], items[4:8], items[8:]])
    delivery(tmp_path / "in", [items[:6], items[6:]])
    wh = tmp_path / "w.duckdb"
    status = main(
        ["ingest", "billing", "--format", "aws-cur", "--warehouse", str(wh), str(tmp_path / "in")]
    )
    err = capsys.readouterr().err
    assert status == 0 and "Traceback" not in err
    assert f"loaded {len(ITEMS)} billing line items from 3 files" in err
    assert f"{SUPERSEDED}: 1" in err

"""`hybridlens ingest billing` on Google Cloud billing exports: the koku sample and the
hand-made cases as CSV, JSON lines and Parquet, totals checked against an independent
`csv` + `Decimal` sum (credits summed from their JSON), each invoice month its own unit,
bad input quarantined or refused in one sentence."""

from __future__ import annotations

import csv
import gzip
import json
import shutil
from collections import defaultdict
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hybridlens.cli import main
from hybridlens.ingest_billing import ingest_billing
from warehouse.config import Config
from warehouse.db import Warehouse
from warehouse.focus_spec import COLUMNS
from warehouse.report import LoadReport, Status

CASES = Path(__file__).parent / "cases" / "billing"
SMALL = CASES / "gcp-export-small.csv"
RESTATED = CASES / "gcp-export-restated.csv"
KOKU = "gcp-billing-export-koku-2024-03-01_5.csv"
REPEATED = ("labels", "system_labels", "credits", "project.labels")
NUMBERS = ("cost", "currency_conversion_rate", "usage.amount", "usage.amount_in_pricing_units",
           "cost_at_list")  # fmt: skip
TIMES = ("usage_start_time", "usage_end_time", "export_time")
FOCUS = ", ".join(COLUMNS)


def rows(wh: Warehouse, sql: str) -> list[tuple[Any, ...]]:
    with wh.read() as con:
        return con.execute(sql).fetchall()


def load(wh: Warehouse, *paths: Path, fmt: str = "auto") -> LoadReport:
    return ingest_billing(wh, list(paths), Config(), fmt=fmt)


def records(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def decimal_sums(path: Path) -> dict[tuple[str, str], tuple[Decimal, Decimal, Decimal]]:
    """(BilledCost, EffectiveCost, ListCost) per (account, invoice month), computed with
    csv + Decimal: cost plus the credits' amounts (parsed from their JSON), cost_at_list
    (the cost where a row has none)."""
    totals: dict[tuple[str, str], list[Decimal]] = defaultdict(lambda: [Decimal(0)] * 3)
    for record in records(path):
        credits = json.loads(record.get("credits") or "[]", parse_float=Decimal)
        net = Decimal(record["cost"]) + sum((Decimal(c["amount"]) for c in credits), Decimal(0))
        month = record["invoice.month"]
        key = (record["billing_account_id"], f"{month[:4]}-{month[4:]}-01")
        totals[key][0] += net
        totals[key][1] += net
        totals[key][2] += Decimal(record.get("cost_at_list") or record["cost"])
    return {k: (v[0], v[1], v[2]) for k, v in totals.items()}


def ledger_sums(wh: Warehouse) -> dict[tuple[str, str], tuple[Decimal, Decimal, Decimal]]:
    found = rows(
        wh,
        "SELECT BillingAccountId, strftime(BillingPeriodStart, '%Y-%m-%d'), sum(BilledCost), "
        "sum(EffectiveCost), coalesce(sum(ListCost), 0) FROM billing WHERE NOT x_Modelled "
        "GROUP BY ALL",
    )
    return {(a, m): (b, e, li) for a, m, b, e, li in found}


def nested(record: dict[str, str], *, typed_times: bool) -> dict[str, Any]:
    """A CSV record as the BigQuery table holds it: structs, repeated records, numbers."""
    out: dict[str, Any] = {}
    for key, text in record.items():
        value: Any = text or None
        if key in REPEATED:
            value = json.loads(text or "[]")
        elif key in NUMBERS and value is not None:
            value = float(text)
        elif key in TIMES and value is not None:
            when = datetime.fromisoformat(text)
            value = when if typed_times else when.strftime("%Y-%m-%d %H:%M:%S UTC")
        top, _, member = key.partition(".")
        if member:
            out.setdefault(top, {})[member] = value
        else:
            out[key] = value
    return out


def write_variant(source: Path, kind: str, folder: Path) -> Path:
    if kind == "jsonl":
        path = folder / "export.json"
        lines = [json.dumps(nested(r, typed_times=False)) for r in records(source)]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    elif kind == "parquet":
        path = folder / "export.parquet"
        pq.write_table(pa.Table.from_pylist([nested(r, typed_times=True) for r in records(source)]),
                       path)  # fmt: skip
    else:
        path = folder / "export.csv"
        path.write_bytes(gzip.compress(source.read_bytes()))
    return path


# -- the public sample -------------------------------------------------------------------------
def test_the_koku_sample_loads_with_totals_equal_to_a_decimal_sum(
    warehouse: Warehouse, fixtures_dir: Path
) -> None:
    sample = fixtures_dir / "billing" / KOKU
    report = load(warehouse, sample)
    assert report.ok and report.quarantined == 0, report.failures
    assert report.rows("billing") == len(records(sample)) == 6
    assert ledger_sums(warehouse) == decimal_sums(sample)
    # its costs are zero, so check its quantities too, summed the same independent way
    expected: dict[str, list[Decimal]] = defaultdict(lambda: [Decimal(0)] * 2)
    for record in records(sample):
        expected[record["invoice.month"]][0] += Decimal(record["usage.amount"])
        expected[record["invoice.month"]][1] += Decimal(record["usage.amount_in_pricing_units"])
    found = rows(
        warehouse,
        "SELECT strftime(BillingPeriodStart, '%Y%m'), sum(ConsumedQuantity), "
        "sum(PricingQuantity) FROM billing GROUP BY 1",
    )
    assert {m: [c, p] for m, c, p in found} == expected
    # two invoice months in one file: two units
    assert rows(warehouse, "SELECT x_ReplaceUnit, count(*) FROM billing GROUP BY 1 ORDER BY 1") == [
        ("billed/Google%20Cloud/018984-D0AAA4-940B88/2024-02-01/gcp-export", 3),
        ("billed/Google%20Cloud/018984-D0AAA4-940B88/2024-03-01/gcp-export", 3),
    ]
    first = rows(
        warehouse,
        "SELECT ServiceName, SkuId, SubAccountId, SubAccountName, RegionId, ResourceName, "
        "ResourceId, ConsumedUnit, PricingUnit, BillingPeriodEnd::VARCHAR, x_SourceFormat, "
        "typeof(BilledCost), x_SourceRow->>'project.ancestry_numbers' FROM billing "
        "ORDER BY x_SourceRowNumber LIMIT 1",
    )
    assert first == [
        ("Compute Engine", "6B8F-E63D-832B", "cloud-billing-292519", "cm_example",
         "us-central1", "instance-1", "//example", "bytes", "gibibyte",
         "2024-03-01 00:00:00+00", "gcp-billing-export", "DECIMAL(38,12)",
         "/1234567/237691936840/")
    ]  # fmt: skip


# -- the mapping -------------------------------------------------------------------------------
def test_an_export_maps_onto_focus_as_googles_focus_view_does(warehouse: Warehouse) -> None:
    report = load(warehouse, SMALL)
    assert report.ok and report.rows("billing") == len(records(SMALL)) == 7
    assert ledger_sums(warehouse) == decimal_sums(SMALL)
    found = rows(
        warehouse,
        "SELECT x_SourceRow->>'cost_type', ChargeCategory, ChargeClass, BilledCost, "
        "EffectiveCost, ContractedCost, ListCost, ConsumedQuantity, PricingQuantity "
        "FROM billing ORDER BY x_SourceRowNumber",
    )
    d = Decimal
    assert found[0] == ("regular", "Usage", None, d("9.5"), d("9.5"), d("12.875"), d("14.5"),
                        d(3600), d(1))  # fmt: skip
    assert found[2][:3] == ("tax", "Tax", None) and found[2][7:] == (None, None)
    assert found[4][:4] == ("adjustment", "Adjustment", "Correction", d("-2.4"))
    assert found[5][:4] == ("rounding_error", "Adjustment", None, d("-0.000000000001"))
    gpu = rows(
        warehouse,
        "SELECT Tags->>'team', Tags->>'model', CommitmentDiscountCategory, "
        "CommitmentDiscountName, PricingCategory, AvailabilityZone, ProviderName, "
        "PublisherName, InvoiceIssuerName, SubAccountType, "
        "json_array_length((x_SourceRow->>'credits')::JSON), "
        "(x_SourceRow->>'project.labels')::JSON->0->>'value' "
        "FROM billing ORDER BY x_SourceRowNumber LIMIT 1",
    )
    assert gpu == [
        ("search", "llama-70b", "Usage", "GPU commitment cud-1", "Committed", "us-central1-a",
         "Google Cloud", "Google Cloud", "Google Cloud", "Project", 2, "prod")
    ]  # fmt: skip
    # the project's labels stay in the raw row: inheriting them as tags is a later step
    assert rows(warehouse, "SELECT count(*) FROM billing WHERE Tags->>'env' IS NOT NULL") == [(0,)]
    assert rows(warehouse, "SELECT DISTINCT BillingCurrency FROM billing ORDER BY 1") == [
        ("EUR",),
        ("USD",),
    ]


def test_every_row_gets_the_focus_columns_that_may_not_be_null(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    """The validator failed ChargeFrequency-C-002-M, ServiceCategory-C-002-M and
    ListCost-C-003-M (not null) on the public koku sample, which the mapping left null: the
    export has no frequency or category, and an older one no `cost_at_list`."""
    found = records(SMALL)
    commitment = found[0] | {"sku.description": "Commitment v1: Nvidia H100 GPU in Iowa"}
    path = tmp_path / "export.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(found[0]))
        writer.writeheader()
        writer.writerows([*found, commitment])
    assert load(warehouse, path).ok
    d = Decimal
    assert rows(
        warehouse,
        "SELECT x_SourceRow->>'cost_type', ChargeFrequency, ServiceName, ServiceCategory, "
        "ListCost FROM billing ORDER BY x_SourceRowNumber",
    ) == [
        ("regular", "Usage-Based", "Compute Engine", "Compute", d("14.5")),
        ("regular", "Usage-Based", "Compute Engine", "Compute", d("0.000001")),
        ("tax", "Usage-Based", "Tax", "Other", d("0.9")),  # no cost_at_list: the cost
        ("regular", "Usage-Based", "Compute Engine", "Compute", d("12.875")),
        ("adjustment", "One-Time", "Compute Engine", "Compute", d("-2.4")),
        ("rounding_error", "One-Time", "Invoice", "Other", d("-0.000000000001")),
        ("regular", "Usage-Based", "BigQuery", "Analytics", d("5.0")),
        ("regular", "Recurring", "Compute Engine", "Compute", d("14.5")),
    ]  # fmt: skip


ALL_ROWS = f"SELECT {FOCUS}, x_ReplaceUnit FROM billing ORDER BY x_SourceRowNumber"


@pytest.fixture(scope="module")
def from_csv(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Any, ...]]:
    """The small export's ledger rows, loaded once from its CSV."""
    wh = Warehouse(tmp_path_factory.mktemp("csv") / "w.duckdb")
    load(wh, SMALL)
    return rows(wh, ALL_ROWS)


@pytest.mark.parametrize("kind", ["jsonl", "parquet", "csv.gz"])
def test_json_lines_parquet_and_gzip_exports_load_the_same_line_items(
    warehouse: Warehouse, tmp_path: Path, kind: str, from_csv: list[tuple[Any, ...]]
) -> None:
    report = load(warehouse, write_variant(SMALL, kind, tmp_path))
    assert report.ok and report.quarantined == 0, report.failures
    assert ledger_sums(warehouse) == decimal_sums(SMALL)
    assert rows(warehouse, ALL_ROWS) == from_csv


# -- deliveries --------------------------------------------------------------------------------
def test_a_restated_month_replaces_only_that_month(warehouse: Warehouse) -> None:
    load(warehouse, SMALL)
    units = dict(rows(warehouse, "SELECT x_ReplaceUnit, count(*) FROM billing GROUP BY 1"))
    assert len(units) == 3  # two accounts; one of them in two invoice months
    report = load(warehouse, RESTATED)
    assert report.ok and report.rows("billing") == len(records(RESTATED))
    expected = decimal_sums(SMALL) | decimal_sums(RESTATED)  # October kept, November restated
    assert ledger_sums(warehouse) == expected
    assert rows(warehouse, "SELECT count(*) FROM billing") == [(3 + len(records(RESTATED)),)]
    before = rows(warehouse, "SELECT * EXCLUDE (load_id) FROM billing ORDER BY ALL")
    again = load(warehouse, RESTATED)  # the same delivery twice changes nothing
    assert again.ok
    assert rows(warehouse, "SELECT * EXCLUDE (load_id) FROM billing ORDER BY ALL") == before


def test_a_copy_of_an_export_in_one_delivery_is_loaded_once(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    shutil.copy(SMALL, tmp_path / "export.csv")
    shutil.copy(SMALL, tmp_path / "export (1).csv")
    report = load(warehouse, tmp_path)
    assert report.rows("billing") == 7 and report.duplicates("billing") == 7
    assert ledger_sums(warehouse) == decimal_sums(SMALL)


@pytest.mark.parametrize("name", ["a[1]*?.csv", "'; DROP TABLE billing; --.json", "x.parquet"])
def test_hostile_file_names_read_only_themselves(
    warehouse: Warehouse, tmp_path: Path, name: str
) -> None:
    (tmp_path / "sub").mkdir()
    shutil.copy(RESTATED, tmp_path / "a1.csv")  # what a glob `a[1]*?.csv` would also match
    target = tmp_path / "sub" / name
    shutil.copy(SMALL, target)  # a CSV whatever its name says: told from its bytes
    report = load(warehouse, target)
    assert report.ok and report.rows("billing") == 7
    assert ledger_sums(warehouse) == decimal_sums(SMALL)


# -- bad input ---------------------------------------------------------------------------------
def _edited(tmp_path: Path, edits: dict[int, dict[str, str]], extra: str = "") -> Path:
    """The small export with cells replaced (row index -> column -> text)."""
    table = records(SMALL)
    for index, cells in edits.items():
        table[index].update(cells)
    path = tmp_path / "bad.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(table[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(table)
        fh.write(extra)
    return path


def test_bad_values_are_quarantined_per_row_and_the_rest_loads(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    huge = "9" * 27
    path = _edited(
        tmp_path,
        {
            0: {"cost": "abc"},
            1: {"usage_start_time": "2026-10-31T30:00:00Z", "labels": '{"team": "x"}'},
            2: {"credits": '[{"amount": "lots"}]'},
            3: {"invoice.month": "2026-11"},
            4: {"cost": "1e400"},
            5: {"cost": huge},  # 27 digits before the point: out of DECIMAL(38, 12)
            6: {
                "sku.description": "<script>alert('x')</script>",
                "project.name": "'; DROP TABLE billing; --",
                "cost": "99999999999999.999999999999",
            },
        },
        extra="01A2B3-C4D5E6-F7A8B9,too,few\n",
    )
    report = load(warehouse, path)
    (entry,) = report.inputs
    assert entry.status is Status.PARTIAL and report.rows("billing") == 1
    errors = dict(rows(warehouse, "SELECT location, error FROM quarantine"))
    assert errors["row 1"].startswith("cost 'abc' is not a number")
    assert 'labels \'{"team": "x"}\' is not a JSON array' in errors["row 2"]
    assert "usage_start_time '2026-10-31T30:00:00Z' is not an ISO 8601" in errors["row 2"]
    assert errors["row 3"].startswith('credits \'[{"amount": "lots"}]\' holds an amount that')
    assert errors["row 4"].startswith("invoice.month '2026-11' is not a YYYYMM month")
    assert errors["row 5"].startswith("cost '1e400' is out of range")
    assert errors["row 6"].startswith(f"cost '{huge}' is out of range")
    assert errors["line 9"].startswith("not a row: Expected Number of Columns")
    assert len(errors) == 7
    assert rows(warehouse, "SELECT ChargeDescription, SubAccountName, BilledCost FROM billing") == [
        ("<script>alert('x')</script>", "'; DROP TABLE billing; --",
         Decimal("99999999999999.999999999999"))
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("cost", "credits"),
    [("9" * 26, '[{"amount": 1e25}]'), ("1", '[{"amount": 9e25}, {"amount": 9e25}]')],
)
def test_a_cost_whose_credits_overflow_is_quarantined(
    warehouse: Warehouse, tmp_path: Path, cost: str, credits: str
) -> None:
    """Each value fits DECIMAL(38, 12); with its (hostile, positive) credits it does not."""
    load(warehouse, _edited(tmp_path, {0: {"cost": cost, "credits": credits}}))
    errors = dict(rows(warehouse, "SELECT location, error FROM quarantine"))
    assert errors == {
        "row 1": f"cost '{cost}.000000000000' plus its credits does not fit DECIMAL(38, 12): "
        "the row was not loaded"
    }


def test_a_json_line_that_is_not_json_is_quarantined_by_its_line(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    path = write_variant(SMALL, "jsonl", tmp_path)
    lines = path.read_text(encoding="utf-8").splitlines()
    lines.insert(2, '{"billing_account_id": "01A2B3-C4D5E6-F7A8B9", "cost": ')
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = load(warehouse, path)
    assert report.rows("billing") == 7 and report.quarantined == 1
    assert rows(warehouse, "SELECT location, error FROM quarantine") == [
        ("line 3", "not a row: not valid JSON")
    ]
    assert ledger_sums(warehouse) == decimal_sums(SMALL)


@pytest.mark.parametrize("kind", ["csv", "jsonl", "parquet"])
def test_a_truncated_export_loads_nothing_and_keeps_the_previous_delivery(
    warehouse: Warehouse, tmp_path: Path, kind: str
) -> None:
    load(warehouse, SMALL)
    whole = SMALL if kind == "csv" else write_variant(SMALL, kind, tmp_path)
    cut = tmp_path / f"cut.{kind}"
    cut.write_bytes(whole.read_bytes()[:-40])
    (entry,) = load(warehouse, cut).inputs
    assert entry.status is Status.FAILED and "\n" not in (entry.message or "")
    if kind == "parquet":
        assert f"{cut} is not a readable Parquet file" in (entry.message or "")
    else:
        last = 8 if kind == "csv" else 7  # the CSV's header is its line 1
        assert f"ends inside a row at line {last}" in (entry.message or "")
        assert "truncated" in (entry.message or "")
    assert ledger_sums(warehouse) == decimal_sums(SMALL)


def test_an_export_missing_mandatory_columns_is_refused_naming_them(
    warehouse: Warehouse, tmp_path: Path, fixtures_dir: Path
) -> None:
    table = records(SMALL)
    path = tmp_path / "partial.csv"
    keep = [c for c in table[0] if c not in ("cost", "invoice.month", "currency")]
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=keep, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(table)
    (entry,) = load(warehouse, path).inputs
    assert entry.status is Status.FAILED
    assert entry.message == (
        f"{path} is not a complete GCP file: the mandatory column(s) cost, currency, "
        "invoice.month are missing, so none of it was loaded"
    )
    focus = fixtures_dir / "billing" / "focus-1.0-sample-excerpt.csv"
    (forced,) = load(warehouse, focus, fmt="gcp").inputs
    assert "is not a complete GCP file: the mandatory column(s) billing_account_id," in (
        forced.message or ""
    )
    assert rows(warehouse, "SELECT count(*) FROM billing") == [(0,)]


# -- the command -------------------------------------------------------------------------------
def test_the_command_reads_gcp_exports_told_apart_or_forced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wh = tmp_path / "w.duckdb"
    config = tmp_path / "hybridlens.toml"  # the small export bills some charges in EUR
    config.write_text('[billing]\nrates = [{ currency = "EUR", rate = 1.08, since = 2026-01-01 }]')
    at = ["ingest", "billing", "--warehouse", str(wh), "--config", str(config)]
    assert main([*at, "--format", "gcp", str(SMALL)]) == 0
    assert "loaded 7 billing line items from 1 files" in capsys.readouterr().err
    variant = write_variant(SMALL, "jsonl", tmp_path)
    assert main([*at, str(variant)]) == 0


def test_a_configured_folder_may_insist_on_gcp(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fixtures_dir: Path
) -> None:
    folder = tmp_path / "exports"
    folder.mkdir()
    shutil.copy(SMALL, folder / "nov.csv")
    shutil.copy(fixtures_dir / "billing" / "focus-1.0-sample-excerpt.csv", folder / "focus.csv")
    config = tmp_path / "hybridlens.toml"
    config.write_text(
        '[billing]\nrates = [{ currency = "EUR", rate = 1.08, since = 2026-01-01 }]\n'
        f'[[sources.billing]]\npath = "{folder}"\nformat = "gcp"\n'
    )
    wh = tmp_path / "w.duckdb"
    assert main(["ingest", "billing", "--warehouse", str(wh), "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert "loaded 7 billing line items from 1 files" in err
    assert "focus.csv is not a complete GCP file" in err and "Traceback" not in err

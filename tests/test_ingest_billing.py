"""`hybridlens ingest billing`: FOCUS 1.0-1.4 files into the ledger, totals checked against
an independent `csv` + `Decimal` sum, deliveries replacing their units, bad input
quarantined or refused in one sentence."""

from __future__ import annotations

import csv
import gzip
import shutil
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

import warehouse.publish as publish_module
from hybridlens.cli import main
from hybridlens.ingest_billing import ingest_billing
from warehouse.billing_deliveries import doubled_units
from warehouse.config import Config
from warehouse.db import Warehouse
from warehouse.report import LoadReport, Status

CASES = Path(__file__).parent / "cases" / "billing"
SMALL = CASES / "focus-1.2-small.csv"
RESTATED = CASES / "focus-1.2-restated.csv"
V14 = CASES / "focus-1.4-no-provider-name.csv"
MONEY = ("BilledCost", "EffectiveCost", "ListCost")


def rows(wh: Warehouse, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    with wh.read() as con:
        return con.execute(sql, params).fetchall()


def load(wh: Warehouse, *paths: Path, fmt: str = "auto") -> LoadReport:
    return ingest_billing(wh, list(paths), Config(), fmt=fmt)


def decimal_sums(path: Path, by: str | None = None) -> dict[str, tuple[Decimal, ...]]:
    """The money columns summed with csv + Decimal, per `by` (or "all"), NULL as nothing."""
    totals: dict[str, list[Decimal]] = defaultdict(lambda: [Decimal(0)] * len(MONEY))
    with path.open(encoding="utf-8-sig", newline="") as fh:
        for record in csv.DictReader(fh):
            key = record[by] if by else "all"
            for i, column in enumerate(MONEY):
                if record[column] not in ("", "NULL"):
                    totals[key][i] += Decimal(record[column])
    return {k: tuple(v) for k, v in totals.items()}


def ledger_sums(wh: Warehouse, by: str | None = None) -> dict[str, tuple[Decimal, ...]]:
    group = f'"{by}"' if by else "'all'"
    found = rows(
        wh,
        f"SELECT {group}, sum(BilledCost), sum(EffectiveCost), sum(ListCost) FROM billing "
        "WHERE NOT x_Modelled GROUP BY 1",
    )
    return {k: tuple(v or Decimal(0) for v in vals) for k, *vals in found}


def data_rows(path: Path) -> int:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return sum(1 for _ in csv.DictReader(fh))


# -- the public sample -------------------------------------------------------------------------
def test_the_focus_sample_loads_and_its_totals_match_a_decimal_sum(
    warehouse: Warehouse, fixtures_dir: Path
) -> None:
    sample = fixtures_dir / "billing" / "focus-1.0-sample-excerpt.csv"
    report = load(warehouse, sample)
    assert report.ok and report.quarantined == 0
    assert report.rows("billing") == data_rows(sample) == 301
    assert ledger_sums(warehouse, "ProviderName") == decimal_sums(sample, "ProviderName")
    assert ledger_sums(warehouse) == decimal_sums(sample)
    types = rows(
        warehouse,
        "SELECT DISTINCT typeof(BilledCost), typeof(EffectiveCost), typeof(ListCost) FROM billing",
    )
    assert types == [("DECIMAL(38,12)",) * 3]
    # the extra non-FOCUS `Id` column is kept in the raw row, and NULL is a null
    (raw, region) = rows(
        warehouse,
        "SELECT x_SourceRow->>'Id', AvailabilityZone FROM billing "
        "ORDER BY x_SourceRowNumber LIMIT 1",
    )[0]
    assert raw == "11472" and region is None
    # its negative usage rows are loaded as delivered and counted
    assert any("negative EffectiveCost" in k for k in report.skipped)


# -- FOCUS versions ----------------------------------------------------------------------------
def test_a_focus_1_2_file_keeps_its_json_extras_and_fills_the_1_3_provider_names(
    warehouse: Warehouse,
) -> None:
    report = load(warehouse, SMALL)
    assert report.ok and report.rows("billing") == 4
    assert ledger_sums(warehouse) == decimal_sums(SMALL)
    found = rows(
        warehouse,
        "SELECT ServiceProviderName, HostProviderName, Tags->>'model',"
        " SkuPriceDetails->>'CoreCount', x_SourceRow->>'x_GpuModel',"
        " x_SourceRow->>'CostCenterLegacy', x_SourceFormat,"
        " x_ReplaceUnit, ChargeClass FROM billing ORDER BY x_SourceRowNumber LIMIT 1",
    )
    assert found == [
        (
            "ExampleCloud",
            "ExampleCloud",
            "llama-70b",
            "8",
            "H100",
            "cc-17",
            "focus-1.2",
            "billed/ExampleCloud/210987654321/2026-10-01/focus",
            None,
        )
    ]
    assert rows(warehouse, "SELECT min(BilledCost) FROM billing WHERE BilledCost > 0") == [
        (Decimal("0.000000000001"),)
    ]


def test_a_focus_1_4_file_without_provider_name_replaces_the_1_2_delivery_of_its_month(
    warehouse: Warehouse,
) -> None:
    load(warehouse, SMALL)
    report = load(warehouse, V14)
    assert report.ok and report.rows("billing") == 2
    found = rows(
        warehouse,
        "SELECT DISTINCT ProviderName, PublisherName, ServiceProviderName, x_SourceFormat, "
        "ContractApplied::VARCHAR, x_ReplaceUnit FROM billing",
    )
    assert found == [
        (
            "ExampleCloud",
            "ExampleCloud",
            "ExampleCloud",
            "focus-1.4",
            '{"Elements":[]}',
            "billed/ExampleCloud/210987654321/2026-10-01/focus",
        )
    ]
    assert ledger_sums(warehouse) == decimal_sums(V14)


@pytest.mark.parametrize("kind", ["parquet", "csv.gz", "gz-named-csv"])
def test_parquet_and_gzip_variants_load_the_same_line_items(
    warehouse: Warehouse, tmp_path: Path, kind: str
) -> None:
    if kind == "parquet":
        variant = tmp_path / "export.parquet"
        con = duckdb.connect()  # typed columns: costs become DOUBLE, times TIMESTAMP
        con.execute(
            f"COPY (SELECT * FROM read_csv('{SMALL}', nullstr='NULL')) TO '{variant}' "
            "(FORMAT parquet)"
        )
        con.close()
    else:
        variant = tmp_path / ("export.csv.gz" if kind == "csv.gz" else "export.csv")
        variant.write_bytes(gzip.compress(SMALL.read_bytes()))
    report = load(warehouse, variant)
    assert report.ok, report.failures
    assert report.rows("billing") == 4
    assert ledger_sums(warehouse) == decimal_sums(SMALL)


# -- deliveries --------------------------------------------------------------------------------
def split_small(folder: Path, *cuts: slice) -> tuple[str, list[str]]:
    """SMALL's rows as part-1.csv, part-2.csv, … of `folder`, one per slice of its data lines;
    its header and data lines, for a test that writes a part again."""
    folder.mkdir()
    with SMALL.open(encoding="utf-8-sig") as fh:
        head, *lines = fh.read().splitlines(keepends=True)
    for n, cut in enumerate(cuts, 1):
        (folder / f"part-{n}.csv").write_text(head + "".join(lines[cut]), encoding="utf-8")
    return head, lines


def test_a_restated_delivery_leaves_exactly_the_latest_totals(warehouse: Warehouse) -> None:
    load(warehouse, SMALL)
    load(warehouse, RESTATED)
    assert ledger_sums(warehouse) == decimal_sums(RESTATED)
    assert rows(warehouse, "SELECT count(*) FROM billing") == [(data_rows(RESTATED),)]
    before = rows(warehouse, "SELECT * EXCLUDE (load_id) FROM billing ORDER BY x_SourceRowNumber")
    again = load(warehouse, RESTATED)  # the same delivery twice changes nothing
    assert again.ok and again.rows("billing") == data_rows(RESTATED)
    after = rows(warehouse, "SELECT * EXCLUDE (load_id) FROM billing ORDER BY x_SourceRowNumber")
    assert after == before


def test_the_files_of_one_delivery_replace_their_unit_together(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    """Two parts of one month: restating one part must not drop the other's rows, so every
    file given to a command is read again, changed or not."""
    folder = tmp_path / "oct"
    head, lines = split_small(folder, slice(0, 2), slice(2, None))
    load(warehouse, folder)
    (folder / "part-2.csv").write_text(head + lines[3], encoding="utf-8")  # restated
    report = load(warehouse, folder)
    assert report.rows("billing") == 3
    assert rows(warehouse, "SELECT count(*) FROM billing") == [(3,)]


def test_two_runs_of_one_export_in_one_command_are_named(
    warehouse: Warehouse, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A month's export and its restatement side by side in one folder are one delivery and
    add up; parts of one run share no charge, two runs nearly all: the command says which
    unit holds two runs and exits 1, so the doubled month is never silent."""
    folder = tmp_path / "exports"
    folder.mkdir()
    shutil.copy(SMALL, folder / "focus-2026-11-01.csv")
    shutil.copy(RESTATED, folder / "focus-2026-11-03.csv")
    report = load(warehouse, folder)
    [doubled] = doubled_units(warehouse, report.load_ids)
    assert [Path(f).name for f in doubled.files] == ["focus-2026-11-01.csv", "focus-2026-11-03.csv"]
    assert doubled.shared == 2  # rows that differ; the byte-identical ones are loaded once
    assert main(["ingest", "billing", str(folder), "--warehouse", str(warehouse.path)]) == 1
    err = capsys.readouterr().err
    assert f"{doubled.unit} holds the same {doubled.shared:,} charges" in err
    assert "focus-2026-11-03.csv" in err and "one command per delivery" in err
    # the parts of one run share nothing: no word about them
    parts = tmp_path / "parts"
    split_small(parts, slice(0, 2), slice(2, None))
    assert doubled_units(warehouse, load(warehouse, parts).load_ids) == []
    assert main(["ingest", "billing", str(parts), "--warehouse", str(warehouse.path)]) == 0
    assert "same" not in capsys.readouterr().err


def test_a_delivery_that_cannot_be_published_fails_whole(
    warehouse: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Published file by file, each part would replace its month with its own rows: when the
    delivery's one publish fails, every file fails and the month keeps its last delivery."""
    load(warehouse, SMALL)
    before = ledger_sums(warehouse)
    folder = tmp_path / "oct"
    split_small(folder, slice(0, 2), slice(2, 3))
    real = publish_module._publish

    def failing(*args: Any, **kwargs: Any) -> Any:
        if args[4] is None:  # the delivery's one publish; a single input's would pass
            raise duckdb.ConversionException("poisoned")
        return real(*args, **kwargs)

    monkeypatch.setattr(publish_module, "_publish", failing)
    report = load(warehouse, folder)
    assert [i.status for i in report.inputs] == [Status.FAILED, Status.FAILED]
    assert all("poisoned" in (i.message or "") for i in report.inputs)
    assert ledger_sums(warehouse) == before, "a part replaced the month on its own"


def test_cloud_deliveries_never_touch_the_modelled_rows(warehouse: Warehouse) -> None:
    with warehouse.write() as con:
        con.execute(
            "INSERT INTO billing (BilledCost, BillingAccountId, BillingCurrency, "
            "BillingPeriodStart, BillingPeriodEnd, ChargeCategory, ChargePeriodStart, "
            "ChargePeriodEnd, ContractedCost, EffectiveCost, InvoiceIssuerName, ListCost, "
            "ProviderName, PublisherName, ServiceCategory, ServiceName, x_ReplaceUnit, "
            "x_Modelled) VALUES (0, 'dc-fra', 'EUR', '2026-10-01', '2026-11-01', 'Usage', "
            "'2026-10-01', '2026-10-02', 7, 7, 'hybridlens', 7, 'ExampleCloud', 'ExampleCloud', "
            "'AI and Machine Learning', 'GPU', 'modelled/dc-fra/2026-10-01', true)"
        )
    load(warehouse, SMALL)
    load(warehouse, RESTATED)
    assert rows(warehouse, "SELECT x_ReplaceUnit, EffectiveCost FROM billing WHERE x_Modelled") == [
        ("modelled/dc-fra/2026-10-01", Decimal(7))
    ]


def test_a_copy_of_a_file_beside_it_is_loaded_once(warehouse: Warehouse, tmp_path: Path) -> None:
    shutil.copy(SMALL, tmp_path / "export.csv")
    shutil.copy(SMALL, tmp_path / "export (1).csv")
    report = load(warehouse, tmp_path)
    assert report.rows("billing") == 4 and report.duplicates("billing") == 4
    assert ledger_sums(warehouse) == decimal_sums(SMALL)


# -- bad input ---------------------------------------------------------------------------------
def test_bad_values_are_quarantined_per_row_and_the_rest_loads(warehouse: Warehouse) -> None:
    report = load(warehouse, CASES / "bad-values.csv")
    (entry,) = report.inputs
    assert entry.status is Status.PARTIAL
    # ok1, the two equal injection rows (two line items of one file), the biggest cost
    assert report.rows("billing") == 4 and report.duplicates("billing") == 0
    errors = dict(rows(warehouse, "SELECT location, error FROM quarantine"))
    assert errors["row 2"].startswith("BilledCost 'abc' is not a number")
    assert errors["row 3"].startswith(
        "ChargePeriodEnd '2023-02-01T30:00:00Z' is not an ISO 8601 date-time"
    )
    assert "BilledCost '1e400' is out of range" in errors["row 4"]
    assert "BilledCost '123456789012345678901234567890' is out of range" in errors["row 5"]
    assert "Tags '{\"model\": llama' is not a JSON object" in errors["row 6"]
    assert errors["row 9"].startswith("BillingAccountId is null")
    assert errors["line 12"].startswith("not a row: Expected Number of Columns")
    assert len(errors) == 7
    hostile = rows(
        warehouse, "SELECT ResourceId, ChargeDescription FROM billing WHERE BilledCost = 2"
    )
    assert hostile == [("<script>alert('x')</script>", "'; DROP TABLE billing; --")] * 2
    assert rows(warehouse, "SELECT max(BilledCost) FROM billing") == [
        (Decimal("99999999999999.999999999999"),)
    ]


def test_a_truncated_file_loads_nothing_and_keeps_the_previous_delivery(
    warehouse: Warehouse,
) -> None:
    load(warehouse, SMALL)
    report = load(warehouse, CASES / "truncated.csv")
    (entry,) = report.inputs
    assert entry.status is Status.FAILED
    assert "ends inside a row at line 4" in (entry.message or "")
    assert "truncated" in (entry.message or "")
    assert ledger_sums(warehouse) == decimal_sums(SMALL)


def test_a_truncated_gzip_fails_in_one_sentence(warehouse: Warehouse, tmp_path: Path) -> None:
    cut = tmp_path / "export.csv.gz"
    cut.write_bytes(gzip.compress(SMALL.read_bytes())[:300])
    (entry,) = load(warehouse, cut).inputs
    assert entry.status is Status.FAILED and "\n" not in (entry.message or "")
    assert str(cut) in (entry.message or "")


def test_a_file_that_is_not_focus_names_what_is_missing(
    warehouse: Warehouse, fixtures_dir: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other.csv"
    other.write_text("Service,Amount\nCompute,4.25\n")
    (auto,) = load(warehouse, other).inputs
    assert "is in none of the billing formats read (focus, " in (auto.message or "")
    azure = fixtures_dir / "billing" / "azure-EA_ActualCost_Small.csv"
    (forced,) = load(warehouse, azure, fmt="focus").inputs
    assert forced.status is Status.FAILED
    assert "is not a complete FOCUS file: the mandatory column(s) BilledCost," in (
        forced.message or ""
    )
    assert "ProviderName or ServiceProviderName are missing" in (forced.message or "")
    assert rows(warehouse, "SELECT count(*) FROM billing") == [(0,)]


def test_the_spec_examples_are_refused_naming_missing_columns_and_bad_values(
    warehouse: Warehouse, fixtures_dir: Path
) -> None:
    folder = fixtures_dir / "billing" / "focus-spec-examples"
    report = load(warehouse, folder)
    assert len(report.inputs) == len(list(folder.iterdir())) >= 10
    for entry in report.inputs:
        assert entry.status is Status.FAILED
        assert "mandatory column(s) BillingAccountId" in (entry.message or ""), entry.uri
    bad = rows(warehouse, "SELECT error FROM quarantine WHERE location LIKE 'row %'")
    assert any("'2023-02-01T30:00:00Z' is not an ISO 8601 date-time" in e for (e,) in bad)
    assert rows(warehouse, "SELECT count(*) FROM billing") == [(0,)]


@pytest.mark.parametrize("name", ["a[1]*?.csv", "'; DROP TABLE billing; --.csv", "../x.csv"])
def test_hostile_file_names_read_only_themselves(
    warehouse: Warehouse, tmp_path: Path, name: str
) -> None:
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    shutil.copy(RESTATED, folder / "a1.csv")  # what a glob `a[1]*?.csv` would also match
    target = folder / "sub" / name
    shutil.copy(SMALL, target)
    report = load(warehouse, target)
    assert report.ok and report.rows("billing") == 4
    assert ledger_sums(warehouse) == decimal_sums(SMALL)


def test_empty_and_header_only_files(warehouse: Warehouse, tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_bytes(b"")
    (tmp_path / "header.csv").write_text(SMALL.read_text(encoding="utf-8-sig").splitlines()[0])
    report = load(warehouse, tmp_path)
    messages = {Path(i.uri).name: (i.status, i.message) for i in report.inputs}
    assert messages["empty.csv"][0] is Status.FAILED and "is empty" in str(messages["empty.csv"])
    assert messages["header.csv"][0] is Status.OK


# -- the command -------------------------------------------------------------------------------
def test_the_command_exits_1_with_a_summary_and_no_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wh = tmp_path / "w.duckdb"
    status = main(["ingest", "billing", "--warehouse", str(wh), str(CASES)])
    err = capsys.readouterr().err
    assert status == 2 and "Traceback" not in err  # some of the cases bill in EUR
    assert "bad rows were quarantined" in err and "truncated" in err
    assert "error: EUR costs (from 2026-10-02) have no rate to USD" in err
    config = tmp_path / "hybridlens.toml"
    config.write_text('[billing]\nrates = [{ currency = "EUR", rate = 1.08, since = 2026-01-01 }]')
    at = ["ingest", "billing", "--warehouse", str(wh), "--config", str(config)]
    assert main([*at, str(CASES)]) == 1
    assert "error:" not in capsys.readouterr().err
    assert main([*at, str(SMALL)]) == 0


def test_with_no_path_the_configured_folders_are_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "exports"
    folder.mkdir()
    shutil.copy(SMALL, folder / "oct.csv")
    config = tmp_path / "hybridlens.toml"
    config.write_text(f'[[sources.billing]]\npath = "{folder}"\nformat = "focus"\n')
    wh = tmp_path / "w.duckdb"
    assert main(["ingest", "billing", "--warehouse", str(wh), "--config", str(config)]) == 0
    assert "loaded 4 billing line items from 1 files" in capsys.readouterr().err
    assert main(["ingest", "billing", "--warehouse", str(tmp_path / "x.duckdb")]) == 2

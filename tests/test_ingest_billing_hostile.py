"""Billing exports as a messy export or an attacker writes them: each case here once sank a
whole delivery (or printed the file's bytes to the terminal) where one row, or nothing,
was wrong. The files are made by the tests from the hand-made FOCUS and the public CUR
samples, so they cannot drift from them."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from hybridlens.cli import main
from hybridlens.ingest_billing import ingest_billing
from ingest.billing.collector import BillingCollector
from ingest.contract import Unit
from warehouse.config import Config
from warehouse.db import Warehouse
from warehouse.report import LoadReport, Status

CASES = Path(__file__).parent / "cases" / "billing"
SMALL = CASES / "focus-1.2-small.csv"
GCP = CASES / "gcp-export-small.csv"


def rows(wh: Warehouse, sql: str) -> list[tuple[Any, ...]]:
    with wh.read() as con:
        return con.execute(sql).fetchall()


def load(wh: Warehouse, *paths: Path) -> LoadReport:
    return ingest_billing(wh, list(paths), Config())


def table(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        header, *body = list(csv.reader(fh))
    return header, body


def write(path: Path, header: list[str], body: list[list[str]]) -> Path:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([header, *body])
    path.write_text(out.getvalue(), encoding="utf-8")
    return path


def billed(wh: Warehouse) -> tuple[int, Decimal]:
    [(n, total)] = rows(wh, "SELECT count(*), sum(BilledCost) FROM billing WHERE NOT x_Modelled")
    return int(n), total


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("ChargePeriodStart", "9999-12-31T00:00:00Z"),  # a day added to it overflowed
        ("ChargePeriodStart", "10000-01-01T00:00:00Z"),  # DuckDB holds it, Python cannot
        ("ChargePeriodStart", "0001-01-01T00:30:00+01:00"),  # the year 0 in UTC
        ("ChargePeriodStart", "-0044-03-15T00:00:00Z"),
        ("BillingPeriodStart", "10000-01-01T00:00:00Z"),  # the replace unit's own period
        ("ChargePeriodEnd", "10000-01-01T00:00:00Z"),
    ],
)
def test_a_time_python_cannot_hold_quarantines_its_row_and_the_rest_loads(
    warehouse: Warehouse, tmp_path: Path, column: str, value: str
) -> None:
    header, body = table(SMALL)
    body[0][header.index(column)] = value
    report = load(warehouse, write(tmp_path / "far.csv", header, body))
    [entry] = report.inputs
    assert entry.status is not Status.FAILED, entry.message
    assert billed(warehouse) == (3, Decimal("85.804000000001"))  # the three other rows
    [(location, error)] = rows(warehouse, "SELECT location, error FROM quarantine")
    assert location == "row 1"
    assert error == (
        f"{column} {value!r} is outside the years 1 to 9998 (UTC) that the warehouse keeps: "
        "the row was not loaded"
    )


def test_the_edges_of_the_kept_years_load(warehouse: Warehouse, tmp_path: Path) -> None:
    header, body = table(SMALL)
    body[0][header.index("ChargePeriodStart")] = "0001-01-01T00:00:00Z"
    body[1][header.index("ChargePeriodEnd")] = "9998-12-31T23:59:59Z"
    report = load(warehouse, write(tmp_path / "edges.csv", header, body))
    assert report.ok and report.quarantined == 0
    assert billed(warehouse) == (4, Decimal("184.108000000001"))


def test_a_period_that_ends_before_it_starts_loads_and_is_counted(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    # FOCUS says an end is after its start; a bad export row still is a charge, so it loads
    # (nothing lost), is counted, and its day is its start's: the ledger counts it once
    header, body = table(SMALL)
    start, end = header.index("ChargePeriodStart"), header.index("ChargePeriodEnd")
    body[0][start], body[0][end] = body[0][end], body[0][start]
    report = load(warehouse, write(tmp_path / "backwards.csv", header, body))
    assert report.ok and report.quarantined == 0
    assert billed(warehouse) == (4, Decimal("184.108000000001"))  # every row, as delivered
    plain = load(Warehouse(tmp_path / "plain.duckdb"), SMALL).skipped  # the file as it was
    assert report.skipped == plain | {
        "rows whose ChargePeriodEnd is before their ChargePeriodStart, loaded as delivered": 1,
    }


def test_values_outside_focus_s_lists_load_as_delivered_and_are_counted(
    warehouse: Warehouse, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """FOCUS's values are case-sensitive: Oracle's `Usage-based` (the public FOCUS sample)
    or a `usage` matches no page's `Usage`, and used to load in silence."""
    header, body = table(SMALL)
    category, frequency = header.index("ChargeCategory"), header.index("ChargeFrequency")
    body[0][category] = "usage"
    body[1][frequency] = "Usage-based"
    body[2][frequency] = "\x1b[31mweekly\n"
    path = write(tmp_path / "cases.csv", header, body)
    report = load(warehouse, path)
    assert report.ok and report.quarantined == 0
    assert billed(warehouse) == billed_of(tmp_path, SMALL)  # every row, as delivered
    plain = load(Warehouse(tmp_path / "plain.duckdb"), SMALL).skipped
    assert report.skipped - plain == {
        'rows whose ChargeCategory is none of FOCUS\'s values ("usage"), loaded as delivered': 1,
        'rows whose ChargeFrequency is none of FOCUS\'s values ("\\u001b[31mweekly\\n", '
        '"Usage-based"), loaded as delivered': 2,
    }
    assert rows(warehouse, "SELECT count(*) FROM billing WHERE ChargeCategory = 'usage'") == [(1,)]
    assert main(["ingest", "billing", "--warehouse", str(tmp_path / "cli.duckdb"), str(path)]) == 0
    assert "\x1b" not in capsys.readouterr().err


def billed_of(tmp_path: Path, path: Path) -> tuple[int, Decimal]:
    wh = Warehouse(tmp_path / f"{path.stem}-alone.duckdb")
    load(wh, path)
    return billed(wh)


def test_columns_that_differ_only_in_case_are_two_columns(
    warehouse: Warehouse, fixtures_dir: Path, tmp_path: Path
) -> None:
    # AWS tag keys are case-sensitive, so a legacy CUR may name both; DuckDB ignores case
    header, body = table(fixtures_dir / "billing" / "aws-cur-legacy-sample-excerpt.csv")
    header += ["resourceTags/user:env", "resourceTags/user:Env"]
    body = [[*r, "prod", "Prod"] for r in body]
    report = load(warehouse, write(tmp_path / "tags.csv", header, body))
    assert report.ok, report.failures
    assert report.rows("billing") == len(body)
    assert rows(warehouse, "SELECT DISTINCT Tags FROM billing") == [
        ('{"user:env":"prod","user:Env":"Prod"}',)
    ]


def test_a_focus_name_in_another_case_beside_it_is_kept_in_the_raw_row(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    header, body = table(SMALL)
    header = ["billedcost", *header]  # first, so the real BilledCost is the one renamed
    body = [["999", *r] for r in body]
    report = load(warehouse, write(tmp_path / "case.csv", header, body))
    assert report.ok, report.failures
    assert billed(warehouse) == (4, Decimal("184.108000000001"))  # BilledCost, not 999
    assert rows(warehouse, "SELECT DISTINCT x_SourceRow->>'billedcost' FROM billing") == [("999",)]


def test_an_empty_column_name_from_a_trailing_comma_loads(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    header, body = table(SMALL)
    report = load(
        warehouse, write(tmp_path / "trailing.csv", [*header, ""], [[*r, ""] for r in body])
    )
    assert report.ok, report.failures
    assert billed(warehouse) == (4, Decimal("184.108000000001"))


def test_json_lines_keys_that_differ_only_in_case_or_are_empty_load(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    plain = tmp_path / "export.json"
    duckdb.sql(f"COPY (FROM read_csv('{GCP}', all_varchar = true)) TO '{plain}' (FORMAT json)")
    load(warehouse, plain)
    expected = billed(warehouse)
    odd = tmp_path / "odd.json"
    lines = [
        json.dumps({**json.loads(t), "Cost": "999", "": "e"})
        for t in plain.read_text().splitlines()
    ]
    odd.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = load(warehouse, odd)
    assert report.ok, report.failures
    assert billed(warehouse) == expected  # the same units, replaced by the same rows
    assert rows(warehouse, "SELECT DISTINCT x_SourceRow->>'Cost' FROM billing") == [("999",)]


def test_control_characters_from_a_file_never_reach_the_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # a legacy CUR's header holds tag keys, which whoever can tag a resource writes
    evil = tmp_path / "evil\x1b]52;c;AAAA\x07.csv"
    write(evil, ["\x1b[2J\x1b[31mEVIL", "x\x00\x9b"], [["1", "2"]])
    status = main(["ingest", "billing", "--warehouse", str(tmp_path / "w.duckdb"), str(evil)])
    err = capsys.readouterr().err
    assert status == 1 and "Traceback" not in err
    assert not any(c in err for c in "\x1b\x07\x00\x9b")
    assert "\\x1b[2J\\x1b[31mEVIL, x\\x00\\x9b" in err and "evil\\x1b]52;c;AAAA\\x07.csv" in err


def test_a_file_gone_since_it_was_found_fails_in_one_sentence(tmp_path: Path) -> None:
    gone = tmp_path / "gone.csv"  # an `aws s3 sync --delete` between discovery and read
    collected = BillingCollector().collect(Unit(str(gone), path=gone), Config())
    assert collected.error == f"cannot read {gone}: No such file or directory"


def test_an_empty_folder_into_a_new_warehouse_is_no_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # a scheduled job before the first delivery: it said "no warehouse, run ingest" and exit 2
    (tmp_path / "exports").mkdir()
    wh = tmp_path / "w.duckdb"
    assert main(["ingest", "billing", "--warehouse", str(wh), str(tmp_path / "exports")]) == 0
    assert "no warehouse" not in capsys.readouterr().err


@pytest.mark.parametrize("month", ["000001", "999912"])
def test_a_gcp_invoice_month_past_the_kept_years_is_quarantined(
    warehouse: Warehouse, tmp_path: Path, month: str
) -> None:
    # the year 0 failed the file in the collector ("OverflowError: date value out of range")
    header, body = table(GCP)
    body[0][header.index("invoice.month")] = month
    report = load(warehouse, write(tmp_path / "export.csv", header, body))
    [entry] = report.inputs
    assert entry.status is Status.PARTIAL, entry.message
    assert report.rows("billing") == len(body) - 1
    assert rows(warehouse, "SELECT location, error FROM quarantine") == [
        ("row 1", f"invoice.month {month!r} is not a YYYYMM month: the row was not loaded")
    ]


def test_a_zstd_export_cut_inside_a_frame_loads_nothing(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    # DuckDB read it to its last whole block: half a month replaced the month, one row
    # quarantined; a complete copy of the file loads first, so its unit must stay whole
    import zstandard

    header, [first, *_] = table(SMALL)
    at = header.index("ResourceId")
    body = [[*first[:at], f"i-{n}", *first[at + 1 :]] for n in range(20_000)]
    plain = write(tmp_path / "plain.csv", header, body).read_bytes()
    packed = zstandard.ZstdCompressor().compress(plain)
    (tmp_path / "whole").mkdir()
    (tmp_path / "whole" / "oct.csv.zst").write_bytes(packed)
    assert load(warehouse, tmp_path / "whole").ok
    before = billed(warehouse)
    assert before[0] == 20_000
    cut = tmp_path / "oct.csv.zst"
    cut.write_bytes(packed[: len(packed) // 2])
    report = load(warehouse, cut)
    [entry] = report.inputs
    assert entry.status is Status.FAILED
    assert entry.message == (
        f"{cut} ends inside a zstd frame: the file looks truncated, so none of it was loaded"
    )
    assert billed(warehouse) == before


def test_digits_grouped_by_underscores_are_no_number(warehouse: Warehouse, tmp_path: Path) -> None:
    # DuckDB's cast reads `1_000.5` as 1000.5; no export writes it, so it is a damaged value
    header, body = table(SMALL)
    body[0][header.index("BilledCost")] = "1_000.5"
    report = load(warehouse, write(tmp_path / "grouped.csv", header, body))
    assert [i.status for i in report.inputs] == [Status.PARTIAL]
    assert billed(warehouse) == (3, Decimal("85.804000000001"))  # the three other rows
    assert rows(warehouse, "SELECT location, error FROM quarantine") == [
        ("row 1", "BilledCost '1_000.5' is not a number: the row was not loaded")
    ]


def test_a_gcp_credit_grouped_by_underscores_is_a_bad_credit(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    header, body = table(GCP)
    credits = header.index("credits")
    body[0][credits] = body[0][credits].replace('"amount":-3.25', '"amount":"-3_25"')
    report = load(warehouse, write(tmp_path / "export.csv", header, body))
    assert report.rows("billing") == len(body) - 1
    [(location, error)] = rows(warehouse, "SELECT location, error FROM quarantine")
    assert location == "row 1" and error.startswith("credits ") and "-3_25" in error

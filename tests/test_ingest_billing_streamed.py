"""A big export is read in batches and staged as a Parquet file of its own (so it is never
held whole): the same rows, counts and quarantine as a file read in one piece. The batch
and spill sizes are made tiny, so the sample files take that path."""

from __future__ import annotations

import csv
import shutil
import tempfile
from pathlib import Path
from typing import Any

import duckdb
import pytest

import ingest.billing.ledger as ledger
import warehouse.tabular as tabular
from hybridlens.ingest_billing import ingest_billing
from warehouse.config import Config
from warehouse.db import Warehouse
from warehouse.report import LoadReport

FOCUS = "focus-1.0-sample-excerpt.csv"


def loaded(wh: Warehouse) -> list[tuple[Any, ...]]:
    with wh.read() as con:
        return con.execute(
            "SELECT * EXCLUDE (load_id) FROM billing ORDER BY x_SourceUri, x_SourceRowNumber"
        ).fetchall()


def figures(report: LoadReport) -> list[tuple[Any, ...]]:
    return [(i.status, i.rows, i.duplicates, i.quarantined, dict(i.skipped)) for i in report.inputs]


def quarantine(wh: Warehouse) -> list[tuple[Any, ...]]:
    with wh.read() as con:
        return con.execute(
            "SELECT location, error, raw_excerpt FROM quarantine ORDER BY ALL"
        ).fetchall()


def both(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, paths: list[Path]) -> None:
    whole = Warehouse(tmp_path / "whole.duckdb")
    first = ingest_billing(whole, paths, Config())
    spill = tmp_path / "spill"
    spill.mkdir()
    monkeypatch.setattr(tabular, "BATCH_ROWS", 7)
    monkeypatch.setattr(ledger, "SPILL_ROWS", 20)
    monkeypatch.setattr(tempfile, "tempdir", str(spill))
    batched = Warehouse(tmp_path / "batched.duckdb")
    second = ingest_billing(batched, paths, Config())
    assert figures(second) == figures(first)
    assert loaded(batched) == loaded(whole)
    assert quarantine(batched) == quarantine(whole)
    assert not [p for p in spill.iterdir() if p.name.startswith("hybridlens-billing-stage-")]


def test_a_big_focus_csv_loads_as_one_read_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fixtures_dir: Path
) -> None:
    sample = tmp_path / "focus.csv"
    with (fixtures_dir / "billing" / FOCUS).open(encoding="utf-8-sig", newline="") as fh:
        records = list(csv.DictReader(fh))
    # a bad value and a keyless row, so both quarantines cross batches
    records[40]["BilledCost"] = "not-a-number"
    records[61]["BillingAccountId"] = ""
    with sample.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(records[0]))
        writer.writeheader()
        writer.writerows(records)
    both(tmp_path, monkeypatch, [sample])


def test_a_big_focus_parquet_and_a_csv_of_one_delivery_load_as_read_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fixtures_dir: Path
) -> None:
    text = tmp_path / "focus.csv"
    shutil.copy(fixtures_dir / "billing" / FOCUS, text)
    parquet = tmp_path / "other.parquet"
    con = duckdb.connect()
    con.execute(
        f"COPY (SELECT * REPLACE ('other' AS BillingAccountId) FROM read_csv('{text}', "
        f"all_varchar = true)) TO '{parquet}' (FORMAT parquet)"
    )
    con.close()
    both(tmp_path, monkeypatch, [text, parquet])

"""FOCUS ingest throughput: a synthetic FOCUS 1.2 CSV (and its Parquet copy) of N rows
through `hybridlens ingest billing`, in rows/s, beside DuckDB's own read of the same file
into a table (the limit, measured in the same run), then `export focus` of the month back
out (Parquet and CSV). Each ingest runs in a child process of its own, so its peak RSS
is its own and not the generator's or the other format's. It prints figures and asserts
nothing.

    .venv/bin/python benchmarks/billing_ingest.py --rows 1000000
    .venv/bin/python benchmarks/billing_ingest.py --rows 10000000 --format parquet --no-export
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import duckdb

from hybridlens.ingest_billing import ingest_billing
from warehouse.config import Config
from warehouse.db import Warehouse
from warehouse.focus_export import export_focus

HEADER = (
    "BilledCost,BillingAccountId,BillingAccountName,BillingCurrency,BillingPeriodEnd,"
    "BillingPeriodStart,ChargeCategory,ChargeClass,ChargeDescription,ChargeFrequency,"
    "ChargePeriodEnd,ChargePeriodStart,ConsumedQuantity,ConsumedUnit,ContractedCost,"
    "EffectiveCost,InvoiceId,InvoiceIssuerName,ListCost,PricingCategory,PricingQuantity,"
    "PricingUnit,ProviderName,PublisherName,RegionId,ResourceId,ServiceCategory,ServiceName,"
    "SkuId,SkuPriceId,SubAccountId,Tags,x_GpuModel"
)


def generate(path: Path, rows: int) -> None:
    """N rows written by DuckDB itself, so generating costs seconds, not minutes."""
    con = duckdb.connect()
    con.execute(
        f"""COPY (SELECT
            ((i * 7919) % 100000 / 1000)::DECIMAL(38, 12) AS BilledCost,
            '2109876543' || (i % 3) AS BillingAccountId, 'Payer' AS BillingAccountName,
            'USD' AS BillingCurrency, '2026-11-01T00:00:00Z' AS BillingPeriodEnd,
            '2026-10-01T00:00:00Z' AS BillingPeriodStart, 'Usage' AS ChargeCategory,
            'NULL' AS ChargeClass, 'GPU instance hours' AS ChargeDescription,
            'Usage-Based' AS ChargeFrequency,
            strftime(TIMESTAMP '2026-10-01' + to_hours(i % 744 + 1), '%Y-%m-%dT%H:%M:%SZ')
                AS ChargePeriodEnd,
            strftime(TIMESTAMP '2026-10-01' + to_hours(i % 744), '%Y-%m-%dT%H:%M:%SZ')
                AS ChargePeriodStart,
            1 AS ConsumedQuantity, 'Hours' AS ConsumedUnit, BilledCost AS ContractedCost,
            BilledCost AS EffectiveCost, 'INV-1' AS InvoiceId, 'Example Cloud' AS InvoiceIssuerName,
            BilledCost AS ListCost, 'Standard' AS PricingCategory, 1 AS PricingQuantity,
            'Hours' AS PricingUnit, 'ExampleCloud' AS ProviderName, 'ExampleCloud' AS PublisherName,
            'us-east-1' AS RegionId, 'i-' || (i % 5000) AS ResourceId, 'Compute' AS ServiceCategory,
            'Example Compute' AS ServiceName, 'SKU' || (i % 40) AS SkuId, 'P' || i AS SkuPriceId,
            'sub-' || (i % 20) AS SubAccountId, '{{"model":"m' || (i % 7) || '"}}' AS Tags,
            'H100' AS x_GpuModel
        FROM range({rows}) t(i)) TO '{path}' (FORMAT csv, HEADER)"""
    )
    con.close()


def limit(path: Path, database: Path | None = None) -> float:
    """Seconds for DuckDB's own reader to load the file into a table: in memory (the
    limit), or in `database`, a file as the ledger is (the limit a warehouse could have)."""
    con = duckdb.connect(str(database) if database else ":memory:")
    started = time.perf_counter()
    reader = "read_parquet" if path.suffix == ".parquet" else "read_csv"
    con.execute(f"CREATE TABLE t AS SELECT * FROM {reader}('{path}')")
    con.execute("CHECKPOINT")
    took = time.perf_counter() - started
    con.close()
    return took


def ingest(path: Path, wh: Warehouse, out: multiprocessing.connection.Connection) -> None:
    """One ingest, in a child process: its seconds, rows, longest publish and peak RSS."""
    started = time.perf_counter()
    report = ingest_billing(wh, [path], Config())
    took = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out.send((took, report.rows("billing"), report.longest_publish_ms / 1000, peak))


def in_child(path: Path, wh: Warehouse) -> tuple[float, int, float, float]:
    context = multiprocessing.get_context("fork")
    mine, theirs = context.Pipe()
    child = context.Process(target=ingest, args=(path, wh, theirs))
    child.start()
    got: tuple[float, int, float, float] = mine.recv()
    child.join()
    return got


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--format", choices=("both", "csv", "parquet"), default="both")
    parser.add_argument("--no-export", action="store_true", help="skip `export focus`")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        csv_path = Path(folder) / "focus.csv"
        generate(csv_path, args.rows)
        parquet = Path(folder) / "focus.parquet"
        paths = [csv_path] if args.format == "csv" else []
        if args.format != "csv":
            con = duckdb.connect()
            con.execute(f"COPY (FROM read_csv('{csv_path}')) TO '{parquet}' (FORMAT parquet)")
            con.close()
            paths = [parquet] if args.format == "parquet" else [csv_path, parquet]
        if args.format == "parquet":
            csv_path.unlink()  # the disk it takes, at ten million rows
        for path in paths:
            wh = Warehouse(Path(folder) / f"{path.suffix[1:]}.duckdb")
            took, rows, publish, peak = in_child(path, wh)
            base = limit(path)
            filed = limit(path, Path(folder) / f"limit-{path.suffix[1:]}.duckdb")
            print(
                f"{path.suffix[1:]:8} {rows:,} rows in {took:.1f} s: {rows / took:,.0f} rows/s; "
                f"DuckDB's own read {base:.2f} s (ratio {base / took:.2f}), into a database "
                f"file {filed:.2f} s (ratio {filed / took:.2f}); "
                f"longest publish {publish:.1f} s; peak RSS {peak:,.0f} MiB",
                flush=True,
            )
        for out in (
            [] if args.no_export else (Path(folder) / "out.parquet", Path(folder) / "out.csv")
        ):
            started = time.perf_counter()
            done = export_focus(wh, date(2026, 10, 1), out)
            took = time.perf_counter() - started
            print(
                f"export   {done.rows:,} rows to {out.suffix[1:]} in {took:.1f} s: "
                f"{done.rows / took:,.0f} rows/s ({out.stat().st_size / 1e6:,.0f} MB)",
                flush=True,
            )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:,.0f} MiB (this process: generating, DuckDB's reads, export)",
          file=sys.stderr)  # fmt: skip


if __name__ == "__main__":
    main()

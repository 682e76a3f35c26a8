"""The floor of a FOCUS billing ingest: a bare `INSERT INTO billing SELECT …` of a file, in
a fresh warehouse made by the real migrations, each column cast as the ingest casts it
(text, then `TRY_CAST`; the raw row `x_SourceRow` concatenated as `warehouse.tabular`
makes it; the bookkeeping columns as constants), with no Python in the loop. Alternated
with the limit of `benchmarks/billing_ingest.py` (DuckDB's own read of the file into an
in-memory table) in one run, so their ratio is the best ratio this ledger layout allows.
It prints figures (medians, wall and CPU) and asserts nothing.

    .venv/bin/python benchmarks/billing_floor.py --rows 200000
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import duckdb

from benchmarks.billing_ingest import generate
from ingest.billing.focus import sources
from warehouse.db import Warehouse
from warehouse.tabular import _source
from warehouse.tabular_files import lit as _lit
from warehouse.tabular_files import q as _q
from warehouse.tabular_files import row_json, sql_names
from warehouse.tabular_values import typed


def reader(path: Path) -> str:
    return "read_parquet" if path.suffix == ".parquet" else "read_csv"


def source(path: Path, names: list[str]) -> str:
    """The file as text with a 0-based `rowid`, as `warehouse.tabular` reads it."""
    if path.suffix == ".parquet":
        texts = ", ".join(f"{_q(n)}::VARCHAR AS {_q(n)}" for n in names)
        return (f"(SELECT {texts}, file_row_number AS rowid "
                f"FROM read_parquet('{path}', file_row_number = true))")  # fmt: skip
    columns = "{" + ", ".join(f"{_lit(n)}: 'VARCHAR'" for n in names) + "}"
    return (f"(SELECT *, row_number() OVER () - 1 AS rowid FROM read_csv('{path}', "
            f"columns = {columns}, header = true, auto_detect = false, "
            "nullstr = ['NULL', '']))")  # fmt: skip


def select(path: Path, raw: bool) -> str:
    con = duckdb.connect()
    described = con.execute(f"DESCRIBE SELECT * FROM {reader(path)}('{path}')").fetchall()
    names = [str(d[0]) for d in described]
    con.close()
    ids = sql_names(names)  # the generated file's names are unique: its own
    present = dict(zip(names, ids, strict=True))
    cols = [f"{typed(c.kind, _source(c, present))} AS {_q(c.name)}" for c in sources(names)]
    cols += [f"{row_json(names, ids)} AS x_SourceRow"] if raw else []
    cols += [
        "'billed/' || ProviderName || '/' || BillingAccountId || '/' || BillingPeriodStart "
        "|| '/focus' AS x_ReplaceUnit",
        "false AS x_Modelled", "'focus-1.2' AS x_SourceFormat", f"'{path}' AS x_SourceUri",
        "(rowid + 1)::BIGINT AS x_SourceRowNumber", "1::BIGINT AS load_id",
    ]  # fmt: skip
    return f"SELECT {', '.join(cols)} FROM {source(path, names)}"


def timed(run: Callable[[], None]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu


def limit(path: Path) -> tuple[float, float]:
    def run() -> None:
        con = duckdb.connect()
        con.execute(f"CREATE TABLE t AS SELECT * FROM {reader(path)}('{path}')")
        con.close()

    return timed(run)


def floor(path: Path, db: Path, raw: bool) -> tuple[float, float]:
    with Warehouse(db).write():  # the real migrations, outside the timing
        pass
    sql = select(path, raw)

    def run() -> None:
        con = duckdb.connect(str(db))
        con.execute("SET memory_limit = '1GB'")  # as the billing publish does
        con.execute("BEGIN TRANSACTION")
        con.execute(f"INSERT INTO billing BY NAME {sql}")
        con.execute("COMMIT")
        con.close()

    return timed(run)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        csv_path = Path(folder) / "focus.csv"
        generate(csv_path, args.rows)
        parquet = Path(folder) / "focus.parquet"
        duckdb.execute(f"COPY (FROM read_csv('{csv_path}')) TO '{parquet}' (FORMAT parquet)")
        for path in (csv_path, parquet):
            got: dict[str, list[tuple[float, float]]] = {}
            for i in range(args.repeat):
                for raw in (True, False):
                    got.setdefault("limit", []).append(limit(path))
                    db = Path(folder) / f"floor-{path.suffix[1:]}-{i}-{raw}.duckdb"
                    got.setdefault(f"floor, raw row {raw}", []).append(floor(path, db, raw))
            wall = statistics.median(w for w, _ in got["limit"])
            cpu = statistics.median(c for _, c in got["limit"])
            print(f"{path.suffix[1:]:8} limit {wall:.2f} s ({cpu:.2f} s CPU)", flush=True)
            for name in ("floor, raw row True", "floor, raw row False"):
                w = statistics.median(x for x, _ in got[name])
                c = statistics.median(y for _, y in got[name])
                print(f"{'':8} {name}: {w:.2f} s ({c:.2f} s CPU), ratio {wall / w:.3f} "
                      f"(CPU {cpu / c:.3f})", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()

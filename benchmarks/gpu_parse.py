"""DCGM exposition parse + load, in samples/s, as a ratio to `prometheus_client`'s parser
alone on the same text (the parse is the floor of the cost).

    python benchmarks/gpu_parse.py [--hosts 100] [--gpus 8] [--mb 0] [--runs 3]

Four figures on one generated page (`--mb 50` grows it to about that many megabytes):
the parser alone (`text_string_to_metric_families`, every sample touched), the format
(`DcgmExposition.read`: the parser plus folding series into readings), the builder on top
(`samples.rows`: Arrow rows), and the whole load (`hybridlens ingest gpu` on the file into
a fresh warehouse: collector, driver, stage, publish). Best of `--runs`, the four run in
turn each round; peak RSS at the end. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prometheus_client.parser import text_string_to_metric_families

from benchmarks.gpu_exposition import SERIES, exposition
from hybridlens.ingest_gpu import GpuInput, ingest_gpu
from ingest.contract import Unit
from ingest.gpu.dcgm import DcgmExposition
from ingest.gpu.readings import ReadOptions
from ingest.gpu.samples import rows
from warehouse.config import Config
from warehouse.db import Warehouse


def timed(fn: Callable[[], None]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hosts", type=int, default=100)
    ap.add_argument("--gpus", type=int, default=8)
    ap.add_argument("--mb", type=float, default=0, help="grow the page to about this size")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    hosts = args.hosts
    if args.mb:
        per_host = len(exposition(1, args.gpus)) / 1e6
        hosts = max(1, round(args.mb / per_host))
    text = "# scraped at 2026-11-30T10:00:00Z\n" + exposition(hosts, args.gpus)
    data = text.encode()
    samples = hosts * args.gpus * len(SERIES)
    gpus = hosts * args.gpus
    print(f"page: {len(data) / 1e6:.1f} MB, {samples:,} samples, {gpus:,} GPUs")

    def floor() -> None:
        for family in text_string_to_metric_families(text):
            for _ in family.samples:
                pass

    fmt = DcgmExposition()
    unit = Unit("bench")
    config = Config()

    def read() -> None:
        fmt.read(data, unit, ReadOptions())

    def build() -> None:
        rows(fmt.read(data, unit, ReadOptions()).readings, config, ReadOptions(), "dcgm")

    # interleaved runs, so a neighbour's burst on a shared machine hits every figure alike
    times: dict[str, list[float]] = {"floor": [], "read": [], "build": [], "load": []}
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "scrape.prom"
        page.write_bytes(data)
        for i in range(args.runs):
            times["floor"].append(timed(floor))
            times["read"].append(timed(read))
            times["build"].append(timed(build))
            warehouse = Warehouse(Path(tmp) / f"w{i}.duckdb")
            started = time.perf_counter()
            done = ingest_gpu(warehouse, [GpuInput(str(page))], config, workers=1)
            times["load"].append(time.perf_counter() - started)
            if done.report.rows("gpu_samples") != gpus:
                print(f"  the load wrote {done.report.rows('gpu_samples')} rows, not {gpus}")
    t_floor, t_read, t_build, t_load = (min(times[k]) for k in ("floor", "read", "build", "load"))
    for name, t in (
        ("prometheus_client parser alone", t_floor),
        ("DcgmExposition.read (parse + fold)", t_read),
        ("+ samples.rows (Arrow rows)", t_build),
        ("ingest gpu (+ driver, stage, publish)", t_load),
    ):
        print(f"{name:40s} {t:8.3f} s  {samples / t:12,.0f} samples/s  x{t / t_floor:5.2f}")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {rss:.0f} MiB")


if __name__ == "__main__":
    main()

"""The GPU-hour rollup refresh over N days x 64 GPUs at 15 s resolution.

    .venv/bin/python benchmarks/gpu_rollups.py [--days 3] [--gpus 64] [--pass-hours 24]

Fills `gpu_samples` straight from SQL (generation is not what is measured), then:
- rebuilds `rollup_gpu_hours` from scratch (`rebuild_gpu_hours`) in a child process, so its
  peak RSS is the refresh's own, not the fill's;
- publishes one more 15-second scrape of every GPU through the real write path (the
  after-publish hook rebuilds its hours, widened by the cap) and one late hour from the
  middle of the range;
- times the hook alone for that late hour (it rebuilds the hour and its neighbours);
- reads the `metrics` GPU keys per environment over the whole range.
Prints seconds, samples/s, peak RSS, and the extrapolation to the issue's 90 days (about
33M samples): the rebuild runs one pass per `--pass-hours`, so its time grows with the
days; run two sizes to see how peak RSS grows (DuckDB caches the pages it read). Asserts
nothing.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pyarrow as pa

from warehouse import gpu_rollups
from warehouse.config import Config
from warehouse.db import Warehouse, one
from warehouse.metrics import metrics
from warehouse.publish import publish
from warehouse.report import InputReport
from warehouse.stage import Stage

START = datetime(2026, 8, 1, tzinfo=UTC)
STEP_S = 15

FILL = """
INSERT INTO gpu_samples BY NAME
SELECT $start::TIMESTAMPTZ + to_microseconds(s * 15000000) AS ts,
       ['onprem-fra', 'aws-us-east-1', 'gcp-europe-west4', 'edge-muc'][1 + (g // 8) % 4]
           AS environment,
       'pool-' || (g // 16) AS pool, 'host-' || (g // 8) AS host, 'GPU-' || g AS gpu_uuid,
       g % 8 AS gpu_index, '' AS mig_instance, NULL AS mig_profile, 1.0 AS gpu_share,
       'NVIDIA H100 80GB HBM3' AS gpu_model,
       CASE WHEN g % 5 = 0 THEN NULL ELSE 'model-' || (g % 7) END AS workload,
       NULL AS namespace, NULL AS pod, NULL AS container,
       u AS utilization, u / 130.0 AS sm_active, u / 100.0 AS gr_engine_active,
       u * 800 AS memory_used_mib, 81559 - u * 800 AS memory_free_mib,
       90 + u * 6 AS power_w,
       -- a counter since boot, reset every ten days
       (s % 57600) * 15000.0 * 300 AS energy_mj,
       40 + u / 3 AS temperature_c, 'bench' AS source, 1 AS load_id
FROM (
    SELECT s, g,
           greatest(0, least(100, 50 + 45 * sin(s / 5760.0 * 2 * pi() + g)
                               + 10 * (hash(s * 64 + g) % 100 / 100.0 - 0.5))) AS u
    FROM range($steps) a(s), range($gpus) b(g)
)
"""


def rss_mib(usage: resource.struct_rusage) -> float:
    return usage.ru_maxrss / 1024  # KiB on Linux


def refresh_child(path: Path, pass_hours: int) -> None:
    gpu_rollups.PASS_HOURS = pass_hours
    t, cpu = time.perf_counter(), time.process_time()
    gpu_rollups.rebuild_gpu_hours(Warehouse(path))
    print(f"{time.perf_counter() - t:.3f} {time.process_time() - cpu:.3f}")


def scrape(wh: Warehouse, at: datetime, gpus: int) -> pa.Table:
    """One 15-second scrape of every GPU, as a collector stages it."""
    with wh.read() as con:
        return con.sql(
            "SELECT * EXCLUDE (load_id) REPLACE ($at::TIMESTAMPTZ AS ts) FROM gpu_samples "
            "WHERE ts = (SELECT max(ts) FROM gpu_samples) ORDER BY gpu_uuid LIMIT $n",
            params={"at": at, "n": gpus},
        ).to_arrow_table()


def publish_rows(wh: Warehouse, rows: pa.Table, uri: str) -> tuple[float, float]:
    """(wall, CPU) seconds of one publish: the merge and the hook it runs."""
    stage = Stage()
    stage.add("gpu_samples", rows, stage.begin(InputReport(uri)))
    t, cpu = time.perf_counter(), time.process_time()
    publish(wh, stage, source="bench")
    return time.perf_counter() - t, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=float, default=3)
    parser.add_argument("--gpus", type=int, default=64)
    parser.add_argument("--pass-hours", type=int, default=gpu_rollups.PASS_HOURS)
    parser.add_argument("--keep", type=Path, default=None, help="keep the warehouse here")
    parser.add_argument("--refresh-child", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.refresh_child:
        refresh_child(args.refresh_child, args.pass_hours)
        return
    tmp = tempfile.TemporaryDirectory()
    path = args.keep or Path(tmp.name) / "bench.duckdb"
    wh = Warehouse(path)
    steps = int(args.days * 86400 / STEP_S)
    t = time.perf_counter()
    with wh.write() as con:
        con.execute(FILL, {"start": START, "steps": steps, "gpus": args.gpus})
        n = int(one(con, "SELECT count(*) FROM gpu_samples")[0])  # type: ignore[index]
    print(
        f"filled {n:,} samples ({args.days:g} days x {args.gpus} GPUs at {STEP_S} s) "
        f"in {time.perf_counter() - t:.1f} s"
    )

    child = subprocess.run(
        [sys.executable, __file__, "--refresh-child", str(path),
         "--pass-hours", str(args.pass_hours)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    seconds, cpu = map(float, child.stdout.strip().splitlines()[-1].split())
    peak = rss_mib(resource.getrusage(resource.RUSAGE_CHILDREN))
    with wh.read() as con:
        hours = int(one(con, "SELECT count(*) FROM rollup_gpu_hours")[0])  # type: ignore[index]
    rate = n / seconds
    print(
        f"full rebuild ({args.pass_hours}-hour passes): {seconds:.2f} s wall, {cpu:.2f} s CPU, "
        f"{rate:,.0f} samples/s, {hours:,} GPU-hour rows, "
        f"peak RSS of the refreshing process {peak:.0f} MiB"
    )
    full = 90 * 86400 / STEP_S * 64
    print(
        f"extrapolated to 90 days x 64 GPUs ({full / 1e6:.1f}M samples): {full / rate:.0f} s "
        f"wall at this rate, {cpu * full / n:.0f} s CPU (linear in days: one pass per "
        f"{args.pass_hours} h); peak RSS: compare runs of two --days, since DuckDB keeps the "
        "pages it has read cached (up to its memory limit) beyond one pass's working set"
    )

    end = START + timedelta(seconds=steps * STEP_S)
    wall, cpu_s = publish_rows(wh, scrape(wh, end, args.gpus), "scrape")
    print(
        f"publish of one scrape ({args.gpus} samples) with the hook: {wall * 1000:.0f} ms wall, "
        f"{cpu_s * 1000:.0f} ms CPU = {cpu_s / cpu:.4f} of the full rebuild's CPU"
    )
    middle = START + timedelta(hours=int(args.days * 12))
    window = {"lo": middle, "hi": middle + timedelta(hours=1)}
    with wh.write() as con:
        late = con.sql(
            "SELECT * EXCLUDE (load_id) FROM gpu_samples WHERE ts >= $lo AND ts < $hi",
            params=window,
        ).to_arrow_table()
        con.execute("DELETE FROM gpu_samples WHERE ts >= $lo AND ts < $hi", window)
    wall, cpu_s = publish_rows(wh, late, "late-hour")
    print(
        f"publish of a late hour from the middle ({late.num_rows:,} samples): {wall:.2f} s wall, "
        f"{cpu_s:.2f} s CPU = {cpu_s / cpu:.4f} of the full rebuild's CPU"
    )
    with wh.write() as con:
        t, cpu_h = time.perf_counter(), time.process_time()
        gpu_rollups.refresh_gpu_hours(con, {middle})
        wall, cpu_h = time.perf_counter() - t, time.process_time() - cpu_h
    print(
        f"the hook alone for that hour (3 hours rebuilt: it and its neighbours): "
        f"{wall * 1000:.0f} ms wall, {cpu_h * 1000:.0f} ms CPU = {cpu_h / cpu:.4f} of the full "
        "rebuild's CPU (the rest of a publish is the merge, the commit and the connection)"
    )
    t = time.perf_counter()
    frame = metrics(wh, Config(), by=("environment",))
    read_s = time.perf_counter() - t
    print(
        f"metrics --by environment (GPU keys over {n:,} samples): {read_s:.2f} s; "
        f"gpu_hours {frame['gpu_hours'].sum():,.1f}"
    )
    self_peak = rss_mib(resource.getrusage(resource.RUSAGE_SELF))
    print(f"peak RSS of this process (fill, publishes, read): {self_peak:.0f} MiB")


if __name__ == "__main__":
    main()

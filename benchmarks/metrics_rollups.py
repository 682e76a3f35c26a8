"""`hybridlens metrics` over 90 days of 10M+ spans: rollups against the raw spans.

    .venv/bin/python benchmarks/metrics_rollups.py [--spans 10000000] [--keep PATH]
    .venv/bin/python benchmarks/metrics_rollups.py --cli WAREHOUSE [--runs 7]
    .venv/bin/python benchmarks/metrics_rollups.py --cli WAREHOUSE --before TREE WAREHOUSE2

Fills a warehouse with synthetic request spans straight from SQL (generation is not what
is measured), builds the rollups, then times `metrics()` and the same figures computed
from the raw `spans` table with exact quantiles. With `--cli`, times the command itself end
to end on an existing warehouse (a demo's, say), with Python's bytecode cache off and on,
against `python -c pass` in the same run, since imports are most of its time and the
machine's load moves every figure. `--before TREE WAREHOUSE2` runs the command of another
source tree (a `git archive` of an older commit) on its own copy of the warehouse, in turns
with this one, so both see the same load. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from warehouse.config import Config
from warehouse.db import Warehouse, read_sql, run
from warehouse.load import rebuild_rollups
from warehouse.lock import lock_stats, reset_lock_stats
from warehouse.metrics import filter_params, metrics
from warehouse.uptime import slo_params

FILL = """
INSERT INTO spans
SELECT md5(i::VARCHAR) AS trace_id, substr(md5((i * 7)::VARCHAR), 1, 16) AS span_id,
       NULL, NULL, 'svc-' || (i % 5), ['dc-frankfurt', 'aws-us-east-1', 'gcp-europe-west4',
       'edge-munich'][1 + (i % 4)::INT], 'model-' || (i % 5), 'v' || (i % 3), NULL, 'chat',
       'vllm', 'chat', 'SERVER', true,
       TIMESTAMPTZ '2026-08-01' + to_microseconds((i * (90 * 86400e6 / $n))::BIGINT),
       TIMESTAMPTZ '2026-08-01' + to_microseconds((i * (90 * 86400e6 / $n))::BIGINT)
           + to_microseconds(d::BIGINT * 1000),
       d, CASE WHEN random() < 0.01 THEN 'ERROR' ELSE 'UNSET' END, NULL,
       (random() * 2000)::BIGINT, (random() * 500)::BIGINT, NULL, 1.0, 'host', NULL, NULL, 1
FROM (SELECT i, exp(5 + random() * 1.5 + CASE WHEN random() < 0.02 THEN 3 ELSE 0 END) AS d
      FROM range($n) t(i))
"""

RAW = """
SELECT environment, model, count(*) AS requests,
       count(*) FILTER (WHERE status_code = 'ERROR') AS errors,
       quantile_cont(duration_ms, [0.5, 0.95, 0.99]) AS latency,
       sum(input_tokens), sum(output_tokens)
FROM spans WHERE is_request GROUP BY ALL ORDER BY ALL
"""


def _run_ms(command: list[str], env: dict[str, str], cwd: str | None = None) -> tuple[float, float]:
    """Wall and CPU (user + system) milliseconds of one run: the CPU figure moves less
    when other work shares the machine."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    wall = (time.perf_counter() - started) * 1000
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000
    return wall, cpu


def time_cli(warehouse: Path, runs: int) -> None:
    """Wall and CPU time of `hybridlens metrics --format json`, bytecode cache off and on."""
    command = [sys.executable, "-m", "hybridlens.cli", "metrics", "--warehouse", str(warehouse)]
    command += ["--format", "json"]
    for cache in ("off", "on"):
        env = dict(os.environ)
        if cache == "off":
            env["PYTHONDONTWRITEBYTECODE"] = "1"
        else:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            _run_ms(command, env)  # writes the bytecode the later runs read
        cli, bare = [], []
        for _ in range(runs):
            cli.append(_run_ms(command, env))
            bare.append(_run_ms([sys.executable, "-c", "pass"], env))
        walls, cpus = [w for w, _ in cli], [c for _, c in cli]
        print(
            f"hybridlens metrics, bytecode cache {cache}, {runs} runs: wall median "
            f"{statistics.median(walls):.0f} ms (best {min(walls):.0f}), CPU median "
            f"{statistics.median(cpus):.0f} ms; python -c pass: wall "
            f"{statistics.median(w for w, _ in bare):.0f} ms, CPU "
            f"{statistics.median(c for _, c in bare):.0f} ms"
        )


def compare_cli(warehouse: Path, before: tuple[str, str], runs: int) -> None:
    """This tree's command and another tree's, in turns, bytecode cache on."""
    here = str(Path(__file__).resolve().parent.parent)
    trees = {"before": (before[0], before[1]), "after": (here, str(warehouse))}
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in trees}
    for i in range(runs + 1):  # the first round writes the bytecode
        for name, (tree, path) in trees.items():
            command = [sys.executable, "-m", "hybridlens.cli", "metrics", "--warehouse", path]
            command += ["--format", "json"]
            took = _run_ms(command, {**env, "PYTHONPATH": tree}, cwd=tree)
            if i:
                times[name].append(took)
    for name, got in times.items():
        walls, cpus = [w for w, _ in got], [c for _, c in got]
        print(
            f"{name} ({trees[name][0]}): wall median {statistics.median(walls):.0f} ms "
            f"(best {min(walls):.0f}), CPU median {statistics.median(cpus):.0f} ms"
        )
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spans", type=int, default=10_000_000)
    parser.add_argument("--keep", type=Path, default=None, help="keep the warehouse here")
    parser.add_argument("--cli", type=Path, default=None, help="time the command on this file")
    parser.add_argument("--runs", type=int, default=7, help="runs per --cli figure")
    parser.add_argument(
        "--before",
        nargs=2,
        metavar=("TREE", "WAREHOUSE"),
        default=None,
        help="with --cli: also time another source tree on its own warehouse copy, in turns",
    )
    args = parser.parse_args()
    if args.cli is not None and args.before is not None:
        compare_cli(args.cli, tuple(args.before), args.runs)
        return
    if args.cli is not None:
        time_cli(args.cli, args.runs)
        return
    tmp = tempfile.TemporaryDirectory()
    path = args.keep or Path(tmp.name) / "bench.duckdb"
    wh = Warehouse(path)
    t = time.perf_counter()
    with wh.write() as con:
        con.execute(FILL, {"n": args.spans})
    print(f"filled {args.spans:,} spans over 90 days in {time.perf_counter() - t:.1f} s")
    reset_lock_stats()
    t = time.perf_counter()
    rebuild_rollups(wh)
    print(
        f"built the rollups in {time.perf_counter() - t:.1f} s "
        f"(writer lock held {lock_stats()['longest_write_hold_s']:.1f} s)"
    )
    config = Config()
    metrics(wh, config)  # warm the OS cache once, as a dashboard would be
    runs = []
    for _ in range(3):
        t = time.perf_counter()
        frame = metrics(wh, config)
        runs.append(time.perf_counter() - t)
    best = min(runs)
    print(
        f"metrics() from rollups, {frame.height} rows (incl. uptime over every minute): "
        f"best of 3 {best * 1000:.0f} ms"
    )
    minutes_from_spans = (
        "(SELECT date_trunc('minute', start_time) AS minute, environment, "
        "sum(sample_weight) AS requests, coalesce(sum(sample_weight) FILTER "
        "(WHERE status_code = 'ERROR'), 0) AS errors FROM spans WHERE is_request GROUP BY ALL)"
    )
    uptime_raw = (
        "SELECT environment, count(*) FILTER (WHERE state = 'up') / "
        "nullif(count(*) FILTER (WHERE state <> 'nodata'), 0) FROM ("
        + read_sql("uptime_minutes").replace("rollup_minutes", minutes_from_spans)
        + ") GROUP BY ALL"
    )
    params = {**filter_params(None, None, None, None), **slo_params(config)}
    raw_runs = []
    for _ in range(3):
        t = time.perf_counter()
        with wh.read() as con:
            con.execute(RAW).fetchall()
            run(con, "uptime_raw", uptime_raw, params)
        raw_runs.append(time.perf_counter() - t)
    raw = min(raw_runs)
    print(
        f"same figures from raw spans (exact percentiles, uptime from span minutes): "
        f"best of 3 {raw * 1000:.0f} ms"
    )
    print(f"ratio raw / rollups: {raw / best:.1f}x")
    with wh.read() as con:
        sizes = con.execute(
            "SELECT (SELECT count(*) FROM rollup_hourly), (SELECT count(*) FROM rollup_latency), "
            "(SELECT count(*) FROM rollup_minutes)"
        ).fetchall()[0]
    print(f"rollup rows: hourly {sizes[0]:,}, latency buckets {sizes[1]:,}, minutes {sizes[2]:,}")


if __name__ == "__main__":
    main()

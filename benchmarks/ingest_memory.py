"""Peak memory and publish cost of one big trace file, phase by phase.

    .venv/bin/python benchmarks/ingest_memory.py [--spans 1000000] [--workers N]
        [--group-rows N] [--steps 12]

Ingests a synthetic OTLP/JSON-lines file (`otlp_corpus.py`) into a fresh warehouse in a
child process, so the figures are that load's alone, and prints: the peak RSS of the
ingesting process (`getrusage`) and of its largest worker; the peak RSS sampled while
collecting and staging and while publishing (which of the two holds the memory); the
longest writer lock hold; and the slowest publish statements (`warehouse.publish` logs
each step's time at DEBUG). Prints figures; asserts nothing. The machines are shared:
quote the peaks and the share of time each step takes, not the seconds.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

_STEP = re.compile(r"^publish step (.+) took ([0-9.]+) ms \(([0-9.]+) ms CPU\)$")


def _rss_kib() -> int:
    with Path("/proc/self/status").open(encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class _Sampler(threading.Thread):
    """RSS every 20 ms, the peak kept per phase (`phase` is set by the wrapped publish)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.phase = "collect+stage"
        self.peaks: dict[str, int] = defaultdict(int)
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.02):
            rss = _rss_kib()
            self.peaks[self.phase] = max(self.peaks[self.phase], rss)


class _Steps(logging.Handler):
    """Sums the time of each publish statement across every publish of the load."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.ms: dict[str, float] = defaultdict(float)
        self.cpu_ms: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)

    def emit(self, record: logging.LogRecord) -> None:
        match = _STEP.match(record.getMessage())
        if match:
            name = re.sub(r" over \d+ hours$", "", match[1])
            self.ms[name] += float(match[2])
            self.cpu_ms[name] += float(match[3])
            self.calls[name] += 1


def child(path: Path, workers: int | None, group_rows: int | None) -> None:
    """The measured ingest: prints one JSON line of figures."""
    import warehouse.publish as publish_module
    from ingest import driver
    from ingest.traces import ingest_paths
    from warehouse.config import Config
    from warehouse.db import Warehouse
    from warehouse.lock import lock_stats, reset_lock_stats

    if group_rows:
        driver.GROUP_ROWS = group_rows
    sampler, steps = _Sampler(), _Steps()
    logger = logging.getLogger("warehouse.publish")
    logger.setLevel(logging.DEBUG)
    logger.addHandler(steps)
    real = publish_module._publish
    publish_ms, publish_cpu = [0.0], [0.0]

    def timed(*args: object, **kwargs: object) -> object:
        sampler.phase = "publish"
        started, cpu = time.perf_counter(), time.process_time()
        try:
            return real(*args, **kwargs)  # type: ignore[arg-type]
        finally:
            publish_ms[0] += (time.perf_counter() - started) * 1000
            publish_cpu[0] += (time.process_time() - cpu) * 1000
            sampler.phase = "collect+stage"

    publish_module._publish = timed  # type: ignore[assignment]
    sampler.start()
    with tempfile.TemporaryDirectory() as tmp:
        wh = Warehouse(Path(tmp) / "bench.duckdb")
        reset_lock_stats()
        started = time.perf_counter()
        report = ingest_paths(wh, [path], Config(), workers=workers)
        elapsed = time.perf_counter() - started
        size = wh.path.stat().st_size
    sampler.stop.set()
    sampler.join()
    print(
        json.dumps(
            {
                "spans": report.rows("spans"),
                "seconds": elapsed,
                "publish_ms": publish_ms[0],
                "lock_hold_s": lock_stats()["longest_write_hold_s"],
                "rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                "worker_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
                "phase_kib": dict(sampler.peaks),
                "steps_ms": dict(steps.ms),
                "steps_cpu_ms": dict(steps.cpu_ms),
                "publish_cpu_ms": publish_cpu[0],
                "calls": dict(steps.calls),
                "warehouse_bytes": size,
            }
        )
    )


def measure(
    spans: int, workers: int | None = None, group_rows: int | None = None
) -> dict[str, object]:
    """Run the measured ingest of a `spans`-span file in a fresh process; its figures."""
    from otlp_corpus import corpus

    path = corpus(spans)
    cmd = [sys.executable, __file__, "--child", str(path)]
    if workers is not None:
        cmd += ["--workers", str(workers)]
    if group_rows is not None:
        cmd += ["--group-rows", str(group_rows)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    figures: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    figures["file_bytes"] = path.stat().st_size
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument(
        "--group-rows", type=int, default=None, help="the driver's GROUP_ROWS for this run"
    )
    parser.add_argument("--steps", type=int, default=12, help="publish steps to list")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.workers, args.group_rows)
        return
    f = measure(args.spans, args.workers, args.group_rows)
    phases: dict[str, int] = f["phase_kib"]  # type: ignore[assignment]
    steps: dict[str, float] = f["steps_ms"]  # type: ignore[assignment]
    calls: dict[str, int] = f["calls"]  # type: ignore[assignment]
    cpu: dict[str, float] = f["steps_cpu_ms"]  # type: ignore[assignment]
    seconds, publish_ms = float(f["seconds"]), float(f["publish_ms"])  # type: ignore[arg-type]
    print(
        f"{f['spans']:,} spans from {int(f['file_bytes']) / 1e9:.2f} GB of JSON lines "  # type: ignore[call-overload]
        f"in {seconds:.1f} s; publish {publish_ms / 1000:.1f} s "
        f"({publish_ms / 10 / seconds:.0f}% of the load, "
        f"{publish_ms / max(int(f['spans']), 1) * 100_000:.0f} ms per 100k spans; "  # type: ignore[call-overload]
        f"CPU {float(f['publish_cpu_ms']) / max(int(f['spans']), 1) * 100_000:.0f} ms "  # type: ignore[arg-type, call-overload]
        "per 100k spans, all threads)"
    )
    print(
        f"peak RSS: ingesting process {int(f['rss_kib']) / 1024:,.0f} MiB, "  # type: ignore[call-overload]
        f"largest worker {int(f['worker_kib']) / 1024:,.0f} MiB"  # type: ignore[call-overload]
    )
    for phase, kib in sorted(phases.items()):
        print(f"  sampled peak while {phase}: {kib / 1024:,.0f} MiB")
    print(f"longest writer lock hold: {float(f['lock_hold_s']):.2f} s")  # type: ignore[arg-type]
    print(f"warehouse file: {int(f['warehouse_bytes']) / 1e6:,.0f} MB")  # type: ignore[call-overload]
    total = sum(cpu.values()) or 1.0
    print(f"costliest publish steps by CPU (of {total / 1000:.1f} CPU s; wall s beside):")
    for name, ms in sorted(cpu.items(), key=lambda kv: -kv[1])[: args.steps]:
        print(
            f"  {ms / 1000:7.2f} CPU s {ms / total:4.0%} {steps[name] / 1000:7.2f} s "
            f"x{calls[name]:<3} {name}"
        )


if __name__ == "__main__":
    main()

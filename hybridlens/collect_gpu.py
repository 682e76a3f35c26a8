"""`hybridlens collect gpu --interval 10s [--count N]`: sample this host's GPUs through NVML.

For hosts with an NVIDIA driver but no DCGM exporter (a workstation, an edge box). Each
interval it reads every GPU once (`ingest.gpu.nvml.sample`) and hands the readings to
`load`, the same loader `ingest gpu --prometheus` takes, so a sample is in the warehouse
before the next one is taken and a crash loses at most one interval. The command line
wires it in with `add_arguments(parser)` and `run(args, load=...)`. Without an NVIDIA
driver it says so in one line and exits 1.
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from hybridlens.ingest_gpu_prometheus import LoadReadings, duration
from ingest.gpu.nvml import SOURCE, NvmlUnavailableError, init, load_nvml, sample
from ingest.gpu.readings import UTIL, ReadOptions


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of `hybridlens collect gpu`."""
    parser.add_argument(
        "--interval",
        type=duration,
        default=timedelta(seconds=10),
        help="time between samples (default 10s)",
    )
    parser.add_argument(
        "--count",
        type=_count,
        default=None,
        metavar="N",
        help="take N samples, then stop (default: until interrupted)",
    )
    parser.add_argument(
        "--environment",
        default=None,
        help="the environment of this host's GPUs when no config rule names it",
    )


def run(
    args: argparse.Namespace,
    *,
    load: LoadReadings,
    nvml: Any = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Sample every `--interval`, `--count` times or until interrupted; the exit status."""
    try:
        if nvml is None:
            nvml = load_nvml()
        else:
            init(nvml)
    except NvmlUnavailableError as exc:
        print(f"hybridlens: {exc}", file=sys.stderr)
        return 1
    options = ReadOptions(environment=args.environment or "")
    uri = f"nvml://{socket.gethostname()}"
    interval = args.interval.total_seconds()
    worst = 0
    taken = 0
    next_at = clock()
    try:
        while args.count is None or taken < args.count:
            if taken:
                next_at += interval  # on a fixed schedule, so the samples do not drift
                sleep(max(0.0, next_at - clock()))
            parsed = sample(nvml)
            taken += 1
            worst = max(worst, load(SOURCE, uri, parsed, options, None))
            utils = [r.fields[UTIL] for r in parsed.readings if UTIL in r.fields]
            mean = f", mean utilization {sum(utils) / len(utils):.0f}%" if utils else ""
            print(
                f"sample {taken}: {len(parsed.readings)} GPUs and MIG instances{mean}"
                + (f", {len(parsed.rejected)} rejected" if parsed.rejected else ""),
                file=sys.stderr,
            )
    finally:
        with contextlib.suppress(nvml.NVMLError):  # a driver gone meanwhile holds nothing
            nvml.nvmlShutdown()
    return worst

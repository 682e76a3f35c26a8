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
from typing import Any

from hybridlens.ingest_gpu_prometheus import LoadReadings
from ingest.gpu.nvml import SOURCE, NvmlUnavailableError, init, instance_id, load_nvml, sample
from ingest.gpu.readings import UTIL, ReadOptions
from warehouse.config import Config
from warehouse.db import Warehouse


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
    host_id = args.host_id or instance_id()
    interval = args.interval.total_seconds()
    worst = 0
    taken = 0
    next_at = clock()
    try:
        while args.count is None or taken < args.count:
            if taken:
                next_at += interval  # on a fixed schedule, so the samples do not drift
                sleep(max(0.0, next_at - clock()))
            parsed = sample(nvml, host_id=host_id)
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


def cmd_collect_gpu(args: argparse.Namespace, warehouse: Warehouse, config: Config) -> int:
    """`hybridlens collect gpu`: NVML samples through the samples builder and the driver."""
    from hybridlens.ingest_gpu_prometheus import readings_loader
    from ingest.gpu.samples import rows

    return run(args, load=readings_loader(warehouse, config, rows))

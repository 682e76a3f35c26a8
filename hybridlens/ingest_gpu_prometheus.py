"""`hybridlens ingest gpu --prometheus URL --since 24h --step 60s`: DCGM series from Prometheus.

The `ingest gpu` subparser belongs to the GPU collector's command; it hooks this in with
`add_arguments(parser)` and, when `--prometheus` is given, calls `run(args, load=...)`.
Loading is passed in (`load`) rather than done here, so this module decides only what to
pull and how to say what happened, and the one path from readings to `gpu_samples` rows
(the samples builder, the driver's publish and `ingest_log`) stays the GPU collector's.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ingest.contract import Collected, Rejected, Unit
from ingest.gpu.prometheus_api import MAX_POINTS, SOURCE, pull_range
from ingest.gpu.readings import Parsed, Reading, ReadOptions

if TYPE_CHECKING:
    import pyarrow as pa

    from warehouse.config import Config
    from warehouse.db import Warehouse

# (source, uri, parsed, options, error) -> exit status: loads the readings into
# gpu_samples, records the input (and `error`, when the pull stopped early) in ingest_log,
# prints the load summary, and returns 0, or 1 when anything was quarantined or failed.
LoadReadings = Callable[[str, str, Parsed, ReadOptions, "str | None"], int]
# the samples builder's signature (`ingest.gpu.samples.rows`): readings -> gpu_samples rows
BuildRows = Callable[
    [Iterable[Reading], "Config", ReadOptions, str],
    "tuple[pa.Table, list[Rejected], Counter[str]]",
]
TABLE = "gpu_samples"


def readings_loader(warehouse: Warehouse, config: Config, build_rows: BuildRows) -> LoadReadings:
    """A `load` for `run` and `collect gpu`: readings -> rows (`build_rows`, the samples
    builder) -> the one driver and publish, so `ingest_log`, `quarantine`, the merge and the
    after-publish hooks are the same as for files; a pull's `error` becomes a FAILED input."""
    from ingest.driver import load
    from ingest.files import Source
    from warehouse.publish import record_failure

    def load_readings(
        source: str, uri: str, parsed: Parsed, options: ReadOptions, error: str | None
    ) -> int:
        table, rejected, counts = build_rows(parsed.readings, config, options, source)
        collected = Collected(
            frames={TABLE: table},
            rejected=[*parsed.rejected, *rejected],
            skipped=parsed.skipped + counts,
            lines=len(parsed.readings),
        )
        unit = Unit(uri, body=b"")
        report = load(warehouse, [Source(unit, 0)], config, _Read(source, collected))
        if error:
            report.add(record_failure(warehouse, uri, error, source=source))
        print(
            f"loaded {report.rows(TABLE):,} GPU samples into {warehouse.path} "
            f"({report.duplicates(TABLE):,} already there), {report.quarantined:,} quarantined",
            file=sys.stderr,
        )
        return 0 if report.ok and not error else 1

    return load_readings


@dataclass(frozen=True)
class _Read:
    """A collector over rows already built: what a pull or a sample gave, for the driver."""

    name: str
    collected: Collected
    tables: tuple[str, ...] = (TABLE,)

    def sniff(self, head: bytes) -> bool:
        return True

    def plan(self, unit: Unit, size: int) -> list[Unit]:
        return [unit]

    def collect(self, unit: Unit, config: Config) -> Collected:
        return self.collected


def run(
    args: argparse.Namespace,
    *,
    load: LoadReadings,
    now: datetime | None = None,
    max_points: int = MAX_POINTS,
) -> int:
    """Pull `--since` back from `now` at `--step`, hand the readings to `load`; the status."""
    end = now or datetime.now(UTC)
    start = end - args.since
    if args.step > args.since:
        print(
            f"hybridlens: error: --step {args.step} is longer than --since {args.since}",
            file=sys.stderr,
        )
        return 2
    options = ReadOptions(environment=getattr(args, "environment", None) or "")
    pull = pull_range(
        args.prometheus,
        start,
        end,
        args.step,
        selector=args.match,
        max_points=max_points,
        timeout_s=args.prometheus_timeout,
    )
    gpus = {(r.labels.get("Hostname"), r.labels.get("UUID")) for r in pull.parsed.readings}
    print(
        f"pulled {len(pull.parsed.readings):,} samples of {len(gpus):,} GPUs from "
        f"{args.prometheus} ({pull.queries} queries over {pull.pages} time pages, "
        f"{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC, step {args.step})",
        file=sys.stderr,
    )
    status = load(SOURCE, args.prometheus, pull.parsed, options, pull.error)
    if pull.error:
        print(f"hybridlens: error: {pull.error}", file=sys.stderr)
        return max(status, 1)
    return status

"""Cost allocation over the demo: a DAYS-day demo scenario loaded as `hybridlens demo` loads
it (day by day, then the bills), the time its allocation hooks took during that load, and
then a rebuild of every day (`warehouse.allocation.refresh_all`, what a config change
does), best of three. It prints figures and asserts nothing.

    .venv/bin/python benchmarks/allocation.py --days 90
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hybridlens import demo
from warehouse import allocation
from warehouse.config import load_file
from warehouse.db import Warehouse
from warehouse.load import store_config

ROOT = Path(__file__).resolve().parent.parent
HOOK = re.compile(r"publish step hook (_\w+) over \d+ hours took ([\d.]+) ms")


class HookTimes(logging.Handler):
    """Sums the publish hooks' wall time by hook, from warehouse.publish's debug lines."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.ms: dict[str, float] = {}

    def emit(self, record: logging.LogRecord) -> None:
        match = HOOK.match(record.getMessage())
        if match:
            self.ms[match[1]] = self.ms.get(match[1], 0.0) + float(match[2])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--folder", type=Path, default=None, help="keep the data here")
    args = parser.parse_args()
    config = load_file(ROOT / "sample_data" / "scenario.toml")
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.folder or Path(tmp)
        warehouse = Warehouse(folder / "demo.duckdb")
        store_config(warehouse, config.origin, config.to_json())
        end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        scenario = demo.Scenario(folder / "data", args.days, 7, args.scale, end)
        hooks = HookTimes()
        publish_log = logging.getLogger("warehouse.publish")
        publish_log.setLevel(logging.DEBUG)
        publish_log.addHandler(hooks)
        started = time.perf_counter()
        demo.load(warehouse, config, scenario, written=False)
        loaded_s = time.perf_counter() - started
        publish_log.removeHandler(hooks)
        with warehouse.read() as con:
            ledger = con.execute("SELECT count(*), sum(EffectiveCost) FROM billing").fetchone()
            got = con.execute(
                "SELECT count(*), count(DISTINCT day), sum(cost) FROM cost_allocation"
            ).fetchone()
        assert ledger is not None and got is not None
        same = "equal to" if got[2] == ledger[1] else "DIFFERENT from"
        print(f"demo of {args.days} days (scale {args.scale}) loaded in {loaded_s:.1f} s; "
              f"ledger {ledger[0]:,} rows, EffectiveCost {ledger[1]}")  # fmt: skip
        print(f"allocation: {got[0]:,} rows over {got[1]:,} days, cost {got[2]} ({same} "
              "the ledger)")  # fmt: skip
        for name, ms in sorted(hooks.ms.items()):
            print(f"  hook {name}: {ms / 1000:.2f} s during the load")
        best = timedelta.max
        for _ in range(3):
            with warehouse.write() as con:
                t0 = time.perf_counter()
                rows = allocation.refresh_all(con, allocation.stored(con))
                best = min(best, timedelta(seconds=time.perf_counter() - t0))
        print(f"rebuilding every day: {best.total_seconds():.2f} s (best of 3, {rows:,} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Server time of each dashboard page, cold, with an empty cache and cached.

    python benchmarks/dashboard_pages.py --warehouse /tmp/demo.duckdb [--runs 3]

Each page is run with Streamlit's AppTest (the real script, no browser) against the
warehouse: "cold" is the first run in this process (imports included), "empty cache" a run
after `st.cache_data.clear()`, "cached" a run straight after. For the empty-cache run it
also prints the time spent reading the page's data (`dashboard.page_data`), the slowest
query behind it, the number of queries and connections, and the slowest figure or table
builder (a panel). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "dashboard" / "app.py"
PAGES: dict[str, str | None] = {
    "environments": "views/environments.py",
}
_X = {
    "overview": None,
    "environments": "views/environments.py",
    "gpus": "views/gpus.py",
    "spend": "views/spend.py",
}
PANEL_MODULES = (
    "overview_figures",
    "environment_figures",
    "gpu_figures",
    "gpu_cost_figures",
    "spend_figures",
    "budget_figures",
    "allocation_figures",
    "tables",
)
# each page's data bundle: (module in dashboard, function)
DATA_READS = (
    ("page_data", "overview"),
    ("page_data", "environment"),
    ("gpu_page_data", "gpu_page"),
    ("spend_page_data", "spend_page"),
    ("allocation_page_data", "allocation_view"),
)
QUERY_LOG = re.compile(r"query (\S+) took ([\d.]+) ms")


class Recorder(logging.Handler):
    """Collects warehouse.db's per-query timings and counts timed calls."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.queries: list[tuple[str, float]] = []
        self.calls: dict[str, list[float]] = {}
        self.connections = 0

    def emit(self, record: logging.LogRecord) -> None:
        match = QUERY_LOG.match(record.getMessage())
        if match:
            self.queries.append((match.group(1), float(match.group(2))))

    def reset(self) -> None:
        self.queries.clear()
        self.calls.clear()
        self.connections = 0

    def timed(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.calls.setdefault(name, []).append((time.perf_counter() - started) * 1000)

        return wrapper


def instrument(recorder: Recorder) -> None:
    import importlib

    from warehouse.db import Warehouse

    connect = Warehouse._connect

    def counting(self: Warehouse, *, read_only: bool) -> Any:
        recorder.connections += 1
        return connect(self, read_only=read_only)

    Warehouse._connect = counting  # type: ignore[method-assign]
    for module_name, name in DATA_READS:
        try:
            module = importlib.import_module(f"dashboard.{module_name}")
        except ImportError:  # a tree from before this page's bundle: its totals only
            continue
        setattr(module, name, recorder.timed(f"data:{name}", getattr(module, name)))
    for module_name in PANEL_MODULES:
        try:
            module = importlib.import_module(f"dashboard.{module_name}")
        except ImportError:
            continue
        for attr, value in list(vars(module).items()):
            if callable(value) and attr.endswith(("_figure", "_table", "_heatmap")):
                setattr(module, attr, recorder.timed(f"panel:{attr}", value))


def run_page(page: str | None) -> float:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(APP), default_timeout=300)
    if page is not None:
        at.switch_page(page)
    started = time.perf_counter()
    at.run()
    elapsed = (time.perf_counter() - started) * 1000
    if at.exception:
        raise SystemExit(f"{page or 'overview'} raised: {[e.value for e in at.exception]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse", required=True, type=Path)
    parser.add_argument("--runs", type=int, default=3, help="empty-cache and cached runs")
    args = parser.parse_args()
    os.environ["HYBRIDLENS_WAREHOUSE"] = str(args.warehouse.absolute())
    os.environ.pop("HYBRIDLENS_CONFIG", None)
    os.chdir(args.warehouse.parent)
    sys.path.insert(0, str(ROOT))

    import streamlit as st

    recorder = Recorder()
    db_log = logging.getLogger("warehouse.db")
    db_log.setLevel(logging.DEBUG)
    db_log.addHandler(recorder)
    instrument(recorder)

    print(f"warehouse {args.warehouse} ({args.warehouse.stat().st_size / 1e6:.0f} MB)")
    for name, page in PAGES.items():
        st.cache_data.clear()
        cold = run_page(page)
        empty, cached, data_ms, slowest, n_queries, conns, panels = [], [], [], [], [], [], []
        for _ in range(args.runs):
            st.cache_data.clear()
            recorder.reset()
            empty.append(run_page(page))
            data_ms.append(
                sum(v for k, vs in recorder.calls.items() if k.startswith("data:") for v in vs)
            )
            slowest.append(max(recorder.queries, key=lambda q: q[1], default=("-", 0.0)))
            n_queries.append(len(recorder.queries))
            conns.append(recorder.connections)
            panels.append(
                max(
                    (
                        (k, v)
                        for k, vs in recorder.calls.items()
                        if k.startswith("panel:")
                        for v in vs
                    ),
                    key=lambda p: p[1],
                    default=("-", 0.0),
                )
            )
            print(
                sorted(recorder.queries, key=lambda q: -q[1])[:8],
                {
                    k: [round(x) for x in v]
                    for k, v in recorder.calls.items()
                    if k.startswith("data:")
                },
            )
            cached.append(run_page(page))
        worst_query = max(slowest, key=lambda q: q[1])
        worst_panel = max(panels, key=lambda p: p[1])
        print(
            f"{name:13s} cold {cold:7.0f} ms | empty cache {statistics.median(empty):6.0f} ms "
            f"(data {statistics.median(data_ms):5.0f} ms, {statistics.median(n_queries):.0f} "
            f"queries, {statistics.median(conns):.0f} connections; slowest query "
            f"{worst_query[0]} {worst_query[1]:.0f} ms; slowest panel "
            f"{worst_panel[0].removeprefix('panel:')} {worst_panel[1]:.0f} ms) | "
            f"cached {statistics.median(cached):5.0f} ms"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The demo's billing phase: the clouds' exports the generator wrote, loaded in order.

Why apart from `hybridlens.demo`: the days are loaded as they are written, the bills only
once the generator is done (a month's export holds the whole month), and in the order the
providers delivered them, one `ingest billing` delivery per call, so a restated month
replaces the delivery it restates. The deliveries are read from `scenario.json`, which
the generator writes last; a scenario written without bills (the committed small copy)
has none.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from warehouse.config import Config
    from warehouse.db import Warehouse


def deliveries(data: Path) -> list[list[Path]]:
    """The files of each billing delivery under `data`, in delivery order."""
    summary = data / "scenario.json"
    if not summary.exists():
        return []
    billing = json.loads(summary.read_text(encoding="utf-8")).get("billing") or {}
    return [[data / f for f in d["files"]] for d in billing.get("deliveries", [])]


def load(warehouse: Warehouse, config: Config, bills: list[list[Path]]) -> tuple[int, int, int]:
    """Load each delivery with one `ingest_billing` call, in order: (files, quarantined
    rows, failed files)."""
    from hybridlens.ingest_billing import ingest_billing

    files = quarantined = failures = 0
    for paths in bills:
        report = ingest_billing(warehouse, paths, config)
        files += len(paths)
        quarantined += int(report.quarantined)
        failures += len(report.failures)
    return files, quarantined, failures

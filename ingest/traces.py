"""`hybridlens ingest traces PATH...`: OTLP files, folders and URLs into the warehouse.

The command is the OTLP file collector (`ingest/otlp_files.py`) run by the one driver
(`ingest/driver.py`) over what discovery finds (`ingest/files.py`); this module only ties
them together for the command line, the demo and the tests.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ingest import registry
from ingest.contract import Collector
from ingest.driver import Progress, load
from ingest.files import discover
from ingest.otlp_files import OtlpFiles
from warehouse.config import Config
from warehouse.db import Warehouse
from warehouse.report import LoadReport

SOURCE = "otlp-file"


def ingest_paths(
    warehouse: Warehouse,
    paths: Iterable[Path | str],
    config: Config,
    *,
    progress: Progress | None = None,
    signal: str | None = None,
    workers: int | None = None,
) -> LoadReport:
    """Load every OTLP file under `paths` (and every URL among them); bad records go to
    quarantine and never stop the rest."""
    collector: Collector = registry.get(SOURCE) if signal is None else OtlpFiles(signal=signal)
    sources, skipped = discover(warehouse, paths)
    return load(
        warehouse,
        sources,
        config,
        collector,
        files_skipped=skipped,
        progress=progress,
        workers=workers,
    )

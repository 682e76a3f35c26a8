"""TEMPORARY ADAPTER from the receiver branch: the agreed `publish` over `publish_traces`.

The "publish" engineer's real `warehouse/publish.py` (every table's write spec in one
transaction) replaces this file at merge. This one handles what the receiver's loader
stages (spans and evaluations) and reads the per-table counts of `publish_traces`, which
are per load: exact for a stage of one input, which is what the loader publishes.
"""

from __future__ import annotations

import pyarrow as pa

from warehouse.db import Warehouse
from warehouse.load import publish_traces
from warehouse.report import InputReport, LoadReport, Status
from warehouse.stage import Stage

_EMPTY = pa.schema([])  # a table nothing was staged for: publish_traces never reads it


def publish(warehouse: Warehouse, stage: Stage, *, source: str) -> LoadReport:
    """Write the stage in one transaction (rows, rollups, quarantine, ingest_log)."""
    if len(stage.reports) > 1:
        raise ValueError("this adapter publishes one input per stage (see the module docstring)")
    result = publish_traces(
        warehouse,
        stage.inner,
        stage.schemas.get("spans", _EMPTY),
        stage.schemas.get("evaluations", _EMPTY),
        source=source,
    )
    for report, entry in zip(stage.reports, result.inputs, strict=True):
        report.rows = {"spans": result.rows, "evaluations": result.evaluations}
        report.duplicates = {
            "spans": result.duplicates,
            "evaluations": result.evaluation_duplicates,
        }
        report.status = Status(entry.status)
        report.quarantined = entry.quarantined
    inputs: list[InputReport] = list(stage.reports)
    return LoadReport(
        load_ids=[result.load_id],
        inputs=inputs,
        duration_ms=result.duration_ms,
        longest_publish_ms=result.duration_ms,
    )

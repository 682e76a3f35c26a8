"""TEMPORARY ADAPTER (driver branch): the agreed `publish(warehouse, stage, *, source)`.

The publish engineer owns this module and replaces it at merge with the real write path
(write specs for every table, one transaction). Until then it wraps
`warehouse.load.publish_traces`, so only the `spans` and `evaluations` tables can be
published, and converts its result into a `LoadReport`. Today's publish counts new rows per
input over both tables together, so for an input that staged rows of both tables the split
between them is allocated (table totals stay exact); the real publish counts per table.
"""

from __future__ import annotations

import time

import pyarrow as pa

from warehouse.db import Warehouse
from warehouse.load import publish_traces
from warehouse.report import LoadReport, Status
from warehouse.stage import Stage


def publish(
    warehouse: Warehouse,
    stage: Stage,
    *,
    source: str,
) -> LoadReport:
    """Publish every staged input in one transaction and say what each one did."""
    started = time.perf_counter()
    for entry, report in zip(stage.inputs, stage.reports, strict=True):
        entry.content_hash = report.content_hash
        entry.byte_offset = report.byte_offset
        entry.status = report.status.value
        entry.message = report.message
        entry.skipped = "; ".join(f"{n} {what}" for what, n in sorted(report.skipped.items()))
        entry.skipped = entry.skipped or None
    none = pa.schema([])  # a table nothing was staged for is never read
    spans, evaluations = (stage.schemas.get(t, none) for t in ("spans", "evaluations"))
    result = publish_traces(warehouse, stage, spans, evaluations, source=source)
    # Inputs that staged one table only are exact; the evaluations left over go to the
    # inputs that staged both, in order (the real publish counts per table).
    evaluations_left = result.evaluations
    for entry, staged in zip(stage.inputs, stage.staged, strict=True):
        if not staged["spans"]:
            evaluations_left -= entry.rows
    for entry, report, staged in zip(stage.inputs, stage.reports, stage.staged, strict=True):
        report.status = Status(entry.status)
        new = entry.rows
        if not staged["spans"]:
            evals = new
        elif not staged["evaluations"]:
            evals = 0
        else:
            evals = max(0, min(staged["evaluations"], new, evaluations_left))
            evaluations_left -= evals
        report.rows = {"spans": new - evals, "evaluations": evals}
        report.duplicates = {
            "spans": staged["spans"] - (new - evals),
            "evaluations": staged["evaluations"] - evals,
        }
        report.rows = {t: n for t, n in report.rows.items() if n}
        report.duplicates = {t: n for t, n in report.duplicates.items() if n}
    elapsed = (time.perf_counter() - started) * 1000
    return LoadReport(
        load_ids=[result.load_id],
        inputs=list(stage.reports),
        duration_ms=elapsed,
        longest_publish_ms=result.duration_ms,
    )

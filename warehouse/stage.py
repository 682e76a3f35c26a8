"""TEMPORARY ADAPTER from the receiver branch: the agreed `Stage` over `warehouse.load.Stage`.

The "publish" engineer's real `warehouse/stage.py` replaces this file at merge; it exists
so the receiver's loader can already speak the agreed API (`begin(InputReport)`, `add`,
`reject`, `rows`, `close`). It keeps the schema of each staged table, which the old
`publish_traces` needs and the real write specs will know for themselves.
"""

from __future__ import annotations

import pyarrow as pa

from warehouse.load import Input
from warehouse.load import Stage as _LoadStage
from warehouse.report import InputReport


class Stage:
    """The rows of one load, kept outside the warehouse until `publish` writes them."""

    def __init__(self) -> None:
        self.inner = _LoadStage()
        self.reports: list[InputReport] = []
        self.schemas: dict[str, pa.Schema] = {}

    def begin(self, report: InputReport) -> int:
        """Start an input; the returned index tags its rows and quarantine entries."""
        self.reports.append(report)
        skipped = "; ".join(f"{n} {what}" for what, n in sorted(report.skipped.items()))
        return self.inner.begin(
            Input(
                uri=report.uri,
                content_hash=report.content_hash,
                byte_offset=report.byte_offset,
                status=str(report.status),
                message=report.message,
                skipped=skipped or None,
            )
        )

    def add(self, table: str, rows: pa.Table, index: int) -> None:
        self.schemas.setdefault(table, rows.schema)
        self.inner.add(table, rows, index)

    def reject(self, index: int, location: str, error: str, excerpt: str) -> None:
        self.inner.reject(index, location, error, excerpt)
        self.reports[index].quarantined += 1

    def rows(self, table: str | None = None) -> int:
        return self.inner.rows(table)

    def close(self) -> None:
        self.inner.close()

"""TEMPORARY ADAPTER (driver branch): the agreed `Stage` API over today's `warehouse.load.Stage`.

The publish engineer owns this module and replaces it at merge with the real one; it exists
only so the driver can be written against the agreed interface now: `begin` takes an
`InputReport`, `add(table, rows, index)`, `reject(index, location, error, excerpt)`,
`rows(table=None)`, `close()`.
"""

from __future__ import annotations

from collections import Counter

import pyarrow as pa

from warehouse.load import Input
from warehouse.load import Stage as _LoadStage
from warehouse.report import InputReport


class Stage(_LoadStage):
    """Today's stage, tagged with `InputReport`s that the driver fills in until publish."""

    def __init__(self) -> None:
        super().__init__()
        self.reports: list[InputReport] = []
        self.staged: list[Counter[str]] = []  # input index -> table -> rows staged
        self.schemas: dict[str, pa.Schema] = {}  # table -> schema of its staged rows

    def begin(self, entry: InputReport | Input) -> int:
        if isinstance(entry, Input):  # today's callers (the receiver) still pass an Input
            entry = InputReport(entry.uri, entry.content_hash, entry.byte_offset)
        self.reports.append(entry)
        self.staged.append(Counter())
        return super().begin(Input(uri=entry.uri))

    def add(self, table: str, rows: pa.Table, input_index: int) -> None:
        self.staged[input_index][table] += rows.num_rows
        self.schemas.setdefault(table, rows.schema)
        super().add(table, rows, input_index)

    def reject(self, input_index: int, location: str, error: str, excerpt: str) -> None:
        super().reject(input_index, location, error, excerpt)
        self.reports[input_index].quarantined += 1

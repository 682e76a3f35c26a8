"""Quarantine entries for what a typed read found wrong: one per bad row, naming every
column and value that did not parse, and one per CSV line that was not a row.

Shared by every billing format, so "row 12: BilledCost 'abc' is not a number" reads the
same whatever the export. Values are shown with `repr` and cut short, so a hostile value
(markup, SQL, a control character) is shown as text and never reaches a page raw.
"""

from __future__ import annotations

from itertools import groupby

from ingest.contract import Rejected
from warehouse.tabular import Typed

SHOWN = 80  # characters of a bad value shown in its message


def rejected(typed: Typed) -> list[Rejected]:
    """The rows with values that do not parse and the lines that are not rows, in order."""
    found = [Rejected(f"line {m.line}", f"not a row: {m.why}", m.excerpt) for m in typed.malformed]
    for row, problems in groupby(typed.problems, key=lambda p: p.row):
        what = "; ".join(f"{p.column} {shown(p.value)} {p.why}" for p in problems)
        found.append(
            Rejected(
                f"row {row}",
                f"{what}: the row was not loaded",
                typed.excerpts.get(row, ""),
            )
        )
    return found


def shown(value: str) -> str:
    text = value if len(value) <= SHOWN else value[:SHOWN] + "…"
    return repr(text)

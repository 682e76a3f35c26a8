"""Quarantine entries for what a typed read found wrong: one per bad row, naming every
column and value that did not parse, and one per CSV line that was not a row.

Shared by every billing format, so "row 12: BilledCost 'abc' is not a number" reads the
same whatever the export. Values are shown with `repr` and cut short, so a hostile value
(markup, SQL, a control character) is shown as text and never reaches a page raw.
"""

from __future__ import annotations

from itertools import groupby

import pyarrow as pa
import pyarrow.compute as pc

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


def flagged(rows: pa.Table, flag: str, raw: str) -> tuple[pa.Table, list[Rejected]]:
    """The rows without those a format's mapping flagged, and a quarantine entry for each.

    A mapping can find a row bad only after it is typed (a GCP invoice month that is no
    month, Azure tags that are no JSON object even inside braces): its `flag` column holds
    null, or a struct of the input `column`, its `value` and `why`, in the words `rejected`
    uses. The flag column is dropped."""
    bad = pc.is_valid(rows[flag])
    found = []
    if pc.any(bad).as_py():
        quarantined = rows.filter(bad)
        for number, text, check in zip(
            quarantined["_row"].to_pylist(), quarantined[raw].to_pylist(),
            quarantined[flag].to_pylist(), strict=True,
        ):  # fmt: skip
            found.append(
                Rejected(
                    f"row {number}",
                    f"{check['column']} {shown(str(check['value']))} {check['why']}: "
                    "the row was not loaded",
                    str(text or "")[:500],
                )
            )
        rows = rows.filter(pc.invert(bad))
    return rows.drop_columns([flag]), found


def shown(value: str) -> str:
    text = value if len(value) <= SHOWN else value[:SHOWN] + "…"
    return repr(text)

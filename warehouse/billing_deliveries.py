"""What one `ingest billing` command did to the ledger's units, as far as a person must know.

A delivery is every file given to one command, so the files of one unit add up: that is
right for the parts of one export run and wrong for two runs of it (last month's export
and its restatement side by side in one folder, or a FOCUS 1.2 and a 1.4 export of the
same account and month). The two cannot be told apart by name or folder, but by content:
parts never hold the same charge, while two runs of one export hold nearly all of theirs
twice. So the load reports each unit whose files share most of their charges, and says
how to load it instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from warehouse.db import read_sql, run_rows
from warehouse.session import Source, connection

# a file whose distinct charges are at least this share in another file of its unit is a
# second run of the export: a restatement's changed rows all are, a part's almost none
SHARED = 0.5


@dataclass(frozen=True)
class Doubled:
    """A unit one command loaded from files that are runs of the same export, not parts."""

    unit: str
    files: tuple[str, ...]  # every file of the unit, by name
    shared: int  # charges in more than one of them (counted once per file)


def doubled_units(warehouse: Source, load_ids: list[int]) -> list[Doubled]:
    """The units `load_ids` wrote from several files of which one holds SHARED or more of
    its charges in another: those charges now count once per file."""
    if not load_ids:
        return []
    with connection(warehouse) as con:
        found = run_rows(
            con, "billing_shared_charges", read_sql("billing_shared_charges"),
            {"load_ids": load_ids},
        )  # fmt: skip
    units: dict[str, list[dict[str, Any]]] = {}
    for r in found:
        units.setdefault(r["unit"], []).append(r)
    return [
        Doubled(unit, tuple(r["uri"] for r in files), max(r["shared"] for r in files))
        for unit, files in units.items()
        if any(r["shared"] and r["shared"] >= SHARED * r["charges"] for r in files)
    ]

"""FOCUS 1.0 to 1.4 cost and usage files: which columns they have, and how they map.

FOCUS columns land in the ledger under their own names, so the mapping is mostly the
identity; what differs between versions is which columns exist. 1.3 added
`ServiceProviderName` and `HostProviderName` beside the deprecated `ProviderName` and
`PublisherName`, and 1.4 removed those two, while providers ship every version side by
side. Each pair is filled from the other when a file lacks a column (never per row: a 1.3
file's null `HostProviderName` is a statement, "no host", and stays null):
`ProviderName` and `PublisherName` from `ServiceProviderName`; `ServiceProviderName` from
`ProviderName`, and `HostProviderName` from `ServiceProviderName` (the spec's "MUST match
ServiceProviderName in all other cases"; a 1.2 publisher is not a host). A 1.2 file and a
1.4 file of the same account and month are thereby the same replace unit.

The version is not written in a FOCUS file (it is in metadata beside it), so the one we
record is the newest whose own columns the file has: a 1.2 file that uses none of 1.2's
new columns reads as "focus-1.0", which is what it is column for column.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ingest.billing.formats import Read, Sink
from ingest.billing.problems import rejected
from warehouse.focus_spec import COLUMNS, MANDATORY, PROVIDER, VERSIONS
from warehouse.tabular import Column, read

NAME = "focus"
DATASET = "focus"  # DESIGN.md: a FOCUS file's dataset is `focus`
RAW = "x_SourceRow"

# Columns no other billing export spells this way: two of them make a file FOCUS, so a file
# that misses mandatory columns is told it is incomplete FOCUS, not an unknown format
# (Azure's cost details share BillingAccountId, Tags and PublisherName, none of these).
SIGNATURE = frozenset(
    {
        "BilledCost",
        "EffectiveCost",
        "ListCost",
        "ContractedCost",
        "ChargePeriodStart",
        "ChargePeriodEnd",
        "ChargeCategory",
        "BillingPeriodStart",
        "BillingPeriodEnd",
        "ServiceCategory",
        "InvoiceIssuerName",
        "ServiceProviderName",
    }
)


def version_of(columns: Sequence[str]) -> str:
    """The newest FOCUS version whose own columns the file has (`ProviderName` gone and
    `ServiceProviderName` there is 1.4's mark)."""
    present = set(columns)
    if "ServiceProviderName" in present and "ProviderName" not in present:
        return "1.4"
    found = [COLUMNS[c][1] for c in present if c in COLUMNS]
    return max(found, key=VERSIONS.index) if found else "1.0"


def sources(columns: Sequence[str]) -> list[Column]:
    """The ledger's FOCUS columns, each from the file's own column, or from its pair's
    when the file lacks it (module docstring)."""
    present = set(columns)

    def first(*names: str) -> tuple[str, ...]:
        return tuple(n for n in names if n in present)[:1]

    fill = {
        "ProviderName": first("ProviderName", "ServiceProviderName"),
        "PublisherName": first("PublisherName", "ServiceProviderName", "ProviderName"),
        "ServiceProviderName": first("ServiceProviderName", "ProviderName"),
        "HostProviderName": first("HostProviderName", "ServiceProviderName", "ProviderName"),
    }
    return [
        Column(name, kind, fill.get(name, (name,) if name in present else ()))
        for name, (kind, _) in COLUMNS.items()
    ]


@dataclass(frozen=True)
class Focus:
    """FOCUS cost and usage files, 1.0 to 1.4, as CSV, gzip CSV or Parquet."""

    name: str = NAME

    def claims(self, columns: Sequence[str]) -> bool:
        return len(SIGNATURE.intersection(columns)) >= 2

    def missing(self, columns: Sequence[str]) -> list[str]:
        present = set(columns)
        lacking = [c for c in MANDATORY if c not in present]
        if not present.intersection(PROVIDER):
            lacking.append(" or ".join(PROVIDER))
        return lacking

    def read(
        self, path: Path, columns: Sequence[str], *, complete: bool, sink: Sink | None = None
    ) -> Read:
        wanted = sources(columns)
        if not complete:  # check what is there, so a refusal names the bad values too
            wanted = [c for c in wanted if c.sources]
        version = f"{NAME}-{version_of(columns)}"
        to = (lambda rows: sink(rows, version, DATASET)) if sink else None
        typed = read(path, wanted, raw=RAW, sink=to)
        if typed.truncated:
            return Read(typed.rows, version, DATASET, rejected(typed), error=typed.truncated)
        return Read(typed.rows, version, DATASET, rejected(typed), read_rows=typed.read_rows)


def hints(columns: Sequence[str]) -> list[str]:
    """Columns that are FOCUS names in the wrong case (`SkuPriceid`): kept in the raw row
    only, so the load report says so."""
    lower = {c.lower(): c for c in COLUMNS}
    return [
        f"{c} (FOCUS spells it {lower[c.lower()]})"
        for c in columns
        if c not in COLUMNS and c.lower() in lower
    ]

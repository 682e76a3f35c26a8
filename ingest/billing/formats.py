"""What every billing format is: a reader from one export file to FOCUS-named columns.

A leaf module (it imports nothing of the billing package), so the collector, the ledger
builder and each format import down to it. A format is told from the file's columns and
only reads: the replace unit, the bookkeeping columns and the counts in the load report
are made once, by `ingest.billing.ledger`, for every format alike.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from ingest.contract import Rejected
from warehouse.tabular_files import lit

if TYPE_CHECKING:
    import pyarrow as pa


Sink = Callable[["pa.Table", str, str], None]  # a batch of line items, version, dataset


@dataclass
class Read:
    """One file read by a format: its line items under FOCUS column names (with
    `x_SourceRow`, the raw row, and `_row`, its number), what was rejected, what was noted."""

    rows: pa.Table
    version: str  # what `x_SourceFormat` says, e.g. "focus-1.2"
    dataset: str  # the last part of the replace unit ("focus")
    rejected: list[Rejected] = field(default_factory=list)
    noted: Counter[str] = field(default_factory=Counter)  # loaded, but worth a count
    read_rows: int = 0
    error: str | None = None  # the file cannot be loaded at all (nothing of it is)


class BillingFormat(Protocol):
    """One billing export format; the `billing` collector hands each file to one."""

    @property
    def name(self) -> str:
        """The `--format` value and what the load report calls it."""
        ...

    def claims(self, columns: Sequence[str]) -> bool:
        """True when a file with these columns looks like this format (complete or not)."""
        ...

    def missing(self, columns: Sequence[str]) -> list[str]:
        """The format's mandatory columns that these columns lack."""
        ...

    def read(
        self, path: Path, columns: Sequence[str], *, complete: bool, sink: Sink | None = None
    ) -> Read:
        """The line items of one file; with `complete` False (mandatory columns missing) only
        its bad values, so the refusal can name them too. A format may hand its line items
        to `sink` as it reads them (with its version and dataset), then `Read.rows` is
        empty: what FOCUS and CUR do, so their biggest files are never held whole."""
        ...


@runtime_checkable
class Datasets(Protocol):
    """A format whose files do not say which dataset they hold (Azure's actual and amortized
    cost details share their columns): the collector hands it `--dataset` and the input's
    name, which may say."""

    def given(self, dataset: str, uri: str) -> BillingFormat:
        """This format, reading one input of that dataset (`auto`: told from its name)."""
        ...


def service_category(key: str, table: Mapping[str, Sequence[str]]) -> str:
    """SQL for FOCUS's ServiceCategory from a provider's service `key` (an SQL expression):
    the category whose list names the service, `Other` (FOCUS's catch-all) for any other,
    null only where a row names no service. One table per provider gives each service
    exactly one category, as FOCUS requires (the validator's ServiceName-C-005-C)."""
    whens = "\n".join(
        f"    WHEN {key} IN ({', '.join(lit(k) for k in keys)}) THEN {lit(category)}"
        for category, keys in table.items()
    )
    return f"CASE\n{whens}\n    WHEN {key} IS NOT NULL THEN 'Other' END"

"""The `billing` collector: a cloud billing export, its format told from its columns.

One collector for every billing format, as the `gpu` collector is for GPU telemetry: the
formats (`FORMATS`) are tried in order on the file's header, never on its name, and each
one only reads; `ingest.billing.ledger` makes the rows: FOCUS, AWS CUR, Google Cloud's
billing export and Azure's cost details. An AWS CUR manifest is no table: it chose the
delivery's files (`cur_manifest`), and loads as what it left out. A format whose files do
not say which dataset they hold (`formats.Datasets`: Azure's) is handed `--dataset` and
the input's name.

A billing file is read whole, every time: its rows replace their delivery unit, so a file
cut off, or read from an offset, would replace a month with part of it. A file that ends
inside a row therefore loads nothing (its unit keeps the previous delivery), and the
resume offset is never used (`resumable=False`).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ingest.billing.aws_cur import AwsCur
from ingest.billing.azure import Azure
from ingest.billing.cur_manifest import is_manifest, left_out
from ingest.billing.focus import Focus, hints
from ingest.billing.formats import BillingFormat, Datasets
from ingest.billing.gcp import Gcp
from ingest.billing.ledger import Ledger
from ingest.contract import Collected, Unit
from ingest.files import printable
from warehouse.config import Config
from warehouse.tabular import TabularError, header, kind_of

NAME = "billing"
TABLE = "billing"
AUTO = "auto"
FORMATS: tuple[BillingFormat, ...] = (Focus(), AwsCur(), Gcp(), Azure())


def format_names() -> list[str]:
    return [f.name for f in FORMATS]


@dataclass(frozen=True)
class BillingCollector:
    """Billing exports (FOCUS 1.0-1.4, AWS CUR; CSV, gzip CSV or Parquet) into `billing`."""

    name: str = NAME
    tables: tuple[str, ...] = (TABLE,)
    format: str = AUTO  # `--format`: AUTO tells it from the columns
    dataset: str = AUTO  # `--dataset`, for formats whose files do not say (Azure's)
    formats: tuple[BillingFormat, ...] = FORMATS

    def sniff(self, head: bytes) -> bool:
        """Parquet and compressed files keep their columns out of reach of a few bytes, so
        they are claimed and told apart when read."""
        if kind_of(head) != "csv":
            return True
        line = head.decode("utf-8-sig", "replace").splitlines()[:1]
        names = [c.strip().strip('"') for c in line[0].split(",")] if line else []
        return any(f.claims(names) for f in self.formats)

    def plan(self, unit: Unit, size: int) -> list[Unit]:
        """One unit per file, from its first byte: a delivery is read whole."""
        return [Unit(unit.uri, unit.path, 0, None, True, True, unit.body)]

    def collect(self, unit: Unit, config: Config) -> Collected:
        with _file(unit) as path:
            try:
                return self._collect(unit, path)
            except TabularError as exc:
                return Collected(error=_named(str(exc), path, unit.uri), resumable=False)
            except OSError as exc:  # gone or unreadable since it was found (a sync at work)
                why = exc.strerror or type(exc).__name__
                return Collected(error=f"cannot read {printable(unit.uri)}: {why}", resumable=False)

    def _collect(self, unit: Unit, path: Path) -> Collected:
        size = path.stat().st_size
        if unit.path is not None and is_manifest(path):  # its parts are the delivery's files
            return Collected(skipped=left_out(path), complete_offset=size, resumable=False)
        columns = header(path)
        fmt = self._format_of(columns)
        if fmt is None:
            return Collected(error=self._unknown(unit.uri, columns), resumable=False)
        takes_dataset = isinstance(fmt, Datasets)
        if isinstance(fmt, Datasets):  # again, so the type checker narrows it
            fmt = fmt.given(self.dataset, unit.uri)
        missing = fmt.missing(columns)
        ledger = Ledger(unit.uri)
        try:
            read = fmt.read(
                path, columns, complete=not missing, sink=None if missing else ledger.add
            )
        except BaseException:
            ledger.discard()
            raise
        if missing:
            error = (
                f"{printable(unit.uri)} is not a complete {fmt.name.upper()} file: the mandatory "
                f"column(s) {', '.join(missing)} are missing, so none of it was loaded"
            )
            if read.rejected:
                n = len(read.rejected)
                error += (
                    f" (and {n} {'row has' if n == 1 else 'rows have'} bad values, quarantined)"
                )
            return Collected(rejected=read.rejected, error=error, resumable=False)
        if read.error:
            ledger.discard()
            return Collected(
                rejected=read.rejected, error=_named(read.error, path, unit.uri), resumable=False
            )
        ledger.add(read.rows, read.version, read.dataset)  # a format that read it whole
        rows, staged = ledger.finish()
        noted = ledger.noted
        noted.update(read.noted)
        for hint in hints(columns) if fmt.name == Focus.name else []:  # GCP has its own `tags`
            noted[f"columns kept only in x_SourceRow: {hint}"] += 1
        if self.dataset != AUTO and not takes_dataset:
            noted[f"files read without --dataset {self.dataset}, which only Azure's cost "
                  f"details take ({fmt.name} says its own dataset)"] += 1  # fmt: skip
        return Collected(
            frames={TABLE: rows} if rows is not None else {},
            files={TABLE: staged} if staged is not None else {},
            rejected=[*read.rejected, *ledger.rejected],
            skipped=noted,
            lines=read.read_rows,
            complete_offset=size,
            resumable=False,
        )

    def _format_of(self, columns: Sequence[str]) -> BillingFormat | None:
        if self.format != AUTO:
            return next((f for f in self.formats if f.name == self.format), None)
        return next((f for f in self.formats if f.claims(columns)), None)

    def _unknown(self, uri: str, columns: Sequence[str]) -> str:
        shown = ", ".join(c[:40] for c in columns[:6]) + (", …" if len(columns) > 6 else "")
        known = ", ".join(f.name for f in self.formats)
        return (
            f"{printable(uri)} is in none of the billing formats read ({known}): the format is "
            f"told from the columns, and these ({shown}) are none of them"
        )


@contextmanager
def _file(unit: Unit) -> Iterator[Path]:
    """The unit's file; a body (a test's, a fetched one) is written to a private file,
    since DuckDB's readers read files."""
    if unit.path is not None:
        yield unit.path
        return
    with tempfile.TemporaryDirectory(prefix="hybridlens-billing-") as folder:
        path = Path(folder) / "body"
        path.write_bytes(unit.body or b"")
        yield path


def _named(message: str, path: Path, uri: str) -> str:
    """A reader's sentence names the file it read; say the input's name instead."""
    return message.replace(os.fsdecode(path), printable(uri))

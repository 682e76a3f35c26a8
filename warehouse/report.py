"""One result type for every load: what a publish, an ingest run and a receiver flush did.

Collectors' driver, the receiver's loader, the CLI's summary, tests and benchmarks all read
this one shape, so "how many rows, duplicates, quarantined, and why" is said one way.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum


class Status(StrEnum):
    """How one input ended, as `ingest_log.status` stores it."""

    OK = "ok"  # every record loaded (or was a duplicate)
    PARTIAL = "partial"  # some records were quarantined, the rest loaded
    PENDING = "pending"  # read up to an incomplete tail that the next run will finish
    TRUNCATED = "truncated"  # ends mid-record and has stopped growing: reported, rest loaded
    FAILED = "failed"  # nothing of it could be read or published


@dataclass
class InputReport:
    """One input of a load (a file, a byte range's file, a spool segment, a URL)."""

    uri: str
    content_hash: str | None = None
    byte_offset: int | None = None
    status: Status = Status.OK
    message: str | None = None
    rows: dict[str, int] = field(default_factory=dict)  # table -> new rows
    duplicates: dict[str, int] = field(default_factory=dict)  # table -> rows already there
    quarantined: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    pending_bytes: int = 0


@dataclass
class LoadReport:
    """What one or more publishes did; `add` merges the reports of several."""

    load_ids: list[int] = field(default_factory=list)
    inputs: list[InputReport] = field(default_factory=list)
    files_skipped: int = 0  # inputs unchanged since their last load
    duration_ms: float = 0.0
    longest_publish_ms: float = 0.0

    def rows(self, table: str) -> int:
        return sum(i.rows.get(table, 0) for i in self.inputs)

    def duplicates(self, table: str | None = None) -> int:
        return sum(n for i in self.inputs for t, n in i.duplicates.items() if table in (None, t))

    @property
    def quarantined(self) -> int:
        return sum(i.quarantined for i in self.inputs)

    @property
    def bad_records(self) -> int:
        """The records quarantined by the inputs that loaded: a failed input's own quarantine
        row is told by its failure, not counted as a bad record."""
        return sum(i.quarantined for i in self.inputs if i.status is not Status.FAILED)

    @property
    def failures(self) -> list[str]:
        return [i.message or i.uri for i in self.inputs if i.status is Status.FAILED]

    @property
    def truncated(self) -> list[InputReport]:
        return [i for i in self.inputs if i.status is Status.TRUNCATED]

    @property
    def pending_bytes(self) -> int:
        return sum(i.pending_bytes for i in self.inputs)

    @property
    def skipped(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for i in self.inputs:
            total.update(i.skipped)
        return total

    @property
    def ok(self) -> bool:
        """True when nothing was quarantined, failed or truncated (exit status 0)."""
        return all(i.status in (Status.OK, Status.PENDING) for i in self.inputs)

    def add(self, other: LoadReport) -> None:
        self.load_ids += other.load_ids
        self.inputs += other.inputs
        self.files_skipped += other.files_skipped
        self.duration_ms += other.duration_ms
        self.longest_publish_ms = max(self.longest_publish_ms, other.longest_publish_ms)

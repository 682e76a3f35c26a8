"""The collector contract: what every source of data implements, and nothing else.

Signatures and one-line docstrings only, in the spirit of datasette's `hookspecs.py`: the
driver (`ingest/driver.py`) owns discovery, resume offsets, chunking, the worker pool,
staging and publish, so a collector is a pure function from one unit of input to frames.
A collector never connects to the warehouse, writes, deduplicates or remembers anything
between calls; that is what lets the driver run it in a worker process, retry it, and
test it with the in-memory collector (`ingest/memory.py`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import pyarrow as pa

    from warehouse.config import Config
    from warehouse.stage import StagedFile


@dataclass(frozen=True)
class Unit:
    """One unit of input: a whole file, a byte range of one, a URL, or a request body."""

    uri: str  # what `ingest_log.uri` and `quarantine.uri` say: an absolute path or a URL
    path: Path | None = None  # the file to read, for file units
    start: int = 0  # first byte of the range
    end: int | None = None  # one past the last byte; None: to the end of the file
    first: bool = True  # the first unit of its input (line numbers start here)
    last: bool = True  # the last unit of its input (its resume offset is the input's)
    body: bytes | None = None  # the bytes themselves, for request bodies and tests


@dataclass(frozen=True)
class Rejected:
    """One quarantined record: where it was, what was wrong, and an excerpt of it."""

    location: str  # "line 12", "frame 3", "byte 4096", "resourceSpans[0].scopeSpans[1]"
    error: str  # a sentence a user can act on
    excerpt: str = ""  # at most a few hundred characters of the raw record


@dataclass
class Collected:
    """What one unit turned into: rows for named tables, rejects, and how far it got."""

    frames: dict[str, pa.Table] = field(default_factory=dict)  # table name -> rows
    files: dict[str, StagedFile] = field(default_factory=dict)  # rows too many for memory
    rejected: list[Rejected] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)  # "metrics requests" -> count
    lines: int = 0  # records read, so the driver can number a later chunk's lines
    complete_offset: int | None = None  # where the input's last complete record read ends
    pending_bytes: int = 0  # an incomplete tail left for the next run (still being written)
    error: str | None = None  # the unit could not be read at all: one sentence
    resumable: bool = True  # False: complete_offset counts decompressed bytes (no resuming)
    cut: bool = False  # a compressed stream that ends inside a frame (truncated or growing)


@runtime_checkable
class Collector(Protocol):
    """A source of data; registered by name in `ingest/registry.py`."""

    @property
    def name(self) -> str:
        """The registry name, and the `source` column of `ingest_log`."""
        ...

    @property
    def tables(self) -> tuple[str, ...]:
        """The warehouse tables its frames fill."""
        ...

    def sniff(self, head: bytes) -> bool:
        """True when an input starting with these bytes is this collector's to read."""
        ...

    def plan(self, unit: Unit, size: int) -> list[Unit]:
        """Cut a unit into pieces that parse independently (the unit itself by default)."""
        ...

    def collect(self, unit: Unit, config: Config) -> Collected:
        """Turn one unit into frames and rejects; no I/O beyond reading the unit."""
        ...

"""The in-memory collector: rows for any table, given by a test, through the real driver.

Like OpenTelemetry's in-memory exporter it exists so tests can drive the whole path —
chunking, line renumbering, quarantine, skips, resume, a failing unit, a failing publish —
without writing OTLP. An input is a list of records (a row for a table, a rejected record,
a skip, an unreadable unit, a collector that raises) encoded one per line in a body, so
byte offsets, resume and chunking behave as they do for files.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
import pyarrow as pa

from ingest.contract import Collected, Rejected, Unit
from ingest.files import Source
from warehouse.config import Config

MAGIC = b"#hybridlens-memory\n"


def row(table: str, **values: Any) -> dict[str, Any]:
    """A record that becomes one row of `table`."""
    return {"table": table, "row": values}


def reject(error: str, excerpt: str = "") -> dict[str, Any]:
    """A record the collector rejects (quarantined at its line)."""
    return {"reject": error, "excerpt": excerpt}


def skip(what: str) -> dict[str, Any]:
    """A record the collector skips and counts under `what`."""
    return {"skip": what}


def unreadable(error: str) -> dict[str, Any]:
    """The unit holding this record cannot be read at all (Collected.error)."""
    return {"error": error}


def crash(message: str) -> dict[str, Any]:
    """The collector raises while reading the unit holding this record (a bug in it)."""
    return {"raise": message}


def encode(records: list[dict[str, Any]], *, tail: bytes = b"") -> bytes:
    """The body of an input; `tail` is an unterminated last line (still being written)."""
    return MAGIC + b"".join(orjson.dumps(r) + b"\n" for r in records) + tail


def source(uri: str, records: list[dict[str, Any]], *, tail: bytes = b"") -> Source:
    """An input for `ingest.driver.load`, as discovery would give it."""
    body = encode(records, tail=tail)
    return Source(Unit(uri, body=body), len(body))


@dataclass(frozen=True)
class MemoryCollector:
    """Rows of any table from an encoded list of records; `chunk` records per unit."""

    name: str = "memory"
    tables: tuple[str, ...] = ()
    schemas: dict[str, pa.Schema] = field(default_factory=dict)
    chunk: int = 0  # records per unit; 0: one unit per input

    def sniff(self, head: bytes) -> bool:
        return head.startswith(MAGIC[: len(head)]) and bool(head)

    def plan(self, unit: Unit, size: int) -> list[Unit]:
        body = unit.body or b""
        if not self.chunk:
            return [unit]
        cuts = [unit.start]
        pos, n = unit.start, 0
        while (nl := body.find(b"\n", pos, size)) >= 0:
            pos, n = nl + 1, n + 1
            if n % self.chunk == 0 and pos < size:
                cuts.append(pos)
        bounds = list(zip(cuts, [*cuts[1:], None], strict=True))
        return [
            Unit(unit.uri, None, a, b, i == 0, i == len(bounds) - 1, unit.body)
            for i, (a, b) in enumerate(bounds)
        ]

    def collect(self, unit: Unit, config: Config) -> Collected:
        body = (unit.body or b"")[unit.start : unit.end]
        rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
        out = Collected()
        skipped: Counter[str] = Counter()
        done = 0
        for number, line in enumerate(body.splitlines(keepends=True), start=1):
            if not line.endswith(b"\n"):
                out.pending_bytes = len(line)
                break
            done += len(line)
            out.lines = number
            if line == MAGIC:
                continue
            record = orjson.loads(line)
            if "raise" in record:
                raise RuntimeError(record["raise"])
            if "error" in record:
                out.error = record["error"]
                break
            if "skip" in record:
                skipped[record["skip"]] += 1
            elif "reject" in record:
                out.rejected.append(Rejected(f"line {number}", record["reject"], record["excerpt"]))
            else:
                rows[record["table"]].append(record["row"])
        out.skipped = skipped
        out.complete_offset = unit.start + done
        out.frames = {t: self._table(t, r) for t, r in rows.items()}
        return out

    def _table(self, table: str, rows: list[dict[str, Any]]) -> pa.Table:
        schema = self.schemas.get(table)
        if schema is None:
            return pa.Table.from_pylist(rows)
        times = [f.name for f in schema if pa.types.is_timestamp(f.type)]
        for r in rows:
            for name in times:
                if isinstance(r.get(name), str):
                    r[name] = datetime.fromisoformat(r[name])
        return pa.Table.from_pylist(rows, schema=schema)

"""The OTLP file collector: OTLP/JSON and protobuf files (any framing) into spans and
evaluations.

It reads one unit — a whole file, a line- or frame-aligned byte range of a big one, or a
fetched body — and nothing else: discovery, resume offsets, the worker pool and publish
are the driver's (`ingest/driver.py`). Big plain files are cut at record boundaries so
several processes parse one file; compressed streams cannot be entered mid-way and stay
whole.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any, BinaryIO

from ingest.contract import Collected, Rejected, Unit
from ingest.files import printable
from ingest.framing import GZIP_MAGIC, MAX_EMPTY_RUN, ZSTD_MAGIC, Framing, iter_records
from ingest.otlp import EVALUATION_SCHEMA, SPAN_SCHEMA, Batch, Mapping
from warehouse.config import Config

CHUNK_BYTES = 8 * 1024 * 1024  # a big plain file is parsed in pieces of about this size
_MAPPINGS: dict[int, tuple[Config, Mapping]] = {}  # one Mapping per config, per process
_EMPTY_FRAME = bytes(4)  # a zero-length frame: its length header alone


@dataclass(frozen=True)
class OtlpFiles:
    """OTLP files as the Collector's file exporter and people write them."""

    name: str = "otlp-file"
    tables: tuple[str, ...] = ("spans", "evaluations")
    signal: str | None = None  # "traces" | "logs" to force one; None: from the data
    chunk_bytes: int = CHUNK_BYTES

    def sniff(self, head: bytes) -> bool:
        """Compressed, JSON, length-prefixed or protobuf at first sight (collect decides)."""
        if head[:2] == GZIP_MAGIC or head[:4] == ZSTD_MAGIC:
            return True
        lead = head.lstrip()[:1]
        return lead in (b"{", b"[", b"") or head[:1] in (b"\x00", b"\x0a")

    def plan(self, unit: Unit, size: int) -> list[Unit]:
        """Plain JSON lines and length-prefixed files are cut at record boundaries."""
        if unit.path is None or size - unit.start <= self.chunk_bytes * 1.5:
            return [unit]
        with unit.path.open("rb") as fh:
            fh.seek(unit.start)
            head = fh.peek(8)[:8]
            if head[:1] == b"\x00" and head[4:5] in (b"\x0a", b"{"):
                return self._plan_frames(unit, fh, size)
            first = fh.readline(self.chunk_bytes)
            if first[:1] != b"{" or not first.rstrip().endswith(b"}"):
                return [unit]  # not JSON lines: one unit
            units: list[Unit] = []
            pos = unit.start
            while size - pos > self.chunk_bytes * 1.5:
                fh.seek(pos + self.chunk_bytes)
                while (piece := fh.readline(1 << 20)) and not piece.endswith(b"\n"):
                    pass  # to the end of this line, however long, in bounded steps
                cut = fh.tell()
                if cut >= size:
                    break
                units.append(_piece(unit, pos, cut, first=not units, last=False))
                pos = cut
            units.append(_piece(unit, pos, None, first=not units, last=True))
        return units

    def _plan_frames(self, unit: Unit, fh: io.BufferedReader, size: int) -> list[Unit]:
        """Cut at frame boundaries by hopping over the 4-byte length headers. A run of
        zero-length frames is hopped in bulk, and past one that the collector refuses
        (`MAX_EMPTY_RUN`) nothing is cut: a frame followed by gigabytes of zeros is one
        refusal in a moment, not millions of hops and a refusal per piece."""
        units: list[Unit] = []
        chunk_start = pos = unit.start
        while pos < size:
            fh.seek(pos)
            prefix = fh.read(4)
            if len(prefix) < 4:
                break
            if prefix == _EMPTY_FRAME:
                run = 4 + _zero_bytes(fh, MAX_EMPTY_RUN) // 4 * 4
                if run > MAX_EMPTY_RUN:
                    break  # the last unit starts before the run and is refused in it
                pos += run
                continue
            nxt = pos + 4 + int.from_bytes(prefix, "big")
            if nxt > size:
                break  # an incomplete last frame: the final unit reports it
            pos = nxt
            if pos - chunk_start >= self.chunk_bytes and size - pos > self.chunk_bytes // 2:
                units.append(_piece(unit, chunk_start, pos, first=not units, last=False))
                chunk_start = pos
        units.append(_piece(unit, chunk_start, None, first=not units, last=True))
        return units

    def collect(self, unit: Unit, config: Config) -> Collected:
        """Parse one unit into spans and evaluations; bad records are rejected, not raised."""
        batch = Batch(_mapping(config))
        framing = Framing()
        error = None
        try:
            with _open(unit) as (source, start):
                for record in iter_records(source, framing, start=start):
                    batch.add(record, signal=self.signal)
        except (ValueError, OSError, EOFError) as exc:
            error = f"{printable(unit.uri)}: {exc}"
        except Exception as exc:  # zstd/gzip stream errors come in many classes
            error = f"{printable(unit.uri)}: cannot decode ({type(exc).__name__}: {exc})"
        offset = framing.complete_offset
        if unit.end is not None:
            offset += unit.start  # a window's offsets count from its start
        collected = batch_collected(batch)
        if framing.empty:
            collected.skipped["zero-length frames"] += framing.empty
        collected.lines = framing.lines
        collected.complete_offset = offset
        collected.pending_bytes = framing.pending_bytes
        collected.error = error
        collected.resumable = framing.compression == "none"
        collected.cut = framing.cut
        return collected


def batch_collected(batch: Batch) -> Collected:
    """A parsed batch as the contract's result: what the file collector and the receiver's
    loader both hand to the driver's staging step."""
    spans, evaluations = batch.to_arrow()
    return Collected(
        frames={"spans": spans, "evaluations": evaluations},
        rejected=[Rejected(loc, err, excerpt) for loc, err, excerpt in batch.quarantine],
        skipped=batch.skipped.copy(),
    )


SCHEMAS = {"spans": SPAN_SCHEMA, "evaluations": EVALUATION_SCHEMA}


def _zero_bytes(fh: io.BufferedReader, limit: int) -> int:
    """How many zero bytes follow the current position, counting up to just past `limit`."""
    count = 0
    while count <= limit and (block := fh.read(1 << 16)):
        zeros = len(block) - len(block.lstrip(b"\x00"))
        count += zeros
        if zeros < len(block):
            break
    return count


def _piece(unit: Unit, start: int, end: int | None, *, first: bool, last: bool) -> Unit:
    return Unit(unit.uri, unit.path, start, end, first, last, unit.body)


def _mapping(config: Config) -> Mapping:
    """Mapping.from_config once per config: a big load calls collect for every chunk."""
    cached = _MAPPINGS.get(id(config))
    if cached is None or cached[0] is not config:
        cached = (config, Mapping.from_config(config))
        _MAPPINGS.clear()
        _MAPPINGS[id(config)] = cached
    return cached[1]


class _open:
    """The unit's bytes as a stream, and the offset `iter_records` starts from."""

    def __init__(self, unit: Unit) -> None:
        self._unit = unit
        self._fh: BinaryIO | None = None

    def __enter__(self) -> tuple[BinaryIO, int]:
        unit = self._unit
        if unit.body is not None:
            data = unit.body[: unit.end] if unit.end is not None else unit.body
            if unit.end is None:
                return io.BytesIO(data), unit.start
            return io.BytesIO(data[unit.start :]), 0
        if unit.path is None:
            raise ValueError("the unit names neither a file nor a body")
        self._fh = unit.path.open("rb")
        if unit.end is None:
            return self._fh, unit.start
        self._fh.seek(unit.start)
        return io.BufferedReader(_Window(self._fh, unit.end)), 0

    def __exit__(self, *exc: object) -> None:
        if self._fh is not None:
            self._fh.close()


class _Window(io.RawIOBase):
    """Bytes from the current position of `fh` up to `end`, read as needed: a chunk with a
    giant line in it never sits in memory whole."""

    def __init__(self, fh: BinaryIO, end: int) -> None:
        self._fh = fh
        self._left = end - fh.tell()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = min(len(buffer), self._left)
        if n <= 0:
            return 0
        data = self._fh.read(n)
        buffer[: len(data)] = data
        self._left -= len(data)
        return len(data)

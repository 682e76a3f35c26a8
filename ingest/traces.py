"""`hybridlens ingest traces PATH...`: OTLP files and directories into the warehouse.

Files are parsed outside the warehouse lock, in worker processes when the load is big
(a large JSON-lines file is cut into chunks at line boundaries, so both cores parse it);
small files are published together, one transaction per group, so a crash never leaves
half a file. A file still being written is read up to its last complete record and
resumed from that offset next time; a file already loaded unchanged is skipped.
"""

from __future__ import annotations

import io
import logging
import multiprocessing
import os
import re
import stat
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from ingest.framing import GZIP_MAGIC, ZSTD_MAGIC, Framing, iter_records
from ingest.otlp import Batch, Mapping
from warehouse.config import Config
from warehouse.db import Warehouse
from warehouse.ingest_state import content_hash, file_states
from warehouse.publish import publish_each
from warehouse.report import InputReport, LoadReport, Status
from warehouse.stage import Stage

log = logging.getLogger(__name__)
SOURCE = "otlp-file"
GROUP_SPANS = 400_000  # publish once this many spans are staged
CHUNK_BYTES = 32 * 1024 * 1024  # a JSON-lines file is parsed in chunks of about this size
PARALLEL_BYTES = 16 * 1024 * 1024  # below this much input, worker processes cost more than
_LINE = re.compile(r"^(line|frame) (\d+)")


@dataclass
class Summary:
    files: int = 0
    files_skipped: int = 0
    files_failed: int = 0
    spans: int = 0
    duplicates: int = 0
    evaluations: int = 0
    quarantined: int = 0
    pending_bytes: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    loads: list[LoadReport] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.quarantined and not self.files_failed


@dataclass(frozen=True)
class Unit:
    """A piece of one file to parse: all of it, or a chunk of a JSON-lines file."""

    path: Path
    start: int
    end: int | None  # None: to the end of the file
    first: bool
    last: bool


@dataclass
class Parsed:
    spans: pa.Table
    evaluations: pa.Table
    quarantine: list[tuple[str, str, str]]
    skipped: Counter[str]
    framing: Framing
    error: str | None = None


def find_files(paths: Iterable[Path]) -> Iterator[Path | tuple[Path, str]]:
    """Every regular file under `paths`, sorted; unreadable ones come back with the reason."""
    for path in paths:
        try:
            st = path.stat()
        except OSError as exc:
            yield path, f"cannot read {path}: {exc.strerror or exc}"
            continue
        if stat.S_ISDIR(st.st_mode):
            found: list[Path] = []
            for root, dirs, files in os.walk(path, followlinks=False):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                found.extend(Path(root) / f for f in files if not f.startswith("."))
            for f in sorted(found):
                try:
                    fst = f.stat()
                except OSError as exc:
                    yield f, f"cannot read {f}: {exc.strerror or exc}"
                    continue
                if stat.S_ISREG(fst.st_mode):
                    yield f
                elif not stat.S_ISDIR(fst.st_mode):
                    yield f, f"{f} is not a regular file"
        elif stat.S_ISREG(st.st_mode):
            yield path
        else:
            yield path, f"{path} is not a regular file"


def parse_unit(unit: Unit, mapping: Mapping, signal: str | None) -> Parsed:
    """Parse one unit (runs in a worker process for big loads): rows, rejects, framing."""
    batch = Batch(mapping)
    framing = Framing()
    error = None
    try:
        with unit.path.open("rb") as fh:
            if unit.end is None:
                source: io.BufferedIOBase = fh  # type: ignore[assignment]
                start = unit.start
            else:
                fh.seek(unit.start)
                source = _Window(fh, unit.end)  # type: ignore[assignment]
                start = 0
            for record in iter_records(source, framing, start=start):  # type: ignore[arg-type]
                batch.add(record, signal=signal)
    except (ValueError, OSError, EOFError) as exc:
        error = f"{unit.path}: {exc}"
    except Exception as exc:  # zstd/gzip stream errors come in many classes
        error = f"{unit.path}: cannot decode ({type(exc).__name__}: {exc})"
    if unit.end is not None:
        framing.complete_offset += unit.start
    spans, evaluations = batch.to_arrow()
    return Parsed(spans, evaluations, batch.quarantine, batch.skipped, framing, error)


class _Window(io.RawIOBase):
    """Bytes from the current position of `fh` up to `end`, read as needed: a chunk with a
    giant line in it never sits in memory whole."""

    def __init__(self, fh: io.BufferedReader, end: int) -> None:
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


def plan(path: Path, start: int, size: int) -> list[Unit]:
    """Cut a plain JSON-lines file into line-aligned chunks; anything else is one unit."""
    if size - start <= CHUNK_BYTES * 1.5:
        return [Unit(path, start, None, True, True)]
    with path.open("rb") as fh:
        fh.seek(start)
        head = fh.peek(8)[:8]  # type: ignore[attr-defined]
        if head[:1] == b"\x00" and head[4:5] in (b"\x0a", b"{"):
            return _plan_frames(path, fh, start, size)
        first = fh.readline(CHUNK_BYTES)
        if first[:1] != b"{" or not first.rstrip().endswith(b"}"):
            return [Unit(path, start, None, True, True)]  # not JSON lines: one unit
        units: list[Unit] = []
        pos = start
        while size - pos > CHUNK_BYTES * 1.5:
            fh.seek(pos + CHUNK_BYTES)
            while (piece := fh.readline(1 << 20)) and not piece.endswith(b"\n"):
                pass  # to the end of this line, however long, in bounded steps
            cut = fh.tell()
            if cut >= size:
                break
            units.append(Unit(path, pos, cut, not units, False))
            pos = cut
        units.append(Unit(path, pos, None, not units, True))
    return units


def _plan_frames(path: Path, fh: io.BufferedReader, start: int, size: int) -> list[Unit]:
    """Cut a length-prefixed file at frame boundaries by hopping over the length headers."""
    units: list[Unit] = []
    chunk_start = pos = start
    while pos < size:
        fh.seek(pos)
        prefix = fh.read(4)
        if len(prefix) < 4:
            break
        nxt = pos + 4 + int.from_bytes(prefix, "big")
        if nxt > size:
            break  # an incomplete last frame: the final unit reports it
        pos = nxt
        if pos - chunk_start >= CHUNK_BYTES and size - pos > CHUNK_BYTES // 2:
            units.append(Unit(path, chunk_start, pos, not units, False))
            chunk_start = pos
    units.append(Unit(path, chunk_start, None, not units, True))
    return units


def ingest_paths(
    warehouse: Warehouse,
    paths: Iterable[Path],
    config: Config,
    *,
    progress: Callable[[int, int], None] | None = None,
    signal: str | None = None,
    workers: int | None = None,
) -> Summary:
    """Load every OTLP file under `paths`; bad records go to quarantine, never stop the rest."""
    mapping = Mapping.from_config(config)
    summary = Summary()
    entries = list(find_files(paths))
    known = file_states(warehouse, [str(e.absolute()) for e in entries if isinstance(e, Path)])
    units: list[Unit] = []
    stage = Stage()
    for entry in entries:
        if isinstance(entry, tuple):
            _fail(stage, summary, *entry)
            continue
        try:
            size = entry.stat().st_size
            start = _resume_offset(entry, size, known.get(str(entry.absolute())))
        except OSError as exc:
            _fail(stage, summary, entry, f"cannot read {entry}: {exc.strerror or exc}")
            continue
        if start is None:
            summary.files_skipped += 1
            continue
        units.extend(plan(entry, start, size))
    total = sum((u.end or _size(u.path)) - u.start for u in units)
    workers = workers if workers is not None else (os.cpu_count() or 1)
    pool: Executor | None = None
    if workers > 1 and total >= PARALLEL_BYTES and len(units) > 1:
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method))
    done = 0
    try:
        index = -1
        line_base = 0
        for unit, parsed in _parse_all(units, mapping, signal, pool, workers):
            if unit.first:
                index = stage.begin(InputReport(uri=str(unit.path.absolute())))
                line_base = 0
            _take(stage, index, parsed, line_base, summary)
            line_base += parsed.framing.lines
            if unit.last:
                _finish(stage, index, unit.path, parsed, summary)
            done += (unit.end or _size(unit.path)) - unit.start
            if progress:
                progress(done, total)
            if unit.last and stage.rows() >= GROUP_SPANS:
                _publish(warehouse, stage, summary)
                stage = Stage()
        _publish(warehouse, stage, summary)
    finally:
        stage.close()
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return summary


def _parse_all(
    units: list[Unit], mapping: Mapping, signal: str | None, pool: Executor | None, workers: int
) -> Iterator[tuple[Unit, Parsed]]:
    """Parsed units in order; with a pool, a bounded number are in flight at once."""
    if pool is None:
        for unit in units:
            yield unit, parse_unit(unit, mapping, signal)
        return
    pending: deque[tuple[Unit, Future[Parsed]]] = deque()
    queue = iter(units)
    for unit in queue:
        pending.append((unit, pool.submit(parse_unit, unit, mapping, signal)))
        if len(pending) >= workers * 2:
            break
    while pending:
        unit, future = pending.popleft()
        nxt = next(queue, None)
        if nxt is not None:
            pending.append((nxt, pool.submit(parse_unit, nxt, mapping, signal)))
        yield unit, future.result()


def _resume_offset(path: Path, size: int, known: tuple[str, int] | None) -> int | None:
    """Where to start reading: 0, the offset of an earlier partial read, or None to skip."""
    if not known:
        return 0
    old_hash, old_offset = known
    if old_offset <= size and content_hash(path, old_offset) == old_hash:
        if old_offset == size:
            return None
        with path.open("rb") as fh:
            head = fh.read(4)
        if head[:2] == GZIP_MAGIC or head == ZSTD_MAGIC:
            return 0  # an offset inside a compressed stream is no place to resume
        return old_offset
    return 0  # the file changed under us: read it all again (loads are idempotent)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _fail(stage: Stage, summary: Summary, path: Path, reason: str) -> None:
    index = stage.begin(InputReport(uri=str(path.absolute()), status=Status.FAILED, message=reason))
    stage.reject(index, "file", reason, "")
    summary.files_failed += 1
    summary.failures.append(reason)


def _take(stage: Stage, index: int, parsed: Parsed, line_base: int, summary: Summary) -> None:
    stage.add("spans", parsed.spans, index)
    stage.add("evaluations", parsed.evaluations, index)
    for location, error, excerpt in parsed.quarantine:
        if line_base:
            location = _LINE.sub(lambda m: f"{m[1]} {int(m[2]) + line_base}", location)
        stage.reject(index, location, error, excerpt)
    summary.skipped.update(parsed.skipped)
    entry = stage.inputs[index]
    entry.skipped.update(parsed.skipped)
    if parsed.error:
        stage.reject(index, "file", parsed.error, "")
        entry.status = Status.FAILED
        entry.message = parsed.error
        summary.files_failed += 1
        summary.failures.append(parsed.error)


def _finish(stage: Stage, index: int, path: Path, parsed: Parsed, summary: Summary) -> None:
    framing = parsed.framing
    entry = stage.inputs[index]
    size = _size(path)
    entry.byte_offset = framing.complete_offset if framing.compression == "none" else size
    try:
        entry.content_hash = content_hash(path, entry.byte_offset)
    except OSError:
        entry.content_hash = None
    if framing.pending_bytes:
        summary.pending_bytes += framing.pending_bytes
        entry.message = (
            f"{framing.pending_bytes} bytes after offset {entry.byte_offset} are an incomplete "
            "record (still being written?); they will be read on the next run"
        )
    summary.files += 1


def _publish(warehouse: Warehouse, stage: Stage, summary: Summary) -> None:
    if not stage.inputs:
        return
    try:
        failed = {i for i, e in enumerate(stage.inputs) if e.status is Status.FAILED}
        result = publish_each(warehouse, stage, source=SOURCE)
    finally:
        stage.close()
    summary.loads.append(result)
    summary.spans += result.rows("spans")
    summary.duplicates += result.duplicates()
    summary.evaluations += result.rows("evaluations")
    summary.quarantined += result.quarantined
    for i, entry in enumerate(stage.inputs):  # set aside by publish_each: it poisoned a publish
        if entry.status is Status.FAILED and i not in failed:
            summary.files_failed += 1
            summary.failures.append(entry.message or entry.uri)

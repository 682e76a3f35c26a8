"""`hybridlens ingest traces PATH...`: OTLP files and directories into the warehouse.

Each file is parsed outside the warehouse lock; small files are published together (one
transaction per group, so a crash never leaves half a file) and big ones alone. A file
that is still being written is read up to its last complete record and resumed from
that offset next time; a file already loaded unchanged is skipped.
"""

from __future__ import annotations

import logging
import os
import stat
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ingest.framing import Framing, iter_records
from ingest.otlp import EVALUATION_SCHEMA, SPAN_SCHEMA, Batch, Mapping
from warehouse.config import Config
from warehouse.db import Warehouse
from warehouse.load import Input, LoadResult, Stage, content_hash, file_state, publish_traces

log = logging.getLogger(__name__)
SOURCE = "otlp-file"
GROUP_SPANS = 400_000  # publish once this many spans are staged
FLUSH_SPANS = 100_000  # hand parsed columns to the stage at this size


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
    loads: list[LoadResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.quarantined and not self.files_failed


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
            for root, dirs, files in os.walk(path, followlinks=False, onerror=None):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                found.extend(Path(root) / f for f in files if not f.startswith("."))
            for f in sorted(found):
                if f.is_symlink() and f.resolve().is_dir():
                    continue
                yield f
        elif stat.S_ISREG(st.st_mode):
            yield path
        else:
            yield path, f"{path} is not a regular file"


def ingest_paths(
    warehouse: Warehouse,
    paths: Iterable[Path],
    config: Config,
    *,
    progress: Callable[[int, int], None] | None = None,
    signal: str | None = None,
) -> Summary:
    """Load every OTLP file under `paths`; bad records go to quarantine, never stop the rest."""
    mapping = Mapping.from_config(config)
    summary = Summary()
    entries = list(find_files(paths))
    total = sum(_size(e) for e in entries)
    done = 0
    stage = Stage()
    batch = Batch(mapping)
    try:
        for entry in entries:
            if isinstance(entry, tuple):
                path, reason = entry
                _fail(stage, summary, path, reason)
                continue
            size = _size(entry)
            _read_file(warehouse, entry, batch, stage, summary, signal)
            done += size
            if progress:
                progress(done, total)
            if stage.rows() >= GROUP_SPANS:
                _publish(warehouse, stage, summary)
                stage = Stage()
        _publish(warehouse, stage, summary)
    finally:
        stage.close()
    return summary


def _size(entry: Path | tuple[Path, str]) -> int:
    if isinstance(entry, tuple):
        return 0
    try:
        return entry.stat().st_size
    except OSError:
        return 0


def _fail(stage: Stage, summary: Summary, path: Path, reason: str) -> None:
    index = stage.begin(Input(uri=str(path.absolute()), status="failed", message=reason))
    stage.reject(index, "file", reason, "")
    summary.files_failed += 1
    summary.failures.append(reason)


def _read_file(
    warehouse: Warehouse,
    path: Path,
    batch: Batch,
    stage: Stage,
    summary: Summary,
    signal: str | None,
) -> None:
    uri = str(path.absolute())
    try:
        size = path.stat().st_size
        start = 0
        previous = file_state(warehouse, uri)
        if previous and previous[0] and previous[1] is not None:
            old_hash, old_offset = previous
            if old_offset <= size and content_hash(path, old_offset) == old_hash:
                if old_offset == size:
                    summary.files_skipped += 1
                    return
                start = old_offset  # the file grew: read only what is new
        fh = path.open("rb")
    except OSError as exc:
        _fail(stage, summary, path, f"cannot read {path}: {exc.strerror or exc}")
        return
    framing = Framing()
    index = stage.begin(Input(uri=uri))
    quarantined_before = len(batch.quarantine)
    skipped_before = Counter(batch.skipped)
    try:
        with fh:
            for record in iter_records(fh, framing, start=start):
                batch.add(record, signal=signal)
                if len(batch) >= FLUSH_SPANS:
                    _flush(batch, stage, index)
    except (ValueError, OSError, EOFError) as exc:
        reason = f"{path}: {exc}"
        stage.reject(index, "file", reason, "")
        stage.inputs[index].status = "failed"
        stage.inputs[index].message = reason
        summary.files_failed += 1
        summary.failures.append(reason)
    except Exception as exc:  # zstd/gzip stream errors come in many classes
        reason = f"{path}: cannot decode ({type(exc).__name__}: {exc})"
        stage.reject(index, "file", reason, "")
        stage.inputs[index].status = "failed"
        stage.inputs[index].message = reason
        summary.files_failed += 1
        summary.failures.append(reason)
    _flush(batch, stage, index)
    for location, error, excerpt in batch.quarantine[quarantined_before:]:
        stage.reject(index, location, error, excerpt)
    del batch.quarantine[quarantined_before:]
    skipped = batch.skipped - skipped_before
    summary.skipped.update(skipped)
    batch.skipped = skipped_before
    entry = stage.inputs[index]
    entry.byte_offset = framing.complete_offset if framing.compression == "none" else size
    entry.content_hash = content_hash(path, entry.byte_offset)
    if skipped:
        entry.skipped = "; ".join(f"{n} {what}" for what, n in sorted(skipped.items()))
    if framing.pending_bytes:
        summary.pending_bytes += framing.pending_bytes
        entry.message = (
            f"{framing.pending_bytes} bytes after offset {entry.byte_offset} are an incomplete "
            "record (still being written?); they will be read on the next run"
        )
    summary.files += 1


def _flush(batch: Batch, stage: Stage, index: int) -> None:
    spans, evaluations = batch.to_arrow()
    stage.add("spans", spans, index)
    stage.add("evaluations", evaluations, index)
    batch.clear()


def _publish(warehouse: Warehouse, stage: Stage, summary: Summary) -> None:
    if not stage.inputs:
        return
    try:
        result = publish_traces(warehouse, stage, SPAN_SCHEMA, EVALUATION_SCHEMA, source=SOURCE)
    finally:
        stage.close()
    summary.loads.append(result)
    summary.spans += result.rows
    summary.duplicates += result.duplicates + result.evaluation_duplicates
    summary.evaluations += result.evaluations
    summary.quarantined += sum(1 for _ in stage.quarantine)

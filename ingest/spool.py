"""The receiver's durable spool: fsync'd, append-only segment files and their recovery.

A record is on stable storage before the receiver answers 200, so an acknowledged span
survives a crash or SIGKILL. The loader seals the active segment every couple of seconds,
publishes it, and only then deletes it; a segment it cannot publish after a bounded number
of tries is moved to `failed/` inside the spool (kept for replay, never deleted) so that
it does not block every later one.

Record layout (all integers big-endian):
    b"HLSP" | meta length u32 | body length u32 | crc32(meta + body) u32 | meta | body
where meta is a small JSON object (signal, encoding, peer, receive time) and body is the
request body after Content-Encoding was undone.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import logging
import math
import os
import re
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ingest.contract import Collected
from ingest.errors import IngestError
from ingest.otlp import Batch

log = logging.getLogger(__name__)

# Memory for the rows mapped at accept time that are kept for the loader, all segments
# together. A GenAI span is ~0.36 KB in an Arrow frame, which also costs ~26 KB of its own
# whatever its length (measured by RSS); as a Python row it is ~1.5 KB. Before the frames,
# the bound was 100,000 rows.
DEFAULT_MAX_CACHED_BYTES = 128 * 1024 * 1024
ROW_BYTES = 1536  # one span or evaluation kept as a Python row
FRAME_BYTES = 32 * 1024  # one Arrow frame's fixed cost, beside its buffers
SEGMENT_SUFFIX = ".spool"
FAILED_DIR = "failed"  # segments that could not be published, kept for replay
_SEGMENT = re.compile(r"^(\d{12})-\d+\.spool$")
_MAGIC = b"HLSP"
_HEADER = struct.Struct(">4sIII")


class ReceiverError(IngestError):
    """The receiver cannot start (spool in use, port taken, spool unwritable)."""


@dataclass(eq=False)
class Segment:
    seq: int
    path: Path
    fd: int | None = None
    size: int = 0
    synced: int = 0
    writers: int = 0
    records: int = 0
    recovered: bool = False  # left by an earlier process: parse it from disk
    failures: int = 0  # publishes that failed; the loader sets it aside after a few
    started: float = field(default_factory=time.monotonic)  # no record in it is older
    # what the records before `cached_end` mapped to at accept time, in record order: Arrow
    # frames (a request of many spans, a metrics request's GPU rows) and runs of small
    # requests' rows merged into one Batch; the loader parses the records after `cached_end`
    # from disk (all of a recovered segment's)
    cached: list[Collected | Batch] = field(default_factory=list)
    cached_end: int = 0
    cached_records: int = 0
    caching: bool = False  # False once a record could not be cached: the rest are read again
    digest: Any = field(default_factory=lambda: hashlib.blake2b(digest_size=16))
    sync_lock: threading.Lock = field(default_factory=threading.Lock)


class Spool:
    """Append-only, fsync'd segment files in one directory, owned by one receiver at a time.

    Writers append under a short lock and then share fsyncs (group commit): whoever syncs
    covers every record written before it started, so concurrent requests do not queue
    behind one fsync each.
    """

    def __init__(self, directory: Path, max_cached_bytes: int = DEFAULT_MAX_CACHED_BYTES) -> None:
        self.directory = directory
        self._max_cached = max_cached_bytes
        self._cached = 0  # bytes held by every segment's `cached`
        self._cond = threading.Condition()
        try:
            directory.mkdir(parents=True, exist_ok=True)
            self._lock_fd = os.open(directory / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise ReceiverError(
                f"cannot use the spool directory {directory}: {exc.strerror or exc}"
            ) from exc
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise ReceiverError(
                f"another receiver is using the spool {directory}; stop it, or give this one "
                "its own --spool"
            ) from None
        self._sealed: list[Segment] = []
        for path in sorted(directory.iterdir()):
            match = _SEGMENT.match(path.name)
            if match and path.is_file():
                self._sealed.append(
                    Segment(int(match[1]), path, size=path.stat().st_size, recovered=True)
                )
        self._seq = max((s.seq for s in self._sealed), default=0)
        self.backlog = sum(s.size for s in self._sealed)
        self._closed = False
        try:
            self._active = self._new_segment()
        except OSError as exc:
            os.close(self._lock_fd)
            raise ReceiverError(
                f"cannot write to the spool directory {directory}: {exc.strerror or exc}"
            ) from exc

    @property
    def pending(self) -> int:
        """Segments sealed but not yet loaded."""
        with self._cond:
            return len(self._sealed)

    @property
    def cache_bytes(self) -> int:
        """Bytes of mapped rows the segments hold for the loader (at most the bound)."""
        with self._cond:
            return self._cached

    def oldest_wait_s(self) -> float:
        """How long the oldest unloaded record may have waited; inf for an earlier run's."""
        with self._cond:
            waiting = self._sealed or ([self._active] if self._active.size else [])
            if not waiting:
                return 0.0
            if waiting[0].recovered:
                return math.inf
            return time.monotonic() - waiting[0].started

    def _new_segment(self) -> Segment:
        with self._cond:
            self._seq += 1
            seq = self._seq
        path = self.directory / f"{seq:012d}-{time.time_ns() // 1_000_000}{SEGMENT_SUFFIX}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        self._sync_directory()  # the new name must survive a crash with the data it holds
        return Segment(seq, path, fd=fd, caching=True)

    def _sync_directory(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def append(
        self, meta: bytes, body: bytes | bytearray, mapped: Collected | Batch | None
    ) -> None:
        """Write one record and return once it is on stable storage (raises OSError).

        `mapped` is what the record mapped to at accept time (Arrow frames, or the rows of
        a small request, which the spool copies), kept for the loader while the cache bound
        allows; None: the loader parses it again."""
        record = (
            _HEADER.pack(_MAGIC, len(meta), len(body), zlib.crc32(body, zlib.crc32(meta)))
            + meta
            + body
        )
        with self._cond:
            if self._closed:
                raise OSError(errno.ESHUTDOWN, "the spool is closed")
            seg = self._active
            assert seg.fd is not None
            try:  # at `size`, not appended: the next record overwrites a failed partial one
                _write_all(seg.fd, record, seg.size)
            except OSError:
                with contextlib.suppress(OSError):
                    os.ftruncate(seg.fd, seg.size)
                raise
            seg.size += len(record)
            seg.records += 1
            seg.digest.update(record)
            self.backlog += len(record)
            self._cache(seg, mapped)
            seg.writers += 1
            end = seg.size
        try:
            self._sync(seg, end)
        finally:
            with self._cond:
                seg.writers -= 1
                self._cond.notify_all()

    def _cache(self, seg: Segment, mapped: Collected | Batch | None) -> None:
        """Keep a just-written record's mapped rows for the loader (caller holds the lock).

        The records cached so far stay cached when one does not fit under the bound; from
        it on, the segment's records are read again from disk (a backlog past the bound
        costs a second parse of what is past it, not of everything before it)."""
        if not seg.caching:
            return
        size = cached_bytes(mapped) if mapped is not None else 0
        if mapped is None or self._cached + size > self._max_cached:
            seg.caching = False
            return
        if isinstance(mapped, Batch):  # the handler still counts its own: copy the rows
            run = seg.cached[-1] if seg.cached else None
            if not isinstance(run, Batch):
                run = Batch(mapped.mapping)
                seg.cached.append(run)
            run.extend(mapped)
        else:
            seg.cached.append(mapped)
        seg.cached_end = seg.size
        seg.cached_records += 1
        self._cached += size

    def _forget(self, seg: Segment) -> None:
        """Drop a segment's mapped rows (caller holds the lock): the loader reads the file."""
        self._cached -= sum(cached_bytes(c) for c in seg.cached)
        seg.cached, seg.cached_end, seg.cached_records = [], 0, 0
        seg.caching = False

    def _sync(self, seg: Segment, end: int) -> None:
        with seg.sync_lock:
            if seg.synced >= end:
                return  # another writer's fsync already covered this record
            target = seg.size  # every byte counted in size has been written
            assert seg.fd is not None
            os.fdatasync(seg.fd)
            seg.synced = target

    def rotate(self) -> list[Segment]:
        """Seal the active segment (when it holds anything); all sealed segments, oldest first."""
        with self._cond:
            busy = self._active.size > 0 and not self._closed
        fresh = self._new_segment() if busy else None
        with self._cond:
            old = self._active
            if fresh is not None and self._closed:  # closed meanwhile: keep what we had
                os.close(fresh.fd)  # type: ignore[arg-type]
                fresh.path.unlink(missing_ok=True)
                fresh = None
            if fresh is not None:
                self._active = fresh
                while old.writers:
                    self._cond.wait()
                self._sealed.append(old)
            sealed = list(self._sealed)
        if fresh is not None:
            self._seal(old)
        return sealed

    def _seal(self, seg: Segment) -> None:
        if seg.fd is None:
            return
        try:
            if os.fstat(seg.fd).st_size > seg.size:  # the remains of a failed write
                os.ftruncate(seg.fd, seg.size)
            os.fdatasync(seg.fd)
            seg.synced = seg.size
        finally:
            os.close(seg.fd)
            seg.fd = None

    def done(self, seg: Segment) -> None:
        """The segment is in the warehouse: forget it."""
        seg.path.unlink(missing_ok=True)
        try:
            self._sync_directory()
        except OSError as exc:  # a resurrected segment is harmless: loads dedupe
            log.warning("cannot fsync the spool directory %s: %s", self.directory, exc)
        with self._cond:
            if seg in self._sealed:
                self._sealed.remove(seg)
            self.backlog -= seg.size
            self._forget(seg)

    def set_aside(self, seg: Segment) -> Path:
        """Move a segment that keeps failing to `failed/`, kept for replay; later ones go on.

        The rename is fsync'd in both directories, so the segment is never lost and never
        loaded again by accident: a restart only recovers segments at the spool's top level.
        """
        failed = self.directory / FAILED_DIR
        failed.mkdir(exist_ok=True)
        target = failed / seg.path.name
        seg.path.replace(target)
        for directory in (failed, self.directory):
            fd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        with self._cond:
            if seg in self._sealed:
                self._sealed.remove(seg)
            self.backlog -= seg.size
            self._forget(seg)
        seg.path = target
        return target

    def close(self) -> None:
        """Stop taking records; an empty active segment is removed, a full one stays sealed."""
        with self._cond:
            self._closed = True
            while self._active.writers:
                self._cond.wait()
            seg = self._active
        self._seal(seg)
        if seg.size == 0:
            seg.path.unlink(missing_ok=True)
        fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        os.close(self._lock_fd)


def cached_bytes(mapped: Collected | Batch) -> int:
    """The memory a record's mapped rows hold, as the cache bound counts it."""
    if isinstance(mapped, Batch):
        return (len(mapped) + mapped.evaluation_count) * ROW_BYTES
    return sum(FRAME_BYTES + t.get_total_buffer_size() for t in mapped.frames.values())


def _write_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view = view[written:]
        offset += written


@dataclass(frozen=True)
class SpoolRecord:
    offset: int
    meta: dict[str, Any]
    body: bytes


def read_segment(path: Path, start: int = 0) -> Iterator[SpoolRecord | tuple[int, str]]:
    """Every record of a segment from byte `start` (a record boundary), streamed; a
    damaged one comes back as (offset, reason).

    A torn last record (the process died inside a write) was never acknowledged and is
    skipped silently; damage before the end is reported so the loader can quarantine it.
    """
    with path.open("rb") as fh:
        fh.seek(start)
        pos = start
        while True:
            head = fh.read(_HEADER.size)
            if len(head) < _HEADER.size:
                return  # the end, or a torn header at the end
            magic, meta_len, body_len, crc = _HEADER.unpack(head)
            if magic != _MAGIC:
                yield pos, "spool record header is damaged; the rest of the segment is skipped"
                return
            payload = fh.read(meta_len + body_len)
            if len(payload) < meta_len + body_len:
                return  # torn record at the end: never acknowledged
            if zlib.crc32(payload) != crc:
                yield pos, "spool record checksum mismatch (damaged on disk)"
            else:
                try:
                    meta = orjson.loads(payload[:meta_len])
                except orjson.JSONDecodeError:
                    yield pos, "spool record metadata is not JSON"
                else:
                    yield SpoolRecord(pos, meta, payload[meta_len:])
            pos += _HEADER.size + meta_len + body_len

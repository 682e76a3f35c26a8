"""Discovery and resume offsets: which inputs a load reads, and from which byte.

Folders are walked in name order; URLs are fetched here (a collector only ever reads the
bytes of its unit). What `ingest_log` remembers of each input — the hash of the bytes read
and the offset reached — decides whether it is skipped (unchanged), resumed (grown since)
or read again from the start (changed, or compressed: an offset inside a compressed stream
is no place to resume).
"""

from __future__ import annotations

import hashlib
import os
import stat
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from ingest.contract import Unit
from warehouse.db import Warehouse
from warehouse.load import content_hash, file_states

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
URL_SCHEMES = ("http://", "https://")
MAX_URL_BYTES = 1 << 30  # a fetched input is held in memory: refuse anything bigger
URL_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Source:
    """One input to read: its whole unit from the resume offset, its size and age."""

    unit: Unit
    size: int
    modified: float | None = None  # the file's mtime; None for fetched bodies


@dataclass(frozen=True)
class Refused:
    """An input that cannot be read at all; `reason` is the sentence the user sees."""

    uri: str
    reason: str


def printable(path: str | os.PathLike[str]) -> str:
    """The name as ingest_log, quarantine and stderr show it: a file name that is not UTF-8
    (`bad\\xff.json`) is kept as escapes, so it can be stored, printed and compared."""
    raw = os.fsencode(path)
    return raw.decode("utf-8", "backslashreplace")


def uri_of(path: Path) -> str:
    return printable(path.absolute())


def is_url(name: str | os.PathLike[str]) -> bool:
    return str(name).startswith(URL_SCHEMES)


def find_files(paths: Iterable[Path]) -> Iterator[Path | Refused]:
    """Every regular file under `paths`, sorted; unreadable ones come back refused."""
    for path in paths:
        try:
            st = path.stat()
        except OSError as exc:
            yield Refused(uri_of(path), f"cannot read {printable(path)}: {exc.strerror or exc}")
            continue
        if stat.S_ISDIR(st.st_mode):
            found: list[Path] = []
            for root, dirs, files in os.walk(path, followlinks=False):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                found.extend(Path(root) / f for f in files if not f.startswith("."))
            for f in sorted(found, key=os.fsencode):
                try:
                    fst = f.stat()
                except OSError as exc:
                    yield Refused(uri_of(f), f"cannot read {printable(f)}: {exc.strerror or exc}")
                    continue
                if stat.S_ISREG(fst.st_mode):
                    yield f
                elif not stat.S_ISDIR(fst.st_mode):
                    yield Refused(uri_of(f), f"{printable(f)} is not a regular file")
        elif stat.S_ISREG(st.st_mode):
            yield path
        else:
            yield Refused(uri_of(path), f"{printable(path)} is not a regular file")


def discover(
    warehouse: Warehouse, names: Iterable[Path | str]
) -> tuple[list[Source | Refused], int]:
    """The inputs to read under `names` (paths and URLs), from their resume offsets, and how
    many were skipped as unchanged since their last load."""
    found: list[Source | Refused] = []
    for name in names:
        if is_url(name):
            fetched = fetch(str(name))
            if isinstance(fetched, Refused):
                found.append(fetched)
            else:
                found.append(Source(Unit(fetched[0], body=fetched[1]), len(fetched[1])))
            continue
        for entry in find_files([Path(name)]):
            if isinstance(entry, Refused):
                found.append(entry)
                continue
            try:
                st = entry.stat()
            except OSError as exc:
                reason = f"cannot read {printable(entry)}: {exc.strerror or exc}"
                found.append(Refused(uri_of(entry), reason))
                continue
            found.append(Source(Unit(uri_of(entry), path=entry), st.st_size, st.st_mtime))
    return resume(warehouse, found)


def resume(
    warehouse: Warehouse, found: Iterable[Source | Refused]
) -> tuple[list[Source | Refused], int]:
    """Each input from where its last load stopped (per `ingest_log`); unchanged ones are
    dropped and counted."""
    found = list(found)
    known = file_states(warehouse, [f.unit.uri for f in found if isinstance(f, Source)])
    sources: list[Source | Refused] = []
    skipped = 0
    for entry in found:
        if isinstance(entry, Refused) or entry.unit.uri not in known:
            sources.append(entry)
            continue
        unit = entry.unit
        try:
            head = _head(unit)
            start = resume_offset(
                head, entry.size, known[unit.uri], partial(unit_hash_strict, unit)
            )
        except OSError as exc:
            reason = f"cannot read {printable(unit.uri)}: {exc.strerror or exc}"
            sources.append(Refused(unit.uri, reason))
            continue
        if start is None:
            skipped += 1
        else:
            moved = Unit(unit.uri, unit.path, start, unit.end, unit.first, unit.last, unit.body)
            sources.append(Source(moved, entry.size, entry.modified))
    return sources, skipped


def _head(unit: Unit) -> bytes:
    if unit.body is not None:
        return unit.body[:4]
    if unit.path is None:
        return b""
    with unit.path.open("rb") as fh:
        return fh.read(4)


def resume_offset(
    head: bytes,
    size: int,
    known: tuple[str, int] | None,
    hash_of: Callable[[int], str | None],
) -> int | None:
    """Where to start reading: 0, the offset of an earlier partial read, or None to skip."""
    if not known:
        return 0
    old_hash, old_offset = known
    if old_offset <= size and hash_of(old_offset) == old_hash:
        if old_offset == size:
            return None
        if head[:2] == GZIP_MAGIC or head[:4] == ZSTD_MAGIC:
            return 0  # an offset inside a compressed stream is no place to resume
        return old_offset
    return 0  # the input changed under us: read it all again (loads are idempotent)


def body_hash(body: bytes, limit: int | None = None) -> str:
    """The same digest `warehouse.load.content_hash` keeps for files, of fetched bytes."""
    return hashlib.blake2b(body[:limit], digest_size=16).hexdigest()


def unit_hash(unit: Unit, limit: int | None) -> str | None:
    """The content hash of an input's first `limit` bytes (None when it cannot be read)."""
    try:
        return unit_hash_strict(unit, limit)
    except OSError:
        return None


def unit_hash_strict(unit: Unit, limit: int | None) -> str | None:
    if unit.body is not None:
        return body_hash(unit.body, limit)
    if unit.path is None:
        return None
    return content_hash(unit.path, limit)


class PrefixHash:
    """The content hash of an input's first n bytes, for n growing piece by piece: each byte
    is hashed once, however many pieces log a hash (`unit_hash` is the same digest,
    computed from the start each time)."""

    def __init__(self, unit: Unit) -> None:
        self._unit = unit
        self._h: Any = hashlib.blake2b(digest_size=16)
        self._pos = 0

    def digest(self, upto: int) -> str | None:
        if not self.advance(upto):
            return unit_hash(self._unit, upto)
        return str(self._h.copy().hexdigest())

    def advance(self, upto: int) -> bool:
        """Hash on up to byte `upto`; False where that cannot be done (then `digest`
        hashes from the start)."""
        if self._h is None or upto < self._pos:
            return False
        h, unit = self._h, self._unit
        try:
            if unit.body is not None:
                h.update(unit.body[self._pos : upto])
            elif unit.path is not None:
                with unit.path.open("rb") as fh:
                    fh.seek(self._pos)
                    left = upto - self._pos
                    while left and (chunk := fh.read(min(1 << 20, left))):
                        h.update(chunk)
                        left -= len(chunk)
                if left:
                    raise OSError(f"{printable(unit.uri)} is shorter than {upto} bytes")
        except OSError:
            self._h = None  # half-fed: start over from the file next time
            return False
        self._pos = upto
        return True


def fetch(url: str) -> tuple[str, bytes] | Refused:
    """The body of `url`, or why not; one GET, bounded in size and time."""
    try:
        with urllib.request.urlopen(url, timeout=URL_TIMEOUT_S) as response:
            body = response.read(MAX_URL_BYTES + 1)
    except urllib.error.HTTPError as exc:
        return Refused(url, f"cannot fetch {url}: HTTP {exc.code} {exc.reason}")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        return Refused(url, f"cannot fetch {url}: {reason}")
    if len(body) > MAX_URL_BYTES:
        return Refused(url, f"cannot fetch {url}: larger than {MAX_URL_BYTES} bytes")
    return url, body

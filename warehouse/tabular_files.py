"""The file side of `warehouse.tabular`: its error, a file's first and last bytes (through
gzip or zstd), and a CSV header read with Python's `csv`, which knows its quoting better
than a guess would; the private in-memory DuckDB and glob-free path it reads through; and
the SQL text naming its columns. Apart so the reader itself stays one screenful of SQL.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import os
import re
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import duckdb

from warehouse.errors import UserError, WarehouseError

HEADER_BYTES = 1 << 20  # a header longer than this is no header
MEMORY_LIMIT = "1GB"  # DuckDB spills past this, so a big export does not take the machine


class TabularError(WarehouseError, UserError):
    """A file cannot be read as a table at all: the message names it and why."""


def csv_header(path: Path, kind: str) -> tuple[str, ...]:
    raw = head(path, HEADER_BYTES, decompress=kind)
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise TabularError(f"{name(path)} is UTF-16: export it as UTF-8 (CSV UTF-8)")
    text = raw.decode("utf-8-sig", "replace")
    try:
        first = next(csv.reader(io.StringIO(text)), None)
    except csv.Error as exc:
        raise TabularError(f"{name(path)} has no readable header line: {exc}") from None
    if not first or not any(c.strip() for c in first):
        raise TabularError(f"{name(path)} has no header line")
    seen: set[str] = set()
    for column in first:
        if column in seen:
            raise TabularError(f"{name(path)} names the column {column[:80]!r} twice in its header")
        seen.add(column)
    return tuple(first)


def head(path: Path, size: int = 8, decompress: str = "csv") -> bytes:
    try:
        if decompress == "gzip":
            with gzip.open(path, "rb") as fh:
                return fh.read(size)
        if decompress == "zstd":
            import zstandard

            if zstd_cut(path):
                raise TabularError(
                    f"{name(path)} ends inside a zstd frame: the file looks truncated, so none "
                    "of it was loaded"
                )
            with path.open("rb") as raw, zstandard.ZstdDecompressor().stream_reader(raw) as fh:
                return fh.read(size)
        with path.open("rb") as fh:
            return fh.read(size)
    except TabularError:
        raise
    except (OSError, EOFError) as exc:
        raise TabularError(f"cannot read {name(path)}: {exc}") from None
    except Exception as exc:  # zstandard.ZstdError: a broken frame
        raise TabularError(f"cannot read {name(path)}: {exc}") from None


def zstd_cut(path: Path) -> bool:
    """True when a zstd file ends inside a frame. DuckDB reads such a file to its last whole
    block without a word, so a cut-off export would replace its month with part of it; the
    input is fed a little at a time, so a small frame of zeros never becomes a huge buffer."""
    import zstandard

    obj, fed, feed = zstandard.ZstdDecompressor().decompressobj(), False, 64
    with path.open("rb") as fh:
        while data := fh.read(feed):
            while data:
                if obj.eof:
                    obj = zstandard.ZstdDecompressor().decompressobj()
                out = obj.decompress(data)
                used = len(data) - len(obj.unused_data) if obj.eof else len(data)
                feed = max(64, min(1 << 20, (1 << 20) * max(1, used) // max(1, len(out))))
                fed, data = True, obj.unused_data if obj.eof else b""
    return fed and not obj.eof


def tail(path: Path, kind: str) -> bytes:
    if kind == "csv":
        with path.open("rb") as fh:
            fh.seek(max(0, path.stat().st_size - 4096))
            return fh.read()
    if kind == "gzip":
        last = b""
        with gzip.open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                last = (last + chunk)[-4096:]
        return last
    return b"\n"  # zstd: `head` refused a stream cut inside a frame (`zstd_cut`)


def name(path: Path) -> str:
    return os.fsdecode(path).encode("utf-8", "backslashreplace").decode("utf-8")


@contextmanager
def connection() -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect()
    try:
        con.execute(
            f"SET TimeZone = 'UTC'; SET memory_limit = '{MEMORY_LIMIT}'; "
            "SET enable_progress_bar = false"  # a big file's read must not draw on stdout
        )
        yield con
    finally:
        con.close()


@contextmanager
def plain(path: Path) -> Iterator[str]:
    """A path with no glob characters that leads to `path`."""
    with tempfile.TemporaryDirectory(prefix="hybridlens-read-") as folder:
        link = Path(folder) / "input"
        link.symlink_to(path.absolute())
        yield str(link)


def first_line(exc: BaseException) -> str:
    """DuckDB's first line, without the private link's name (the caller names the file)."""
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else type(exc).__name__
    return re.sub(r"\S*hybridlens-read-\w+/input\S*", "the file", text).rstrip(".")


# -- SQL text for `warehouse.tabular` -----------------------------------------------------
def sql_names(names: Sequence[str]) -> tuple[str, ...]:
    """A name for each column that DuckDB, which ignores case, takes as its own: the header's,
    or for an empty one or one that differs from an earlier one only in case (AWS tags are
    case-sensitive: `resourceTags/user:env` beside `resourceTags/user:Env`) `name#N`, N its
    1-based place in the header."""
    taken: set[str] = set()
    out = []
    for i, name in enumerate(names, 1):
        own = name if name and name.lower() not in taken else f"{name}#{i}"
        while own.lower() in taken:
            own += "#"
        taken.add(own.lower())
        out.append(own)
    return tuple(out)


def row_json(names: Sequence[str], ids: Sequence[str]) -> str:
    """SQL for a row as one JSON object of its text values, as `to_json(_src)` writes it:
    concatenating each value's own JSON text costs a third less than packing a struct,
    and a Parquet `_src` (a view) has a column that is no part of the row. Each key with
    its separators is one literal (`json_text`), since DuckDB does not fold a `to_json` of
    a constant and ran it for every row and column."""
    parts = []
    for i, (name, column) in enumerate(zip(names, ids, strict=True)):
        key = ("," if i else "{") + json_text(name) + ":"
        parts += [lit(key), f"coalesce(to_json({q(column)})::VARCHAR, 'null')"]
    return f"concat({', '.join(parts or [lit('{')])}, '}}')"


# DuckDB's to_json of a string: `"` and `\` escaped, the five short escapes, other controls
# as \u00XX in upper case (Python's json writes lower case), everything else as it is
_JSON_ESCAPES = {
    **{c: f"\\u{c:04X}" for c in range(0x20)},
    **{ord(k): v for k, v in {"\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f",
                              "\r": "\\r", '"': '\\"', "\\": "\\\\"}.items()},
}  # fmt: skip


def json_text(text: str) -> str:
    """`text` as DuckDB's `to_json(text)` writes it, byte for byte."""
    return '"' + text.translate(_JSON_ESCAPES) + '"'


def q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"

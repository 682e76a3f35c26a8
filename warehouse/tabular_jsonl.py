"""Newline-delimited JSON (one object a line, as `bq extract --destination_format
NEWLINE_DELIMITED_JSON` writes a table) read into `warehouse.tabular`'s all-text `_src`.

DuckDB's `read_json` stops at the first line that is not JSON and, told to ignore errors,
drops it without saying which it was, so the lines are first read as text by `read_csv`
(one column, no quoting, a delimiter no JSON line can hold: a raw control character is
invalid JSON) and each line is then checked with `json_valid`. That numbers every bad
line by its line in the file, as a CSV's are, and keeps the good ones. Each key becomes a
column of text: strings unquoted, numbers and booleans as their JSON text, objects and
arrays as JSON text (what `tabular` makes of nested Parquet columns too), so a format
reads a JSON export and a Parquet one alike. DuckDB parses JSON numbers as doubles, so a
number keeps its shortest double text (a FLOAT64 `cost` as BigQuery wrote it); a number
written as a JSON string is kept exactly.

The header is every key of every line, in the order first seen: BigQuery leaves a null
field out of the line, so no one line need hold them all.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from warehouse.tabular_files import head

SEP = "\x1f"  # never in a line of valid JSON (control characters must be escaped)
CUT = "the file ends inside it"  # the `why` of a last line cut off mid-value
EXCERPT = 500

_LINES = (
    "CREATE TEMP TABLE _lines AS SELECT line FROM read_csv($p, columns = {'line': 'VARCHAR'}, "
    f"header = false, auto_detect = false, delim = '{SEP}', quote = '', escape = '', "
    "store_rejects = true, compression = '{compression}', max_line_size = 16777216)"
)
# The file line of each line read: rejected lines (a control character, bad UTF-8) leave
# gaps that rowid does not count, so each adds one to the lines after it. `good` (the line
# is a JSON object) is checked once.
_NUMBERED = """
CREATE TEMP TABLE _numbered AS SELECT {n} AS n, line,
coalesce(json_type(CASE WHEN json_valid(line) THEN line END) = 'OBJECT', false) AS good
FROM _lines ORDER BY rowid
"""
_GAPS = (
    "(SELECT count(*) FROM (SELECT line - row_number() OVER (ORDER BY line) AS pos "
    "FROM reject_errors) WHERE pos <= _lines.rowid)"
)


@dataclass(frozen=True)
class Bad:
    """A line that is not one JSON object: its number in the file, why, and its start."""

    line: int
    why: str
    excerpt: str


def is_jsonl(head: bytes) -> bool:
    """True when a file's first bytes open a JSON object."""
    return head.removeprefix(b"\xef\xbb\xbf").lstrip(b" \t\r\n").startswith(b"{")


def compression(path: Path, kind: str) -> str | None:
    """The compression of a JSON lines file (`none`, `gzip`, `zstd`); None for any other."""
    if kind == "jsonl":
        return "none"
    if kind in ("gzip", "zstd") and is_jsonl(head(path, 64, decompress=kind)):
        return kind
    return None


def keys(con: duckdb.DuckDBPyConnection, plain: str, compression: str) -> tuple[str, ...]:
    """Every key of the file's objects, in the order first seen."""
    _read_lines(con, plain, compression)
    found = con.execute(
        "SELECT k FROM (SELECT n, unnest(ks) AS k, generate_subscripts(ks, 1) AS i FROM "
        "(SELECT n, json_keys(line) AS ks FROM _numbered WHERE good)) "
        "GROUP BY k ORDER BY min(n), arg_min(i, n)"
    ).fetchall()
    return tuple(str(k) for (k,) in found)


def load(
    con: duckdb.DuckDBPyConnection,
    plain: str,
    compression: str,
    names: tuple[str, ...],
    tail: bytes,
    ids: tuple[str, ...],
) -> list[Bad]:
    """Fill `_src` with one text column per key of `names` (named as `ids` says: `cost`
    beside `Cost` is one name to DuckDB) from the good lines, in file order; the lines that
    are not JSON objects, the last marked `CUT` when the file (`tail`: its last bytes) ends
    inside it."""
    _read_lines(con, plain, compression)
    # one parse of each line for all its keys (a path each would parse it once per key)
    paths = "[" + ", ".join(_lit(_pointer(name)) for name in names) + "]::VARCHAR[]"
    select = ", ".join(f"_v[{i}] AS {_q(name)}" for i, name in enumerate(ids, 1))
    con.execute(
        f"CREATE TEMP TABLE _src AS SELECT {select} FROM (SELECT n, "
        f"json_extract_string(line, {paths}) AS _v FROM _numbered WHERE good) ORDER BY n"
    )
    bad = [
        Bad(int(n), why, str(line)[:EXCERPT])
        for n, why, line in con.execute(
            "SELECT n, CASE WHEN json_valid(line) THEN 'not a JSON object' "
            "ELSE 'not valid JSON' END, line FROM _numbered WHERE trim(line) <> '' AND NOT good"
        ).fetchall()
    ]
    bad += [
        Bad(int(n), f"{str(message).splitlines()[0]} ({kind})", str(text or "")[:EXCERPT])
        for n, kind, message, text in con.execute(
            "SELECT line, error_type, error_message, csv_line FROM reject_errors"
        ).fetchall()
    ]
    bad.sort(key=lambda b: b.line)
    last = con.execute(
        "SELECT greatest((SELECT max(n) FROM _numbered), (SELECT max(line) FROM reject_errors))"
    ).fetchall()[0][0]
    if bad and bad[-1].line == last and not tail.endswith((b"\n", b"\r")):
        bad[-1] = Bad(bad[-1].line, f"{bad[-1].why}: {CUT}", bad[-1].excerpt)
    return bad


def _read_lines(con: duckdb.DuckDBPyConnection, plain: str, compression: str) -> None:
    con.execute(_LINES.replace("{compression}", compression), {"p": plain})
    gaps = con.execute("SELECT count(*) FROM reject_errors").fetchall()[0][0]
    con.execute(_NUMBERED.replace("{n}", f"rowid + 1 + {_GAPS}" if gaps else "rowid + 1"))


def _pointer(name: str) -> str:
    """A JSON pointer to the key `name` (no quoting to get wrong: `~` and `/` escaped)."""
    return "/" + name.replace("~", "~0").replace("/", "~1")


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"

"""Reading a tabular export (CSV, gzip or zstd CSV, Parquet, JSON lines) with DuckDB's own
readers into typed Arrow, with every value that does not parse named by row, column and
value.

Billing exports are the first users: a reader in `ingest/billing/` says which columns it
wants and of which kind, and this module does the row work in DuckDB, never row by row in
Python, so a million-line export costs what DuckDB's `read_csv` costs. It lives in
`warehouse/` because only the warehouse talks to DuckDB (DESIGN.md); it knows nothing of
FOCUS or any other format. It opens a private in-memory DuckDB, never the warehouse file.

The kind of file is told from its first bytes, never its name: DuckDB picks a decompressor
by extension, so a gzip file named `.csv` would otherwise be read as text. The file is
handed to DuckDB through a symlink with a plain name in a private folder, because DuckDB
expands `*`, `?` and `[` in a path as a glob: a hostile file name could make it read
other files.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa

from warehouse import tabular_jsonl as jsonl
from warehouse.tabular_files import TabularError as TabularError
from warehouse.tabular_files import connection as _connection
from warehouse.tabular_files import csv_header as _csv_header
from warehouse.tabular_files import first_line as _first_line
from warehouse.tabular_files import head as _head
from warehouse.tabular_files import lit as _lit
from warehouse.tabular_files import name as _name
from warehouse.tabular_files import plain as _plain
from warehouse.tabular_files import q as _q
from warehouse.tabular_files import row_json, sql_names
from warehouse.tabular_files import tail as _tail
from warehouse.tabular_values import Kind as Kind
from warehouse.tabular_values import typed, value_of, why

PARQUET_MAGIC = b"PAR1"
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
NULLS = ("NULL", "")  # FOCUS writes the literal NULL; an empty cell is null too
ROW = "_row"  # the 1-based number of each row among the rows that parsed
EXCERPT = 500  # characters of a bad row kept in quarantine
BATCH_ROWS = 100_000  # rows handed to a `read` sink at a time


# A Parquet type with parts (a GCP `service` struct, a CUR 2.0 `resource_tags` map, a list
# of `credits`): read as JSON text, so a format can take it apart with DuckDB's JSON functions
_NESTED = re.compile(r"STRUCT|MAP|UNION|\[\]$")


@dataclass(frozen=True)
class Column:
    """One output column: its kind, and the input columns it comes from (the first that is
    not null wins; none: the column is all null)."""

    name: str
    kind: Kind
    sources: tuple[str, ...] = ()
    path: str | None = None  # a JSON path ("$.amount"): the member of nested sources


@dataclass(frozen=True)
class Derived:
    """An output column computed in SQL from the typed `columns` (which it names by their
    output names): how a format that is not FOCUS maps its columns onto FOCUS ones, such
    as CUR's line item type onto a charge category. The SQL is the format's own text,
    never built from input; it casts its result itself."""

    name: str
    sql: str


@dataclass(frozen=True)
class Problem:
    """A value that does not parse as its column's kind; its row is not returned."""

    row: int  # 1-based, among the rows that parsed
    column: str  # the input column
    value: str
    why: str  # "is not a number"


@dataclass(frozen=True)
class Malformed:
    """A CSV line that is not a row of the table (too few or many cells, a bad quote)."""

    line: int
    why: str
    excerpt: str


@dataclass
class Typed:
    """What a file gave: its typed rows (with `_row` and the raw row, when asked), the
    values that did not parse, the lines that were not rows, and whether it is cut off."""

    rows: pa.Table
    problems: list[Problem] = field(default_factory=list)
    malformed: list[Malformed] = field(default_factory=list)
    truncated: str | None = None  # the file ends inside a row: why, in one sentence
    read_rows: int = 0  # rows that parsed, good or not
    excerpts: dict[int, str] = field(default_factory=dict)  # a bad row -> its raw JSON


def kind_of(head: bytes) -> str:
    """`parquet`, `gzip`, `zstd`, `jsonl` (a JSON object first) or `csv`, from a file's
    first bytes."""
    if jsonl.is_jsonl(head):
        return "jsonl"
    if head.startswith(PARQUET_MAGIC):
        return "parquet"
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    return "csv"


def header(path: Path) -> tuple[str, ...]:
    """The column names of a file, in order; a TabularError when it has none."""
    head = _head(path)
    if not head:
        raise TabularError(f"{_name(path)} is empty")
    kind = kind_of(head)
    compression = jsonl.compression(path, kind)
    if kind == "parquet" or compression:
        with _connection() as con, _plain(path) as plain:
            try:
                if compression:
                    if names := jsonl.keys(con, plain, compression):
                        return names
                    raise TabularError(f"{_name(path)} has no line that is a JSON object")
                described = con.sql("DESCRIBE SELECT * FROM read_parquet($p)", params={"p": plain})
                return tuple(str(r[0]) for r in described.fetchall())
            except duckdb.Error as exc:
                what = "JSON lines" if compression else "Parquet"
                raise TabularError(f"{_name(path)} is not a readable {what} file: "
                                   f"{_first_line(exc)}") from None  # fmt: skip
    return _csv_header(path, kind)


def read(
    path: Path,
    columns: Sequence[Column],
    *,
    raw: str | None = None,
    derive: Sequence[Derived] = (),
    sink: Callable[[pa.Table], None] | None = None,
) -> Typed:
    """The rows of `path` typed as `columns` say. Rows with a value that does not parse are
    left out and listed in `problems`; `raw` names a column holding each whole input row as
    a JSON object (values as read). With `derive`, the rows hold the derived columns in
    place of `columns` (which the SQL reads), then `raw` and `_row`. With `sink`, the rows
    are handed to it in file order, BATCH_ROWS at a time, and `Typed.rows` is empty: a
    ten-million-row export never has to be held whole."""
    names = header(path)
    ids = sql_names(names)  # `_src`'s own names: unique to DuckDB, which ignores case
    kind = kind_of(_head(path))
    with _connection() as con, _plain(path) as plain:
        try:
            malformed = _load(con, plain, kind, names, ids)
        except duckdb.Error as exc:
            raise TabularError(f"{_name(path)} cannot be read: {_first_line(exc)}") from None
        truncated = _cut(path, kind, malformed)
        if truncated:
            return Typed(rows=pa.table({}), malformed=malformed, truncated=truncated)
        present = dict(zip(names, ids, strict=True))
        value = {c.name: _source(c, present) for c in columns}
        problems = _problems(con, columns, present)
        try:
            bad = sorted({p.row for p in problems})
            con.register("_bad", pa.table({"r": pa.array(bad, pa.int64())}))
            total = int(con.sql("SELECT count(*) FROM _src").fetchall()[0][0])
            excerpts = {
                int(r): str(text)[:EXCERPT]
                for r, text in con.execute(
                    f"SELECT rowid + 1, {row_json(names, ids)} FROM _src "
                    "WHERE (rowid + 1) IN (SELECT r FROM _bad)"
                ).fetchall()
            }
        except duckdb.Error as exc:
            raise TabularError(f"{_name(path)} cannot be read: {_first_line(exc)}") from None
        select = [f"{typed(c.kind, value[c.name])} AS {_q(c.name)}" for c in columns]
        if raw:
            select.append(f"{row_json(names, ids)} AS {_q(raw)}")
        select.append(f"(rowid + 1)::BIGINT AS {ROW}")
        # A scan in insertion order keeps file order by itself; only the anti-join of bad
        # rows needs the sort, which on a wide file costs more than the casts
        sql = f"SELECT {', '.join(select)} FROM _src"
        if bad and not derive:
            sql += f" WHERE (rowid + 1) NOT IN (SELECT r FROM _bad) ORDER BY {ROW}"
        elif bad:
            sql += " WHERE (rowid + 1) NOT IN (SELECT r FROM _bad)"
        if derive:
            outer = [f"{d.sql} AS {_q(d.name)}" for d in derive]
            outer += [_q(raw)] if raw else []
            sql = f"SELECT {', '.join([*outer, ROW])} FROM ({sql}) AS _t"
            sql += f" ORDER BY {ROW}" if bad else ""
        try:
            if sink is None:
                rows = con.sql(sql).to_arrow_table()
            else:
                rows = pa.table({})
                for batch in con.sql(sql).to_arrow_reader(BATCH_ROWS):
                    sink(pa.Table.from_batches([batch]))
        except duckdb.Error as exc:
            raise TabularError(f"{_name(path)} cannot be read: {_first_line(exc)}") from None
    return Typed(rows, problems, malformed, None, total, excerpts)


# -- reading ----------------------------------------------------------------------------------
def _load(
    con: duckdb.DuckDBPyConnection,
    plain: str,
    kind: str,
    names: tuple[str, ...],
    ids: tuple[str, ...],
) -> list[Malformed]:
    """Read the file into `_src` (all text, in file order, so `rowid` numbers its rows) and
    return the CSV lines DuckDB rejected as not rows of the table."""
    if kind == "parquet":
        described = con.execute("DESCRIBE SELECT * FROM read_parquet($p)", {"p": plain})
        texts = [
            f"to_json({_q(name)})::VARCHAR AS {_q(name)}"
            if _NESTED.search(str(kind_)) else f"{_q(name)}::VARCHAR AS {_q(name)}"
            for name, kind_, *_ in described.fetchall()
        ]  # fmt: skip
        # A view, not a copy: each pass reads the columns it needs from the file itself, so
        # a ten-million-row file is never held as text (`rowid`: its row's place in the file)
        if {n.lower() for n in names} & {"rowid", "file_row_number"}:
            con.execute(
                f"CREATE TEMP TABLE _src AS SELECT {', '.join(texts)} FROM read_parquet($p)",
                {"p": plain},
            )
        else:
            con.execute(
                f"CREATE TEMP VIEW _src AS SELECT {', '.join(texts)}, file_row_number AS rowid "
                f"FROM read_parquet({_lit(plain)}, file_row_number = true)"
            )
        return []
    if compression := jsonl.compression(Path(plain), kind):
        tail = _tail(Path(plain), "csv" if compression == "none" else compression)
        bad = jsonl.load(con, plain, compression, names, tail, ids)
        return [Malformed(b.line, b.why, b.excerpt) for b in bad]
    columns = "{" + ", ".join(f"{_lit(n)}: 'VARCHAR'" for n in ids) + "}"
    compression = "none" if kind == "csv" else kind
    con.execute(
        f"CREATE TEMP TABLE _src AS SELECT * FROM read_csv($p, columns = {columns}, "
        "header = true, auto_detect = false, delim = ',', quote = '\"', escape = '\"', "
        f"nullstr = ['NULL', ''], store_rejects = true, compression = '{compression}', "
        "max_line_size = 16777216)",
        {"p": plain},
    )
    found = con.execute(
        "SELECT line, error_type, error_message, csv_line FROM reject_errors ORDER BY line"
    ).fetchall()
    return [
        Malformed(int(line), f"{str(message).splitlines()[0]} ({kind_})", str(text or "")[:EXCERPT])
        for line, kind_, message, text in found
    ]


def _cut(path: Path, kind: str, malformed: list[Malformed]) -> str | None:
    """Why the file looks cut off: its last line was rejected and it does not end with a line
    break (a complete export always ends its last row)."""
    if kind == "parquet" or not malformed:
        return None
    last = malformed[-1]
    if last.why.endswith(jsonl.CUT):
        return f"{_name(path)} ends inside a row at line {last.line}: the file looks truncated"
    try:
        tail = _tail(path, kind)
    except OSError:
        return None
    if tail.endswith((b"\n", b"\r")) or not last.excerpt:
        return None
    # DuckDB's excerpt of a CRLF file's line starts with the LF the CR left behind
    excerpt = last.excerpt.strip("\r\n").encode("utf-8", "replace")
    line = tail.rsplit(b"\n", 1)[-1]
    if b"\n" in tail and line[: len(excerpt)] != excerpt[: len(line)]:  # excerpt: its start
        return None
    if b"\n" not in tail and not tail.endswith(excerpt[-64:]):
        return None
    return (
        f"{_name(path)} ends inside a row at line {last.line} ({last.why}): the file looks "
        "truncated, so none of it was loaded"
    )


def _problems(
    con: duckdb.DuckDBPyConnection, columns: Sequence[Column], present: dict[str, str]
) -> list[Problem]:
    """Every value of a checked kind that does not parse, in row order."""
    parts = []
    for column in columns:
        if column.kind is Kind.TEXT:
            continue
        for name in column.sources:
            if name not in present:
                continue
            v = value_of(present[name], column.path)
            reason = why(column.kind, v)
            shown = name + (column.path or "$")[1:]  # `usage.amount`, as its CSV column
            parts.append(
                f"SELECT rowid + 1 AS r, {_lit(shown)} AS c, {v} AS v, {reason} AS why "
                f"FROM _src WHERE {v} IS NOT NULL AND {reason} IS NOT NULL"
            )
    if not parts:
        return []
    found = con.execute(" UNION ALL ".join(parts) + " ORDER BY r, c").fetchall()
    return [Problem(int(r), str(c), str(v), str(w)) for r, c, v, w in found]


def _source(column: Column, present: dict[str, str]) -> str:
    found = [value_of(present[s], column.path) for s in column.sources if s in present]
    if not found:
        return "NULL"
    return found[0] if len(found) == 1 else f"coalesce({', '.join(found)})"

"""The rows of one load, kept outside the warehouse until `warehouse.publish` writes them.

Collectors parse outside the write lock; the stage holds their Arrow frames (spilled to
zstd Parquet when large) per table, tagged with the input they came from, so that the
publish is a few short INSERT ... SELECT statements and an input that poisons a publish
can be retried alone.
"""

from __future__ import annotations

import importlib.abc
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from warehouse.report import InputReport

SPILL_ROWS = 250_000
INPUT_COLUMN = "_file"  # the input index each staged row carries


@dataclass(frozen=True)
class StagedFile:
    """Rows a collector wrote to a Parquet file of its own, in `folder`, as it read them: a
    ten-million-row export is never held whole. The stage adopts the file (its rows get the
    input's `_file` as they are read) and deletes the folder when closed."""

    path: Path
    rows: int
    folder: Path

    def discard(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


@dataclass
class Stage:
    """Staged frames for any set of tables, plus the inputs and rejects they came with."""

    spill_dir: Path | None = None
    inputs: list[InputReport] = field(default_factory=list)
    quarantine: list[tuple[int, str, str, str]] = field(default_factory=list)
    _tables: dict[str, list[pa.Table]] = field(default_factory=dict)
    _files: dict[str, list[Path]] = field(default_factory=dict)
    _adopted: dict[str, list[tuple[StagedFile, int]]] = field(default_factory=dict)
    _rows: dict[str, int] = field(default_factory=dict)
    _per_input: dict[tuple[str, int], int] = field(default_factory=dict)
    # running counts, so a load of thousands of small inputs stays linear: rows in memory
    # per table, and each input's tables
    _in_memory: dict[str, int] = field(default_factory=dict)
    _input_tables: dict[int, dict[str, int]] = field(default_factory=dict)
    _tmp: tempfile.TemporaryDirectory[str] | None = None

    def begin(self, entry: InputReport) -> int:
        """Start an input; the returned index tags its rows and quarantine entries."""
        self.inputs.append(entry)
        return len(self.inputs) - 1

    def add(self, table: str, rows: pa.Table | StagedFile, index: int) -> None:
        """Stage rows, in memory or in a file a collector wrote (deleted when closed)."""
        if isinstance(rows, StagedFile):
            return self._adopt(table, rows, index)
        if rows.num_rows == 0:
            return
        if not 0 <= index < len(self.inputs):
            raise IndexError(f"input {index} was never begun on this stage")
        rows = rows.append_column(INPUT_COLUMN, pa.array([index] * rows.num_rows, pa.int32()))
        self._tables.setdefault(table, []).append(rows)
        self._count(table, index, rows.num_rows)
        self._in_memory[table] = self._in_memory.get(table, 0) + rows.num_rows
        if self._in_memory[table] >= SPILL_ROWS:
            self._spill(table)

    def _adopt(self, table: str, staged: StagedFile, index: int) -> None:
        if not 0 <= index < len(self.inputs):
            staged.discard()
            raise IndexError(f"input {index} was never begun on this stage")
        self._adopted.setdefault(table, []).append((staged, index))
        self._count(table, index, staged.rows)

    def _count(self, table: str, index: int, n: int) -> None:
        self._rows[table] = self._rows.get(table, 0) + n
        key = (table, index)
        self._per_input[key] = self._per_input.get(key, 0) + n
        tables = self._input_tables.setdefault(index, {})
        tables[table] = tables.get(table, 0) + n

    def reject(self, index: int, location: str, error: str, excerpt: str) -> None:
        self.quarantine.append((index, location, error, excerpt))
        self.inputs[index].quarantined += 1

    def rows(self, table: str | None = None) -> int:
        if table is None:
            return sum(self._rows.values())
        return self._rows.get(table, 0)

    def input_rows(self, index: int) -> int:
        """Rows staged by one input, all tables together."""
        return sum(self._input_tables.get(index, {}).values())

    def staged_rows(self, table: str, index: int) -> int:
        """Rows one input staged for one table (before any dedupe)."""
        return self._per_input.get((table, index), 0)

    def input_tables(self, index: int) -> list[str]:
        """The tables one input staged rows for."""
        return sorted(self._input_tables.get(index, {}))

    def tables(self) -> list[str]:
        """The tables with staged rows, in the order they were first added."""
        return [t for t, n in self._rows.items() if n]

    def _spill(self, table: str) -> None:
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="hybridlens-stage-", dir=self.spill_dir)
        path = Path(self._tmp.name) / f"{table}-{len(self._files.get(table, []))}.parquet"
        pq.write_table(_concat(self._tables.pop(table)), path, compression="zstd")
        self._in_memory[table] = 0
        self._files.setdefault(table, []).append(path)

    def register(self, con: duckdb.DuckDBPyConnection, table: str, only: int | None = None) -> str:
        """Expose the staged rows of `table` (of one input, with `only`) as a view; its name."""
        frames = self._tables.get(table) or []
        if only is not None:  # an input published alone: a neighbour's frames cannot stop it
            frames = [f for f in frames if f.column(INPUT_COLUMN)[0].as_py() == only]
        parts = []
        if frames:
            con.register(f"_staged_mem_{table}", _concat(frames))
            parts.append(f"SELECT * FROM _staged_mem_{table}")
        for path in self._files.get(table, []):
            parts.append(f"SELECT * FROM read_parquet('{_sql_path(path)}')")
        adopted = [(f, i) for f, i in self._adopted.get(table, []) if only in (None, i)]
        for staged, index in adopted:
            parts.append(
                f"SELECT *, {int(index)}::INTEGER AS {INPUT_COLUMN} "
                f"FROM read_parquet('{_sql_path(staged.path)}')"
            )
        if not parts:
            raise ValueError(f"nothing staged for table {table!r}")
        # by name: an adopted file and a frame of another format need not share an order
        union = " UNION ALL BY NAME ".join(parts)
        if only is not None:
            union = f"SELECT * FROM ({union}) WHERE {INPUT_COLUMN} = {int(only)}"
        # OTLP times are nanoseconds, the warehouse keeps microseconds: round the staged
        # times as an INSERT would, so that dedupe keys (evaluations are keyed by their time)
        # and time ranges compare equal to what is already stored.
        files = [*self._files.get(table, []), *(f.path for f, _ in adopted)]
        schema = frames[0].schema if frames else pq.read_schema(files[0])
        times = [f.name for f in schema if pa.types.is_timestamp(f.type) and f.type.unit == "ns"]
        if times:
            casts = ", ".join(f'"{c}"::TIMESTAMPTZ AS "{c}"' for c in times)
            union = f"SELECT * REPLACE ({casts}) FROM ({union})"
        view = f"staged_{table}"
        con.execute(f"CREATE OR REPLACE TEMP VIEW {view} AS {union}")
        return view

    def close(self) -> None:
        self._tables.clear()
        self._files.clear()
        for staged, _ in (a for adopted in self._adopted.values() for a in adopted):
            staged.discard()
        self._adopted.clear()
        self._rows.clear()
        self._per_input.clear()
        self._in_memory.clear()
        self._input_tables.clear()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


def warm_arrow(*, without_pandas: bool = False) -> None:
    """Do pyarrow's one-time setup of its first conversion from Python objects (it imports
    pandas, ~0.5 s of CPU) in this process: a load's forked workers then inherit it instead
    of each paying for it, and the stage pays for it at its first `add` anyway.

    `without_pandas`: pyarrow is told pandas is not installed, so it never imports it.
    Only for a command's own process that converts nothing to or from pandas (the
    console script's loads): pyarrow keeps that answer, and in a library caller's or the
    dashboard's process it would break their pandas conversions."""
    if not without_pandas or "pandas" in sys.modules:
        pa.array([0], pa.int32())
        return
    hide = _NoPandas()
    sys.meta_path.insert(0, hide)
    try:
        pa.array([0], pa.int32())
    finally:
        sys.meta_path.remove(hide)


class _NoPandas(importlib.abc.MetaPathFinder):
    """`import pandas` fails as if it were not installed, while this finder is first."""

    def find_spec(self, name: str, path: object, target: object = None) -> None:
        if name.partition(".")[0] == "pandas":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)


def _concat(frames: list[pa.Table]) -> pa.Table:
    # a frame whose column is all null has type null: unify it with its neighbours' type
    return pa.concat_tables(frames, promote_options="default")


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")

"""The one choke point for DuckDB: opening, migrating, reading and writing.

A connection lives for one operation only and is always taken under the lock file, so a
dashboard that is reading never blocks an ingest for longer than one query, and no
"database is locked" error ever reaches a user. A read also has a time limit: a timer
thread calls DuckDB's `interrupt()` when it runs past it, so one runaway query from a page
cannot hold the shared lock (and with it every writer) or a Streamlit thread forever.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

try:  # duckdb 2 ships its engine as `_duckdb`; the `duckdb` package adds a relational API
    # on top (`con.sql`, Arrow sources) that costs 150 ms to import, which a read through
    # `execute` never uses and `hybridlens metrics` cannot afford (docs/dashboard.md)
    import _duckdb as duckdb
except ImportError:  # duckdb 1.x: one package
    import duckdb  # type: ignore[no-redef]

from warehouse.errors import (
    ConfigError,
    ReadTimeoutError,
    SchemaVersionError,
    WarehouseError,
    WarehouseMissingError,
)
from warehouse.lock import locked

if TYPE_CHECKING:  # Polars (and the pyarrow it reads through) only where a frame is asked for
    import polars as pl

log = logging.getLogger(__name__)
# The SQL files beside this module. A plain path, not importlib.resources: that import
# costs 20 ms of `hybridlens metrics`, and the package is only ever installed as files.
_HERE = Path(__file__).resolve().parent

DEFAULT_PATH = "hybridlens.duckdb"
READ_TIMEOUT_S = 120.0  # the longest wait for the shared lock
WRITE_TIMEOUT_S = 300.0  # the longest wait for the exclusive lock
# The longest a read may run once it has its connection. Pages and `metrics` read rollups
# and answer in well under a second on a 90-day demo; 30 s means something went wrong.
READ_LIMIT_S = 30.0
READ_LIMIT_ENV = "HYBRIDLENS_READ_LIMIT_S"
_MIGRATION_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")


def default_path() -> Path:
    """`HYBRIDLENS_WAREHOUSE`, else ./hybridlens.duckdb."""
    return Path(os.environ.get("HYBRIDLENS_WAREHOUSE") or DEFAULT_PATH)


def read_limit() -> float | None:
    """$HYBRIDLENS_READ_LIMIT_S (seconds; 0 turns the limit off), else `READ_LIMIT_S`."""
    raw = os.environ.get(READ_LIMIT_ENV, "").strip()
    if not raw:
        return READ_LIMIT_S
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not value >= 0 or value == float("inf"):  # NaN fails the comparison
        raise ConfigError(
            f"{READ_LIMIT_ENV}={raw!r} is not a number of seconds (0 turns the limit off)"
        )
    return value or None


class _Deadline:
    """Interrupts one connection's running statement once `limit_s` has passed.

    The timer and `cancel` share a lock, so the interrupt never lands on a connection that
    the reader has already closed.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, limit_s: float | None) -> None:
        self.limit_s = limit_s
        self.fired = False
        self._con = con
        self._done = False
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        if limit_s is not None:
            self._timer = threading.Timer(limit_s, self._fire)
            self._timer.daemon = True
            self._timer.start()

    def _fire(self) -> None:
        with self._lock:
            if not self._done:
                self.fired = True
                self._con.interrupt()

    def cancel(self) -> None:
        with self._lock:
            self._done = True
        if self._timer is not None:
            self._timer.cancel()


def migrations() -> list[tuple[int, str, str]]:
    """(version, file name, sql) of every bundled migration, in order."""
    found = []
    for entry in (_HERE / "migrations").iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found)


def schema_version() -> int:
    return migrations()[-1][0]


def read_sql(name: str) -> str:
    """The text of `warehouse/queries/<name>.sql`."""
    path = _HERE / "queries" / f"{name}.sql"
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise WarehouseError(f"no query named {name!r} in warehouse/queries/") from None


class Warehouse:
    """One DuckDB file and its lock; every read and write goes through here."""

    def __init__(
        self, path: Path | str | None = None, *, read_limit_s: float | None = None
    ) -> None:
        """`read_limit_s`: how long one `read()` may run (None: `read_limit()`; 0: no limit)."""
        self.path = Path(path) if path is not None else default_path()
        self.read_limit_s = read_limit_s

    def __repr__(self) -> str:
        return f"Warehouse({str(self.path)!r})"

    def exists(self) -> bool:
        return self.path.exists()

    # -- connections -------------------------------------------------------------------
    @contextmanager
    def write(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-write connection inside one transaction, under the exclusive lock."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        relational()  # writers register Arrow tables and stream relations
        with locked(self.path, exclusive=True, timeout_s=WRITE_TIMEOUT_S):
            con = self._connect(read_only=False)
            try:
                self._migrate(con)
                con.execute("BEGIN TRANSACTION")
                try:
                    yield con
                except BaseException:
                    con.execute("ROLLBACK")
                    raise
                con.execute("COMMIT")
            finally:
                con.close()

    @contextmanager
    def read(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-only connection under the shared lock; migrates an older file first."""
        if not self.path.exists():
            raise WarehouseMissingError(
                f"no warehouse at {self.path}: run `hybridlens ingest traces PATH` or "
                "`hybridlens demo` first, or point --warehouse / HYBRIDLENS_WAREHOUSE at one."
            )
        limit = read_limit() if self.read_limit_s is None else (self.read_limit_s or None)
        up_to_date = False
        with locked(self.path, exclusive=False, timeout_s=READ_TIMEOUT_S):
            con = self._connect(read_only=True)
            deadline = _Deadline(con, limit)
            try:  # closed before the lock goes, whatever the caller still holds
                current = self._version(con)
                up_to_date = current >= schema_version()
                if up_to_date:
                    self._check_not_newer(current)
                    yield con
            except (duckdb.Error, WarehouseError) as exc:
                if deadline.fired:
                    raise ReadTimeoutError(
                        f"a read of {self.path} ran past its {limit:g} s time limit and was "
                        "stopped: choose a shorter time range, or raise the limit with "
                        f"{READ_LIMIT_ENV} (seconds, 0 for none)."
                    ) from exc
                raise
            finally:
                deadline.cancel()
                con.close()
        if up_to_date:
            return
        with self.write():  # an older file: bring it up to date once, then read
            pass
        with self.read() as con2:
            yield con2

    def _connect(self, *, read_only: bool) -> duckdb.DuckDBPyConnection:
        try:
            return duckdb.connect(str(self.path), read_only=read_only)
        except duckdb.Error as exc:
            raise WarehouseError(f"cannot open the warehouse {self.path}: {exc}") from exc

    # -- migrations --------------------------------------------------------------------
    def _version(self, con: duckdb.DuckDBPyConnection) -> int:
        """The file's schema version; 0 for a new file. One lookup, not an
        information_schema scan first: every read asks, and that scan cost 11 ms."""
        try:
            got = one(con, "SELECT value FROM _meta WHERE key = 'schema_version'")
        except duckdb.CatalogException:  # no _meta table: nothing migrated yet
            return 0
        return int(got[0]) if got else 0

    def _check_not_newer(self, current: int) -> None:
        if current > schema_version():
            raise SchemaVersionError(
                f"the warehouse {self.path} has schema version {current}, but this hybridlens "
                f"knows only up to {schema_version()}: upgrade hybridlens "
                "(pip install -U hybridlens) or use another --warehouse."
            )

    def _migrate(self, con: duckdb.DuckDBPyConnection) -> None:
        current = self._version(con)
        self._check_not_newer(current)
        for version, name, sql in migrations():
            if version <= current:
                continue
            log.info("applying migration %s to %s", name, self.path)
            con.execute("BEGIN TRANSACTION")
            try:
                con.execute(sql)
                con.execute(
                    "INSERT OR REPLACE INTO _meta VALUES ('schema_version', $v)",
                    {"v": str(version)},
                )
                con.execute("COMMIT")
            except duckdb.Error as exc:
                con.execute("ROLLBACK")
                raise WarehouseError(f"migration {name} failed on {self.path}: {exc}") from exc

    # -- queries -----------------------------------------------------------------------
    def query(self, name: str, **params: Any) -> pl.DataFrame:
        """Run `warehouse/queries/<name>.sql` with named parameters; a Polars frame back."""
        sql = read_sql(name)
        with self.read() as con:
            return run(con, name, sql, params)


def relational() -> None:
    """Put duckdb's relational API (`con.sql`, `register` of Arrow data) on every
    connection, open or not: importing the `duckdb` package adds it to the connection
    class. Reads through `execute` alone (`run_rows`, `one`) never need it."""
    import duckdb as _package  # noqa: F401


def one(
    con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any] | None = None
) -> tuple[Any, ...] | None:
    """The first row of a statement, with the result fully consumed (DuckDB 2 wants that)."""
    rows = con.execute(sql, params or {}).fetchall()
    return rows[0] if rows else None


def run(
    con: duckdb.DuckDBPyConnection, name: str, sql: str, params: dict[str, Any] | None = None
) -> pl.DataFrame:
    """Execute one statement, logging the failing query and turning errors into sentences."""
    import polars as pl

    relational()
    started = time.perf_counter()
    try:
        used = {k: v for k, v in (params or {}).items() if f"${k}" in sql}
        relation = con.sql(sql, params=used)
        fetch = getattr(relation, "to_arrow_table", None) or relation.arrow
        result = pl.from_arrow(fetch())
        assert isinstance(result, pl.DataFrame)
    except duckdb.Error as exc:
        log.error("query %s failed: %s\n%s\nparams=%r", name, exc, sql, params)
        raise WarehouseError(f"the query {name!r} failed: {exc}") from exc
    log.debug("query %s took %.1f ms", name, (time.perf_counter() - started) * 1000)
    return result


def run_rows(
    con: duckdb.DuckDBPyConnection, name: str, sql: str, params: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """`run`, but rows as plain dicts: a command that only prints a few rows need not pay
    half a second to import Polars and pyarrow (`hybridlens metrics`)."""
    started = time.perf_counter()
    try:
        used = {k: v for k, v in (params or {}).items() if f"${k}" in sql}
        cursor = con.execute(sql, used)
        names = [d[0] for d in cursor.description or []]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    except duckdb.Error as exc:
        log.error("query %s failed: %s\n%s\nparams=%r", name, exc, sql, params)
        raise WarehouseError(f"the query {name!r} failed: {exc}") from exc
    log.debug("query %s took %.1f ms", name, (time.perf_counter() - started) * 1000)
    return rows

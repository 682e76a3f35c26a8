"""One read connection shared by the reads of one page run or one report.

Opening a connection costs about 18 ms and a page makes a dozen reads, so `reads` and
`metrics` take either a `Warehouse` (a connection per call, as DESIGN.md's warehouse rules
ask) or a `Session` that holds one read connection, under the shared lock, for a short
batch of reads that belong together, so they also see one state of the warehouse.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from warehouse.db import Warehouse, run_rows


class Session:
    """An open read connection; valid only inside the `session(...)` block that made it.

    It also stands in for its `Warehouse` in a read-only call that takes one (`path`,
    `exists()`, `read()`), such as `warehouse.config.resolve`: `hybridlens metrics` reads
    the stored config and the figures over one connection, as opening one costs 30-70 ms.
    """

    def __init__(self, warehouse: Warehouse, con: Any) -> None:
        self.warehouse = warehouse
        self.con = con
        self._rows: dict[tuple[str, str, str], list[dict[str, Any]]] = {}

    def rows(self, name: str, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        """`run_rows`, once per distinct statement and parameters: a session sees one state
        of the warehouse, so a page asking the same (the uptime of one range for its model,
        environment and fleet tables) gets the first answer back. Callers must not mutate it."""
        key = (name, sql, repr(sorted(params.items())))
        found = self._rows.get(key)
        if found is None:
            found = self._rows[key] = run_rows(self.con, name, sql, params)
        return found

    @property
    def path(self) -> Path:
        return self.warehouse.path

    def exists(self) -> bool:
        return True  # it is open

    @contextmanager
    def read(self) -> Iterator[Any]:
        yield self.con


Source = Warehouse | Session


@contextmanager
def session(warehouse: Warehouse) -> Iterator[Session]:
    """Hold one read connection for a batch of reads; keep the batch short, as a writer
    waits for it."""
    with warehouse.read() as con:
        yield Session(warehouse, con)


@contextmanager
def reading(source: Source) -> Iterator[Session]:
    """The session itself, or a session for this batch of reads from a `Warehouse`."""
    if isinstance(source, Session):
        yield source
        return
    with session(source) as s:
        yield s


@contextmanager
def connection(source: Source) -> Iterator[Any]:
    """The session's connection, or a fresh one for a single read from a `Warehouse`."""
    if isinstance(source, Session):
        yield source.con
        return
    with source.read() as con:
        yield con

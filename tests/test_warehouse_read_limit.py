"""A read has a time limit: a runaway query is interrupted and becomes a sentence, the
connection and the lock are released, and the next read and write go ahead."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from warehouse.db import READ_LIMIT_S, Warehouse, read_limit, run
from warehouse.errors import ConfigError, ReadTimeoutError, WarehouseError

RUNAWAY = "SELECT sum(hash(i)) FROM range(1000000000000) t(i)"  # hours on any machine


@pytest.fixture
def fresh(tmp_path: Path) -> Path:
    path = tmp_path / "w.duckdb"
    with Warehouse(path).write():
        pass
    return path


@pytest.mark.parametrize("how", ["run", "execute"])
def test_a_runaway_read_is_stopped_at_its_limit(fresh: Path, how: str) -> None:
    warehouse = Warehouse(fresh, read_limit_s=0.5)
    started = time.monotonic()
    with pytest.raises(ReadTimeoutError) as caught, warehouse.read() as con:
        if how == "run":  # the query helper turns DuckDB errors into WarehouseError first
            run(con, "runaway", RUNAWAY)
        else:
            con.execute(RUNAWAY).fetchall()
    took = time.monotonic() - started
    assert 0.5 <= took < 10, took
    assert isinstance(caught.value, WarehouseError)
    assert str(caught.value) == (
        f"a read of {fresh} ran past its 0.5 s time limit and was stopped: choose a shorter "
        "time range, or raise the limit with HYBRIDLENS_READ_LIMIT_S (seconds, 0 for none)."
    )
    # the connection is gone and the lock is free: a write gets in at once, reads go on
    started = time.monotonic()
    with warehouse.write() as con:
        con.execute("CREATE TABLE after_timeout AS SELECT 1 AS x")
    assert time.monotonic() - started < 5
    with warehouse.read() as con:
        assert con.execute("SELECT x FROM after_timeout").fetchall() == [(1,)]


def test_a_read_within_its_limit_is_not_interrupted_later(fresh: Path) -> None:
    warehouse = Warehouse(fresh, read_limit_s=0.3)
    with warehouse.read() as con:
        assert con.execute("SELECT 42").fetchall() == [(42,)]
    time.sleep(0.5)  # past the limit of the read that ended: its timer must be gone
    assert [t for t in threading.enumerate() if isinstance(t, threading.Timer)] == []
    with warehouse.read() as con:
        assert con.execute("SELECT 43").fetchall() == [(43,)]


def test_the_limit_comes_from_the_variable(monkeypatch: pytest.MonkeyPatch, fresh: Path) -> None:
    monkeypatch.delenv("HYBRIDLENS_READ_LIMIT_S", raising=False)
    assert read_limit() == READ_LIMIT_S == 30.0
    monkeypatch.setenv("HYBRIDLENS_READ_LIMIT_S", "0")
    assert read_limit() is None
    monkeypatch.setenv("HYBRIDLENS_READ_LIMIT_S", "0.4")
    assert read_limit() == 0.4
    with (
        pytest.raises(ReadTimeoutError, match=r"its 0\.4 s time limit"),
        Warehouse(fresh).read() as con,
    ):
        con.execute(RUNAWAY).fetchall()
    for bad in ("soon", "-1", "nan", "inf"):
        monkeypatch.setenv("HYBRIDLENS_READ_LIMIT_S", bad)
        with pytest.raises(ConfigError, match="is not a number of seconds"):
            read_limit()

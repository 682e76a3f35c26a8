"""The warehouse file: migrations, version checks, transactions and the lock under load.

The concurrency test runs a writer process that publishes batches for 30 seconds while a
reader process computes `metrics()` in a loop, both started with multiprocessing's
'spawn' context (a fresh interpreter, as a cron job and a dashboard would be), and prints
the p99 time a reader waited for the lock and the longest time the writer held it.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pytest
from otlp_factory import NS, SpanSpec, evaluation_event, jsonl, traces_request

from ingest.traces import ingest_paths
from warehouse import db as wdb
from warehouse import rollups as wload
from warehouse.config import Config
from warehouse.db import Warehouse, schema_version
from warehouse.errors import (
    SchemaVersionError,
    WarehouseBusyError,
    WarehouseError,
    WarehouseMissingError,
)
from warehouse.lock import lock_stats, locked, reset_lock_stats
from warehouse.metrics import metrics

BASE_NS = 1_791_000_000 * NS  # 2026-10-03T...Z
SPANS_PER_BATCH = 200
CONCURRENCY_SECONDS = 8.0  # at least this long, and at least MIN_ROUNDS loads and reads
MIN_ROUNDS = 10
MAX_CONCURRENCY_SECONDS = 120.0  # a machine this slow fails the round counts instead
DATA_TABLES = (
    "spans",
    "evaluations",
    "rollup_hourly",
    "rollup_latency",
    "rollup_minutes",
    "rollup_accuracy",
    "ingest_log",
    "quarantine",
)


def batch_file(folder: Path, index: int) -> Path:
    """A file of SPANS_PER_BATCH request spans in minute `index`, one with an evaluation."""
    rng = np.random.default_rng(index)
    start = BASE_NS + index * 60 * NS
    specs = [
        SpanSpec(
            trace_id=rng.bytes(16).hex(),
            span_id=rng.bytes(8).hex(),
            start_ns=start + int(rng.integers(0, 59 * NS)),
            duration_ms=float(rng.lognormal(5, 1)),
            status_code=2 if rng.random() < 0.02 else 0,
            attributes={"gen_ai.request.model": f"model-{i % 3}"},
            events=[evaluation_event("accuracy", label="pass", time_ns=start)] if i == 0 else [],
        )
        for i in range(SPANS_PER_BATCH)
    ]
    resource = {"service.name": "api", "deployment.environment.name": f"env-{index % 2}"}
    path = folder / f"batch-{index:05d}.jsonl"
    path.write_bytes(jsonl(traces_request(resource, specs)))
    return path


def snapshot(wh: Warehouse) -> dict[str, list[tuple[Any, ...]]]:
    with wh.read() as con:
        return {
            t: sorted(con.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in DATA_TABLES
        }


# -- migrations -----------------------------------------------------------------------------------
def test_migrations_apply_once(warehouse: Warehouse, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="warehouse.db")
    for _ in range(3):
        with warehouse.write():
            pass
        with warehouse.read() as con:
            (version,) = con.execute(
                "SELECT value FROM _meta WHERE key = 'schema_version'"
            ).fetchone()
    applied = [r.getMessage() for r in caplog.records if "applying migration" in r.getMessage()]
    assert len(applied) == len(wdb.migrations()) == schema_version()
    assert int(version) == schema_version()


def test_a_new_migration_is_applied_once_even_by_a_reader(
    warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An older file opened for reading is brought up to date first, then read; once."""
    with warehouse.write():
        pass
    current = wdb.migrations()
    extra = (current[-1][0] + 1, "999_extra.sql", "CREATE TABLE extra_things (x INTEGER);")
    monkeypatch.setattr(wdb, "migrations", lambda: [*current, extra])
    caplog.set_level(logging.INFO, logger="warehouse.db")
    for _ in range(2):  # a second CREATE TABLE without IF NOT EXISTS would fail
        with warehouse.read() as con:
            assert con.execute("SELECT count(*) FROM extra_things").fetchone() == (0,)
            (version,) = con.execute(
                "SELECT value FROM _meta WHERE key = 'schema_version'"
            ).fetchone()
    assert int(version) == extra[0]
    assert sum("999_extra.sql" in r.getMessage() for r in caplog.records) == 1


def test_a_failing_migration_rolls_back_and_names_itself(
    warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    with warehouse.write():
        pass
    current = wdb.migrations()
    bad = (
        current[-1][0] + 1,
        "999_bad.sql",
        "CREATE TABLE half_done (x INTEGER); SELECT * FROM no_such_table;",
    )
    monkeypatch.setattr(wdb, "migrations", lambda: [*current, bad])
    with pytest.raises(WarehouseError) as info, warehouse.write():
        pass
    assert "999_bad.sql" in str(info.value) and str(warehouse.path) in str(info.value)
    monkeypatch.setattr(wdb, "migrations", lambda: current)
    with warehouse.read() as con:
        assert con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'half_done'"
        ).fetchone() == (0,)
        assert con.execute("SELECT value FROM _meta WHERE key = 'schema_version'").fetchone() == (
            str(current[-1][0]),
        )


def test_a_newer_file_fails_with_a_clear_message(warehouse: Warehouse) -> None:
    with warehouse.write():
        pass
    con = duckdb.connect(str(warehouse.path))
    con.execute("UPDATE _meta SET value = '99' WHERE key = 'schema_version'")
    con.close()
    for open_it in (warehouse.read, warehouse.write):
        with pytest.raises(SchemaVersionError) as info, open_it():
            pass
        message = str(info.value)
        assert "schema version 99" in message
        assert f"only up to {schema_version()}" in message
        assert str(warehouse.path) in message
        assert "upgrade hybridlens" in message
    with pytest.raises(SchemaVersionError):
        metrics(warehouse, Config())
    con = duckdb.connect(str(warehouse.path), read_only=True)
    assert con.execute("SELECT value FROM _meta WHERE key = 'schema_version'").fetchone() == (
        "99",
    ), "the newer file was not touched"
    con.close()


def test_a_missing_warehouse_is_a_sentence_and_is_not_created(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "nothing-here.duckdb")
    for call in (
        lambda: wh.read().__enter__(),
        lambda: wh.query("metrics_counts"),
        lambda: metrics(wh, Config()),
    ):
        with pytest.raises(WarehouseMissingError) as info:
            call()
        message = str(info.value)
        assert message.startswith(f"no warehouse at {wh.path}")
        assert "hybridlens ingest traces" in message and "--warehouse" in message
        assert "HYBRIDLENS_WAREHOUSE" in message
    assert not wh.path.exists()
    assert not list(tmp_path.iterdir()), "not even a lock file"


def test_default_path_honours_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("HYBRIDLENS_WAREHOUSE", raising=False)
    assert Warehouse().path == Path("hybridlens.duckdb")
    monkeypatch.setenv("HYBRIDLENS_WAREHOUSE", str(tmp_path / "elsewhere.duckdb"))
    assert Warehouse().path == tmp_path / "elsewhere.duckdb"
    assert Warehouse(tmp_path / "explicit.duckdb").path == tmp_path / "explicit.duckdb"


def test_a_failing_query_is_a_sentence(warehouse: Warehouse) -> None:
    with warehouse.write():
        pass
    with pytest.raises(WarehouseError, match="no query named 'no_such_query'"):
        warehouse.query("no_such_query")


# -- transactions ---------------------------------------------------------------------------------
def test_a_load_is_one_transaction(
    warehouse: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure after the spans went in (while refreshing the rollups) leaves nothing."""
    assert ingest_paths(warehouse, [batch_file(tmp_path, 0)], Config()).ok
    before = snapshot(warehouse)
    second = batch_file(tmp_path, 1)

    def boom(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("disk full, say")

    monkeypatch.setattr(wload, "refresh_rollups", boom)
    failed = ingest_paths(warehouse, [second], Config())  # the driver isolates the input
    assert failed.failures == [f"{second} cannot be published: disk full, say"]
    logs = ("quarantine", "ingest_log")  # which now say that it failed, and nothing more
    after = snapshot(warehouse)
    assert {k: v for k, v in after.items() if k not in logs} == {
        k: v for k, v in before.items() if k not in logs
    }
    monkeypatch.undo()
    # the failed file was not recorded as loaded: the next run loads all of it
    summary = ingest_paths(warehouse, [second], Config())
    assert summary.ok and summary.rows("spans") == SPANS_PER_BATCH and summary.files_skipped == 0
    assert metrics(warehouse, Config())["requests"].sum() == 2 * SPANS_PER_BATCH


def test_a_process_killed_mid_load_leaves_the_previous_state(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    """The writer dies inside the transaction (after the spans are in): the file and the lock
    come back as they were."""
    assert ingest_paths(warehouse, [batch_file(tmp_path, 0)], Config()).ok
    before = snapshot(warehouse)
    second = batch_file(tmp_path, 1)
    script = textwrap.dedent(
        f"""
        import os
        from pathlib import Path
        from ingest.traces import ingest_paths
        from warehouse import rollups
        from warehouse.config import Config
        from warehouse.db import Warehouse

        def die(*args, **kwargs):
            os._exit(9)

        rollups.refresh_rollups = die
        ingest_paths(Warehouse({str(warehouse.path)!r}), [Path({str(second)!r})], Config())
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert done.returncode == 9, done.stderr
    assert snapshot(warehouse) == before
    with locked(warehouse.path, exclusive=True, timeout_s=1):
        pass  # the dead process's lock went with it


# -- the lock -------------------------------------------------------------------------------------
def test_a_busy_warehouse_waits_a_bounded_time_and_says_so(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    reset_lock_stats()
    with locked(path, exclusive=True, timeout_s=1):
        started = time.monotonic()
        with (
            pytest.raises(WarehouseBusyError) as info,
            locked(path, exclusive=False, timeout_s=0.3),
        ):
            pass
        waited = time.monotonic() - started
    assert 0.3 <= waited < 2.0
    message = str(info.value)
    assert str(path) in message and "busy" in message and "Try again" in message
    # readers share; a writer waits for them
    with (
        locked(path, exclusive=False, timeout_s=1),
        locked(path, exclusive=False, timeout_s=1),
        pytest.raises(WarehouseBusyError),
        locked(path, exclusive=True, timeout_s=0.1),
    ):
        pass
    assert lock_stats()["write_holds"] == 1


# -- concurrency ----------------------------------------------------------------------------------
def _writer(path: str, seconds: float, ready: Any, go: Any, out: Any) -> None:
    """Publish one new file per iteration for `seconds` and at least MIN_ROUNDS times (a busy
    machine takes longer, not fewer rounds); report batches, errors, lock stats."""
    errors: list[str] = []
    batches = 0
    try:
        wh = Warehouse(path)
        folder = Path(path).parent / "batches"
        folder.mkdir(exist_ok=True)
        ready.put("writer")
        go.wait()
        reset_lock_stats()
        started = time.monotonic()
        while (elapsed := time.monotonic() - started) < MAX_CONCURRENCY_SECONDS and (
            elapsed < seconds or batches < MIN_ROUNDS
        ):
            batches += 1
            file = batch_file(folder, batches)
            try:
                summary = ingest_paths(wh, [file], Config())
                if not summary.ok or summary.rows("spans") != SPANS_PER_BATCH:
                    errors.append(f"batch {batches}: {summary}")
            except Exception as exc:
                errors.append(f"batch {batches}: {type(exc).__name__}: {exc}")
        out.put(
            {
                "role": "writer",
                "batches": batches,
                "errors": errors,
                "seconds": time.monotonic() - started,
                **lock_stats(),
            }
        )
    except BaseException as exc:  # report, never hang the parent
        out.put({"role": "writer", "batches": batches, "errors": [*errors, repr(exc)]})


def _reader(path: str, ready: Any, go: Any, stop: Any, out: Any) -> None:
    """Compute metrics() until told to stop; report every lock wait and what was seen."""
    errors: list[str] = []
    waits: list[float] = []
    totals: list[int] = []
    try:
        wh = Warehouse(path)
        config = Config()
        ready.put("reader")
        go.wait()
        started = time.monotonic()
        while not stop.is_set() or len(totals) < MIN_ROUNDS:
            reset_lock_stats()
            try:
                frame = metrics(wh, config)
                totals.append(int(frame["requests"].sum()))
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
            waits.append(lock_stats()["longest_wait_s"])
        out.put(
            {
                "role": "reader",
                "waits": waits,
                "totals": totals,
                "errors": errors,
                "seconds": time.monotonic() - started,
            }
        )
    except BaseException as exc:
        out.put(
            {
                "role": "reader",
                "waits": waits,
                "totals": totals,
                "errors": [*errors, repr(exc)],
                "seconds": 0.0,
            }
        )


@pytest.mark.slow
def test_a_writer_and_a_reader_in_two_processes(tmp_path: Path, record_property: Any) -> None:
    path = tmp_path / "busy.duckdb"
    with Warehouse(path).write():
        pass  # the file exists (migrated) before the reader's first look
    ctx = multiprocessing.get_context("spawn")
    ready, out = ctx.Queue(), ctx.Queue()
    go, stop = ctx.Event(), ctx.Event()
    writer = ctx.Process(target=_writer, args=(str(path), CONCURRENCY_SECONDS, ready, go, out))
    reader = ctx.Process(target=_reader, args=(str(path), ready, go, stop, out))
    writer.start()
    reader.start()
    try:
        assert {ready.get(timeout=120), ready.get(timeout=120)} == {"writer", "reader"}
        go.set()
        results = {}
        first = out.get(timeout=MAX_CONCURRENCY_SECONDS + 300)
        results[first["role"]] = first
        stop.set()
        second = out.get(timeout=300)
        results[second["role"]] = second
    finally:
        stop.set()
        for proc in (writer, reader):
            proc.join(timeout=60)
            if proc.is_alive():
                proc.kill()
    w, r = results["writer"], results["reader"]
    assert w["errors"] == [] and r["errors"] == []
    assert w["seconds"] >= CONCURRENCY_SECONDS and r["seconds"] >= CONCURRENCY_SECONDS
    assert w["batches"] >= MIN_ROUNDS and len(r["totals"]) >= MIN_ROUNDS
    # every read saw whole loads only, never fewer requests than the read before
    assert all(t % SPANS_PER_BATCH == 0 for t in r["totals"])
    assert r["totals"] == sorted(r["totals"])
    assert metrics(Warehouse(path), Config())["requests"].sum() == w["batches"] * SPANS_PER_BATCH

    waits_ms = np.array(r["waits"]) * 1000
    p99_wait, max_wait = float(np.percentile(waits_ms, 99)), float(waits_ms.max())
    hold_ms = w["longest_write_hold_s"] * 1000
    record_property("reader_lock_wait_p99_ms", round(p99_wait, 1))
    record_property("reader_lock_wait_max_ms", round(max_wait, 1))
    record_property("writer_longest_hold_ms", round(hold_ms, 1))
    record_property("writer_batches", w["batches"])
    record_property("reader_reads", len(r["totals"]))
    print(
        f"\nconcurrency over {w['seconds']:.0f} s: writer published {w['batches']} batches of "
        f"{SPANS_PER_BATCH} spans (longest lock hold {hold_ms:.1f} ms); reader ran "
        f"{len(r['totals'])} metrics() calls (lock wait p99 {p99_wait:.1f} ms, "
        f"max {max_wait:.1f} ms); errors: 0 and 0 (pid {os.getpid()})"
    )
    # bounded: a reader never waits longer than a few of the writer's holds
    assert max_wait < 10_000 and hold_ms < 10_000

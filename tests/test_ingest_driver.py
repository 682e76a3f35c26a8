"""The collector driver through the in-memory collector: no OTLP, a real warehouse.

The in-memory collector gives rows for the `evaluations` table (any table with a write
spec would do), rejects, skips, unreadable units and a collector that raises, so each
rule of the driver is checked on its own: chunk order and line renumbering, quarantine,
skipped counts, resume, a failing unit, a failing publish, and the worker pool.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ingest import driver, memory, registry
from ingest.contract import Collector, Unit
from ingest.errors import IngestError
from ingest.files import Source, resume
from ingest.memory import MemoryCollector, crash, reject, row, skip, unreadable
from ingest.otlp import EVALUATION_SCHEMA
from warehouse.config import Config
from warehouse.db import Warehouse
from warehouse.report import LoadReport, Status

SCHEMAS = {"evaluations": EVALUATION_SCHEMA}


def evaluation(n: int, **extra: Any) -> dict[str, Any]:
    values = {
        "trace_id": f"{n:032x}",
        "span_id": f"{n:016x}",
        "evaluation_name": "accuracy",
        "time": f"2026-10-26T08:{n % 60:02d}:00+00:00",
        "score": n / 100,
        "origin": "test",
    }
    return row("evaluations", **{**values, **extra})


def run(
    wh: Warehouse, *sources: Any, chunk: int = 0, workers: int = 1, skipped: int = 0
) -> LoadReport:
    collector = MemoryCollector(tables=("evaluations",), schemas=SCHEMAS, chunk=chunk)
    return driver.load(
        wh, list(sources), Config(), collector, files_skipped=skipped, workers=workers
    )


def rows(wh: Warehouse, query: str) -> list[tuple[Any, ...]]:
    with wh.read() as con:
        return con.execute(query).fetchall()


def scores(wh: Warehouse) -> list[float]:
    return [r[0] for r in rows(wh, "SELECT score FROM evaluations ORDER BY score")]


def test_the_registry_names_the_collectors():
    assert {"otlp-file", "memory"} <= set(registry.names())
    assert isinstance(registry.get("memory"), Collector)
    assert registry.for_head(memory.MAGIC[:8]) is registry.get("memory")
    assert registry.for_head(b'{"resourceSpans"') is registry.get("otlp-file")
    with pytest.raises(IngestError, match="no collector named 'nope'; the registered ones"):
        registry.get("nope")
    with pytest.raises(TypeError, match="does not implement"):
        registry.register(object())  # type: ignore[arg-type]


@pytest.mark.parametrize("workers", [1, 2])
def test_chunks_are_staged_in_order_and_their_lines_renumbered(
    warehouse: Warehouse, workers: int, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(driver, "PARALLEL_BYTES", 0)  # the worker pool even for a small load
    records = [evaluation(1), evaluation(2), reject("bad score", "{x}"), evaluation(3)]
    records += [evaluation(4), reject("no span context"), evaluation(5)]
    report = run(warehouse, memory.source("mem://a", records), chunk=2, workers=workers)
    # line 1 is the header; the two rejects are records 3 and 6, so lines 4 and 7, although
    # each was line 1 or 2 of its own chunk of two records
    got = rows(warehouse, "SELECT uri, location, error, raw_excerpt FROM quarantine")
    assert got == [
        ("mem://a", "line 4", "bad score", "{x}"),
        ("mem://a", "line 7", "no span context", ""),
    ]
    assert scores(warehouse) == [0.01, 0.02, 0.03, 0.04, 0.05]
    assert [(i.uri, i.status, i.quarantined) for i in report.inputs] == [
        ("mem://a", Status.PARTIAL, 2)
    ]
    assert report.rows("evaluations") == 5 and report.quarantined == 2 and not report.ok


def test_skips_are_counted_per_input_and_logged(warehouse: Warehouse):
    a = memory.source(
        "mem://a", [skip("metrics requests"), evaluation(1), skip("metrics requests")]
    )
    b = memory.source("mem://b", [skip("empty requests")])
    report = run(warehouse, a, b, chunk=1)
    assert report.ok and report.rows("evaluations") == 1
    assert report.skipped == {"metrics requests": 2, "empty requests": 1}
    logged = rows(warehouse, "SELECT uri, status, skipped FROM ingest_log ORDER BY uri")
    assert logged == [
        ("mem://a", "ok", "2 metrics requests"),
        ("mem://b", "ok", "1 empty requests"),
    ]


def test_an_input_resumes_from_its_last_complete_record(warehouse: Warehouse):
    records = [evaluation(1), evaluation(2)]
    tail = b'{"table": "evaluations", "row": {"trace_id"'
    first = run(warehouse, memory.source("mem://grow", records, tail=tail))
    assert first.ok and first.rows("evaluations") == 2 and first.pending_bytes == len(tail)
    assert [i.status for i in first.inputs] == [Status.PENDING]
    complete = len(memory.encode(records))
    assert rows(warehouse, "SELECT byte_offset, status FROM ingest_log") == [(complete, "pending")]

    grown = memory.source("mem://grow", [*records, evaluation(3)])
    sources, skipped = resume(warehouse, [grown])
    assert skipped == 0 and sources[0].unit.start == complete  # type: ignore[union-attr]
    second = run(warehouse, *sources)
    assert second.ok and second.rows("evaluations") == 1 and second.duplicates() == 0

    sources, skipped = resume(warehouse, [grown])
    assert (sources, skipped) == ([], 1)  # unchanged since: nothing to read
    changed = memory.source("mem://grow", [evaluation(9)])
    sources, skipped = resume(warehouse, [changed])
    assert sources[0].unit.start == 0  # type: ignore[union-attr]
    third = run(warehouse, *sources, skipped=skipped)
    assert third.rows("evaluations") == 1 and scores(warehouse) == [0.01, 0.02, 0.03, 0.09]


@pytest.mark.parametrize("bad", [crash("boom"), unreadable("cannot read the thing")])
def test_a_failing_unit_fails_its_input_only(warehouse: Warehouse, bad: dict[str, Any]):
    a = memory.source("mem://a", [evaluation(1), evaluation(2), bad, evaluation(3)])
    b = memory.source("mem://b", [evaluation(4)])
    report = run(warehouse, a, b, chunk=2)
    statuses = {i.uri: i.status for i in report.inputs}
    assert statuses == {"mem://a": Status.FAILED, "mem://b": Status.OK}
    expected = (
        "mem://a: the memory collector failed (RuntimeError: boom)"
        if "raise" in bad
        else "cannot read the thing"
    )
    assert report.failures == [expected] and not report.ok
    # chunks are [header, 1], [2, bad], [3]: the other chunks load (a failed input is read
    # again in full next time); a unit that raised gave nothing, an unreadable one what it
    # read before the damage
    if "raise" in bad:
        assert scores(warehouse) == [0.01, 0.03, 0.04]
    else:
        assert scores(warehouse) == [0.01, 0.02, 0.03, 0.04]
    assert rows(warehouse, "SELECT uri, location, error FROM quarantine") == [
        ("mem://a", "file", expected)
    ]
    # a failed input is read again next time: its ingest_log row does not count as loaded
    again, skipped = resume(warehouse, [a, b])
    assert [s.unit.uri for s in again] == ["mem://a"] and skipped == 1  # type: ignore[union-attr]


def test_an_input_that_cannot_be_published_is_failed_alone(warehouse: Warehouse):
    good = memory.source("mem://good", [evaluation(1)])
    poison = memory.source("mem://poison", [evaluation(2), evaluation(3, trace_id=None)])
    later = memory.source("mem://later", [evaluation(4)])
    report = run(warehouse, good, poison, later)
    statuses = [(i.uri, i.status) for i in report.inputs]
    assert statuses == [
        ("mem://good", Status.OK),
        ("mem://poison", Status.FAILED),
        ("mem://later", Status.OK),
    ]
    (failure,) = report.failures
    assert failure.startswith("mem://poison cannot be published: ")
    assert "\n" not in failure and "trace_id" in failure
    assert scores(warehouse) == [0.01, 0.04]  # nothing of the poisoned input, all else
    logged = rows(warehouse, "SELECT uri, rows, status FROM ingest_log ORDER BY uri")
    assert logged == [
        ("mem://good", 1, "ok"),
        ("mem://later", 1, "ok"),
        ("mem://poison", 0, "failed"),
    ]
    assert rows(warehouse, "SELECT uri, location, error FROM quarantine") == [
        ("mem://poison", "file", failure)
    ]


def test_a_refused_input_is_logged_failed_and_the_rest_loads(warehouse: Warehouse):
    from ingest.files import Refused

    report = run(
        warehouse,
        Refused("mem://gone", "cannot read mem://gone"),
        memory.source("mem://a", [evaluation(1)]),
    )
    assert report.failures == ["cannot read mem://gone"] and report.rows("evaluations") == 1
    assert rows(warehouse, "SELECT uri, status FROM ingest_log ORDER BY uri") == [
        ("mem://a", "ok"),
        ("mem://gone", "failed"),
    ]


def test_big_loads_are_published_in_groups(warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(driver, "GROUP_ROWS", 2)
    sources = [
        memory.source(f"mem://{n}", [evaluation(2 * n), evaluation(2 * n + 1)]) for n in range(3)
    ]
    report = run(warehouse, *sources)
    assert len(report.load_ids) == 3 and report.rows("evaluations") == 6
    assert rows(warehouse, "SELECT count(DISTINCT load_id) FROM ingest_log") == [(3,)]


def test_stage_collected_is_what_the_receiver_stages_with(warehouse: Warehouse):
    from ingest.contract import Rejected, Unit
    from warehouse.publish import publish
    from warehouse.report import InputReport
    from warehouse.stage import Stage

    collector = MemoryCollector(schemas=SCHEMAS)
    body = memory.encode([evaluation(1), reject("bad")])
    collected = collector.collect(Unit("spool:1", body=body), Config())
    assert collected.rejected == [Rejected("line 3", "bad", "")]
    stage = Stage()
    report = InputReport("spool:1")
    index = stage.begin(report)
    driver.stage_collected(stage, index, report, collected, line_base=10)
    loaded = publish(warehouse, stage, source="receiver")
    stage.close()
    assert loaded.rows("evaluations") == 1
    assert rows(warehouse, "SELECT source, location FROM quarantine") == [("receiver", "line 13")]


CASES = Path(__file__).parent / "cases"


def test_every_registered_collector_has_its_case_folder():
    for name in registry.names():
        folder = CASES / name
        assert (folder / "README.md").is_file(), f"tests/cases/{name}/README.md is missing"
        assert any(p.name != "README.md" for p in folder.iterdir()), f"no cases in {folder}"


def test_memory_case_files(warehouse: Warehouse):
    path = CASES / "memory" / "two-rows-a-skip-a-reject.mem"
    body = path.read_bytes()
    report = run(warehouse, Source(Unit(str(path), path=path, body=body), len(body)))
    (entry,) = report.inputs
    assert (entry.status, entry.quarantined, entry.rows) == (Status.PARTIAL, 1, {"evaluations": 2})
    assert entry.skipped == {"ordinary log records": 1} and entry.pending_bytes == len(
        body.rsplit(b"\n", 1)[1]
    )
    assert rows(warehouse, "SELECT location, error FROM quarantine") == [
        ("line 4", "score is not a number")
    ]


# -- a big input published in pieces ---------------------------------------------------------
def test_a_big_input_is_published_in_pieces_each_logging_its_offset(
    warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Memory and the lock hold are bounded by GROUP_ROWS, not by the size of one file."""
    from ingest.files import unit_hash

    monkeypatch.setattr(driver, "GROUP_ROWS", 4)
    records = [evaluation(n) for n in range(1, 11)]
    big = memory.source("mem://big", [*records[:5], reject("bad"), *records[5:]])
    small = memory.source("mem://small", [evaluation(20)])
    report = run(warehouse, small, big, chunk=2)
    # one report per input, whatever the pieces: rows, rejects and status add up
    assert [(i.uri, i.status, i.rows, i.quarantined) for i in report.inputs] == [
        ("mem://small", Status.OK, {"evaluations": 1}, 0),
        ("mem://big", Status.PARTIAL, {"evaluations": 10}, 1),
    ]
    assert report.inputs[1].byte_offset == big.size and len(report.load_ids) == 3
    assert len(scores(warehouse)) == 11
    logged = rows(
        warehouse,
        "SELECT byte_offset, content_hash, rows, quarantined, status FROM ingest_log "
        "WHERE uri = 'mem://big' ORDER BY load_id",
    )
    assert [r[0] for r in logged] == sorted(r[0] for r in logged) and logged[-1][0] == big.size
    # each piece's hash is the hash of the bytes before its offset: resume trusts it
    assert [r[1] for r in logged] == [unit_hash(big.unit, r[0]) for r in logged]
    assert sum(r[2] for r in logged) == 10 and sum(r[3] for r in logged) == 1
    # a piece reads "pending" (the rest follows), or "partial" where it quarantined records
    assert [r[4] for r in logged] == ["pending", "partial", "ok"]
    assert resume(warehouse, [big]) == ([], 1)  # done: nothing to read again
    # line numbers run on across the pieces
    assert rows(warehouse, "SELECT location FROM quarantine") == [("line 7",)]


def test_a_crash_between_pieces_resumes_from_the_last_logged_piece(
    warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(driver, "GROUP_ROWS", 2)
    records = [evaluation(n) for n in range(1, 9)]
    big = memory.source("mem://big", records)
    real = driver.publish_isolating
    calls = []

    def crash_on_third(*args: Any, **kwargs: Any) -> LoadReport:
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt  # the process dies between two pieces
        return real(*args, **kwargs)

    monkeypatch.setattr(driver, "publish_isolating", crash_on_third)
    with pytest.raises(KeyboardInterrupt):
        run(warehouse, big, chunk=2)
    loaded = len(scores(warehouse))  # the pieces published before the crash, all logged
    assert 0 < loaded < 8 and rows(warehouse, "SELECT sum(rows) FROM ingest_log") == [(loaded,)]
    (offset,) = rows(warehouse, "SELECT max(byte_offset) FROM ingest_log")[0]
    monkeypatch.setattr(driver, "publish_isolating", real)
    sources, skipped = resume(warehouse, [big])
    assert skipped == 0 and sources[0].unit.start == offset  # type: ignore[union-attr]
    again = run(warehouse, *sources, chunk=2)
    assert again.ok and again.rows("evaluations") == 8 - loaded and again.duplicates() == 0
    assert scores(warehouse) == [n / 100 for n in range(1, 9)]


def test_a_piece_that_cannot_be_published_fails_its_input_from_there(
    warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(driver, "GROUP_ROWS", 2)
    # units: [header, 1], [2, 3] (a piece), [poison, 5] (a piece that fails), [6] (dropped)
    records = [evaluation(1), evaluation(2), evaluation(3), evaluation(4, trace_id=None)]
    big = memory.source("mem://big", [*records, evaluation(5), evaluation(6)])
    later = memory.source("mem://later", [evaluation(7)])
    report = run(warehouse, big, later, chunk=2)
    assert [(i.uri, i.status) for i in report.inputs] == [
        ("mem://big", Status.FAILED),
        ("mem://later", Status.OK),
    ]
    failed = report.inputs[0]
    assert failed.rows == {"evaluations": 3} and "cannot be published" in str(failed.message)
    assert scores(warehouse) == [0.01, 0.02, 0.03, 0.07]  # the first piece and the next input
    # the next run reads the input again from the end of its last published piece
    sources, _ = resume(warehouse, [big])
    (first_piece,) = rows(
        warehouse, "SELECT byte_offset FROM ingest_log WHERE uri = 'mem://big' AND rows = 3"
    )
    assert sources[0].unit.start == first_piece[0]  # type: ignore[union-attr]


def test_a_poisoned_input_is_isolated_without_collecting_anything_twice(
    warehouse: Warehouse,
) -> None:
    collected: list[str] = []

    class Counting(MemoryCollector):
        def collect(self, unit: Unit, config: Config) -> Any:
            collected.append(unit.uri)
            return super().collect(unit, config)

    collector = Counting(tables=("evaluations",), schemas=SCHEMAS)
    sources = [
        memory.source("mem://good", [evaluation(1)]),
        memory.source("mem://poison", [evaluation(2, trace_id=None)]),
        memory.source("mem://later", [evaluation(3)]),
    ]
    report = driver.load(warehouse, sources, Config(), collector, workers=1)
    assert [i.status for i in report.inputs] == [Status.OK, Status.FAILED, Status.OK]
    assert collected == ["mem://good", "mem://poison", "mem://later"]
    assert scores(warehouse) == [0.01, 0.03]

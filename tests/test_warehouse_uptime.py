"""Uptime kept at publish time: incremental refreshes equal a build from scratch, and one
environment's figures never depend on another environment's newest minute.

The scenario is small on purpose: env-a serves five requests a minute from 10:00 to 10:59
UTC on nine days running, so each such minute is judged, and from the eighth day on a
silent minute in that hour is down (its usual traffic, the median of the weeks before, is
5); env-b serves a few requests at 03:00. A span from the future in env-b would, if
env-a were judged up to the newest minute of any environment, make env-a's silent
10:00 hours of the following weeks down.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from otlp_factory import NS, SpanSpec, jsonl, traces_request

from ingest.traces import ingest_paths
from warehouse import reads
from warehouse.config import Config, parse
from warehouse.db import Warehouse, run
from warehouse.load import rebuild_rollups
from warehouse.metrics import metrics
from warehouse.session import session

DAY0 = datetime(2026, 10, 1, tzinfo=UTC)
FUTURE = DAY0 + timedelta(days=700)


def _ns(t: datetime) -> int:
    return int(t.timestamp()) * NS


def _requests(env: str, times: list[datetime]) -> bytes:
    spans = [SpanSpec(start_ns=_ns(t), attributes={"gen_ai.request.model": "m"}) for t in times]
    resource = {"service.name": f"svc-{env}", "deployment.environment.name": env}
    return jsonl(traces_request(resource, spans))


def _env_a_days(days: range) -> list[datetime]:
    return [
        DAY0 + timedelta(days=d, hours=10, minutes=m, seconds=s)
        for d in days
        for m in range(60)
        for s in (0, 10, 20, 30, 40)
    ]


# The clock-skew guard would quarantine FUTURE at ingest; these tests are about what the
# rollups do if such a span is let in (a skew set wide on purpose), so they allow it.
LENIENT = parse({"ingest": {"max_clock_skew_hours": 87600}}, "tests/test_warehouse_uptime.py")


def _load(wh: Warehouse, root: Path, name: str, body: bytes) -> None:
    path = root / f"{name}.jsonl"
    path.write_bytes(body)
    summary = ingest_paths(wh, [path], LENIENT)
    assert summary.ok, summary.failures


def _env_b() -> list[datetime]:
    return [DAY0 + timedelta(days=d, hours=3) for d in range(9)]


def _uptime_rows(wh: Warehouse) -> pl.DataFrame:
    with wh.read() as con:
        frame = run(
            con,
            "rows",
            "SELECT environment, minute, requests, errors, expected FROM rollup_uptime_minutes",
        )
    return frame.sort("environment", "minute")


@pytest.fixture(scope="module")
def one_load(tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    root = tmp_path_factory.mktemp("uptime-one")
    wh = Warehouse(root / "w.duckdb")
    # day 8 is missing minutes 10:20-10:29: silent where a minute a week before had traffic
    times = [t for t in _env_a_days(range(9)) if not (t.day == 8 and 20 <= t.minute < 30)]
    _load(wh, root, "a", _requests("env-a", times) + _requests("env-b", _env_b()))
    return wh


def test_silence_after_a_week_of_traffic_is_down(one_load: Warehouse) -> None:
    frame = metrics(one_load, Config(), by=("environment",))
    a = frame.filter(pl.col("environment") == "env-a").row(0, named=True)
    assert a["requests"] == (9 * 60 - 10) * 5
    down = reads.down_minutes(one_load, Config(), start=None, end=None)
    mine = down.filter(pl.col("environment") == "env-a")
    assert mine["minute"].to_list() == [
        DAY0 + timedelta(days=7, hours=10, minutes=m) for m in range(20, 30)
    ]
    assert set(mine["cause"].to_list()) == {"no traffic"}
    assert a["uptime"] == pytest.approx(530 / 540)


def test_a_span_from_the_future_in_one_environment_moves_no_other(
    one_load: Warehouse, tmp_path: Path
) -> None:
    before = metrics(one_load, Config(), by=("environment",))
    daily_before = reads.uptime_daily(one_load, Config(), start=None, end=None)
    copy = Warehouse(tmp_path / "copy.duckdb")
    copy.path.write_bytes(one_load.path.read_bytes())
    _load(copy, tmp_path, "future", _requests("env-b", [FUTURE]))

    after = metrics(copy, Config(), by=("environment",))
    columns = [c for c in before.columns if c != "requests"]
    a_before = before.filter(pl.col("environment") == "env-a").select(columns)
    a_after = after.filter(pl.col("environment") == "env-a").select(columns)
    assert a_after.to_dicts() == a_before.to_dicts()
    daily_after = reads.uptime_daily(copy, Config(), start=None, end=None)
    assert daily_after.filter(pl.col("environment") == "env-a").to_dicts() == (
        daily_before.filter(pl.col("environment") == "env-a").to_dicts()
    )
    # env-b's own rows do not fill 700 days of minutes either
    assert _uptime_rows(copy).height < _uptime_rows(one_load).height + 5 * 24 * 60

    # the default range ends at the newest data not beyond now + the clock skew
    horizon = DAY0 + timedelta(days=30)
    bounds = reads.bounds(copy, horizon=horizon).row(0, named=True)
    assert bounds["last_request"] < DAY0 + timedelta(days=10)
    assert reads.bounds(copy).row(0, named=True)["last_request"] == FUTURE


def test_incremental_loads_keep_the_rollup_equal_to_one_load(
    one_load: Warehouse, tmp_path: Path
) -> None:
    """Days loaded out of order (a backfill of the first days last) refresh exactly the
    minutes they change, including those up to four weeks later and the gap minutes."""
    wh = Warehouse(tmp_path / "w.duckdb")
    times = [t for t in _env_a_days(range(9)) if not (t.day == 8 and 20 <= t.minute < 30)]
    days = sorted({t.date() for t in times})
    order = days[4:]
    random.Random(7).shuffle(order)
    for i, day in enumerate([*order, *days[:4]]):
        chunk = [t for t in times if t.date() == day]
        _load(wh, tmp_path, f"a{i}", _requests("env-a", chunk))
    _load(wh, tmp_path, "b", _requests("env-b", _env_b()))
    assert _uptime_rows(wh).to_dicts() == _uptime_rows(one_load).to_dicts()
    rebuild_rollups(wh)
    assert _uptime_rows(wh).to_dicts() == _uptime_rows(one_load).to_dicts()


def test_fleet_totals_are_the_sum_of_the_parts(one_load: Warehouse) -> None:
    """`metrics(by=())`: one row, the fleet's requests, p95 over every request together,
    uptime over every environment's judged minutes."""
    fleet = metrics(one_load, Config(), by=())
    per_env = metrics(one_load, Config(), by=("environment",))
    assert fleet.height == 1 and "environment" not in fleet.columns
    row = fleet.row(0, named=True)
    assert row["requests"] == per_env["requests"].sum()
    with session(one_load) as s:
        assert (
            reads.fleet_latency(s, start=None, end=None)["latency_p95_ms"][0]
            == row["latency_p95_ms"]
        )
        up = reads.uptime_daily(s, Config(), start=None, end=None)
    n_up, n_down = int(up["up_minutes"].sum()), int(up["down_minutes"].sum())
    assert row["uptime"] == (n_up / (n_up + n_down) if n_up + n_down else None)
    empty = metrics(one_load, Config(), by=(), start=FUTURE, end=FUTURE + timedelta(days=1))
    assert empty.is_empty()

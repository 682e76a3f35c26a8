"""The daily latency histogram (migration 010): always the sum of its hours, and every
percentile read through it equal to the same percentile read from the hours alone.

Spans of three UTC days, the first and last partial, go in two loads; the second lands in
the middle of the second day, so a refresh rebuilds that day from the hours around it.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from otlp_factory import SpanSpec, jsonl, traces_request

from ingest.traces import ingest_paths
from warehouse.config import Config
from warehouse.db import Warehouse, read_sql, run_rows
from warehouse.metrics import _FAR, _latency_params, filter_params, metrics

NS = 10**9
START = datetime(2026, 10, 4, 19, tzinfo=UTC)  # 19:00: the first day is partial
HOURS = 60  # to 2026-10-07 07:00: two whole days between partial ones


def _spans(path: Path, rng: random.Random, hours: range) -> None:
    specs = []
    for h in hours:
        for _ in range(rng.randint(3, 12)):
            start = START + timedelta(hours=h, seconds=rng.randint(0, 3599))
            specs.append(
                SpanSpec(
                    start_ns=int(start.timestamp()) * NS,
                    duration_ms=rng.lognormvariate(4.5, 0.8),
                    status_code=2 if rng.random() < 0.05 else 0,
                    attributes={"gen_ai.request.model": rng.choice(["m-a", "m-b"])},
                )
            )
    resources = [{"service.name": "svc", "deployment.environment.name": e} for e in "xy"]
    requests = [traces_request(resources[i % 2], specs[i::2]) for i in range(2)]
    path.write_bytes(jsonl(*requests))


@pytest.fixture(scope="module")
def wh(tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    tmp = tmp_path_factory.mktemp("daily")
    rng = random.Random(10)
    _spans(tmp / "a.jsonl", rng, range(HOURS))
    _spans(tmp / "b.jsonl", rng, range(28, 33))  # late spans in the middle of the 2nd day
    warehouse = Warehouse(tmp / "w.duckdb")
    assert ingest_paths(warehouse, [tmp / "a.jsonl"], Config()).ok
    assert ingest_paths(warehouse, [tmp / "b.jsonl"], Config()).ok
    return warehouse


def test_each_day_is_the_sum_of_its_hours(wh: Warehouse) -> None:
    with wh.read() as con:
        daily = run_rows(con, "daily", "SELECT * FROM rollup_latency_daily ORDER BY ALL")
        summed = run_rows(
            con,
            "summed",
            "SELECT timezone('UTC', date_trunc('day', timezone('UTC', hour))) AS day, "
            "environment, model, version, bucket, sum(n) AS n FROM rollup_latency "
            "GROUP BY ALL ORDER BY ALL",
        )
    assert len({r["day"] for r in daily}) == 4
    assert daily == summed


def _percentiles(
    con: Any, group: tuple[str, ...], params: dict[str, Any], grain: str, *, days: bool
) -> Any:
    """The percentile query as `metrics` runs it, or (`days=False`) from the hours alone."""
    sql = read_sql("latency_percentiles").format(group=", ".join(group) or "fleet")
    bound = _latency_params(group, params, grain)
    if not days:
        bound = {**bound, "day_lo": _FAR, "day_hi": _FAR}
    return run_rows(con, "latency", sql, bound)


RANGES = [
    (None, None),
    (START, None),
    (None, START + timedelta(hours=40)),
    (START + timedelta(hours=3, minutes=30), START + timedelta(hours=52, minutes=10)),
    (datetime(2026, 10, 5, tzinfo=UTC), datetime(2026, 10, 7, tzinfo=UTC)),  # whole days
    (datetime(2026, 10, 5, 2, tzinfo=UTC), datetime(2026, 10, 5, 20, tzinfo=UTC)),  # in a day
]


@pytest.mark.parametrize(("start", "end"), RANGES)
@pytest.mark.parametrize(
    ("group", "grain"),
    [
        (("environment", "model"), "hour"),
        ((), "hour"),
        (("period", "environment"), "day"),
        (("period",), "hour"),  # hours as periods: no day is read whole
    ],
)
def test_percentiles_through_days_equal_the_hours_alone(
    wh: Warehouse,
    start: datetime | None,
    end: datetime | None,
    group: tuple[str, ...],
    grain: str,
) -> None:
    params = filter_params(start, end, None, None)
    with wh.read() as con:
        got = _percentiles(con, group, params, grain, days=True)
        want = _percentiles(con, group, params, grain, days=False)
    key = [*group] or ["fleet"]
    got.sort(key=lambda r: [str(r[k]) for k in key])
    want.sort(key=lambda r: [str(r[k]) for k in key])
    assert got == want
    assert want  # every range holds requests


def test_a_range_of_whole_days_reads_them_from_the_daily_table() -> None:
    params = filter_params(
        datetime(2026, 10, 5, 6, tzinfo=UTC), datetime(2026, 10, 8, tzinfo=UTC), None, None
    )
    days = _latency_params(("environment",), params, "hour")
    assert (days["day_lo"], days["day_hi"]) == (
        datetime(2026, 10, 6, tzinfo=UTC),
        datetime(2026, 10, 8, tzinfo=UTC),
    )
    hours = _latency_params(("period",), params, "hour")
    assert hours["day_lo"] == hours["day_hi"] == _FAR
    short = filter_params(datetime(2026, 10, 5, 6, tzinfo=UTC), None, None, None)
    short["end"] = datetime(2026, 10, 5, 20, tzinfo=UTC)
    inside = _latency_params((), short, "day")
    assert inside["day_lo"] == inside["day_hi"] == _FAR


def test_metrics_figures_match_the_hours(wh: Warehouse) -> None:
    """The public figures over a range with ragged ends, against the hours alone."""
    start, end = START + timedelta(hours=2), START + timedelta(hours=55)
    frame = metrics(wh, Config(), start=start, end=end, by=("environment", "model"))
    params = filter_params(start, end, None, None)
    with wh.read() as con:
        hourly = {
            (r["environment"], r["model"]): r
            for r in _percentiles(con, ("environment", "model"), params, "hour", days=False)
        }
    assert frame.height == len(hourly) == 4
    for row in frame.to_dicts():
        want = hourly[(row["environment"], row["model"])]
        for q in ("latency_p50_ms", "latency_p95_ms", "latency_p99_ms"):
            assert row[q] == want[q]

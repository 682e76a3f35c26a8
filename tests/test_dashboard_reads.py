"""`warehouse/reads.py`, the queries behind the pages, against `metrics` and the raw spans."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import duckdb
import polars as pl
import pytest
from dashboard_support import END, Scenario, copy_scenario

from warehouse import reads
from warehouse.metrics import metrics

START = END - timedelta(days=10)


@pytest.fixture(scope="module")
def scenario(built_scenario: Scenario, tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    return copy_scenario(built_scenario, tmp_path_factory.mktemp("reads"))


def test_bounds_and_dimensions(scenario: Scenario) -> None:
    row = reads.bounds(scenario.warehouse).row(0, named=True)
    assert START <= row["first_request"] < START + timedelta(hours=1)
    assert END - timedelta(hours=1) <= row["last_request"] < END
    assert row["load_id"] >= 1 and row["request_spans"] > 0
    with scenario.warehouse.read() as con:
        times = con.execute(
            "SELECT min(t), max(t) FROM (SELECT start_time AS t FROM spans WHERE is_request "
            "UNION ALL SELECT ts FROM gpu_samples UNION ALL SELECT ChargePeriodStart FROM billing)"
        ).fetchone()
    assert times is not None and (row["first_data"], row["last_data"]) == times
    assert row["first_data"] <= row["first_request"] and row["last_data"] >= row["last_request"]
    dims = reads.dimensions(scenario.warehouse)
    expected = metrics(scenario.warehouse, scenario.config)
    expected = expected.filter(pl.col("requests") > 0)  # not the GPU-only environment's row
    assert (
        dims.select("environment", "model")
        .sort(pl.all())
        .equals(expected.select("environment", "model").sort(pl.all()))
    )


@pytest.mark.parametrize("grain", ["hour", "day"])
def test_series_percentiles_and_counts_equal_metrics_per_period(
    scenario: Scenario, grain: str
) -> None:
    envs, models = ["aws-us-east-1"], ["llama-3.1-70b-instruct"]
    latency = reads.latency_series(
        scenario.warehouse,
        start=START,
        end=END,
        grain=grain,  # type: ignore[arg-type]
        environments=envs,
        models=models,
    )
    traffic = reads.traffic_series(
        scenario.warehouse,
        start=START,
        end=END,
        grain=grain,  # type: ignore[arg-type]
        environments=envs,
        models=models,
    )
    step = timedelta(hours=1) if grain == "hour" else timedelta(days=1)
    for row in latency.sample(n=min(12, latency.height), seed=1).iter_rows(named=True):
        period = row["period"]
        m = metrics(
            scenario.warehouse,
            scenario.config,
            start=period,
            end=period + step,
            environments=envs,
            models=models,
        ).row(0, named=True)
        for column in ("latency_p50_ms", "latency_p95_ms", "latency_p99_ms"):
            assert row[column] == pytest.approx(m[column], rel=1e-12)
        t = traffic.filter(pl.col("period") == period).row(0, named=True)
        assert round(t["requests"]) == m["requests"] == round(row["requests"])
        assert round(t["errors"]) == m["errors"]
    total = metrics(
        scenario.warehouse,
        scenario.config,
        start=START,
        end=END,
        environments=envs,
        models=models,
    )
    assert round(traffic["requests"].sum()) == total["requests"][0]


def test_fleet_latency_is_within_one_percent_of_exact(scenario: Scenario) -> None:
    got = reads.fleet_latency(scenario.warehouse, start=START, end=END).row(0, named=True)
    with duckdb.connect(str(scenario.warehouse.path), read_only=True) as con:
        exact = con.execute(
            "SELECT quantile_cont(duration_ms, [0.5, 0.95, 0.99]) FROM spans WHERE is_request"
        ).fetchone()
    assert exact is not None
    for value, want in zip(
        (got["latency_p50_ms"], got["latency_p95_ms"], got["latency_p99_ms"]),
        exact[0],
        strict=True,
    ):
        assert value == pytest.approx(want, rel=0.01)


def test_uptime_days_add_up_to_the_uptime_of_metrics(scenario: Scenario) -> None:
    days = reads.uptime_daily(scenario.warehouse, scenario.config, start=START, end=END)
    per_env = days.group_by("environment").agg(
        pl.col("up_minutes").sum(), pl.col("down_minutes").sum(), pl.col("nodata_minutes").sum()
    )
    expected = metrics(
        scenario.warehouse, scenario.config, start=START, end=END, by=("environment",)
    )
    for row in per_env.iter_rows(named=True):
        assert row["up_minutes"] + row["down_minutes"] + row["nodata_minutes"] <= 10 * 1440
        uptime = expected.filter(pl.col("environment") == row["environment"])["uptime"][0]
        judged = row["up_minutes"] + row["down_minutes"]
        assert (row["up_minutes"] / judged if judged else None) == pytest.approx(uptime)
    down = reads.down_minutes(scenario.warehouse, scenario.config, start=START, end=END)
    assert down.height == int(days["down_minutes"].sum())
    assert set(down["cause"]) <= {"errors", "no traffic"}


def test_minute_traces_are_failed_requests_of_that_minute(scenario: Scenario) -> None:
    down = reads.down_minutes(scenario.warehouse, scenario.config, start=START, end=END)
    bad = down.filter(pl.col("cause") == "errors")
    assert bad.height > 0, "the scenario's outage should leave down minutes"
    traces = reads.minute_traces(scenario.warehouse, bad.select("environment", "minute"))
    assert traces.height > 0
    assert traces.group_by("environment", "minute").len()["len"].max() <= 3
    for t in traces.iter_rows(named=True):
        assert t["minute"] <= t["start_time"] < t["minute"] + timedelta(minutes=1)
    with duckdb.connect(str(scenario.warehouse.path), read_only=True) as con:
        statuses = con.execute(
            "SELECT DISTINCT status_code, is_request FROM spans "
            "WHERE list_contains($ids, trace_id) AND list_contains($spans, span_id)",
            {"ids": traces["trace_id"].to_list(), "spans": traces["span_id"].to_list()},
        ).fetchall()
    assert statuses == [("ERROR", True)]
    assert reads.minute_traces(scenario.warehouse, bad.clear()).is_empty()


def test_version_changes_find_the_regression_rollout(scenario: Scenario) -> None:
    changes = reads.version_changes(
        scenario.warehouse, environments=["aws-us-east-1"], models=["llama-3.1-70b-instruct"]
    )
    assert changes["version"].to_list() == ["2.2.4", "2.3.1", "2.4.0"]
    first = changes.filter(pl.col("version") == "2.4.0")["first_seen"][0]
    at = datetime(2026, 10, 29, 14, tzinfo=UTC)
    assert at <= first < at + timedelta(minutes=10)


def test_error_budget_over_the_last_30_days(scenario: Scenario) -> None:
    budget = reads.error_budget(scenario.warehouse, scenario.config)
    assert budget["window_end"].unique().to_list() == [END]
    expected = metrics(
        scenario.warehouse,
        scenario.config,
        start=END - timedelta(days=30),
        end=END,
        by=("environment",),
    )
    targets = {e.name: e.slo.availability for e in scenario.config.environments}
    for row in budget.iter_rows(named=True):
        m = expected.filter(pl.col("environment") == row["environment"]).row(0, named=True)
        target = targets.get(row["environment"])
        if target is None:
            assert row["budget_left"] is None  # shown as "no SLO set"
            continue
        assert row["budget_left"] == pytest.approx(1 - m["errors"] / ((1 - target) * m["requests"]))


def test_grain_is_allow_listed(scenario: Scenario) -> None:
    with pytest.raises(ValueError, match="grain must be one of"):
        reads.latency_series(
            scenario.warehouse,
            start=START,
            end=END,
            grain="week",  # type: ignore[arg-type]
        )


def test_fleet_latency_uses_the_metrics_method(scenario: Scenario) -> None:
    """Over one environment x model the fleet query and `metrics` are the same histogram."""
    one = {"environments": ["dc-frankfurt"], "models": ["mistral-7b-instruct"]}
    got = reads.fleet_latency(scenario.warehouse, start=START, end=END, **one)
    want = metrics(scenario.warehouse, scenario.config, start=START, end=END, **one)
    for column in ("latency_p50_ms", "latency_p95_ms", "latency_p99_ms"):
        assert got[column][0] == pytest.approx(want[column][0], rel=1e-12)
    assert got["requests"][0] == want["requests"][0]
    nothing = reads.fleet_latency(
        scenario.warehouse, start=END + timedelta(days=1), end=END + timedelta(days=2)
    )
    assert nothing.is_empty()

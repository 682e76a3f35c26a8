"""The demo's one fleet, its traffic function and its incident records.

The fleet is what the config, the traces and (later) GPU telemetry and billing all
describe, so these tests hold each of them to it: the stored config is rendered from it,
the traces contain nothing outside it, `minute_rates` is the load the traces were drawn
from, and an incident is a record whose removal or addition changes the data accordingly.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_sample_data import END, SMALL, model_of, ns, read_spans

from sample_data.fleet import FLEET, Pool
from sample_data.generator import generate
from sample_data.incidents import INCIDENTS, Incident, Window
from sample_data.scenario_config import SCENARIO_TOML, scenario_toml
from sample_data.traffic import minute_rates
from sample_data.traffic_shape import (
    DAY_NS,
    GROWTH_PER_90_DAYS,
    MIN_PER_DAY,
    NS_PER_MIN,
    WEEKEND_FACTOR,
    shaped_rates,
)
from warehouse.config import load_file

START = END - timedelta(days=3)


# -- the fleet and the config -----------------------------------------------------------------
def test_the_fleet_holds_together_and_says_what_breaks_it() -> None:
    assert FLEET.check() == []
    for pool in FLEET.pools:
        assert 0 < FLEET.gpus_used(pool.name) <= pool.count, pool
    small = tuple(
        dataclasses.replace(p, count=1) if p.name == "use1-p5" else p for p in FLEET.pools
    )
    assert FLEET.check() != dataclasses.replace(FLEET, pools=small).check()
    assert dataclasses.replace(FLEET, pools=small).check() == ["pool use1-p5: 16 GPUs used of 1"]
    strays = (*FLEET.pools, Pool("use1-p5", "edge-munich", "L4", 1))
    problems = dataclasses.replace(FLEET, pools=strays).check()
    assert "two pools share a name" in problems
    moved = tuple(
        dataclasses.replace(d, pool="muc-l4") if d.env == "dc-frankfurt" else d
        for d in FLEET.deployments
    )
    problems = dataclasses.replace(FLEET, deployments=moved).check()
    assert "deployment dc-frankfurt/fraud-classifier: pool 'muc-l4' is not in dc-frankfurt" in (
        problems
    )
    with pytest.raises(ValueError, match="inconsistent fleet"):
        minute_rates(dataclasses.replace(FLEET, pools=small), START, END, 7)


def test_committed_scenario_toml_is_rendered_from_the_fleet() -> None:
    assert SCENARIO_TOML.read_text() == scenario_toml(), (
        "sample_data/scenario.toml is generated: run `python -m sample_data.scenario_config`"
    )


def test_config_environments_and_pools_are_the_fleets() -> None:
    config = load_file(SCENARIO_TOML)
    assert [e.name for e in config.environments] == list(FLEET.environment_names())
    assert [m.name for m in config.models] == list(FLEET.model_names())
    for env in config.environments:
        fleet_env = FLEET.environment(env.name)
        assert (env.kind, env.provider, env.region, env.residency) == (
            fleet_env.kind,
            fleet_env.provider,
            fleet_env.region,
            fleet_env.residency,
        )
        pools = [(p.name, p.gpu, p.count) for p in env.gpu_pools]
        assert pools == [(p.name, p.gpu, p.count) for p in FLEET.pools_of(env.name)]
        # each deployment's GPUs sit in a pool the config knows, and they fit in it
        for dep in FLEET.in_environment(env.name):
            pool = next(p for p in env.gpu_pools if p.name == dep.pool)
            assert FLEET.gpus_used(pool.name) <= pool.count


def test_every_environment_model_and_version_in_the_traces_is_in_the_fleet() -> None:
    deployed = {(d.env, d.model): {v for _, v in d.versions} for d in FLEET.deployments}
    service_of = {m.name: m.service for m in FLEET.models}
    seen: dict[tuple[str, str], set[str]] = {}
    for span in read_spans(SMALL):
        model = model_of(span)
        if model is None:
            continue
        key = (span.env, model)
        assert key in deployed, key
        assert span.resource["service.name"] == service_of[model]
        seen.setdefault(key, set()).add(span.resource["service.version"])
    assert set(seen) == set(deployed)
    for key, versions in seen.items():
        assert versions <= deployed[key], key


# -- traffic ------------------------------------------------------------------------------------
def test_shaped_rates_have_the_documented_daily_weekly_and_growth_shape() -> None:
    end_ns = ns("2026-11-02T00:00:00Z")  # a Monday
    minute_ns = end_ns - DAY_NS * np.arange(1, 92, dtype=np.int64) + 10 * 60 * NS_PER_MIN
    rate = shaped_rates(2.0, minute_ns, end_ns, np.ones(len(minute_ns)))
    sunday, saturday, friday = rate[0], rate[1], rate[2]
    assert saturday / friday == pytest.approx(
        WEEKEND_FACTOR * GROWTH_PER_90_DAYS ** (1 / 90), rel=1e-9
    )
    assert sunday == pytest.approx(saturday * GROWTH_PER_90_DAYS ** (1 / 90), rel=1e-9)
    # growth is anchored at the end: 12 weeks earlier the same minute of a Sunday is slower
    assert rate[0] / rate[84] == pytest.approx(GROWTH_PER_90_DAYS ** (84 / 90), rel=1e-9)
    day = end_ns - 7 * DAY_NS + np.arange(MIN_PER_DAY, dtype=np.int64) * NS_PER_MIN
    monday = shaped_rates(1.0, day, end_ns, np.ones(MIN_PER_DAY))
    hour = np.arange(MIN_PER_DAY) // 60
    assert int(np.argmax(monday)) // 60 == 10
    assert monday[hour < 5].mean() < 0.35 * monday[(hour >= 9) & (hour < 17)].mean()


def test_minute_rates_shape_determinism_and_outage() -> None:
    rates = minute_rates(FLEET, START, END, 7, scale=0.1)
    assert set(rates) == {(d.env, d.model) for d in FLEET.deployments}
    for rate in rates.values():
        assert rate.shape == (3 * MIN_PER_DAY,) and bool(np.all(rate >= 0))
    again = minute_rates(FLEET, START.replace(tzinfo=None), END, 7, scale=0.1)
    assert all(np.array_equal(rates[k], again[k]) for k in rates)
    other = minute_rates(FLEET, START, END, 8, scale=0.1)
    assert not np.array_equal(
        rates[("dc-frankfurt", "fraud-classifier")], other[("dc-frankfurt", "fraud-classifier")]
    )
    scaled = minute_rates(FLEET, START, END, 7, scale=0.2)
    key = ("aws-us-east-1", "yolov8-l")
    np.testing.assert_allclose(scaled[key], 2 * rates[key], rtol=1e-12)
    # the outage's silent phase has no traffic, and nothing else is ever zero
    summary_like = generate_outage_window(rates)
    silent = np.zeros(3 * MIN_PER_DAY, bool)
    silent[summary_like[0] : summary_like[1]] = True
    for (env, _), rate in rates.items():
        if env == "gcp-europe-west4":
            assert bool(np.all(rate[silent] == 0)) and bool(np.all(rate[~silent] > 0))
        else:
            assert bool(np.all(rate > 0))
    with pytest.raises(ValueError, match="whole number of days"):
        minute_rates(FLEET, START, END - timedelta(hours=1), 7)


def generate_outage_window(rates: dict[tuple[str, str], np.ndarray]) -> tuple[int, int]:
    """The silent minutes of the gcp outage as minute offsets from START, read from the
    rates themselves: the one run of zeros."""
    zero = np.flatnonzero(rates[("gcp-europe-west4", "bge-large-en-v1.5")] == 0)
    assert len(zero) == 120 and zero[-1] - zero[0] == 119
    return int(zero[0]), int(zero[-1]) + 1


@pytest.fixture(scope="module")
def three_days(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("fleet")
    return out, generate(out, days=3, seed=7, scale=0.1, end=END, gpu=False)  # traces only


def test_minute_rates_are_the_rates_the_traces_were_drawn_from(
    three_days: tuple[Path, dict[str, Any]],
) -> None:
    _, summary = three_days
    rates = minute_rates(FLEET, START, END, 7, scale=0.1)
    outage = summary["events"]["outage"]
    silent = (ns(outage["errors_until"]) - ns(summary["start"])) // NS_PER_MIN
    assert generate_outage_window(rates) == (silent, silent + 120)
    for (env, model), rate in rates.items():
        got = summary["by_environment_model"][env][model]["requests"]
        expected = float(rate.sum())
        # Poisson bursts of 1 + Poisson(b) calls (b <= 0.6), per-minute noise sd 0.1
        assert abs(got - expected) < 5 * np.sqrt(expected * 2.2), (env, model, got, expected)
        assert summary["by_environment_model"][env][model]["peak_rpm"] == pytest.approx(
            rate.max(), rel=0.5
        )
    total = sum(float(r.sum()) for r in rates.values())
    assert abs(summary["requests"] - total) < 5 * np.sqrt(total * 2.2)


# -- incidents ----------------------------------------------------------------------------------
def test_without_incidents_there_is_no_outage_regression_or_accuracy_drop(
    tmp_path: Path, three_days: tuple[Path, dict[str, Any]]
) -> None:
    _, with_them = three_days
    summary = generate(tmp_path, days=3, seed=7, scale=0.1, end=END, incidents=(), gpu=False)
    assert "outage" not in summary["events"] and "regression" not in summary["events"]
    accuracy = summary["events"]["accuracy"]
    edge = accuracy["edge-munich"]["mistral-7b-instruct"]
    assert edge["expected"] == 0.91
    assert with_them["events"]["accuracy"]["edge-munich"]["mistral-7b-instruct"]["expected"] == (
        0.78
    )
    spans = read_spans(tmp_path)
    gcp = [s for s in spans if s.env == "gcp-europe-west4" and not s.parent]
    assert sum(s.status == 2 for s in gcp) < 0.05 * len(gcp)
    # the rollout pinned by the regression record is drawn like any other now
    rollout = next(
        r["at"]
        for r in summary["events"]["rollouts"]
        if r["environment"] == "aws-us-east-1" and r["version"] == "2.4.0"
    )
    assert rollout != with_them["events"]["regression"]["at"]


def test_a_new_incident_is_one_more_record(tmp_path: Path) -> None:
    """An outage of one model in dc-frankfurt, with its own status and message."""
    outage = Incident(
        "outage",
        "dc-frankfurt",
        ("fraud-classifier",),
        Window(at=0.5, minute_of_day=10 * 60, minutes=90),
        {
            "error_minutes": 30,
            "error_ratio": 1.0,
            "http_status": 502,
            "message": "bad gateway",
            "description": "all requests fail with 502 for half an hour, then none for an hour",
        },
    )
    summary = generate(tmp_path, days=2, seed=3, scale=0.2, end=END, incidents=(outage,), gpu=False)
    o = summary["events"]["outage"]
    assert o["environment"] == "dc-frankfurt" and o["http_status"] == 502
    start, errors_until, end = ns(o["start"]), ns(o["errors_until"]), ns(o["end"])
    assert (errors_until - start, end - errors_until) == (30 * NS_PER_MIN, 60 * NS_PER_MIN)
    roots = [s for s in read_spans(tmp_path) if not s.parent and s.env == "dc-frankfurt"]
    fraud = [s for s in roots if s.name == "POST /v1/score"]
    failing = [s for s in fraud if start <= s.start < errors_until]
    assert failing and all(s.status == 2 for s in failing)
    assert {s.attrs["http.response.status_code"] for s in failing} == {502}
    assert {s.message for s in failing} == {"bad gateway"}
    assert not [s for s in fraud if errors_until <= s.start < end]
    others = Counter(
        s.status for s in roots if s.name != "POST /v1/score" and start <= s.start < end
    )
    assert others[0] > 0 and others[2] < 0.1 * others[0]


def test_an_incident_on_a_version_that_never_rolls_out_is_refused(tmp_path: Path) -> None:
    bad = Incident(
        "latency_regression",
        "edge-munich",
        ("yolov8-l",),
        Window(rollout=("yolov8-l", "9.9.9")),
        {"latency_factor": 2.0},
    )
    with pytest.raises(ValueError, match=r"no rollout of yolov8-l 9\.9\.9"):
        generate(tmp_path, days=1, scale=0.01, end=END, incidents=(*INCIDENTS, bad))


def test_the_regression_record_slows_what_it_names_from_its_rollout(
    three_days: tuple[Path, dict[str, Any]],
) -> None:
    out, summary = three_days
    at = ns(summary["events"]["regression"]["at"])
    assert datetime.fromtimestamp(at / 1e9, UTC).strftime("%H:%M") == "14:00"
    spans = [s for s in read_spans(out) if s.env == "aws-us-east-1" and s.status == 0]

    def step(model: str) -> float:
        durations = [(s.start >= at, s.end - s.start) for s in spans if model_of(s) == model]
        after = [d for late, d in durations if late]
        before = [d for late, d in durations if not late]
        assert len(after) > 50 and len(before) > 50, model
        return float(np.median(after) / np.median(before))

    named = INCIDENTS[1]
    assert named.kind == "latency_regression" and "mistral-7b-instruct" in named.models
    assert 1.25 < step("mistral-7b-instruct") < 1.7
    for model in ("fraud-classifier", "yolov8-l"):  # not named: no step at the rollout
        assert 0.8 < step(model) < 1.25, model


def test_mistyped_incident_records_are_refused_with_what_is_wrong(tmp_path: Path) -> None:
    """A typo must not make an incident silently vanish from the data."""
    cases = {
        "no deployment in that environment": dataclasses.replace(
            INCIDENTS[0], environment="gcp-europe-west-4"
        ),
        "llama-3-70b is not deployed there": dataclasses.replace(
            INCIDENTS[0], models=("llama-3-70b",)
        ),
        "unknown kind": dataclasses.replace(INCIDENTS[0], kind="outgae"),
        "parameter latency_factor must be float": dataclasses.replace(
            INCIDENTS[1], params={"latency_factor": "1.45"}
        ),
        "parameter message must be str": dataclasses.replace(
            INCIDENTS[0], params={**INCIDENTS[0].params, "message": 503}
        ),
        "parameter accuracy must be float": dataclasses.replace(INCIDENTS[2], params={}),
        "window at 55.0 is outside 0..1": dataclasses.replace(
            INCIDENTS[0], window=Window(at=55.0, minute_of_day=9 * 60, minutes=60)
        ),
        "minute_of_day 1440 is outside 0..1439": dataclasses.replace(
            INCIDENTS[0], window=Window(at=0.5, minute_of_day=1440, minutes=60)
        ),
        "a window lasts at least a minute": dataclasses.replace(
            INCIDENTS[0], window=Window(at=0.5, minutes=0)
        ),
    }
    for expected, record in cases.items():
        with pytest.raises(ValueError, match="bad incident records") as info:
            generate(tmp_path, days=1, scale=0.01, end=END, incidents=(record,))
        assert expected in str(info.value), (expected, str(info.value))
    assert not list(tmp_path.iterdir()), "nothing is written before the records are checked"

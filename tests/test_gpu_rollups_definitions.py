"""The GPU-hour definitions: each Python rule and its SQL text agree, on the edges too."""

from __future__ import annotations

import math

import duckdb
import pytest

from warehouse.gpu_definitions import (
    BUSY,
    IDLE_FREE,
    IDLE_HELD,
    UNKNOWN,
    busy_looking_idle_sql,
    energy_increase_mj,
    energy_increase_sql,
    gpu_state,
    is_busy_looking_idle,
    mig_share,
    state_sql,
    unmonitored_gpu_hours,
)

UTILS = [None, math.nan, 0.0, 4.999, 5.0, 5.001, 79.9, 80.0, 100.0]


@pytest.mark.parametrize("workload", [None, "llama-70b"])
def test_the_state_rule_in_sql_agrees_with_python(workload: str | None) -> None:
    con = duckdb.connect()
    sql = state_sql("u", "w", "$t")
    for util in UTILS:
        got = con.execute(
            f"SELECT {sql} FROM (SELECT $u::DOUBLE AS u, $w AS w)",
            {"u": util, "w": workload, "t": 5.0},
        ).fetchone()
        assert got is not None and got[0] == gpu_state(util, workload, 5.0), util


def test_the_states_by_hand() -> None:
    assert gpu_state(5.0, None, 5.0) == BUSY  # at the threshold is busy
    assert gpu_state(4.9, "bert", 5.0) == IDLE_HELD
    assert gpu_state(4.9, None, 5.0) == IDLE_FREE
    assert gpu_state(None, "bert", 5.0) == UNKNOWN


def test_busy_looking_idle_in_sql_agrees_with_python() -> None:
    con = duckdb.connect()
    sql = busy_looking_idle_sql("u", "s")
    for util in [None, 79.9, 80.0, 100.0]:
        for sm in [None, 0.0, 0.199, 0.2, 0.9]:
            got = con.execute(
                f"SELECT {sql} FROM (SELECT $u::DOUBLE AS u, $s::DOUBLE AS s)", {"u": util, "s": sm}
            ).fetchone()
            assert got is not None and got[0] is is_busy_looking_idle(util, sm), (util, sm)
    assert is_busy_looking_idle(99.0, 0.05) and not is_busy_looking_idle(99.0, 0.6)


def test_the_counter_increase_in_sql_agrees_with_python() -> None:
    con = duckdb.connect()
    sql = energy_increase_sql("p", "c")
    for prev, cur in [(10.0, 25.0), (25.0, 10.0), (7.0, 7.0), (1e18, 3.0)]:
        got = con.execute(
            f"SELECT {sql} FROM (SELECT $p::DOUBLE AS p, $c::DOUBLE AS c)", {"p": prev, "c": cur}
        ).fetchone()
        assert got is not None and got[0] == energy_increase_mj(prev, cur)
    assert energy_increase_mj(25.0, 10.0) == 10.0  # after a reset: counted from zero


@pytest.mark.parametrize(
    ("profile", "model", "share"),
    [
        ("1g.10gb", "NVIDIA H100 80GB HBM3", 1 / 7),
        ("3g.40gb", None, 3 / 7),
        ("7g.80gb", "NVIDIA A100-SXM4-80GB", 1.0),
        ("1g.10gb+me", None, 1 / 7),
        ("1c.3g.40gb", None, 3 / 7),
        ("2g.12gb", "NVIDIA A30", 2 / 4),
        (" 2G.20GB ", None, 2 / 7),
        ("8g.80gb", None, None),
        ("0g.5gb", None, None),
        ("4g.24gb", "NVIDIA A30", 1.0),
        ("5g.30gb", "NVIDIA A30", None),
        ("mig-1g", None, None),
        ("1g.10gb'; DROP TABLE x", None, None),
        ("", None, None),
    ],
)
def test_mig_profile_shares(profile: str, model: str | None, share: float | None) -> None:
    got = mig_share(profile, model)
    assert got == (pytest.approx(share) if share is not None else None)


def test_unmonitored_hours_are_capacity_less_monitored_never_below_zero() -> None:
    assert unmonitored_gpu_hours(8, 24.0, 150.0) == pytest.approx(42.0)
    assert unmonitored_gpu_hours(8, 24.0, 200.0) == 0.0  # more hosts matched than counted
    assert unmonitored_gpu_hours(0, 24.0, 0.0) == 0.0  # count not stated

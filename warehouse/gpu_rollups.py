"""The after-publish hook that keeps `rollup_gpu_hours` current.

A sample stands for the time to the next sample of the same GPU, capped, so a new sample
changes more than its own hour: it shortens the interval of the sample before it (up to a
cap earlier) and its own interval runs on into later hours (up to a cap later). The hook
therefore rebuilds each touched hour widened by the cap on both sides, from the raw
samples, DELETE and INSERT in the load's transaction: an hour that arrives late, or twice,
comes out as if everything had arrived at once, in order.

The cap and the idle threshold are the config's (`[gpu]`); the hook receives only hours, so
it reads the config the load stored in the warehouse, as every later command does. A new
threshold or cap changes past hours too: `_meta` says which settings the rows were built
by, and the first GPU load after a change rebuilds them all (`rebuild_gpu_hours` does it
on demand).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb

from warehouse.config import Config
from warehouse.db import Warehouse, one
from warehouse.errors import ConfigError
from warehouse.gpu_definitions import energy_increase_sql, state_sql
from warehouse.rollups import statements

log = logging.getLogger(__name__)

HOUR = timedelta(hours=1)
# Touched hours closer than this are rebuilt in one pass (a pass costs a scan of its range
# and a sort of its samples per GPU, so a short untouched run between is cheaper).
MERGE_GAP = timedelta(hours=6)
# One pass covers at most this many hours: a 90-day backfill is rebuilt a day at a time, so
# the window sort holds a day of samples, not the whole history (benchmarks/gpu_rollups.py).
PASS_HOURS = 24
SETTINGS_KEY = "gpu_hours_settings"  # in `_meta`: the cap and threshold the rows were built by


def gpu_settings(con: duckdb.DuckDBPyConnection) -> tuple[timedelta, float]:
    """(sample cap, idle threshold percent) of the config stored last, else the defaults.

    A stored config that no longer passes validation must not block GPU loads (the samples
    are the data; the settings only shape the rollup): the defaults apply, with a warning,
    and the next load with a fixed config rebuilds the hours (its settings differ)."""
    row = one(con, "SELECT origin, body::VARCHAR FROM config ORDER BY stored_at DESC LIMIT 1")
    try:
        config = Config.from_json(row[1], f"{row[0]} (stored)") if row else Config()
    except ConfigError as exc:
        log.warning("the GPU hours use the default [gpu] settings: %s", exc)
        config = Config()
    return timedelta(minutes=config.gpu.sample_cap_minutes), config.gpu.idle_threshold_percent


def affected_ranges(
    hours: Iterable[datetime], cap: timedelta, gap: timedelta = MERGE_GAP
) -> list[tuple[datetime, datetime]]:
    """[lo, hi) hour ranges whose rollup rows samples in `hours` can change: each hour
    widened by the cap before (the previous sample's interval now ends at the new one) and
    after (the new sample's interval runs on), close ranges joined, long ones cut in passes."""
    spans: list[tuple[datetime, datetime]] = []
    for hour in sorted({_floor(h) for h in hours}):
        lo, hi = _floor(hour - cap), _floor(hour + HOUR + cap - timedelta(microseconds=1)) + HOUR
        if spans and lo - spans[-1][1] <= gap:
            spans[-1] = (spans[-1][0], max(spans[-1][1], hi))
        else:
            spans.append((lo, hi))
    passes: list[tuple[datetime, datetime]] = []
    for lo, hi in spans:
        while lo < hi:
            passes.append((lo, min(hi, lo + PASS_HOURS * HOUR)))
            lo = passes[-1][1]
    return passes


def refresh_gpu_hours(con: duckdb.DuckDBPyConnection, hours: set[datetime]) -> None:
    """Rebuild the GPU-hour rows that a publish of samples in `hours` can change; every
    row, when the stored config's cap or threshold is not the one the rows were built by."""
    cap, threshold = gpu_settings(con)
    built = one(con, "SELECT value FROM _meta WHERE key = $k", {"k": SETTINGS_KEY})
    if built is not None and built[0] != _settings(cap, threshold):
        log.info("[gpu] settings changed since the GPU hours were built: rebuilding them all")
        rebuild_all(con, cap, threshold)
        return
    for lo, hi in affected_ranges(hours, cap):
        refresh_range(con, lo, hi, cap, threshold)
    _remember(con, cap, threshold)


def refresh_range(
    con: duckdb.DuckDBPyConnection, lo: datetime, hi: datetime, cap: timedelta, threshold: float
) -> None:
    """Recompute the rows of the whole hours [lo, hi) from the raw samples."""
    lo, hi = _floor(lo), _floor(hi - timedelta(microseconds=1)) + HOUR
    params: dict[str, Any] = {
        "lo_hour": _hour_number(lo),
        "hi_hour": _hour_number(hi),
        "lo_ts": lo - cap,
        "hi_ts": hi + cap,
        "cap_us": cap // timedelta(microseconds=1),
        "threshold": threshold,
    }
    for statement in refresh_statements():
        con.execute(statement, {n: v for n, v in params.items() if f"${n}" in statement})


def refresh_statements() -> list[str]:
    """refresh_gpu_hours.sql's statements with the definitions' rules put in as SQL text."""
    rules = {
        "state": state_sql("util_mean", "workload", "$threshold"),
        "increase": energy_increase_sql("energy_mj", "next_energy_mj"),
    }
    return [s.format(**rules) for s in statements("refresh_gpu_hours")]


def rebuild_gpu_hours(warehouse: Warehouse) -> None:
    """Recompute every GPU-hour from the raw samples with the stored config's settings (a
    GPU load after a `[gpu]` change does it too, by itself)."""
    with warehouse.write() as con:
        cap, threshold = gpu_settings(con)
        rebuild_all(con, cap, threshold)


def rebuild_all(con: duckdb.DuckDBPyConnection, cap: timedelta, threshold: float) -> None:
    """Every hour from the first sample to the last one's cap, a pass per PASS_HOURS."""
    con.execute("DELETE FROM rollup_gpu_hours")
    row = one(con, "SELECT min(ts), max(ts) FROM gpu_samples")
    if row is not None and row[0] is not None:
        lo, hi = _floor(row[0]), _floor(row[1] + cap) + HOUR
        while lo < hi:
            end = min(hi, lo + PASS_HOURS * HOUR)
            refresh_range(con, lo, end, cap, threshold)
            lo = end
    _remember(con, cap, threshold)


def _settings(cap: timedelta, threshold: float) -> str:
    return f"cap_seconds={cap.total_seconds()!r} idle_threshold_percent={threshold!r}"


def _remember(con: duckdb.DuckDBPyConnection, cap: timedelta, threshold: float) -> None:
    """Say in `_meta` which settings the rows were built by, so a change is noticed."""
    con.execute(
        "INSERT OR REPLACE INTO _meta VALUES ($k, $v)",
        {"k": SETTINGS_KEY, "v": _settings(cap, threshold)},
    )


def _floor(moment: datetime) -> datetime:
    """The UTC hour a moment falls in (a UTC datetime, whatever zone it came in)."""
    utc = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return utc.replace(minute=0, second=0, microsecond=0)


def _hour_number(hour: datetime) -> int:
    return int((hour - datetime(1970, 1, 1, tzinfo=UTC)) // HOUR)

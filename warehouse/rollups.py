"""The after-publish hook that keeps the rollups current: rebuild the hours a load touched.

Rollups are derived, so a publish never patches them in place: it recomputes every hour it
touched from the raw tables. That is what makes a late evaluation (a human review weeks
on), a span that completes an earlier request's model, or a demoted request come out the
same as if everything had arrived at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import duckdb

from warehouse.db import Warehouse, one, read_sql

LATENCY_GAMMA = 1.005 / 0.995  # log buckets with 0.5% relative error
# Touched hours closer than this are rebuilt in one pass: a pass costs a scan of its range,
# so a few untouched hours in between are cheaper than another pass.
MERGE_GAP = timedelta(hours=6)


def hour_ranges(
    hours: Iterable[datetime], gap: timedelta = MERGE_GAP
) -> list[tuple[datetime, datetime]]:
    """[lo, hi) ranges covering `hours` (truncated to the hour), runs closer than `gap` joined."""
    ranges: list[tuple[datetime, datetime]] = []
    for hour in sorted({h.replace(minute=0, second=0, microsecond=0) for h in hours}):
        end = hour + timedelta(hours=1)
        if ranges and hour - ranges[-1][1] <= gap:
            ranges[-1] = (ranges[-1][0], end)
        else:
            ranges.append((hour, end))
    return ranges


def refresh_hours(con: duckdb.DuckDBPyConnection, hours: set[datetime]) -> None:
    """Rebuild the rollups of these hours, however old, in as few passes as sensible."""
    for lo, hi in hour_ranges(hours):
        refresh_rollups(con, lo, hi - timedelta(microseconds=1))


def refresh_uptime_hours(con: duckdb.DuckDBPyConnection, hours: set[datetime]) -> None:
    """Rejudge the minutes that new request spans in these hours can change (only spans
    move a minute's verdict; evaluations do not)."""
    from warehouse import uptime  # looked up at call time, like refresh_rollups

    for lo, hi in hour_ranges(hours):
        uptime.refresh_minute_verdicts(con, lo, hi)


def refresh_rollups(con: duckdb.DuckDBPyConnection, lo: datetime, hi: datetime) -> None:
    """Rebuild the rollups of every hour touched by [lo, hi]."""
    start = lo.replace(minute=0, second=0, microsecond=0)
    end = hi.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    params: dict[str, Any] = {"lo": start, "hi": end, "gamma": LATENCY_GAMMA}
    for statement in statements("refresh_rollups"):
        names = {n for n in params if f"${n}" in statement}
        con.execute(statement, {n: params[n] for n in names})
    # the histogram's bucket ratio, where 001_init.sql says it is, for SQL written by hand
    con.execute(
        "INSERT OR REPLACE INTO _meta VALUES ('latency_gamma', $g)", {"g": repr(LATENCY_GAMMA)}
    )


def rebuild_rollups(warehouse: Warehouse) -> None:
    """Recompute every rollup from the raw tables (after a config change, say)."""
    with warehouse.write() as con:
        lo, hi = one(con, "SELECT min(start_time), max(start_time) FROM spans")  # type: ignore[misc]
        if lo is not None:
            refresh_rollups(con, lo, hi)
            from warehouse import uptime

            uptime.refresh_minute_verdicts(con, lo, hi)


def statements(name: str) -> list[str]:
    """The statements of `warehouse/queries/<name>.sql`, comments dropped, in order."""
    text = "\n".join(
        line for line in read_sql(name).splitlines() if not line.lstrip().startswith("--")
    )
    return [s.strip() for s in text.split(";") if s.strip()]

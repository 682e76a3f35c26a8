"""DESIGN.md's definitions as code: the one place `metrics`, pages, the report and the
optimizer take a ratio, an interval, a change or a down period from.

What lives in SQL stays there, once: latency percentiles from the histogram in
`queries/latency_percentiles.sql`, a minute's up/down verdict in
`queries/uptime_minutes.sql` (over the rollup `warehouse.uptime` keeps current), the
rolling error budget in `queries/dash_error_budget.sql`. SLO and floor verdicts are in
`warehouse.slo`. Everything here is plain Python or Polars, importable without a warehouse.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the ratios need no Polars: `hybridlens metrics` answers without importing it
    import polars as pl

Z_95 = 1.959963984540054  # the standard normal's 97.5% quantile
DOWN_PERIOD_GAP_MINUTES = 30  # down minutes at most this far apart are one down period


def down_period_schema() -> dict[str, pl.DataType]:
    """The columns of `down_periods`, built on call so importing this module stays light."""
    import polars as pl

    return {
        "environment": pl.String(),
        "start": pl.Datetime("us", "UTC"),
        "end": pl.Datetime("us", "UTC"),
        "down_minutes": pl.Int64(),
        "error_minutes": pl.Int64(),
        "silent_minutes": pl.Int64(),
        "requests": pl.Float64(),
        "errors": pl.Float64(),
    }


def finite(value: Any) -> float | None:
    """A plain float, or None for missing, boolean, non-numeric, NaN or infinite values."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def error_rate(requests: float | None, errors: float | None) -> float | None:
    """Failed requests / all requests; None without requests."""
    return (errors or 0.0) / requests if requests else None


def availability(requests: float | None, errors: float | None) -> float | None:
    """Good requests / all requests over the range; None without requests."""
    rate = error_rate(requests, errors)
    return None if rate is None else 1 - rate


def uptime(up_minutes: int | None, down_minutes: int | None) -> float | None:
    """Up minutes / judged minutes; "no data" minutes are neither. None when none is judged."""
    up, down = up_minutes or 0, down_minutes or 0
    return up / (up + down) if up + down else None


def relative_change(current: Any, previous: Any) -> float | None:
    """(current - previous) / previous, for a count against the same span before it."""
    now, before = finite(current), finite(previous)
    if now is None or not before:
        return None
    return (now - before) / before


def started_after(
    first_seen: Iterable[tuple[str, datetime | None]], since: datetime
) -> tuple[str, ...]:
    """The names (environments, providers) whose data begins after `since`, sorted.

    Against a span that starts before their data does, a sum counts the start of the data
    (a collector or an export switched on) as growth, so no change over that span is shown
    while this is not empty."""
    return tuple(sorted({str(n) for n, first in first_seen if first is not None and first > since}))


def difference(current: Any, reference: Any) -> float | None:
    """current - reference (a ratio against its SLO, a p95 against last week's)."""
    now, ref = finite(current), finite(reference)
    return None if now is None or ref is None else now - ref


@lru_cache(maxsize=1024)
def t_quantile_975(dof: int) -> float:
    """Student's t 97.5% quantile, solved from the t distribution's closed form for whole
    degrees of freedom (Abramowitz & Stegun 26.7.3/26.7.4), or from 1,000 on expanded
    from the normal quantile (26.7.5). Not scipy: `scipy.stats` costs half a second to
    import and `metrics` answers in less; tests check both against scipy."""
    if dof < 1:
        raise ValueError(f"degrees of freedom must be at least 1, got {dof}")
    if dof >= _ASYMPTOTIC_DOF:
        return _t_expansion(dof)
    lo, hi = 0.0, 64.0  # the quantile is 12.71 at 1 degree of freedom, less above
    t = 2.0
    for _ in range(200):
        gap = _central_t(t, dof) - 0.95
        if gap > 0:
            hi = t
        else:
            lo = t
        step = gap / (2 * _t_density(t, dof))
        nxt = t - step
        if not lo < nxt < hi:  # Newton left the bracket: bisect instead
            nxt = (lo + hi) / 2
        if abs(nxt - t) <= 1e-15 * t:
            return nxt
        t = nxt
    return t


# From here on the series below would cost dof/2 terms per step (26,000 at a fleet's 52,000
# evaluations: 43 ms per group of a `metrics` call, and 1e-12 off from rounding), while the
# expansion is within 4e-16 of scipy's.
_ASYMPTOTIC_DOF = 1000


def _t_expansion(dof: int) -> float:
    """The 97.5% point from the normal one (Abramowitz & Stegun 26.7.5, four terms)."""
    z = Z_95
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    g4 = (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160
    return z + g1 / dof + g2 / dof**2 + g3 / dof**3 + g4 / dof**4


def _central_t(t: float, dof: int) -> float:
    """P(|T| <= t) for Student's t with `dof` degrees of freedom (a finite series)."""
    theta = math.atan(t / math.sqrt(dof))
    cos2 = math.cos(theta) ** 2
    term = total = 1.0
    if dof % 2:
        if dof == 1:
            return 2 * theta / math.pi
        for k in range(1, (dof - 3) // 2 + 1):
            term *= cos2 * (2 * k) / (2 * k + 1)
            total += term
        return 2 / math.pi * (theta + math.sin(theta) * math.cos(theta) * total)
    for k in range(1, (dof - 2) // 2 + 1):
        term *= cos2 * (2 * k - 1) / (2 * k)
        total += term
    return math.sin(theta) * total


def _t_density(t: float, dof: int) -> float:
    log_norm = math.lgamma((dof + 1) / 2) - math.lgamma(dof / 2) - 0.5 * math.log(dof * math.pi)
    return math.exp(log_norm - (dof + 1) / 2 * math.log1p(t * t / dof))


def accuracy_interval(
    n: float | None, total: float | None, sumsq: float | None, n_binary: float | None
) -> tuple[float | None, float | None, float | None]:
    """(low, mean, high) of a 95% interval: Wilson for 0/1 scores, Student's t otherwise.

    From the sums the rollup keeps (count, sum, sum of squares, count of 0/1 scores), so an
    interval over any range merges hours without rereading the evaluations.
    """
    if not n or total is None:
        return None, None, None
    n = float(n)
    mean = total / n
    if n_binary == n:
        z = Z_95
        denom = 1 + z * z / n
        centre = (mean + z * z / (2 * n)) / denom
        half = z * math.sqrt(mean * (1 - mean) / n + z * z / (4 * n * n)) / denom
        return max(0.0, centre - half), mean, min(1.0, centre + half)
    if n < 2:
        return None, mean, None
    var = max(0.0, (sumsq - n * mean * mean) / (n - 1)) if sumsq is not None else 0.0
    half = t_quantile_975(round(n) - 1) * math.sqrt(var / n)
    return max(0.0, mean - half), mean, min(1.0, mean + half)


def intervals_compare(
    low: float | None, high: float | None, other_low: float | None, other_high: float | None
) -> str | None:
    """ "lower", "higher" or "same" (the intervals overlap), None when either is missing:
    an environment is better or worse than another only where the 95% intervals say so."""
    if low is None or high is None or other_low is None or other_high is None:
        return None
    if high < other_low:
        return "lower"
    if low > other_high:
        return "higher"
    return "same"


def down_periods(down: pl.DataFrame, gap_minutes: int = DOWN_PERIOD_GAP_MINUTES) -> pl.DataFrame:
    """Down minutes merged into periods: minutes at most `gap_minutes` apart are one period.

    `down` has a row per down minute (environment, minute, requests, errors, cause). The
    minutes between them were judged up or not judged, so a period is where trouble was,
    not a claim that every minute in it was down.
    """
    import polars as pl

    schema = down_period_schema()
    if down.is_empty():
        return pl.DataFrame(schema=schema)
    gap = timedelta(minutes=gap_minutes)
    return (
        down.sort("environment", "minute")
        .with_columns(_new=(pl.col("minute").diff().over("environment") > gap).fill_null(True))
        .with_columns(_id=pl.col("_new").cum_sum())
        .group_by("environment", "_id")
        .agg(
            start=pl.col("minute").min(),
            end=pl.col("minute").max() + timedelta(minutes=1),
            down_minutes=pl.len().cast(pl.Int64),
            error_minutes=(pl.col("cause") == "errors").sum().cast(pl.Int64),
            silent_minutes=(pl.col("cause") == "no traffic").sum().cast(pl.Int64),
            requests=pl.col("requests").sum().cast(pl.Float64),
            errors=pl.col("errors").sum().cast(pl.Float64),
        )
        .drop("_id")
        .sort("environment", "start")
        .select(list(schema))
        .cast(pl.Schema(schema))
    )


def availability_per(traffic: pl.DataFrame, by: list[str]) -> pl.DataFrame:
    """Requests, errors and availability of `traffic` rows (requests, errors per group)
    summed over every other column, e.g. per period over all selected models."""
    import polars as pl

    return (
        traffic.group_by(by)
        .agg(pl.col("requests").sum(), pl.col("errors").sum())
        .with_columns(availability=1 - pl.col("errors") / pl.col("requests"))
        .sort(by)
    )

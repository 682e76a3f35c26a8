"""The pieces the demo's load is multiplied from: daily shape, weekend, growth and noise.

Why separate from ``traffic``: the scenario plan draws the hourly noise while it lays out
the fleet (one random stream, so a seed keeps giving the same data), and ``traffic``
needs the plan; these pieces are what both of them use.

Per (environment, model) and minute::

    rate = peak_rpm * scale * profile(minute of day) * weekend * growth(t) * hourly * minute

``profile`` has two peaks (10:00 and 16:00 UTC) and a night trough at ``NIGHT_FLOOR`` of
the peak; ``weekend`` is ``WEEKEND_FACTOR`` on Saturdays and Sundays; ``growth`` is
``GROWTH_PER_90_DAYS`` per 90 days, anchored so ``peak_rpm`` holds at the end of the range
(what the demo shows first). ``hourly`` is the product of two stationary AR(1) series in
log space, one shared by an environment (``ENV_NOISE``) and one per deployment
(``MODEL_NOISE``); ``minute`` is independent per minute (``MINUTE_SIGMA``). Every noise
factor is lognormal with mean 1, so it moves single minutes and hours, not the totals.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

NS_PER_S = 1_000_000_000
NS_PER_MIN = 60 * NS_PER_S
DAY_NS = 86400 * NS_PER_S
MIN_PER_DAY = 1440

WEEKEND_FACTOR = 0.6
GROWTH_PER_90_DAYS = 1.4
NIGHT_FLOOR = 0.25
ENV_NOISE = (0.10, 0.7)  # (sigma, phi) of the hourly AR(1) shared by an environment
MODEL_NOISE = (0.08, 0.5)  # (sigma, phi) of the hourly AR(1) of one deployment
MINUTE_SIGMA = 0.10


def daily_profile() -> np.ndarray:
    """Weekday shape per minute of day: peaks at 10:00 and 16:00 UTC, trough 0.25 at night."""
    h = (np.arange(MIN_PER_DAY) + 0.5) / 60.0
    raw = np.exp(-0.5 * ((h - 10.0) / 2.0) ** 2) + 0.9 * np.exp(-0.5 * ((h - 16.0) / 2.2) ** 2)
    profile: np.ndarray = NIGHT_FLOOR + (1 - NIGHT_FLOOR) * (raw - raw.min()) / (
        raw.max() - raw.min()
    )
    return profile


PROFILE = daily_profile()


def weekday(ns: Any) -> Any:
    """Monday = 0, for an int or an array of epoch nanoseconds (1970-01-01 was a Thursday)."""
    return (ns // DAY_NS + 3) % 7


def ar1(rng: np.random.Generator, n: int, sigma: float, phi: float) -> np.ndarray:
    """Stationary AR(1) in log space with marginal sd `sigma`, returned as a mean-1 factor."""
    eps = rng.standard_normal(n) * sigma * math.sqrt(1 - phi * phi)
    x = np.empty(n)
    prev = rng.standard_normal() * sigma
    for i in range(n):
        prev = phi * prev + eps[i]
        x[i] = prev
    return np.exp(x - sigma * sigma / 2)


def minute_noise(rng: np.random.Generator, n: int) -> np.ndarray:
    """The independent per-minute factor: lognormal, mean 1, sd of the log `MINUTE_SIGMA`."""
    sigma = MINUTE_SIGMA
    return np.exp(rng.standard_normal(n) * sigma - sigma * sigma / 2)


def shaped_rates(
    peak_rpm: float, minute_ns: np.ndarray, end_ns: int, hourly: np.ndarray
) -> np.ndarray:
    """Requests per minute before the per-minute noise, for minutes starting at `minute_ns`.

    `peak_rpm` is already scaled; `hourly` holds the hourly noise repeated per minute. The
    factors are multiplied in one fixed order, so the same minute gets the same float
    whichever range it is computed in.
    """
    growth = GROWTH_PER_90_DAYS ** ((minute_ns - end_ns) / (90 * DAY_NS))
    profile = PROFILE[(minute_ns // NS_PER_MIN) % MIN_PER_DAY]
    weekly = np.where(weekday(minute_ns) >= 5, WEEKEND_FACTOR, 1.0)
    rates: np.ndarray = peak_rpm * profile * weekly * growth * hourly
    return rates

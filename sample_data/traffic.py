"""The demo's traffic: expected requests per minute for each deployment, and the arrivals.

Why public: the traces are drawn from these rates, and the GPU-utilization and billing
generators must follow the same load, so they call `minute_rates` with the same fleet,
range and seed as the traces were generated with, instead of inventing their own.

The rate of a minute is the product described in ``sample_data.traffic_shape`` without
its per-minute factor; outages' silent phases are zero. `arrivals` turns a day of rates
into request start times: it draws the per-minute factor (lognormal, mean 1), then
Poisson bursts of calls, so the expected number of requests of a minute is its rate.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np

from sample_data.fleet import Fleet
from sample_data.incidents import INCIDENTS, Incident, silent_mask
from sample_data.plan import DeploymentPlan, Plan, make_plan
from sample_data.traffic_shape import (
    DAY_NS,
    MIN_PER_DAY,
    NS_PER_MIN,
    NS_PER_S,
    minute_noise,
    shaped_rates,
)

BURSTS = {  # model kind -> (mean extra calls per burst, mean gap between them in seconds)
    "llm": (0.25, 3.0),
    "embedding": (0.6, 0.05),
    "classifier": (0.15, 0.5),
    "vision": (0.4, 0.2),
}
HOUR_NS = 3600 * NS_PER_S


def expected_rates(dp: DeploymentPlan, plan: Plan, first_ns: int, minutes: int) -> np.ndarray:
    """Expected requests per minute of one deployment for `minutes` minutes from `first_ns`
    (a minute boundary inside the plan's range): the load shape times the hourly noise,
    zero where an outage lets nothing in."""
    minute_ns = first_ns + np.arange(minutes, dtype=np.int64) * NS_PER_MIN
    hourly = dp.hour_noise[(minute_ns - plan.start_ns) // HOUR_NS]
    rate = shaped_rates(dp.dep.peak_rpm * plan.scale, minute_ns, plan.end_ns, hourly)
    rate[silent_mask(plan.active, dp.dep.env, dp.dep.model, minute_ns)] = 0.0
    return rate


def arrivals(dp: DeploymentPlan, plan: Plan, day: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted request start times of one deployment on day `day` of the plan.

    Clients call in bursts (an agent's tool loop, a batch of chunks to embed, a camera's
    frames): bursts arrive as a Poisson process at rate / (1 + b) per minute and each is
    1 + Poisson(b) calls, so per-minute counts are over-dispersed beyond what the rate
    noise gives, by about 1 + b + b / (1 + b), while the mean stays the rate.
    """
    day_ns = plan.start_ns + day * DAY_NS
    b, gap_s = BURSTS[dp.spec.kind]
    noise = minute_noise(rng, MIN_PER_DAY)
    rate = expected_rates(dp, plan, day_ns, MIN_PER_DAY) * noise
    bursts = rng.poisson(rate / (1 + b))
    n_bursts = int(bursts.sum())
    if n_bursts == 0:
        return np.zeros(0, np.int64)
    minute = np.repeat(np.arange(MIN_PER_DAY, dtype=np.int64), bursts)
    t0 = day_ns + minute * NS_PER_MIN + rng.integers(0, NS_PER_MIN, n_bursts)
    size = 1 + rng.poisson(b, n_bursts)
    gaps = (rng.exponential(gap_s, int(size.sum())) * NS_PER_S).astype(np.int64)
    first = np.cumsum(size) - size
    gaps[first] = 0
    cs = np.cumsum(gaps)
    start = np.repeat(t0, size) + cs - np.repeat(cs[first], size)
    start = np.minimum(start, day_ns + DAY_NS - 1)
    # a burst must not leak into the silent part of an outage
    start = start[~silent_mask(plan.active, dp.dep.env, dp.dep.model, start)]
    return np.sort(start)


def minute_rates(
    fleet: Fleet,
    start: datetime,
    end: datetime,
    seed: int,
    *,
    scale: float = 1.0,
    incidents: Sequence[Incident] = INCIDENTS,
) -> dict[tuple[str, str], np.ndarray]:
    """Expected requests per minute for every (environment, model) of `fleet`, from `start`
    to `end` (UTC, whole days apart): index i is the minute starting at start + i minutes.

    These are the rates `generate(outdir, days=..., seed=seed, scale=scale, end=end)` draws
    its requests from, before the independent per-minute factor (mean 1) that `arrivals`
    adds, so a day's requests scatter around the day's sum of rates. A naive datetime is
    taken as UTC, and `end` is floored to the minute as `generate` does.
    """
    start_utc, end_utc = (_utc_minute(t) for t in (start, end))
    span_ns = int((end_utc - start_utc).total_seconds()) * NS_PER_S
    if span_ns <= 0 or span_ns % DAY_NS:
        raise ValueError("start and end must be a positive whole number of days apart")
    days = span_ns // DAY_NS
    plan = make_plan(fleet, incidents, days, seed, scale, end_utc)
    return {
        (dp.dep.env, dp.dep.model): expected_rates(dp, plan, plan.start_ns, days * MIN_PER_DAY)
        for dp in plan.deployments
    }


def _utc_minute(t: datetime) -> datetime:
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.astimezone(UTC).replace(second=0, microsecond=0)

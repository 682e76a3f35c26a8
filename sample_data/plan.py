"""The scenario's plan: everything decided before the first day is written.

Why a plan: rollout instants, replicas' resources, the hourly load noise and the incidents'
windows are drawn once, from one random stream seeded by ``[seed, 0]``, in a fixed order
(the environments' noise, then per deployment its rollouts, resources and own noise). The
days are then drawn from their own streams, so any day can be rebuilt from the seed and
the order here is what keeps a seed's data identical from release to release.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from sample_data.fleet import Deployment, Fleet, Model
from sample_data.incidents import Active, Incident, pinned_rollout_minute
from sample_data.incidents import problems as incident_problems
from sample_data.otlp_json import attrs, iso, token
from sample_data.resources import resource_attrs
from sample_data.traffic_shape import DAY_NS, ENV_NOISE, MODEL_NOISE, NS_PER_MIN, NS_PER_S, ar1
from sample_data.traffic_shape import weekday as weekday_of


@dataclass
class Resource:
    """One OTLP resource (a service instance of one version); `json` is its attribute list."""

    env: str
    service: str
    version: str
    attrs: list[tuple[str, Any]]
    json: str = ""


@dataclass
class DeploymentPlan:
    """A deployment plus what was drawn for it: rollout instants and resources per version."""

    dep: Deployment
    spec: Model
    index: int
    rollout_ns: np.ndarray  # start of each version, int64 ns
    gids: np.ndarray  # [version, replica] -> resource id within the environment
    new_semconv: list[bool]  # per version
    hour_noise: np.ndarray  # mean-1 factor per hour of the range


@dataclass
class Plan:
    start_ns: int
    end_ns: int
    days: int
    scale: float
    seed: int
    fleet: Fleet
    deployments: list[DeploymentPlan]
    resources: dict[str, list[Resource]]
    active: list[Active]  # the incidents, windows resolved, in declaration order
    rollouts: list[dict[str, str]] = field(default_factory=list)


def event_time(start_ns: int, days: int, fraction: float, minute_of_day: int) -> int:
    """The instant at `minute_of_day` (UTC) on the day at `fraction` of the range, moved to
    the nearest weekday inside the range.

    Incidents and deploys happen on working days; on a weekend the outage's first hour
    would carry too few requests per minute to be judged. Days are 24-hour slices from the
    start, so an `end` that is not midnight still gets its events inside the range.
    """
    target = min(days - 1, int(fraction * days))
    candidates = []
    for offset in (0, -1, 1, -2, 2, -3, 3):
        d = target + offset
        if 0 <= d < days:
            slice_ns = start_ns + d * DAY_NS
            t = slice_ns - slice_ns % DAY_NS + minute_of_day * NS_PER_MIN
            if t < slice_ns:
                t += DAY_NS
            candidates.append(t)
            if weekday_of(t) < 5:
                return t
    return candidates[0]


def _version_key(v: str) -> tuple[int, ...]:
    return tuple(int(p) for p in v.split("-")[0].split("."))


def _fixed_window(inc: Incident, start_ns: int, end_ns: int, days: int) -> Active:
    w = inc.window
    t0 = start_ns
    if w.at is not None:
        t0 = event_time(start_ns, days, w.at, w.minute_of_day or 0)
    t1 = end_ns if w.minutes is None else t0 + w.minutes * NS_PER_MIN
    return Active(inc, t0, t1)


def _rollout_window(inc: Incident, plans: Sequence[DeploymentPlan], end_ns: int) -> Active:
    assert inc.window.rollout is not None
    model, version = inc.window.rollout
    dp = next((p for p in plans if p.dep.env == inc.environment and p.dep.model == model), None)
    versions = [v for _, v in dp.dep.versions] if dp else []
    if dp is None or version not in versions:
        raise ValueError(f"{inc.kind} in {inc.environment}: no rollout of {model} {version}")
    j = versions.index(version)
    t0 = int(dp.rollout_ns[j])
    t1 = int(dp.rollout_ns[j + 1]) if j + 1 < len(versions) else end_ns
    if inc.window.minutes is not None:
        t1 = t0 + inc.window.minutes * NS_PER_MIN
    return Active(inc, t0, t1)


def make_plan(
    fleet: Fleet,
    incidents: Sequence[Incident],
    days: int,
    seed: int,
    scale: float,
    end: datetime,
) -> Plan:
    problems = fleet.check()
    if problems:
        raise ValueError("inconsistent fleet: " + "; ".join(problems))
    problems = incident_problems(fleet, incidents)
    if problems:
        raise ValueError("bad incident records: " + "; ".join(problems))
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0]))
    end_ns = int(end.timestamp()) * NS_PER_S
    start_ns = end_ns - days * DAY_NS
    hours = days * 24

    env_noise = {env: ar1(rng, hours, *ENV_NOISE) for env in fleet.environment_names()}
    resources: dict[str, list[Resource]] = {env: [] for env in fleet.environment_names()}
    plans: list[DeploymentPlan] = []
    rollouts: list[dict[str, str]] = []
    for i, dep in enumerate(fleet.deployments):
        spec = fleet.model(dep.model)
        times: list[int] = []
        for j, (fraction, version) in enumerate(dep.versions):
            if j == 0:
                times.append(start_ns - 365 * DAY_NS)
                continue
            minute = pinned_rollout_minute(incidents, dep.env, dep.model, version)
            if minute is None:
                minute = 9 * 60 + int(rng.integers(0, 8 * 60))
            t = event_time(start_ns, days, fraction, minute)
            t = max(t, times[-1] + 60 * NS_PER_MIN)  # short ranges keep versions in order
            times.append(t)
            rollouts.append(
                {"environment": dep.env, "service": spec.service, "version": version, "at": iso(t)}
            )
        gids = np.zeros((len(dep.versions), dep.replicas), dtype=np.int64)
        for j, (_, version) in enumerate(dep.versions):
            rs_hash = token(rng, 10)
            for r in range(dep.replicas):
                pairs = resource_attrs(dep.env, spec.service, version, r, rs_hash, rng)
                res = Resource(dep.env, spec.service, version, pairs, "[" + attrs(pairs) + "]")
                gids[j, r] = len(resources[dep.env])
                resources[dep.env].append(res)
        new = [
            bool(dep.new_semconv_from) and _version_key(v) >= _version_key(dep.new_semconv_from)
            for _, v in dep.versions
        ]
        noise = env_noise[dep.env] * ar1(rng, hours, *MODEL_NOISE)
        plans.append(DeploymentPlan(dep, spec, i, np.array(times, np.int64), gids, new, noise))
    active = [
        _rollout_window(inc, plans, end_ns)
        if inc.window.rollout is not None
        else _fixed_window(inc, start_ns, end_ns, days)
        for inc in incidents
    ]
    return Plan(start_ns, end_ns, days, scale, seed, fleet, plans, resources, active, rollouts)

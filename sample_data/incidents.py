"""What goes wrong in the demo, declared as data: one record per incident.

Why records: the traffic, span and summary code apply every incident of a kind the same
way, so a new outage or regression is one more record rather than one more branch, and
``scenario.json`` reports each one from the record that caused it.

Kinds and their parameters:

- ``outage``: for ``error_minutes`` from the window's start about ``error_ratio`` of the
  requests fail with ``http_status`` and ``message``; then, to the window's end, no request
  arrives at all.
- ``latency_regression``: requests that start inside the window take ``latency_factor``
  times as long (an LLM's time to first token too).
- ``accuracy_drop``: requests served inside the window are judged correct with
  probability ``accuracy`` instead of the deployment's own.

A window starts either at a fraction of the range (``at``, on the nearest weekday, at
``minute_of_day`` UTC) or with the rollout of a version (``rollout`` = (model, version) in
the incident's environment, at ``minute_of_day`` UTC when given, else at the minute the
plan draws for it); it lasts ``minutes``, or, for a rollout, while that version serves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from sample_data.fleet import Fleet
from sample_data.traffic_shape import MIN_PER_DAY, NS_PER_MIN

# the parameters each kind needs; text for the ones that are messages, else numbers
PARAMS: dict[str, dict[str, type]] = {
    "outage": {
        "error_minutes": float,
        "error_ratio": float,
        "http_status": float,
        "message": str,
        "description": str,
    },
    "latency_regression": {"latency_factor": float},
    "accuracy_drop": {"accuracy": float},
}


@dataclass(frozen=True)
class Window:
    """When an incident is on; with neither `at` nor `rollout`, from the start of the range."""

    at: float | None = None
    minute_of_day: int | None = None
    minutes: int | None = None
    rollout: tuple[str, str] | None = None


@dataclass(frozen=True)
class Incident:
    """`models` empty means every model in the environment."""

    kind: str  # "outage" | "latency_regression" | "accuracy_drop"
    environment: str
    models: tuple[str, ...]
    window: Window
    params: Mapping[str, float | int | str] = field(default_factory=dict)

    def applies(self, env: str, model: str) -> bool:
        return env == self.environment and (not self.models or model in self.models)

    def number(self, key: str) -> float:
        value = self.params[key]
        if isinstance(value, str):
            raise TypeError(f"{self.kind}.{key} must be a number")
        return float(value)


INCIDENTS: tuple[Incident, ...] = (
    Incident(
        "outage",
        "gcp-europe-west4",
        (),
        Window(at=0.55, minute_of_day=9 * 60 + 45, minutes=180),
        {
            "error_minutes": 60,
            "error_ratio": 0.9,
            "http_status": 503,
            "message": "upstream connect error or disconnect/reset before headers. reset "
            "reason: connection failure",
            "description": "about 90% of requests fail with 503 for an hour, then no "
            "requests at all for two hours",
        },
    ),
    # The chat-gateway 2.4.0 rollout slows llama; mistral-7b-instruct (assistant-api) on the
    # same site slows from the same instant too: the generator always did so, and the
    # committed data keep it.
    Incident(
        "latency_regression",
        "aws-us-east-1",
        ("llama-3.1-70b-instruct", "mistral-7b-instruct"),
        Window(rollout=("llama-3.1-70b-instruct", "2.4.0"), minute_of_day=14 * 60),
        {"latency_factor": 1.45},
    ),
    # The edge runs a 4-bit (q4_k_m) build: fast on an L4, visibly less accurate.
    Incident(
        "accuracy_drop",
        "edge-munich",
        ("mistral-7b-instruct",),
        Window(rollout=("mistral-7b-instruct", "1.8.2-q4")),
        {"accuracy": 0.78},
    ),
)


@dataclass(frozen=True)
class Active:
    """An incident with its window resolved to epoch nanoseconds, [start_ns, end_ns)."""

    incident: Incident
    start_ns: int
    end_ns: int

    @property
    def kind(self) -> str:
        return self.incident.kind

    @property
    def errors_until_ns(self) -> int:
        """An outage's end of the failing phase, and start of the silent one."""
        minutes = int(self.incident.number("error_minutes"))
        return min(self.end_ns, self.start_ns + minutes * NS_PER_MIN)

    def covers(self, t: np.ndarray) -> np.ndarray:
        covered: np.ndarray = (t >= self.start_ns) & (t < self.end_ns)
        return covered

    def failing(self, t: np.ndarray) -> np.ndarray:
        failing: np.ndarray = (t >= self.start_ns) & (t < self.errors_until_ns)
        return failing

    def silent(self, t: np.ndarray) -> np.ndarray:
        silent: np.ndarray = (t >= self.errors_until_ns) & (t < self.end_ns)
        return silent


def problems(fleet: Fleet, incidents: Sequence[Incident]) -> list[str]:
    """Every mistake in the records, as a sentence: a typo must not make an incident vanish
    silently (an outage of a site that does not exist changes nothing)."""
    out: list[str] = []
    for n, inc in enumerate(incidents):
        where = f"incident {n} ({inc.kind} in {inc.environment})"
        deployed = {d.model for d in fleet.in_environment(inc.environment)}
        if inc.kind not in PARAMS:
            out.append(f"{where}: unknown kind; known are {', '.join(PARAMS)}")
            continue
        if not deployed:
            out.append(f"{where}: no deployment in that environment")
        out += [f"{where}: {m} is not deployed there" for m in inc.models if m not in deployed]
        for key, want in PARAMS[inc.kind].items():
            value = inc.params.get(key)
            is_text = isinstance(value, str)
            if value is None or is_text != (want is str) or isinstance(value, bool):
                out.append(f"{where}: parameter {key} must be {want.__name__}")
        w = inc.window
        if w.at is not None and not 0.0 <= w.at <= 1.0:
            out.append(f"{where}: window at {w.at} is outside 0..1")
        if w.at is not None and w.rollout is not None:
            out.append(f"{where}: a window starts at a fraction or at a rollout, not both")
        if w.minute_of_day is not None and not 0 <= w.minute_of_day < MIN_PER_DAY:
            out.append(f"{where}: minute_of_day {w.minute_of_day} is outside 0..1439")
        if w.minutes is not None and w.minutes <= 0:
            out.append(f"{where}: a window lasts at least a minute")
    return out


def of_kind(active: Sequence[Active], kind: str, env: str, model: str) -> list[Active]:
    """The resolved incidents of `kind` that touch (env, model), in declaration order."""
    return [a for a in active if a.kind == kind and a.incident.applies(env, model)]


def pinned_rollout_minute(
    incidents: Sequence[Incident], env: str, model: str, version: str
) -> int | None:
    """The minute of day an incident fixes for this rollout, if one does."""
    for inc in incidents:
        w = inc.window
        if inc.environment == env and w.rollout == (model, version) and w.minute_of_day is not None:
            return w.minute_of_day
    return None


def silent_mask(active: Sequence[Active], env: str, model: str, t: np.ndarray) -> np.ndarray:
    """Instants at which an outage lets no request of (env, model) in."""
    mask = np.zeros(len(t), bool)
    for a in of_kind(active, "outage", env, model):
        mask |= a.silent(t)
    return mask


def accuracy_at(
    active: Sequence[Active], env: str, model: str, base: float, t: np.ndarray
) -> np.ndarray:
    """The probability that a request served at each instant is judged correct."""
    p = np.full(len(t), base)
    for a in of_kind(active, "accuracy_drop", env, model):
        p[a.covers(t)] = a.incident.number("accuracy")
    return p


def slow_down(active: Sequence[Active], env: str, model: str, t: np.ndarray) -> np.ndarray:
    """Per-request latency factor; 1 outside every regression's window."""
    factor = np.ones(len(t))
    for a in of_kind(active, "latency_regression", env, model):
        factor[a.covers(t)] *= a.incident.number("latency_factor")
    return factor

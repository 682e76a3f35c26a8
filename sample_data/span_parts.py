"""What the LLM and HTTP span makers share: error tables, evaluation records, tallies.

Why shared: both kinds of request fail the same way (the deployment's error rate, an
outage's burst of errors), are evaluated into the same ``gen_ai.evaluation.result`` records
and count into the same tallies that ``scenario.json`` reports.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sample_data.fleet import Deployment
from sample_data.incidents import Active, of_kind
from sample_data.otlp_json import attrs

SERVER_PORT = 8000
EVAL_LOG_SHARE = 1 / 3  # share of LLM evaluations written as log records, not span events
LLM_EVAL_RATE = 0.05
CLASSIFIER_EVAL_RATE = 0.02
RELEVANCE_SHARE = 0.1  # of evaluated LLM requests, also judged for "relevance"

ErrorKind = tuple[str, int, str, float]  # error.type, HTTP status, status message, share


def eval_attrs(name: str, label: str | None, value: float | None, explanation: str = "") -> str:
    pairs: list[tuple[str, Any]] = [("gen_ai.evaluation.name", name)]
    if label is not None:
        pairs.append(("gen_ai.evaluation.score.label", label))
    if value is not None:
        pairs.append(("gen_ai.evaluation.score.value", value))
    if explanation:
        pairs.append(("gen_ai.evaluation.explanation", explanation))
    return attrs(pairs)


EVENT_TMPL = '{"timeUnixNano":"%d","name":"gen_ai.evaluation.result","attributes":[%s]}'
LOG_TMPL = (
    '{"timeUnixNano":"%d","observedTimeUnixNano":"%d","severityNumber":9,"severityText":"INFO",'
    '"eventName":"gen_ai.evaluation.result","traceId":"%s","spanId":"%s","attributes":[%s]}'
)
PASS_ATTRS = eval_attrs("accuracy", "pass", None)
FAIL_ATTRS = [
    eval_attrs("accuracy", "fail", None, e)
    for e in (
        "answer contradicts the retrieved context",
        "answer is incomplete",
        "wrong entity in answer",
        "",
    )
]
# the first kind of each table is the timeout
ERRORS_LLM: tuple[ErrorKind, ...] = (
    ("timeout", 504, "request timed out after 30s", 0.3),
    ("500", 500, "CUDA error: an illegal memory access was encountered", 0.4),
    ("503", 503, "engine overloaded: too many pending requests", 0.3),
)
ERRORS_HTTP: tuple[ErrorKind, ...] = (
    ("504", 504, "upstream request timeout", 0.25),
    ("500", 500, "Internal Server Error", 0.5),
    ("503", 503, "Service Unavailable", 0.25),
)


@dataclass
class DayBatch:
    """The requests of one environment-day, ready to be grouped into export lines."""

    start_ns: list[np.ndarray] = field(default_factory=list)
    gid: list[np.ndarray] = field(default_factory=list)
    nspans: list[np.ndarray] = field(default_factory=list)
    entry: list[str] = field(default_factory=list)
    child: list[str] = field(default_factory=list)  # "" for single-span requests
    logs: list[tuple[int, int, str]] = field(default_factory=list)  # (time, gid, record)


@dataclass
class Stats:
    requests: int = 0
    spans: int = 0
    errors: int = 0
    evaluations: int = 0
    eval_events: int = 0
    eval_logs: int = 0
    eval_pass: float = 0.0  # sum of accuracy scores (a pass counts 1)
    eval_accuracy: int = 0
    eval_expected: float = 0.0  # sum of the accuracy each judged request was drawn with


def pareto_tail(rng: np.random.Generator, n: int) -> np.ndarray:
    """Mostly 1; for 1.5% of requests a heavy Pareto(1.6) multiplier, capped at 25x."""
    mult = np.ones(n)
    tail = rng.random(n) < 0.015
    mult[tail] = np.minimum(1.0 + rng.pareto(1.6, int(tail.sum())) * 2.0, 25.0)
    return mult


def outages_of(active: Sequence[Active], dep: Deployment) -> list[Active]:
    return of_kind(active, "outage", dep.env, dep.model)


def outage_status(outage: Active) -> tuple[int, str]:
    """(HTTP status, status message) of an outage's failing requests."""
    params = outage.incident.params
    return int(outage.incident.number("http_status")), str(params["message"])


def draw_errors(
    rng: np.random.Generator,
    start: np.ndarray,
    dep: Deployment,
    active: Sequence[Active],
    table: Sequence[ErrorKind],
) -> tuple[np.ndarray, np.ndarray]:
    """Which requests fail and how: an index into `table`, or len(table) + k for the k-th
    outage of `outages_of(active, dep)` that the request fell into."""
    n = len(start)
    p = np.full(n, dep.error_rate)
    outages = outages_of(active, dep)
    hit: list[np.ndarray] = []
    for outage in outages:
        failing = outage.failing(start)
        p[failing] = outage.incident.number("error_ratio")
        hit.append(failing)
    err = rng.random(n) < p
    kind = rng.choice(len(table), size=n, p=[e[3] for e in table])
    for k, failing in enumerate(hit):
        kind[failing] = len(table) + k
    return err, kind


def judged_accuracy(p: np.ndarray) -> float | np.ndarray:
    """`p` as one number when every request has the same, so a draw from it is the one
    the generator has always made."""
    if len(p) and bool(np.all(p == p[0])):
        return float(p[0])
    return p

"""Every figure of `metrics()` and `hybridlens metrics --format json` against numpy.

A seeded fleet is generated here in the real OTLP wire format, and the generator writes
down, span by span, which span is the request, for which model, how long it took and
whether it failed: the truth comes from the construction, not from the warehouse. The
figures are then recomputed from that truth with numpy and scipy (exact percentiles,
Wilson and Student-t intervals) and with a plain Python implementation of DESIGN.md's
uptime rule, and compared with what the rollups give.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import statistics
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from otlp_factory import (
    SpanSpec,
    evaluation_event,
    evaluation_log,
    jsonl,
    logs_request,
    traces_request,
)
from scipy import stats

from ingest.traces import ingest_paths
from warehouse.config import Config, load_file
from warehouse.db import Warehouse
from warehouse.metrics import METRIC_COLUMNS, metrics
from warehouse.uptime import slo_params
from warehouse.uptime import uptime_by_environment as sql_uptime

NS = 10**9
MINUTE = timedelta(minutes=1)
WEEK = timedelta(days=7)
BASE = datetime(2026, 10, 5, tzinfo=UTC)  # hour-aligned; every span of the fleet is after it
HOURS = 48
RATIOS = ("error_rate", "availability", "uptime", "accuracy", "accuracy_lo", "accuracy_hi")

CONFIG_TOML = """
[[environments]]
name = "dc-lyon"
kind = "onprem"
match = [{ "k8s.cluster.name" = "lyon-prod" }]  # beats deployment.environment.name

[[environments]]
name = "aws-eu-west-1"
kind = "cloud"
provider = "aws"
region = "eu-west-1"

[[environments]]
name = "edge-oslo"
kind = "edge"
sampling_ratio = 0.5  # every span of this site counts twice

[[models]]
name = "clf"
evaluation = "exact_match"  # for clf only exact_match counts, not accuracy

[[models]]
name = "yolo"
service = "vision"
model_attribute = "ml.model.name"
"""

# environment -> resource attributes that resolve to it (lab-unlisted is not in the config)
ENV_RESOURCES: dict[str, dict[str, str]] = {
    "dc-lyon": {"k8s.cluster.name": "lyon-prod", "deployment.environment.name": "production"},
    "aws-eu-west-1": {"deployment.environment.name": "aws-eu-west-1", "cloud.provider": "aws"},
    "edge-oslo": {"deployment.environment": "edge-oslo"},
    "lab-unlisted": {"deployment.environment.name": "lab-unlisted"},
}
CONFIG_WEIGHT = {"edge-oslo": 2.0}  # 1 / sampling_ratio
EVALUATION_OF = {"clf": "exact_match"}  # the evaluation that counts, 'accuracy' otherwise


# -- the fleet and its truth ----------------------------------------------------------------------
@dataclass(frozen=True)
class Request:
    environment: str
    model: str
    version: str
    start: datetime
    duration_ms: float
    error: bool
    weight: float
    input_tokens: int | None
    output_tokens: int | None


@dataclass(frozen=True)
class Evaluation:
    environment: str
    model: str
    version: str
    span_start: datetime
    name: str
    score: float | None


@dataclass
class Fleet:
    """OTLP documents plus what they mean: the requests and the evaluations that count."""

    rng: np.random.Generator
    resources: dict[tuple[str, str, str | None], list[dict[str, Any]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    logs: dict[tuple[str, str, str | None], list[dict[str, Any]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    requests: list[Request] = field(default_factory=list)
    evaluations: list[Evaluation] = field(default_factory=list)

    # -- primitives ---------------------------------------------------------------------------
    def hex(self, nbytes: int) -> str:
        return self.rng.bytes(nbytes).hex()

    def span(
        self,
        where: tuple[str, str, str | None],
        trace_id: str,
        name: str,
        kind: int,
        start_ns: int,
        duration_ns: int,
        *,
        parent: str = "",
        error: bool = False,
        attributes: dict[str, Any] | None = None,
        trace_state: str | None = None,
        events: list[dict[str, Any]] | None = None,
    ) -> str:
        spec = SpanSpec(
            name=name,
            trace_id=trace_id,
            span_id=self.hex(8),
            parent_span_id=parent,
            kind=kind,
            start_ns=start_ns,
            duration_ms=duration_ns / 1e6,
            status_code=2 if error else 0,
            attributes=attributes or {},
            events=events or [],
        )
        doc = spec.to_json()
        doc["endTimeUnixNano"] = str(start_ns + duration_ns)  # exact, no float round trip
        if trace_state:
            doc["traceState"] = trace_state
        self.resources[where].append(doc)
        return spec.span_id

    def duration_ns(self, typical_ms: float) -> int:
        """Heavy-tailed: lognormal body, one request in twelve from a Pareto tail."""
        if self.rng.random() < 1 / 12:
            ms = typical_ms * 2.5 * (1 + self.rng.pareto(1.3))
        else:
            ms = self.rng.lognormal(math.log(typical_ms), 0.8)
        return max(1, round(min(ms, 600_000.0) * 1e6))

    def request(
        self,
        env: str,
        model: str,
        version: str | None,
        start_ns: int,
        dur_ns: int,
        error: bool,
        weight: float,
        tokens: tuple[int | None, int | None],
    ) -> None:
        self.requests.append(
            Request(
                env,
                model,
                version or "unknown",
                _time(start_ns),
                dur_ns / 1e6,
                error,
                weight,
                *tokens,
            )
        )

    def evaluate(
        self,
        where: tuple[str, str, str | None],
        model: str,
        start_ns: int,
        trace_id: str,
        span_id: str,
        name: str,
        time_ns: int,
        *,
        label: str | None = None,
        value: float | None = None,
        as_log: bool = False,
        also_log: bool = False,
    ) -> dict[str, Any] | None:
        """Record one evaluation; returns the span event to attach unless it goes as a log."""
        env, _, version = where
        if label is not None:
            low = label.lower()
            score = (
                1.0 if low in ("pass", "correct") else 0.0 if low in ("fail", "incorrect") else None
            )
        else:
            score = value
        if name == EVALUATION_OF.get(model, "accuracy") and score is not None:
            self.evaluations.append(
                Evaluation(env, model, version or "unknown", _time(start_ns), name, score)
            )
        if as_log or also_log:  # a duplicate of the event when also_log: same key, counted once
            self.logs[where].append(
                evaluation_log(trace_id, span_id, name, label=label, value=value, time_ns=time_ns)
            )
        if as_log:
            return None
        return evaluation_event(name, label=label, value=value, time_ns=time_ns)

    # -- documents ------------------------------------------------------------------------------
    def resource(self, where: tuple[str, str, str | None]) -> dict[str, Any]:
        env, service, version = where
        res: dict[str, Any] = {
            **ENV_RESOURCES[env],
            "service.name": service,
            "host.name": f"{service}-{env}-0",
        }
        if version:
            res["service.version"] = version
        return res

    def trace_lines(self, per_line: int = 120) -> list[bytes]:
        lines = []
        for where, spans in sorted(self.resources.items(), key=lambda kv: repr(kv[0])):
            for i in range(0, len(spans), per_line):
                lines.append(jsonl(spans_request(self.resource(where), spans[i : i + per_line])))
        order = self.rng.permutation(len(lines))
        return [lines[i] for i in order]

    def log_lines(self, per_line: int = 200) -> list[bytes]:
        lines = []
        for where, records in sorted(self.logs.items(), key=lambda kv: repr(kv[0])):
            for i in range(0, len(records), per_line):
                lines.append(jsonl(logs_request(self.resource(where), records[i : i + per_line])))
        return lines


def spans_request(resource: dict[str, Any], spans: list[dict[str, Any]]) -> dict[str, Any]:
    """An ExportTraceServiceRequest around spans already in OTLP/JSON form."""
    request = traces_request(resource, [])
    request["resourceSpans"][0]["scopeSpans"][0]["spans"] = spans
    return request


def _time(ns: int) -> datetime:
    return datetime.fromtimestamp(ns // NS, UTC) + timedelta(microseconds=(ns % NS) // 1000)


def _sampled(fleet: Fleet, env: str) -> tuple[str | None, float]:
    """The trace state of a new trace and the weight its spans carry."""
    if env in CONFIG_WEIGHT:
        return None, CONFIG_WEIGHT[env]
    if fleet.rng.random() < 0.3:  # kept by a 50% probability sampler: counts twice
        state = "ot=th:8" if fleet.rng.random() < 0.5 else "vendor=abc,ot=th:8;rv:0123456789abcd"
        return state, 2.0
    return None, 1.0


def add_trace(
    fleet: Fleet, env: str, pattern: str, start_ns: int, *, evaluate: bool = True
) -> None:
    rng = fleet.rng
    trace = fleet.hex(16)
    state, weight = _sampled(fleet, env)
    err_p = {"dc-lyon": 0.03, "aws-eu-west-1": 0.08, "edge-oslo": 0.15}.get(env, 0.05)
    error = bool(rng.random() < err_p)
    eval_t = start_ns + 30 * NS

    if pattern in ("server-model", "two-services"):
        version = "1.0" if rng.random() < 0.6 else "1.1"
        where = (env, "chat", version)
        parent = ""
        if pattern == "two-services":  # a gateway (no model: its service name) calls chat
            gw = (env, "gateway", "7")
            gw_dur = fleet.duration_ns(400)
            gw_id = fleet.span(
                gw, trace, "GET /api/ask", 2, start_ns, gw_dur, error=error, trace_state=state
            )
            parent = fleet.span(
                gw,
                trace,
                "POST chat",
                3,
                start_ns + 1_000_000,
                max(1, gw_dur - 2_000_000),
                parent=gw_id,
                trace_state=state,
            )
            fleet.request(env, "gateway", "7", start_ns, gw_dur, error, weight, (None, None))
            start_ns += 2_000_000
        dur = fleet.duration_ns(250)
        tokens = (int(rng.integers(20, 4000)), int(rng.integers(1, 800)))
        span_id = fleet.hex(8)
        events = []
        if evaluate and rng.random() < 0.5:  # another evaluation: never counted as accuracy
            events.append(
                fleet.evaluate(
                    where,
                    "llm-a",
                    start_ns,
                    trace,
                    span_id,
                    "relevance",
                    eval_t,
                    value=float(rng.random()),
                )
            )
        if evaluate and rng.random() < 0.6:
            value = float(rng.beta(8, 2))
            events.append(
                fleet.evaluate(
                    where,
                    "llm-a",
                    start_ns,
                    trace,
                    span_id,
                    "accuracy",
                    eval_t,
                    value=value,
                    also_log=rng.random() < 0.3,
                )
            )
        spec_attrs = {
            "gen_ai.request.model": "llm-a",
            "gen_ai.operation.name": "chat",
            "gen_ai.usage.input_tokens": tokens[0],
            "gen_ai.usage.output_tokens": tokens[1],
        }
        doc = SpanSpec(
            name="chat llm-a",
            trace_id=trace,
            span_id=span_id,
            parent_span_id=parent,
            kind=2,
            start_ns=start_ns,
            status_code=2 if error else 0,
            attributes=spec_attrs,
            events=[e for e in events if e],
        ).to_json()
        doc["endTimeUnixNano"] = str(start_ns + dur)
        if state:
            doc["traceState"] = state
        fleet.resources[where].append(doc)
        fleet.request(env, "llm-a", version, start_ns, dur, error, weight, tokens)
        # children: a failing cache lookup (not an error of the request) and, sometimes, a
        # second SERVER span of the same service in the same trace (not a second request)
        fleet.span(
            where,
            trace,
            "GET kv",
            3,
            start_ns + 500_000,
            max(1, dur // 10),
            parent=span_id,
            error=bool(rng.random() < 0.2),
            trace_state=state,
        )
        if rng.random() < 0.15:
            fleet.span(
                where,
                trace,
                "chat llm-a hop",
                2,
                start_ns + 800_000,
                max(1, dur // 2),
                parent=span_id,
                trace_state=state,
                attributes={"gen_ai.request.model": "llm-a"},
            )

    elif pattern == "http-genai-child":  # HTTP SERVER span; its INTERNAL child names the model
        version = "1.0" if rng.random() < 0.5 else "1.1"
        where = (env, "chat", version)
        dur = fleet.duration_ns(300)
        http = fleet.span(
            where,
            trace,
            "POST /v1/chat",
            2,
            start_ns,
            dur,
            error=error,
            trace_state=state,
            attributes={"http.route": "/v1/chat"},
        )
        tokens = (int(rng.integers(50, 3000)), int(rng.integers(1, 600)))
        child_id = fleet.span(
            where,
            trace,
            "chat llm-b",
            1,
            start_ns + 1_000_000,
            max(1, dur - 2_000_000),
            parent=http,
            error=error,
            trace_state=state,
            attributes={
                "gen_ai.request.model": "llm-b",
                "gen_ai.usage.input_tokens": tokens[0],
                "gen_ai.usage.output_tokens": tokens[1],
            },
        )
        fleet.request(env, "llm-b", version, start_ns, dur, error, weight, tokens)
        if evaluate and rng.random() < 0.7:
            pass_p = {"edge-oslo": 0.7}.get(env, 0.9)
            roll = rng.random()
            label = "unsure" if roll < 0.05 else ("pass" if rng.random() < pass_p else "fail")
            fleet.evaluate(
                where,
                "llm-b",
                start_ns + 1_000_000,
                trace,
                child_id,
                "accuracy",
                eval_t,
                label=label,
                as_log=True,
            )

    elif pattern == "scorer":  # a classifier behind HTTP; its config names exact_match
        where = (env, "scorer", None)
        dur = fleet.duration_ns(40)
        http = fleet.span(
            where, trace, "POST /score", 2, start_ns, dur, error=error, trace_state=state
        )
        child_id = fleet.hex(8)
        events = []
        if evaluate:
            label = "pass" if rng.random() < 0.93 else "fail"
            events.append(
                fleet.evaluate(
                    where,
                    "clf",
                    start_ns + 100_000,
                    trace,
                    child_id,
                    "exact_match",
                    eval_t,
                    label=label,
                )
            )
            events.append(
                fleet.evaluate(
                    where,
                    "clf",
                    start_ns + 100_000,
                    trace,
                    child_id,
                    "accuracy",
                    eval_t + 1,
                    value=float(rng.random()),
                )
            )
        doc = SpanSpec(
            name="predict clf",
            trace_id=trace,
            span_id=child_id,
            parent_span_id=http,
            kind=1,
            start_ns=start_ns + 100_000,
            attributes={"gen_ai.request.model": "clf"},
            events=[e for e in events if e],
        ).to_json()
        doc["endTimeUnixNano"] = str(start_ns + 100_000 + max(1, dur // 2))
        if state:
            doc["traceState"] = state
        fleet.resources[where].append(doc)
        fleet.request(env, "clf", None, start_ns, dur, error, weight, (None, None))

    elif pattern == "vision":  # no gen_ai attributes: the config names ml.model.name
        where = (env, "vision", "3")
        dur = fleet.duration_ns(90)
        fleet.span(
            where,
            trace,
            "POST /detect",
            2,
            start_ns,
            dur,
            error=error,
            trace_state=state,
            attributes={"ml.model.name": "yolo"},
        )
        fleet.request(env, "yolo", "3", start_ns, dur, error, weight, (None, None))

    elif pattern == "consumer":  # a queue worker: CONSUMER with a remote parent
        where = (env, "worker", "0.9")
        dur = fleet.duration_ns(120)
        tokens = (int(rng.integers(10, 500)), None)
        span_id = fleet.hex(8)
        events = []
        if evaluate and rng.random() < 0.5:
            pass_p = {"edge-oslo": 1.0}.get(env, 0.8)
            events.append(
                fleet.evaluate(
                    where,
                    "embed-x",
                    start_ns,
                    trace,
                    span_id,
                    "accuracy",
                    eval_t,
                    label="correct" if rng.random() < pass_p else "incorrect",
                )
            )
        doc = SpanSpec(
            name="process embed",
            trace_id=trace,
            span_id=span_id,
            parent_span_id=fleet.hex(8),
            kind=5,
            start_ns=start_ns,
            status_code=2 if error else 0,
            attributes={
                "gen_ai.request.model": "embed-x",
                "gen_ai.operation.name": "embeddings",
                "gen_ai.usage.input_tokens": tokens[0],
            },
            events=[e for e in events if e],
        ).to_json()
        doc["endTimeUnixNano"] = str(start_ns + dur)
        if state:
            doc["traceState"] = state
        fleet.resources[where].append(doc)
        fleet.request(env, "embed-x", "0.9", start_ns, dur, error, weight, tokens)

    elif pattern == "root-internal":  # a batch job: an INTERNAL root span is a request too
        where = (env, "batch", "1")
        dur = fleet.duration_ns(2000)
        span_id = fleet.hex(8)
        events = []
        if evaluate and rng.random() < 0.5:
            events.append(
                fleet.evaluate(
                    where,
                    "llm-a",
                    start_ns,
                    trace,
                    span_id,
                    "accuracy",
                    eval_t,
                    value=float(rng.beta(5, 2)),
                )
            )
        doc = SpanSpec(
            name="nightly eval",
            trace_id=trace,
            span_id=span_id,
            kind=1,
            start_ns=start_ns,
            status_code=2 if error else 0,
            attributes={"gen_ai.request.model": "llm-a"},
            events=[e for e in events if e],
        ).to_json()
        doc["endTimeUnixNano"] = str(start_ns + dur)
        if state:
            doc["traceState"] = state
        fleet.resources[where].append(doc)
        fleet.request(env, "llm-a", "1", start_ns, dur, error, weight, (None, None))
    else:  # pragma: no cover
        raise AssertionError(pattern)


PATTERNS = {
    "server-model": 0.3,
    "two-services": 0.1,
    "http-genai-child": 0.25,
    "scorer": 0.15,
    "vision": 0.08,
    "consumer": 0.08,
    "root-internal": 0.04,
}


def build_fleet(seed: int = 20261005, traces_per_env: int = 1400) -> Fleet:
    fleet = Fleet(np.random.default_rng(seed))
    rng = fleet.rng
    names, weights = list(PATTERNS), np.array(list(PATTERNS.values()))
    base_ns = int(BASE.timestamp()) * NS
    for env in ("dc-lyon", "aws-eu-west-1", "edge-oslo"):
        for _ in range(traces_per_env):
            pattern = names[rng.choice(len(names), p=weights / weights.sum())]
            start = base_ns + int(rng.integers(0, HOURS * 3600 * NS - 60 * NS))
            add_trace(fleet, env, pattern, start)
    # an environment missing from the config, with one single continuous score (n = 1)
    for _ in range(25):
        start = base_ns + int(rng.integers(0, HOURS * 3600 * NS - 60 * NS))
        add_trace(fleet, "lab-unlisted", "vision", start)
        add_trace(fleet, "lab-unlisted", "root-internal", start + NS, evaluate=False)
    where = ("lab-unlisted", "batch", "1")
    doc = fleet.resources[where][0]
    start = int(doc["startTimeUnixNano"])
    doc["events"] = [
        fleet.evaluate(
            where,
            "llm-a",
            start,
            doc["traceId"],
            doc["spanId"],
            "accuracy",
            start + NS,
            value=0.625,
        )
    ]
    return fleet


# -- the independent reference --------------------------------------------------------------------
def reference_minutes(
    requests: Iterable[Request],
    config: Config,
    start: datetime | None = None,
    end: datetime | None = None,
    environments: list[str] | None = None,
) -> dict[str, tuple[int, int]]:
    """(up, down) minutes per environment by DESIGN.md's rule, minute by minute, in plain Python.

    A minute is down when its error ratio is above the threshold with at least the minimum
    of requests, or when it has no requests although the same minute of the week had a
    median of at least the expected minimum over the 4 weeks before (weeks before the
    environment's first request do not exist and are left out of the median). Anything
    else is "no data". Minutes are judged from the environment's first request to the last
    request in the warehouse, within [start, end).
    """
    counts: dict[tuple[str, datetime], list[float]] = defaultdict(lambda: [0.0, 0.0])
    first: dict[str, datetime] = {}
    last: datetime | None = None
    for r in requests:
        minute = r.start.replace(second=0, microsecond=0)
        c = counts[(r.environment, minute)]
        c[0] += r.weight
        c[1] += r.weight if r.error else 0.0
        first[r.environment] = min(first.get(r.environment, minute), minute)
        last = max(last or minute, minute)
    out: dict[str, tuple[int, int]] = {}
    for env in sorted(first):
        if environments and env not in environments:
            continue
        e = config.environment(env)
        threshold = e.slo.down_error_ratio if e else 0.05
        min_requests = e.slo.uptime_min_requests if e else 5
        min_expected = e.slo.uptime_min_expected if e else 1.0
        up = down = 0
        minute = max(first[env], start) if start else first[env]
        assert last is not None
        stop = min(last, end - MINUTE) if end else last
        while minute <= stop:
            n, errors = counts.get((env, minute), (0.0, 0.0))
            weeks = [minute - k * WEEK for k in range(1, 5)]
            history = [counts.get((env, w), (0.0, 0.0))[0] for w in weeks if w >= first[env]]
            expected = statistics.median(history) if history else None
            if n >= min_requests:
                if errors / n > threshold:
                    down += 1
                else:
                    up += 1
            elif n == 0 and expected is not None and expected >= min_expected:
                down += 1
            minute += MINUTE
        out[env] = (up, down)
    return out


def reference_uptime(
    requests: Iterable[Request],
    config: Config,
    start: datetime | None = None,
    end: datetime | None = None,
    environments: list[str] | None = None,
) -> dict[str, float | None]:
    """Up minutes / judged minutes per environment; None where no minute could be judged."""
    minutes = reference_minutes(requests, config, start, end, environments)
    return {env: up / (up + down) if up + down else None for env, (up, down) in minutes.items()}


def wilson(k: float, n: float, z: float = 1.959963984540054) -> tuple[float, float]:
    """The Wilson score interval, written out from its closed formula."""
    p = k / n
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z / (1 + z**2 / n) * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))
    return centre - half, centre + half


def expected_rows(
    fleet: Fleet,
    config: Config,
    by: tuple[str, ...] = ("environment", "model"),
    start: datetime | None = None,
    end: datetime | None = None,
    environments: list[str] | None = None,
    models: list[str] | None = None,
) -> list[dict[str, Any]]:
    def keep(env: str, model: str, t: datetime) -> bool:
        return (
            (start is None or t >= start)
            and (end is None or t < end)
            and (not environments or env in environments)
            and (not models or model in models)
        )

    requests: dict[tuple[str, ...], list[Request]] = defaultdict(list)
    for r in fleet.requests:
        if keep(r.environment, r.model, r.start):
            requests[tuple(getattr(r, c) for c in by)].append(r)
    scores: dict[tuple[str, ...], list[float]] = defaultdict(list)
    for e in fleet.evaluations:
        if keep(e.environment, e.model, e.span_start):
            assert e.score is not None
            scores[tuple(getattr(e, c) for c in by)].append(e.score)
    uptime = (
        reference_uptime(fleet.requests, config, start, end, environments)
        if "environment" in by
        else {}
    )
    rows = []
    for key in sorted(set(requests) | set(scores)):
        reqs = requests.get(key, [])
        w = np.array([r.weight for r in reqs])
        err = np.array([r.weight for r in reqs if r.error])
        n_req, n_err = float(w.sum()), float(err.sum())
        durations = np.repeat([r.duration_ms for r in reqs], w.astype(int))
        assert np.array_equal(w, w.astype(int)), "weights of this fleet are whole numbers"
        p50, p95, p99 = (
            np.percentile(durations, [50, 95, 99]) if len(durations) else (None, None, None)
        )
        s = np.array(scores.get(key, []))
        acc = lo = hi = None
        if len(s):
            acc = float(s.mean())
            if set(np.unique(s)) <= {0.0, 1.0}:
                lo, hi = wilson(s.sum(), len(s))
                ci = stats.binomtest(int(s.sum()), len(s)).proportion_ci(0.95, method="wilson")
                assert (lo, hi) == pytest.approx((ci.low, ci.high), abs=1e-12)
            elif len(s) >= 2:
                lo, hi = stats.t.interval(0.95, len(s) - 1, loc=s.mean(), scale=stats.sem(s))
            lo = max(0.0, lo) if lo is not None else None
            hi = min(1.0, hi) if hi is not None else None

        def tokens(attr_name: str, group: list[Request] = reqs) -> int | None:
            # scaled by the sampling weight, as the request counts are
            values = [
                getattr(r, attr_name) * r.weight for r in group if getattr(r, attr_name) is not None
            ]
            return round(sum(values)) if values else None

        row = dict(zip(by, key, strict=True))
        row.update(
            requests=round(n_req),
            errors=round(n_err),
            error_rate=n_err / n_req if n_req else None,
            availability=1 - n_err / n_req if n_req else None,
            uptime=uptime.get(row["environment"]) if "environment" in by else None,
            latency_p50_ms=p50,
            latency_p95_ms=p95,
            latency_p99_ms=p99,
            accuracy=acc,
            accuracy_n=len(s),
            accuracy_lo=lo,
            accuracy_hi=hi,
            input_tokens=tokens("input_tokens"),
            output_tokens=tokens("output_tokens"),
        )
        rows.append(row)
    return rows


def assert_rows_match(
    got: list[dict[str, Any]], want: list[dict[str, Any]], by: tuple[str, ...]
) -> None:
    """Same groups in the same order, every key present, every figure within its tolerance."""
    keys = [*by, *METRIC_COLUMNS]
    assert [tuple(r[c] for c in by) for r in got] == [tuple(r[c] for c in by) for r in want]
    for g, w in zip(got, want, strict=True):
        assert list(g) == keys, "every row carries every key, in order"
        where = {c: g[c] for c in by}
        for k in ("requests", "errors", "accuracy_n", "input_tokens", "output_tokens"):
            assert g[k] == w[k], (where, k)
        for k in ("error_rate", "availability", "uptime", "accuracy"):
            assert g[k] == (None if w[k] is None else pytest.approx(w[k], rel=1e-9)), (where, k)
        for k in ("accuracy_lo", "accuracy_hi"):
            assert g[k] == (None if w[k] is None else pytest.approx(w[k], abs=1e-9)), (where, k)
        for k in ("latency_p50_ms", "latency_p95_ms", "latency_p99_ms"):
            if w[k] is None:
                assert g[k] is None, (where, k)
            else:
                assert g[k] == pytest.approx(w[k], rel=0.01), (where, k, g[k], w[k])
        for k in RATIOS:
            assert g[k] is None or 0.0 <= g[k] <= 1.0, (where, k, g[k])


# -- fixtures -------------------------------------------------------------------------------------
@dataclass
class Loaded:
    fleet: Fleet
    config: Config
    config_path: Path
    warehouse: Warehouse
    data: Path
    before_reingest: pl.DataFrame


def write_files(fleet: Fleet, folder: Path) -> None:
    """Two trace files that overlap by a fifth of the lines, and one file of evaluation logs."""
    folder.mkdir(parents=True)
    lines = fleet.trace_lines()
    cut_a, cut_b = int(len(lines) * 0.6), int(len(lines) * 0.4)
    (folder / "traces-a.jsonl").write_bytes(b"".join(lines[:cut_a]))
    (folder / "traces-b.jsonl").write_bytes(b"".join(lines[cut_b:]))
    (folder / "evaluations.jsonl").write_bytes(b"".join(fleet.log_lines()))


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Loaded:
    root = tmp_path_factory.mktemp("metrics")
    config_path = root / "hybridlens.toml"
    config_path.write_text(CONFIG_TOML, encoding="utf-8")
    config = load_file(config_path)
    fleet = build_fleet()
    data = root / "data"
    write_files(fleet, data)
    wh = Warehouse(root / "fleet.duckdb")
    # evaluation logs first, in a load of their own: they wait for their spans
    first = ingest_paths(wh, [data / "evaluations.jsonl"], config)
    second = ingest_paths(wh, [data / "traces-a.jsonl", data / "traces-b.jsonl"], config)
    assert first.ok and second.ok, (first, second)
    assert second.duplicates() > 0, "the two trace files overlap"
    before = metrics(wh, config)
    # a re-ingest: the same folder (unchanged files are skipped) and a copy of it (read again)
    copy = root / "copy"
    shutil.copytree(data, copy)
    again = ingest_paths(wh, [data, copy], config)
    assert again.ok and again.rows("spans") == 0 and again.rows("evaluations") == 0, again
    assert again.files_skipped == 3 and again.duplicates() > 0
    return Loaded(fleet, config, config_path, wh, data, before)


def rows(frame: pl.DataFrame) -> list[dict[str, Any]]:
    return frame.to_dicts()


# -- the tests ------------------------------------------------------------------------------------
def test_the_fleet_covers_every_rule(loaded: Loaded) -> None:
    """The generated fleet holds each case the figures must get right (a guard on the test)."""
    fleet = loaded.fleet
    models = {r.model for r in fleet.requests}
    assert models == {"llm-a", "llm-b", "clf", "yolo", "embed-x", "gateway"}
    assert {r.weight for r in fleet.requests} == {1.0, 2.0}
    assert {r.version for r in fleet.requests} >= {"1.0", "1.1", "unknown"}
    assert sum(r.error for r in fleet.requests) > 100
    durations = np.array([r.duration_ms for r in fleet.requests])
    assert np.percentile(durations, 99) > 8 * np.percentile(durations, 50), "heavy tail"
    scores = {(e.model, e.score in (0.0, 1.0)) for e in fleet.evaluations}
    assert {("llm-b", True), ("clf", True), ("embed-x", True), ("llm-a", False)} <= scores


@pytest.mark.parametrize(
    "by",
    [
        ("environment", "model"),
        ("environment", "model", "version"),
        ("model",),
        ("environment",),
        ("version",),
    ],
)
def test_every_figure_matches_numpy(loaded: Loaded, by: tuple[str, ...]) -> None:
    got = rows(metrics(loaded.warehouse, loaded.config, by=by))
    want = expected_rows(loaded.fleet, loaded.config, by)
    assert len(want) >= {1: 3, 2: 18, 3: 25}[len(by)]
    assert_rows_match(got, want, by)


def test_the_rows_per_environment_and_model(loaded: Loaded) -> None:
    """Spot checks that read like the definitions (the numpy comparison does the rest)."""
    frame = metrics(loaded.warehouse, loaded.config)
    got = {(r["environment"], r["model"]): r for r in frame.to_dicts()}
    # an environment in the data but not in the config is kept
    assert ("lab-unlisted", "yolo") in got
    # one single continuous score: a mean, but no interval
    single = got[("lab-unlisted", "llm-a")]
    assert (single["accuracy"], single["accuracy_n"]) == (0.625, 1)
    assert single["accuracy_lo"] is None and single["accuracy_hi"] is None
    # every evaluation of embed-x at the edge passed: Wilson's upper end is 1, the lower is not
    edge = got[("edge-oslo", "embed-x")]
    assert edge["accuracy"] == 1.0 and edge["accuracy_lo"] < 0.99
    assert edge["accuracy_hi"] == pytest.approx(1.0, abs=1e-12)
    # no evaluations at all: nulls and a count of 0; no tokens: nulls
    vision = got[("dc-lyon", "yolo")]
    assert vision["accuracy"] is None and vision["accuracy_n"] == 0
    assert vision["input_tokens"] is None and vision["output_tokens"] is None
    # the gateway's request has no model anywhere in its service: its service name
    assert got[("aws-eu-west-1", "gateway")]["requests"] > 0
    # edge-oslo's config samples at 0.5: every request counts twice
    assert all(r["requests"] % 2 == 0 for k, r in got.items() if k[0] == "edge-oslo")


def test_only_the_configured_evaluation_counts(loaded: Loaded) -> None:
    """clf's config names exact_match: its 'accuracy' events are ignored; relevance never counts."""
    with loaded.warehouse.read() as con:
        names = dict(
            con.execute(
                "SELECT s.model || '/' || e.evaluation_name, count(*) FROM evaluations e "
                "JOIN spans s USING (trace_id, span_id) GROUP BY ALL"
            ).fetchall()
        )
    assert names["clf/accuracy"] > 0 and names["llm-a/relevance"] > 0
    frame = metrics(loaded.warehouse, loaded.config, models=["clf"])
    counted = sum(1 for e in loaded.fleet.evaluations if e.model == "clf")
    assert frame["accuracy_n"].sum() == counted == names["clf/exact_match"]
    # with the default config, 'accuracy' counts for clf too
    default = metrics(loaded.warehouse, Config(), models=["clf"])
    assert default["accuracy_n"].sum() == names["clf/accuracy"]


def test_duplicate_evaluations_count_once(loaded: Loaded) -> None:
    """An evaluation sent as a span event and as a log record (same key) is one score."""
    with loaded.warehouse.read() as con:
        (origins,) = con.execute(
            "SELECT count(*) FROM evaluations WHERE origin = 'log_record' "
            "AND evaluation_name = 'accuracy' AND score_value IS NOT NULL"
        ).fetchone()
    sent_twice = sum(len(v) for v in loaded.fleet.logs.values())
    assert origins < sent_twice, "the duplicates were kept once, as span events"


def test_reingest_changes_nothing(loaded: Loaded) -> None:
    after = metrics(loaded.warehouse, loaded.config, by=("environment", "model", "version"))
    assert metrics(loaded.warehouse, loaded.config).equals(loaded.before_reingest)
    want = expected_rows(loaded.fleet, loaded.config, ("environment", "model", "version"))
    assert_rows_match(after.to_dicts(), want, ("environment", "model", "version"))
    assert after["accuracy_n"].sum() == len(loaded.fleet.evaluations)


def test_duplicates_across_files_loaded_separately(loaded: Loaded, tmp_path: Path) -> None:
    """The overlapping files in two loads (anti-join) and in one load (in-batch) agree."""
    data = loaded.data
    separately = Warehouse(tmp_path / "separately.duckdb")
    for name in ("traces-b.jsonl", "traces-a.jsonl", "evaluations.jsonl"):
        assert ingest_paths(separately, [data / name], loaded.config).ok
    got, want = metrics(separately, loaded.config).to_dicts(), loaded.before_reingest.to_dicts()
    assert got == [  # the same up to the order of floating-point sums
        {k: pytest.approx(v, rel=1e-12) if isinstance(v, float) else v for k, v in r.items()}
        for r in want
    ]


@pytest.mark.parametrize(
    ("start_h", "end_h"), [(0, 24), (6, 7), (30, None), (None, 12), (47, 48), (60, 70)]
)
def test_from_and_to(loaded: Loaded, start_h: int | None, end_h: int | None) -> None:
    start = BASE + timedelta(hours=start_h) if start_h is not None else None
    end = BASE + timedelta(hours=end_h) if end_h is not None else None
    by = ("environment", "model", "version")
    got = metrics(loaded.warehouse, loaded.config, start=start, end=end, by=by).to_dicts()
    want = expected_rows(loaded.fleet, loaded.config, by, start=start, end=end)
    assert_rows_match(got, want, by)
    if start_h == 60:
        assert got == []


@pytest.mark.parametrize(
    ("environments", "models"),
    [
        (["edge-oslo"], None),
        (None, ["llm-b", "clf"]),
        (["dc-lyon", "lab-unlisted"], ["llm-a"]),
        (["nowhere"], None),
    ],
)
def test_environment_and_model_filters(
    loaded: Loaded, environments: list[str] | None, models: list[str] | None
) -> None:
    by = ("environment", "model")
    got = metrics(
        loaded.warehouse, loaded.config, environments=environments, models=models
    ).to_dicts()
    want = expected_rows(loaded.fleet, loaded.config, by, environments=environments, models=models)
    assert_rows_match(got, want, by)


def test_an_empty_range_gives_an_empty_frame_with_every_column(loaded: Loaded) -> None:
    frame = metrics(
        loaded.warehouse,
        loaded.config,
        start=BASE - timedelta(days=30),
        end=BASE - timedelta(days=29),
    )
    assert frame.is_empty()
    assert frame.columns == ["environment", "model", *METRIC_COLUMNS]


def cli_json(loaded: Loaded, *args: str) -> tuple[list[dict[str, Any]], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HYBRIDLENS_")}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "hybridlens.cli",
            "metrics",
            "--warehouse",
            str(loaded.warehouse.path),
            "--config",
            str(loaded.config_path),
            "--format",
            "json",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=loaded.data,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout), done.stderr  # stdout is only JSON


@pytest.mark.parametrize(
    ("args", "by", "filters"),
    [
        ((), ("environment", "model"), {}),
        (
            (
                "--by",
                "environment,model,version",
                "--from",
                "2026-10-05T06:00Z",
                "--to",
                "2026-10-06T18:00:00+00:00",
            ),
            ("environment", "model", "version"),
            {"start": BASE + timedelta(hours=6), "end": BASE + timedelta(hours=42)},
        ),
        (
            (
                "--by",
                "model",
                "--environment",
                "dc-lyon",
                "--environment",
                "edge-oslo",
                "--model",
                "llm-a",
            ),
            ("model",),
            {"environments": ["dc-lyon", "edge-oslo"], "models": ["llm-a"]},
        ),
    ],
)
def test_cli_json_is_the_same_figures(
    loaded: Loaded, args: tuple[str, ...], by: tuple[str, ...], filters: dict[str, Any]
) -> None:
    got, _ = cli_json(loaded, *args)
    want = expected_rows(loaded.fleet, loaded.config, by, **filters)
    assert got and all(isinstance(r, dict) for r in got)
    assert_rows_match(got, want, by)


# -- latency on its own: small and odd-sized groups -----------------------------------------------
@pytest.mark.parametrize("seed", range(4))
def test_percentiles_of_small_heavy_tailed_groups(tmp_path: Path, seed: int) -> None:
    """Within 1% of numpy's linear percentile for any group size, not only for big ones."""
    rng = np.random.default_rng(seed)
    base_ns = int(BASE.timestamp()) * NS
    durations: dict[str, np.ndarray] = {}
    lines = []
    for g in range(12):
        n = int(rng.integers(1, 300)) if g else 2
        ms = np.where(rng.random(n) < 0.1, 50 * (1 + rng.pareto(1.1, n)), rng.lognormal(5, 1.2, n))
        ns = np.maximum(1, np.round(ms * 1e6)).astype(np.int64)
        durations[f"m{g:02d}"] = ns / 1e6
        specs = []
        for i, d in enumerate(ns):
            start = base_ns + int(rng.integers(0, 72 * 3600)) * NS
            spec = SpanSpec(
                trace_id=rng.bytes(16).hex(),
                span_id=rng.bytes(8).hex(),
                start_ns=start,
                attributes={"gen_ai.request.model": f"m{g:02d}"},
            )
            doc = spec.to_json()
            doc["endTimeUnixNano"] = str(start + int(d))
            specs.append(doc)
            if i % 100 == 99 or i == len(ns) - 1:
                lines.append(jsonl(spans_request({"service.name": "svc"}, specs)))
                specs = []
    path = tmp_path / "spans.jsonl"
    path.write_bytes(b"".join(lines))
    wh = Warehouse(tmp_path / "w.duckdb")
    assert ingest_paths(wh, [path], Config()).ok
    frame = metrics(wh, Config(), by=("model",))
    assert frame["model"].to_list() == sorted(durations)
    for row in frame.to_dicts():
        exact = np.percentile(durations[row["model"]], [50, 95, 99])
        got = [row["latency_p50_ms"], row["latency_p95_ms"], row["latency_p99_ms"]]
        assert got == pytest.approx(list(exact), rel=0.01), row["model"]
        assert row["requests"] == len(durations[row["model"]])


# -- uptime over weeks ----------------------------------------------------------------------------
UPTIME_BASE = datetime(2026, 9, 7, tzinfo=UTC)
UPTIME_TOML = """
[[environments]]
name = "dc-lyon"
match = [{ "k8s.cluster.name" = "lyon-prod" }]
slo = { down_error_ratio = 0.1, uptime_min_requests = 3, uptime_min_expected = 2 }

[[environments]]
name = "edge-oslo"
kind = "edge"
"""


@dataclass
class UptimeLoad:
    fleet: Fleet
    config: Config
    warehouse: Warehouse


def build_uptime_fleet(seed: int = 7) -> Fleet:
    """Five weeks: a busy two-hour window every Monday, a single request at :00 and :30 of
    every hour, and in the last week an outage (silence) and an error burst.

    dc-lyon starts in week 0; edge-oslo in week 1, so its early weeks have a short history.
    30% of dc-lyon's traces were sampled at 50% and count twice.
    """
    fleet = Fleet(np.random.default_rng(seed))
    rng = fleet.rng

    def emit(env: str, model: str, minute: datetime, n: int, error_p: float) -> None:
        for _ in range(n):
            start = int(minute.timestamp()) * NS + int(rng.integers(0, 59 * NS))
            trace = fleet.hex(16)
            state, weight = (
                (("ot=th:8", 2.0) if rng.random() < 0.3 else (None, 1.0))
                if env == "dc-lyon"
                else (None, 1.0)
            )
            dur = fleet.duration_ns(100)
            error = bool(rng.random() < error_p)
            fleet.span(
                (env, "api", "1"),
                trace,
                f"chat {model}",
                2,
                start,
                dur,
                error=error,
                trace_state=state,
                attributes={"gen_ai.request.model": model},
            )
            fleet.request(env, model, "1", start, dur, error, weight, (None, None))

    for env, first_week, busy in (("dc-lyon", 0, 7.0), ("edge-oslo", 1, 5.0)):
        for week in range(first_week, 5):
            monday = UPTIME_BASE + week * WEEK
            # the busy window: Mondays 09:00-11:00
            for m in range(120):
                minute = monday + timedelta(hours=9, minutes=m)
                n = int(rng.poisson(busy))
                error_p = 0.03
                if week < 4 and rng.random() < 0.12:
                    n = 0  # ordinary gaps: some weeks are silent at some minutes
                elif rng.random() < 0.08:
                    n = int(rng.integers(1, 5))  # too few to judge on errors
                if rng.random() < 0.05:
                    error_p = 0.5  # a bad minute
                if week == 4 and 30 <= m < 50:
                    n = 0  # the outage: silence where traffic is expected
                if week == 4 and 60 <= m < 70:
                    error_p = 0.4  # then an error burst
                emit(env, "llm-a" if m % 3 else "llm-b", minute, n, error_p)
            # background: one request at :00 and :30 of every hour of the week
            for h in range(7 * 24):
                if week == 4 and 60 <= h < 70 and env == "edge-oslo":
                    continue  # ten silent hours at the edge in the last week
                for half in (0, 30):
                    minute = monday + timedelta(hours=h, minutes=half)
                    if minute.hour in (9, 10) and minute.weekday() == 0:
                        continue
                    emit(env, "bge", minute, 1, 0.0)
    return fleet


@pytest.fixture(scope="module")
def uptime_load(tmp_path_factory: pytest.TempPathFactory) -> UptimeLoad:
    root = tmp_path_factory.mktemp("uptime")
    (root / "hybridlens.toml").write_text(UPTIME_TOML, encoding="utf-8")
    config = load_file(root / "hybridlens.toml")
    fleet = build_uptime_fleet()
    data = root / "spans.jsonl"
    data.write_bytes(b"".join(fleet.trace_lines(per_line=400)))
    wh = Warehouse(root / "uptime.duckdb")
    assert ingest_paths(wh, [data], config).ok
    return UptimeLoad(fleet, config, wh)


def sql_minutes(
    load: UptimeLoad, start: datetime | None = None, end: datetime | None = None
) -> dict[str, tuple[int, int]]:
    """(up, down) minutes per environment as uptime_minutes.sql judges them."""
    params = {
        "start": start,
        "end": end,
        "environments": [],
        "models": [],
        **slo_params(load.config),
    }
    with load.warehouse.read() as con:
        frame = sql_uptime(con, load.config, params)
    return {r["environment"]: (r["up_minutes"], r["down_minutes"]) for r in frame.to_dicts()}


@pytest.mark.parametrize(
    ("start_week", "end_week"), [(None, None), (4, None), (4, 5), (1, 3), (0, 1)]
)
def test_uptime_matches_the_rule_minute_by_minute(
    uptime_load: UptimeLoad, start_week: int | None, end_week: int | None
) -> None:
    start = UPTIME_BASE + start_week * WEEK if start_week is not None else None
    end = UPTIME_BASE + end_week * WEEK if end_week is not None else None
    want = reference_uptime(uptime_load.fleet.requests, uptime_load.config, start, end)
    frame = metrics(uptime_load.warehouse, uptime_load.config, start=start, end=end)
    got = {r["environment"]: r["uptime"] for r in frame.to_dicts()}
    for env in got:
        assert got[env] == (None if want[env] is None else pytest.approx(want[env], rel=1e-12))
    if start_week == 4:  # the last week has its outage in both environments
        assert 0.3 < want["dc-lyon"] < 0.9 and 0.3 < want["edge-oslo"] < 0.9, want


@pytest.mark.parametrize("start_week", [None, 1, 4])
def test_uptime_counts_up_and_down_minutes_exactly(
    uptime_load: UptimeLoad, start_week: int | None
) -> None:
    """Down minutes come from errors, from silence, and from the short history of a new site."""
    start = UPTIME_BASE + start_week * WEEK if start_week is not None else None
    got = sql_minutes(uptime_load, start)
    want = reference_minutes(uptime_load.fleet.requests, uptime_load.config, start)
    assert got == want
    assert all(up > 0 and down > 0 for up, down in want.values()), want


def test_uptime_outage_and_silence(uptime_load: UptimeLoad) -> None:
    """The injected outage is 20 down minutes in both environments; the edge's ten silent
    hours are down at :00 and :30 only (a median of 1 request; every other minute of those
    hours has a median of 0: no data)."""
    monday = UPTIME_BASE + 4 * WEEK
    outage = (monday + timedelta(hours=9, minutes=30), monday + timedelta(hours=9, minutes=50))
    got = sql_minutes(uptime_load, *outage)
    assert got == reference_minutes(uptime_load.fleet.requests, uptime_load.config, *outage)
    assert got["edge-oslo"] == (0, 20) and got["dc-lyon"][0] == 0 and got["dc-lyon"][1] >= 18
    silent = (monday + timedelta(hours=60), monday + timedelta(hours=70))
    got = sql_minutes(uptime_load, *silent)
    assert got["edge-oslo"] == (0, 20)
    assert got == reference_minutes(uptime_load.fleet.requests, uptime_load.config, *silent)
    # the same silence with dc-lyon's SLO (a median of 2 needed) would not count
    assert got["dc-lyon"][1] == 0


def test_uptime_is_per_environment_on_every_model_row(uptime_load: UptimeLoad) -> None:
    start = UPTIME_BASE + 4 * WEEK
    want = reference_uptime(uptime_load.fleet.requests, uptime_load.config, start)
    for by in (("environment", "model"), ("environment", "model", "version")):
        frame = metrics(uptime_load.warehouse, uptime_load.config, start=start, by=by)
        assert frame.height >= 6
        for row in frame.to_dicts():
            assert row["uptime"] == pytest.approx(want[row["environment"]], rel=1e-12)
    # a model filter narrows the rows, not the minutes: uptime is all models together
    only = metrics(uptime_load.warehouse, uptime_load.config, start=start, models=["llm-b"])
    assert {r["environment"]: r["uptime"] for r in only.to_dicts()} == pytest.approx(want)
    # an environment filter narrows the environments; each is judged as before
    one = metrics(
        uptime_load.warehouse, uptime_load.config, start=start, environments=["edge-oslo"]
    )
    assert set(one["environment"]) == {"edge-oslo"}
    assert one["uptime"][0] == pytest.approx(want["edge-oslo"])
    # without an environment column there is no environment to judge: null
    assert (
        metrics(uptime_load.warehouse, uptime_load.config, by=("model",))["uptime"].null_count()
        == 3
    )


def test_uptime_with_default_slos(uptime_load: UptimeLoad) -> None:
    """With no config, every environment gets 5%, 5 requests and a median of 1."""
    want = reference_uptime(uptime_load.fleet.requests, Config())
    frame = metrics(uptime_load.warehouse, Config())
    got = {r["environment"]: r["uptime"] for r in frame.to_dicts()}
    assert got == pytest.approx(want)
    configured = reference_uptime(uptime_load.fleet.requests, uptime_load.config)
    assert want["dc-lyon"] != pytest.approx(configured["dc-lyon"])


def test_uptime_all_figures_in_the_weeks(uptime_load: UptimeLoad) -> None:
    """The uptime fleet's other figures match too (sampled traces count twice)."""
    by = ("environment", "model")
    got = metrics(uptime_load.warehouse, uptime_load.config).to_dicts()
    assert_rows_match(got, expected_rows(uptime_load.fleet, uptime_load.config, by), by)


# -- one request, its spans in two loads ----------------------------------------------------------
def _split_request(tmp_path: Path, *, child_first: bool, nested_hop: bool) -> pl.DataFrame:
    """An HTTP SERVER span (900 ms) in one load, its gen_ai child (and, optionally, a nested
    SERVER span of the same service, 100 ms) in another; the metrics of the result."""
    fleet = Fleet(np.random.default_rng(3))
    where = ("aws-eu-west-1", "chat", "2")
    start = int(BASE.timestamp()) * NS + 5 * NS
    trace = fleet.hex(16)
    http = fleet.span(where, trace, "POST /v1/chat", 2, start, 900_000_000)
    parent_doc = fleet.resources[where].pop()
    fleet.span(
        where,
        trace,
        "chat llm-b",
        1,
        start + 1_000_000,
        800_000_000,
        parent=http,
        attributes={"gen_ai.request.model": "llm-b"},
    )
    if nested_hop:
        fleet.span(where, trace, "inner hop", 2, start + 2_000_000, 100_000_000, parent=http)
    children = list(fleet.resources[where])
    resource = fleet.resource(where)
    parts = [jsonl(spans_request(resource, children)), jsonl(spans_request(resource, [parent_doc]))]
    if not child_first:
        parts.reverse()
    wh = Warehouse(tmp_path / "w.duckdb")
    for i, part in enumerate(parts):
        path = tmp_path / f"{i}.jsonl"
        path.write_bytes(part)
        assert ingest_paths(wh, [path], Config()).ok
    return metrics(wh, Config(), by=("environment", "model", "version"))


@pytest.mark.parametrize("child_first", [True, False], ids=["child-first", "parent-first"])
def test_a_request_split_across_loads_counts_once_for_its_model(
    tmp_path: Path, child_first: bool
) -> None:
    """Exporters send a span when it ends, so a gen_ai child often arrives in an earlier
    batch (file, receiver flush) than its HTTP SERVER parent: still one request, for the
    child's model, with the parent's duration."""
    frame = _split_request(tmp_path, child_first=child_first, nested_hop=False)
    assert frame.select("environment", "model", "version", "requests").to_dicts() == [
        {"environment": "aws-eu-west-1", "model": "llm-b", "version": "2", "requests": 1}
    ]
    assert frame["latency_p50_ms"][0] == pytest.approx(900.0, rel=0.01)


def test_a_nested_server_span_loaded_first_does_not_stay_the_request(tmp_path: Path) -> None:
    """A nested SERVER span of the service, loaded before the outer entry span, is demoted
    when the outer one arrives: one request, with the outer span's duration."""
    frame = _split_request(tmp_path, child_first=True, nested_hop=True)
    assert frame["requests"].to_list() == [1]
    assert frame["latency_p50_ms"][0] == pytest.approx(900.0, rel=0.01)


def test_a_late_evaluation_is_counted(tmp_path: Path) -> None:
    """A label a week after its span (a human review) refreshes that old hour's rollups."""
    span = SpanSpec(attributes={"gen_ai.request.model": "m"})
    later = span.start_ns + 7 * 86400 * NS
    (tmp_path / "spans.jsonl").write_bytes(jsonl(traces_request({"service.name": "s"}, [span])))
    (tmp_path / "labels.jsonl").write_bytes(
        jsonl(
            logs_request(
                {"service.name": "review"},
                [evaluation_log(span.trace_id, span.span_id, label="pass", time_ns=later)],
            )
        )
    )
    wh = Warehouse(tmp_path / "w.duckdb")
    assert ingest_paths(wh, [tmp_path / "spans.jsonl"], Config()).ok
    assert ingest_paths(wh, [tmp_path / "labels.jsonl"], Config()).ok
    assert metrics(wh, Config())["accuracy_n"].to_list() == [1]


@pytest.mark.parametrize(
    "dof", [*range(1, 60), 99, 250, 999, 1000, 1001, 5000, 20000, 52_076, 10**6, 10**9]
)
def test_the_t_quantile_matches_scipy(dof: int) -> None:
    """The t interval's 97.5% point is solved without scipy (its import costs half a
    second of every `metrics` call); it must agree with scipy's to 1e-11."""
    from scipy import stats

    from warehouse.definitions import t_quantile_975

    assert t_quantile_975(dof) == pytest.approx(float(stats.t.ppf(0.975, dof)), rel=1e-11)


# -- plain rows and one session ------------------------------------------------------------------
@pytest.mark.parametrize(
    "by", [("environment", "model"), ("environment",), ("model", "version"), ()]
)
def test_metric_rows_are_the_frame_metrics_returns(loaded: Loaded, by: tuple[str, ...]) -> None:
    """The command prints `metric_rows`, pages draw `metrics`: the same rows, in order."""
    from warehouse.metrics import metric_rows

    plain = metric_rows(loaded.warehouse, loaded.config, by=by)
    frame = metrics(loaded.warehouse, loaded.config, by=by)
    assert list(plain.columns) == frame.columns == [*by, *METRIC_COLUMNS]
    assert plain.rows == frame.to_dicts()
    assert plain.rows, "the fleet has requests in every grouping"


@pytest.mark.parametrize(
    "figures", [frozenset({"accuracy"}), frozenset({"latency", "accuracy"}), frozenset()]
)
def test_asking_for_some_figures_gives_exactly_those_and_nulls(
    loaded: Loaded, figures: frozenset[str], caplog: pytest.LogCaptureFixture
) -> None:
    """A panel that draws only some figures skips the others' queries: what it asks for is
    what the full call gives, and every other figure column is null."""
    from warehouse.metrics import FIGURE_COLUMNS as owned
    from warehouse.metrics import FIGURES, metric_rows

    by = ("environment", "model", "version")
    full = metric_rows(loaded.warehouse, loaded.config, by=by).rows
    with caplog.at_level(logging.DEBUG, logger="warehouse.db"):
        some = metric_rows(loaded.warehouse, loaded.config, by=by, figures=figures).rows
    ran = {r.args[0] for r in caplog.records if r.msg == "query %s took %.1f ms"}  # type: ignore[index]
    queries = {"latency": "latency_percentiles", "accuracy": "metrics_accuracy",
               "uptime": "metrics_uptime", "cost": "metrics_cost"}  # fmt: skip
    # the latency query once ran for every call and its rows were then dropped
    assert ran & set(queries.values()) == {queries[f] for f in figures if f in queries}
    kept = [c for f in figures for c in owned[f]]
    dropped = [c for f in FIGURES - figures for c in owned[f]]
    assert [(r["requests"], *(r[c] for c in kept)) for r in some] == [
        (r["requests"], *(r[c] for c in kept)) for r in full
    ]
    assert all(r[c] is None for r in some for c in dropped)
    assert any(r[c] is not None for r in full for c in owned["uptime"])
    with pytest.raises(ValueError, match="unknown figures: bogus"):
        metric_rows(loaded.warehouse, loaded.config, figures=frozenset({"bogus"}))


def test_a_session_reads_a_repeated_statement_once(
    loaded: Loaded, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The overview's model, environment and fleet tables judge the same minutes: one read."""
    from warehouse.db import run_rows as real
    from warehouse.session import session

    calls: list[str] = []

    def counting(con: Any, name: str, sql: str, params: dict[str, Any]) -> Any:
        calls.append(name)
        return real(con, name, sql, params)

    monkeypatch.setattr("warehouse.session.run_rows", counting)
    with session(loaded.warehouse) as s:
        by_model = metrics(s, loaded.config, by=("environment", "model"))
        by_env = metrics(s, loaded.config, by=("environment",))
        fleet = metrics(s, loaded.config, by=())
        later = metrics(s, loaded.config, by=(), start=BASE + timedelta(hours=1))
    assert calls.count("metrics_uptime") == 2, calls  # one per distinct range
    assert calls.count("latency_percentiles") == 4, calls  # each grouping its own
    assert by_model.equals(metrics(loaded.warehouse, loaded.config))
    assert by_env.equals(metrics(loaded.warehouse, loaded.config, by=("environment",)))
    assert fleet.equals(metrics(loaded.warehouse, loaded.config, by=()))
    assert later.height == 1

"""Seeded generator of a hybrid-cloud AI fleet's telemetry, written as real OTLP files.

Why it exists: the dashboard, the forecasts and the ingest need months of data that look
like what OpenTelemetry Collectors really write, with incidents whose ground truth is known
(``scenario.json``) so tests and demos can check that they are found. Nothing here is real.

How it stays fast (about 2M spans in well under a minute): counts, timestamps, durations,
ids and tokens are drawn with numpy per (environment, model, day); every span is then one
``%``-format of a pre-built template, and batches are joined strings. Only the edge site's
protobuf frames go through protobuf objects, and that site is a small share of the load.

The load model, per (environment, model) and minute::

    rate   = peak_rpm * scale * profile(minute of day) * weekend * growth(t) * noise
    bursts ~ Poisson(rate / (1 + b)),  each burst = 1 + Poisson(b) requests

``profile`` has two peaks (10:00 and 16:00 UTC) and a night trough at 0.25 of the peak,
``weekend`` is 0.6 on Saturdays and Sundays, ``growth`` is +40% per 90 days (anchored so
each ``Deployment.peak_rpm`` holds at the end of the range, which the demo shows first).
``noise`` is multiplicative and lognormal, with mean 1: an hourly AR(1) component shared by
an environment (sigma 0.10, phi 0.7), an hourly AR(1) component per model (sigma 0.08,
phi 0.5) and an independent per-minute component (sigma 0.10). Clients call in small
bursts (``BURSTS``: an agent's tool loop, a batch of chunks to embed). So per-minute counts
are over-dispersed against Poisson and hours are correlated, as real traffic is.

Injected events sit at fractions of the range (moved to the nearest weekday) so that a
three-day run has them too: the gcp-europe-west4 outage at 55% (09:45 UTC: an hour of 90%
503s, then two hours without a request) and the aws-us-east-1 chat-gateway 2.3.1 -> 2.4.0
regression at 70% (14:00 UTC, durations x1.45). ``scenario.json`` records them, the
expected and observed accuracy per environment and every rollout.

Layout: ``traces/<env>/<date>.<ext>`` (one file per environment and day, each site in its
Collector's framing, see ``FRAMING``), ``logs/<env>/<date>.jsonl`` (evaluation log
records) and ``scenario.json``.
"""

# %-formatting is the point here: one C-level format per span over pre-built JSON pieces.
# ruff: noqa: UP031

from __future__ import annotations

import json
import math
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import zstandard
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

NS_PER_S = 1_000_000_000
NS_PER_MIN = 60 * NS_PER_S
DAY_NS = 86400 * NS_PER_S
MIN_PER_DAY = 1440
WINDOW_MIN = 10  # one export batch (request line) covers up to this many minutes at scale 1
MAX_SPANS_PER_LINE = 500
EVAL_LOG_SHARE = 1 / 3  # share of LLM evaluations written as log records, not span events
LLM_EVAL_RATE = 0.05
CLASSIFIER_EVAL_RATE = 0.02
RELEVANCE_SHARE = 0.1  # of evaluated LLM requests, also judged for "relevance"
WEEKEND_FACTOR = 0.6
GROWTH_PER_90_DAYS = 1.4
NIGHT_FLOOR = 0.25
REGRESSION_FACTOR = 1.45

ENVIRONMENTS = ("dc-frankfurt", "aws-us-east-1", "gcp-europe-west4", "edge-munich")
MODELS = (
    "llama-3.1-70b-instruct",
    "mistral-7b-instruct",
    "fraud-classifier",
    "bge-large-en-v1.5",
    "yolov8-l",
)
BURSTS = {  # kind -> (mean extra calls per burst, mean gap between them in seconds)
    "llm": (0.25, 3.0),
    "embedding": (0.6, 0.05),
    "classifier": (0.15, 0.5),
    "vision": (0.4, 0.2),
}
OUTAGE_ENV = "gcp-europe-west4"
REGRESSION_ENV = "aws-us-east-1"


# -- the fleet ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Model:
    """A model and the service that serves it; `route` is empty for single-span LLM APIs."""

    name: str
    kind: str  # "llm" | "classifier" | "embedding" | "vision"
    service: str
    route: str = ""
    child_name: str = ""
    entry_scope: tuple[str, str] = ("", "")
    child_scope: tuple[str, str] = ("", "")


MODEL_SPECS: dict[str, Model] = {
    m.name: m
    for m in (
        Model(
            "llama-3.1-70b-instruct",
            "llm",
            "chat-gateway",
            entry_scope=("vllm.entrypoints.openai", "0.6.3"),
        ),
        Model(
            "mistral-7b-instruct",
            "llm",
            "assistant-api",
            entry_scope=("opentelemetry.instrumentation.openai_server", "0.48b0"),
        ),
        Model(
            "fraud-classifier",
            "classifier",
            "risk-scoring",
            route="/v1/score",
            child_name="predict fraud-classifier",
            entry_scope=("opentelemetry.instrumentation.fastapi", "0.48b0"),
            child_scope=("risk_scoring.model", "3.4"),
        ),
        Model(
            "bge-large-en-v1.5",
            "embedding",
            "embedder",
            route="/v1/embeddings",
            child_name="embeddings bge-large-en-v1.5",
            entry_scope=("opentelemetry.instrumentation.fastapi", "0.48b0"),
            child_scope=("text_embeddings_inference", "1.5.0"),
        ),
        Model(
            "yolov8-l",
            "vision",
            "vision-api",
            route="/v1/detect",
            child_name="inference",
            entry_scope=("io.opentelemetry.spring-webmvc-6.0", "2.8.0-alpha"),
            child_scope=("vision.triton", "24.08"),
        ),
    )
}


@dataclass(frozen=True)
class Deployment:
    """One model served in one environment, with its load, latency and quality parameters.

    Latency for LLMs is ``ttft + output_tokens * per_token_s``; for embeddings
    ``base_s + input_tokens * per_token_s``; for the rest a lognormal around ``base_s``.
    `versions` are (position in the date range as a fraction, service.version).
    """

    env: str
    model: str
    peak_rpm: float
    replicas: int
    versions: tuple[tuple[float, str], ...]
    error_rate: float
    base_s: float
    per_token_s: float = 0.0
    out_tokens: float = 0.0
    in_tokens: float = 0.0
    sigma: float = 0.35
    accuracy: float | None = None
    response_model: str = ""
    provider: str = "vllm"
    new_semconv_from: str = ""  # first service.version that emits gen_ai.provider.name


DEPLOYMENTS: tuple[Deployment, ...] = (
    # dc-frankfurt: on-prem H100s, the biggest site
    Deployment("dc-frankfurt", "llama-3.1-70b-instruct", 3.5, 4,
               ((0.0, "2.2.4"), (0.30, "2.3.1")), 0.006, 0.22, 0.0080, 160, 800,
               accuracy=0.93, response_model="llama-3.1-70b-instruct",
               new_semconv_from="2.3.1"),
    Deployment("dc-frankfurt", "mistral-7b-instruct", 3.0, 2,
               ((0.0, "1.8.0"), (0.50, "1.9.0")), 0.004, 0.07, 0.0040, 140, 600,
               accuracy=0.91, response_model="mistral-7b-instruct-v0.3",
               new_semconv_from="1.9.0"),
    Deployment("dc-frankfurt", "fraud-classifier", 1.8, 2,
               ((0.0, "3.4.0"), (0.35, "3.5.0")), 0.003, 0.018, accuracy=0.95),
    Deployment("dc-frankfurt", "bge-large-en-v1.5", 1.5, 2,
               ((0.0, "0.9.3"), (0.20, "1.0.0")), 0.003, 0.012, 0.00008, in_tokens=300,
               new_semconv_from="1.0.0"),
    # aws-us-east-1: EKS, AWQ-quantized llama, where the regression happens
    Deployment("aws-us-east-1", "llama-3.1-70b-instruct", 3.5, 4,
               ((0.0, "2.2.4"), (0.25, "2.3.1"), (0.70, "2.4.0")), 0.006, 0.28, 0.0090,
               160, 800, accuracy=0.92, response_model="llama-3.1-70b-instruct-awq",
               new_semconv_from="2.3.1"),
    Deployment("aws-us-east-1", "mistral-7b-instruct", 2.5, 2,
               ((0.0, "1.8.0"), (0.45, "1.9.0")), 0.004, 0.08, 0.0045, 140, 600,
               accuracy=0.91, response_model="mistral-7b-instruct-v0.3",
               new_semconv_from="1.9.0"),
    Deployment("aws-us-east-1", "fraud-classifier", 1.5, 2,
               ((0.0, "3.4.0"), (0.38, "3.5.0")), 0.004, 0.025, accuracy=0.94),
    Deployment("aws-us-east-1", "bge-large-en-v1.5", 1.3, 2,
               ((0.0, "0.9.3"), (0.22, "1.0.0")), 0.003, 0.015, 0.00010, in_tokens=300,
               new_semconv_from="1.0.0"),
    Deployment("aws-us-east-1", "yolov8-l", 1.2, 2,
               ((0.0, "5.1.0"), (0.50, "5.2.0")), 0.008, 0.060, sigma=0.3),
    # gcp-europe-west4: GKE A100s, where the outage happens
    Deployment("gcp-europe-west4", "llama-3.1-70b-instruct", 2.4, 2,
               ((0.0, "2.2.4"), (0.40, "2.3.1")), 0.007, 0.32, 0.0100, 160, 800,
               accuracy=0.92, response_model="llama-3.1-70b-instruct",
               new_semconv_from="2.3.1"),
    Deployment("gcp-europe-west4", "mistral-7b-instruct", 2.2, 2,
               ((0.0, "1.8.0"), (0.60, "1.9.0")), 0.005, 0.09, 0.0050, 140, 600,
               accuracy=0.90, response_model="mistral-7b-instruct-v0.3",
               new_semconv_from="1.9.0"),
    Deployment("gcp-europe-west4", "bge-large-en-v1.5", 1.2, 1,
               ((0.0, "0.9.3"), (0.30, "1.0.0")), 0.004, 0.018, 0.00012, in_tokens=300,
               new_semconv_from="1.0.0"),
    Deployment("gcp-europe-west4", "yolov8-l", 1.6, 2,
               ((0.0, "5.1.0"), (0.52, "5.2.0")), 0.008, 0.075, sigma=0.3),
    # edge-munich: two L4 boxes, quantized mistral (fast, less accurate), old semconv
    Deployment("edge-munich", "mistral-7b-instruct", 1.2, 1,
               ((0.0, "1.8.2-q4"),), 0.008, 0.05, 0.0028, 120, 400,
               accuracy=0.78, response_model="mistral-7b-instruct-q4_k_m",
               provider="llama.cpp"),
    Deployment("edge-munich", "yolov8-l", 1.8, 2,
               ((0.0, "5.1.0-edge"), (0.80, "5.2.0-edge")), 0.010, 0.045, sigma=0.25),
)  # fmt: skip

FRAMING = {
    "dc-frankfurt": "jsonl",
    "aws-us-east-1": "zstd",
    "gcp-europe-west4": "jsonl",
    "edge-munich": "protobuf",
}
NAMESPACES = {
    "chat-gateway": "llm-serving",
    "assistant-api": "llm-serving",
    "risk-scoring": "risk",
    "embedder": "search",
    "vision-api": "vision",
}
SERVER_PORT = 8000
LOG_SCOPE = ("genai.evaluator", "0.7.0")


# -- small helpers --------------------------------------------------------------------------
def _attr(key: str, value: Any) -> str:
    """One KeyValue in OTLP/JSON; ints go out as decimal strings (proto3 JSON int64)."""
    if isinstance(value, bool):
        v = '{"boolValue":%s}' % ("true" if value else "false")
    elif isinstance(value, int):
        v = '{"intValue":"%d"}' % value
    elif isinstance(value, float):
        v = '{"doubleValue":%r}' % value
    else:
        v = '{"stringValue":%s}' % json.dumps(str(value))
    return '{"key":%s,"value":%s}' % (json.dumps(key), v)


def _attrs(pairs: Sequence[tuple[str, Any]]) -> str:
    return ",".join(_attr(k, v) for k, v in pairs)


def _scope(scope: tuple[str, str]) -> str:
    return '{"name":%s,"version":%s}' % (json.dumps(scope[0]), json.dumps(scope[1]))


def _hex_ids(rng: np.random.Generator, n: int, nbytes: int) -> list[str]:
    """Random lowercase hex ids; an all-zero id (invalid in OTLP) is 2**-64 unlikely."""
    width = 2 * nbytes
    text = rng.bytes(n * nbytes).hex()
    return [text[i : i + width] for i in range(0, n * width, width)]


def _token(rng: np.random.Generator, n: int, alphabet: str = "bcdfghjklmnpqrstvwxz2456789") -> str:
    return "".join(alphabet[i] for i in rng.integers(0, len(alphabet), n))


def _uuid(rng: np.random.Generator) -> str:
    h = bytearray(rng.bytes(16))
    h[6] = (h[6] & 0x0F) | 0x40
    h[8] = (h[8] & 0x3F) | 0x80
    s = h.hex()
    return f"{s[:8]}-{s[8:12]}-{s[12:16]}-{s[16:20]}-{s[20:]}"


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / NS_PER_S, UTC).isoformat().replace("+00:00", "Z")


def _daily_profile() -> np.ndarray:
    """Weekday shape per minute of day: peaks at 10:00 and 16:00 UTC, trough 0.25 at night."""
    h = (np.arange(MIN_PER_DAY) + 0.5) / 60.0
    raw = np.exp(-0.5 * ((h - 10.0) / 2.0) ** 2) + 0.9 * np.exp(-0.5 * ((h - 16.0) / 2.2) ** 2)
    return NIGHT_FLOOR + (1 - NIGHT_FLOOR) * (raw - raw.min()) / (raw.max() - raw.min())


def _ar1(rng: np.random.Generator, n: int, sigma: float, phi: float) -> np.ndarray:
    """Stationary AR(1) in log space with marginal sd `sigma`, returned as a mean-1 factor."""
    eps = rng.standard_normal(n) * sigma * math.sqrt(1 - phi * phi)
    x = np.empty(n)
    prev = rng.standard_normal() * sigma
    for i in range(n):
        prev = phi * prev + eps[i]
        x[i] = prev
    return np.exp(x - sigma * sigma / 2)


# -- the plan: everything decided before the first day is written ---------------------------
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
    deployments: list[DeploymentPlan]
    resources: dict[str, list[Resource]]
    outage: dict[str, int]
    regression_ns: int
    rollouts: list[dict[str, str]] = field(default_factory=list)


def _event_time(start_ns: int, days: int, fraction: float, minute_of_day: int) -> int:
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
            if _weekday(t) < 5:
                return t
    return candidates[0]


def _weekday(ns: Any) -> Any:
    """Monday = 0, for an int or an array of epoch nanoseconds (1970-01-01 was a Thursday)."""
    return (ns // DAY_NS + 3) % 7


def _host(env: str, service: str, replica: int, rng: np.random.Generator) -> dict[str, Any]:
    """Where a replica runs: host, pod and platform attributes in each site's own style."""
    if env == "dc-frankfurt":
        first = {"chat-gateway": 1, "assistant-api": 5, "risk-scoring": 7, "embedder": 7}
        return {"host.name": f"fra-gpu-{first[service] + replica:02d}"}
    if env == "aws-us-east-1":
        return {
            "host.name": f"ip-10-42-{int(rng.integers(0, 64))}-{int(rng.integers(2, 250))}"
            ".ec2.internal",
            "cloud.availability_zone": "us-east-1" + "abc"[replica % 3],
        }
    if env == "gcp-europe-west4":
        return {
            "host.name": f"gke-euw4-ml-gpu-pool-{rng.bytes(4).hex()}-{_token(rng, 4)}",
            "cloud.availability_zone": "europe-west4-" + "abc"[replica % 3],
        }
    return {"host.name": f"muc-edge-{(replica if service == 'vision-api' else 0) + 1:02d}"}


def _resource_attrs(
    env: str, service: str, version: str, replica: int, rs_hash: str, rng: np.random.Generator
) -> list[tuple[str, Any]]:
    host = _host(env, service, replica, rng)
    attrs: list[tuple[str, Any]] = [
        ("service.name", service),
        ("service.namespace", "ai-platform"),
        ("service.version", version),
        ("service.instance.id", _uuid(rng)),
        ("host.name", host["host.name"]),
        ("telemetry.sdk.name", "opentelemetry"),
        ("telemetry.sdk.language", "java" if service == "vision-api" else "python"),
        ("telemetry.sdk.version", "1.42.1" if service == "vision-api" else "1.27.0"),
    ]
    pod = f"{service}-{rs_hash}-{_token(rng, 5)}"
    if env == "dc-frankfurt":
        attrs += [
            ("k8s.cluster.name", "fra-dc-prod"),
            ("k8s.namespace.name", NAMESPACES[service]),
            ("k8s.pod.name", pod),
            ("k8s.node.name", host["host.name"]),
            ("deployment.environment.name", "production"),
        ]
    elif env == "aws-us-east-1":
        attrs += [
            ("cloud.provider", "aws"),
            ("cloud.platform", "aws_eks"),
            ("cloud.region", "us-east-1"),
            ("cloud.availability_zone", host["cloud.availability_zone"]),
            ("cloud.account.id", "486213579024"),
            ("k8s.cluster.name", "use1-inference"),
            ("k8s.namespace.name", NAMESPACES[service]),
            ("k8s.pod.name", pod),
            ("deployment.environment.name", "production"),
        ]
    elif env == "gcp-europe-west4":
        attrs += [
            ("cloud.provider", "gcp"),
            ("cloud.platform", "gcp_kubernetes_engine"),
            ("cloud.region", "europe-west4"),
            ("cloud.availability_zone", host["cloud.availability_zone"]),
            ("k8s.cluster.name", "euw4-ml"),
            ("k8s.namespace.name", NAMESPACES[service]),
            ("k8s.pod.name", pod),
            ("deployment.environment.name", "gcp-europe-west4"),
        ]
    else:  # the edge boxes run an older SDK that still sets the deprecated attribute
        attrs += [("deployment.environment", "edge-munich"), ("os.type", "linux")]
    return attrs


def _version_key(v: str) -> tuple[int, ...]:
    return tuple(int(p) for p in v.split("-")[0].split("."))


def _plan(days: int, seed: int, scale: float, end: datetime) -> Plan:
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0]))
    end_ns = int(end.timestamp()) * NS_PER_S
    start_ns = end_ns - days * DAY_NS
    hours = days * 24

    o0 = _event_time(start_ns, days, 0.55, 9 * 60 + 45)
    outage = {"start": o0, "errors_until": o0 + 60 * NS_PER_MIN, "end": o0 + 180 * NS_PER_MIN}

    env_noise = {env: _ar1(rng, hours, 0.10, 0.7) for env in ENVIRONMENTS}
    resources: dict[str, list[Resource]] = {env: [] for env in ENVIRONMENTS}
    plans: list[DeploymentPlan] = []
    rollouts: list[dict[str, str]] = []
    regression_ns = 0
    for i, dep in enumerate(DEPLOYMENTS):
        spec = MODEL_SPECS[dep.model]
        times: list[int] = []
        for j, (fraction, version) in enumerate(dep.versions):
            if j == 0:
                times.append(start_ns - 365 * DAY_NS)
                continue
            regression = dep.env == REGRESSION_ENV and version == "2.4.0"
            minute = 14 * 60 if regression else 9 * 60 + int(rng.integers(0, 8 * 60))
            t = _event_time(start_ns, days, fraction, minute)
            t = max(t, times[-1] + 60 * NS_PER_MIN)  # short ranges keep versions in order
            times.append(t)
            if regression:
                regression_ns = t
            rollouts.append(
                {"environment": dep.env, "service": spec.service, "version": version, "at": _iso(t)}
            )
        gids = np.zeros((len(dep.versions), dep.replicas), dtype=np.int64)
        for j, (_, version) in enumerate(dep.versions):
            rs_hash = _token(rng, 10)
            for r in range(dep.replicas):
                attrs = _resource_attrs(dep.env, spec.service, version, r, rs_hash, rng)
                res = Resource(dep.env, spec.service, version, attrs, "[" + _attrs(attrs) + "]")
                gids[j, r] = len(resources[dep.env])
                resources[dep.env].append(res)
        new = [
            bool(dep.new_semconv_from) and _version_key(v) >= _version_key(dep.new_semconv_from)
            for _, v in dep.versions
        ]
        noise = env_noise[dep.env] * _ar1(rng, hours, 0.08, 0.5)
        plans.append(DeploymentPlan(dep, spec, i, np.array(times, np.int64), gids, new, noise))
    return Plan(
        start_ns, end_ns, days, scale, seed, plans, resources, outage, regression_ns, rollouts
    )


# -- span templates -------------------------------------------------------------------------
def _span_head(name: str, kind: int, parent: bool) -> str:
    p = ',"parentSpanId":"%s"' if parent else ""
    return (
        '{"traceId":"%s","spanId":"%s"' + p + ',"name":' + json.dumps(name) + ',"kind":'
        + str(kind) + ',"startTimeUnixNano":"%d","endTimeUnixNano":"%d","attributes":['
    )  # fmt: skip


def _eval_attrs(name: str, label: str | None, value: float | None, explanation: str = "") -> str:
    pairs: list[tuple[str, Any]] = [("gen_ai.evaluation.name", name)]
    if label is not None:
        pairs.append(("gen_ai.evaluation.score.label", label))
    if value is not None:
        pairs.append(("gen_ai.evaluation.score.value", value))
    if explanation:
        pairs.append(("gen_ai.evaluation.explanation", explanation))
    return _attrs(pairs)


EVENT_TMPL = '{"timeUnixNano":"%d","name":"gen_ai.evaluation.result","attributes":[%s]}'
LOG_TMPL = (
    '{"timeUnixNano":"%d","observedTimeUnixNano":"%d","severityNumber":9,"severityText":"INFO",'
    '"eventName":"gen_ai.evaluation.result","traceId":"%s","spanId":"%s","attributes":[%s]}'
)
PASS_ATTRS = _eval_attrs("accuracy", "pass", None)
FAIL_ATTRS = [
    _eval_attrs("accuracy", "fail", None, e)
    for e in (
        "answer contradicts the retrieved context",
        "answer is incomplete",
        "wrong entity in answer",
        "",
    )
]
# error.type, HTTP status, status message, share of errors; the first kind is the timeout
ERRORS_LLM = (
    ("timeout", 504, "request timed out after 30s", 0.3),
    ("500", 500, "CUDA error: an illegal memory access was encountered", 0.4),
    ("503", 503, "engine overloaded: too many pending requests", 0.3),
)
ERRORS_HTTP = (
    ("504", 504, "upstream request timeout", 0.25),
    ("500", 500, "Internal Server Error", 0.5),
    ("503", 503, "Service Unavailable", 0.25),
)
OUTAGE_MESSAGE = (
    "upstream connect error or disconnect/reset before headers. reset reason: connection failure"
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


def _status(message: str) -> str:
    return ',"status":{"code":2,"message":%s}' % json.dumps(message)


def _pareto_tail(rng: np.random.Generator, n: int) -> np.ndarray:
    """Mostly 1; for 1.5% of requests a heavy Pareto(1.6) multiplier, capped at 25x."""
    mult = np.ones(n)
    tail = rng.random(n) < 0.015
    mult[tail] = np.minimum(1.0 + rng.pareto(1.6, int(tail.sum())) * 2.0, 25.0)
    return mult


def _errors(
    rng: np.random.Generator,
    start: np.ndarray,
    dep: Deployment,
    plan: Plan,
    table: Sequence[tuple[str, int, str, float]],
) -> tuple[np.ndarray, np.ndarray]:
    """Which requests fail and how (index into the error table; -1 = the outage's 503)."""
    n = len(start)
    p = np.full(n, dep.error_rate)
    in_outage = np.zeros(n, bool)
    if dep.env == OUTAGE_ENV:
        in_outage = (start >= plan.outage["start"]) & (start < plan.outage["errors_until"])
        p[in_outage] = 0.9
    err = rng.random(n) < p
    kind = rng.choice(len(table), size=n, p=[e[3] for e in table])
    kind[in_outage] = -1
    return err, kind


def _llm(
    rng: np.random.Generator, dp: DeploymentPlan, plan: Plan, start: np.ndarray,
    vidx: np.ndarray, gid: np.ndarray, batch: DayBatch, stats: Stats,
) -> None:  # fmt: skip
    dep, spec = dp.dep, dp.spec
    n = len(start)
    in_tok = np.clip(rng.lognormal(math.log(dep.in_tokens), 0.7, n), 8, 30000).astype(np.int64)
    max_tok = rng.choice(np.array([512, 1024, 2048]), size=n, p=[0.5, 0.35, 0.15])
    out_tok = np.clip(rng.lognormal(math.log(dep.out_tokens), 0.55, n), 1, None).astype(np.int64)
    out_tok = np.minimum(out_tok, max_tok)
    ttft = (dep.base_s + in_tok * 0.00006) * rng.lognormal(0.0, 0.3, n)
    dur = ttft + out_tok * dep.per_token_s * rng.lognormal(0.0, 0.12, n)
    dur *= _pareto_tail(rng, n)
    if dep.env == REGRESSION_ENV:
        slow = start >= plan.regression_ns
        dur[slow] *= REGRESSION_FACTOR
        ttft[slow] *= REGRESSION_FACTOR
    err, ekind = _errors(rng, start, dep, plan, ERRORS_LLM)
    timeout = err & (ekind == 0)
    fast = err & ~timeout
    dur[timeout] = 30.0 + rng.random(int(timeout.sum())) * 0.05
    dur[fast] = rng.lognormal(math.log(0.012), 0.6, int(fast.sum()))
    dur_ns = np.maximum((dur * NS_PER_S).astype(np.int64), 50_000)
    end = start + dur_ns

    trace_ids = _hex_ids(rng, n, 16)
    span_ids = _hex_ids(rng, n, 8)
    host = f"{spec.service}.{NAMESPACES[spec.service]}.svc.cluster.local"
    common = [
        ("gen_ai.operation.name", "chat"),
        ("gen_ai.request.model", dep.model),
        ("gen_ai.response.model", dep.response_model),
        ("server.address", host),
        ("server.port", SERVER_PORT),
    ]
    pieces = [
        _attrs([("gen_ai.provider.name" if new else "gen_ai.system", dep.provider), *common])
        for new in dp.new_semconv
    ]
    head = _span_head(f"chat {dep.model}", 2, False)
    ok_tmpl = (
        head + '%s,{"key":"gen_ai.request.max_tokens","value":{"intValue":"%d"}},'
        '{"key":"gen_ai.usage.input_tokens","value":{"intValue":"%d"}},'
        '{"key":"gen_ai.usage.output_tokens","value":{"intValue":"%d"}},'
        '{"key":"gen_ai.server.time_to_first_token","value":{"doubleValue":%.4f}},'
        '{"key":"gen_ai.response.finish_reasons","value":{"arrayValue":{"values":'
        '[{"stringValue":"%s"}]}}}]%s}'
    )
    err_tmpl = (
        head + '%s,{"key":"gen_ai.request.max_tokens","value":{"intValue":"%d"}},'
        '{"key":"gen_ai.usage.input_tokens","value":{"intValue":"%d"}},%s]%s}'
    )
    err_pieces = []
    for etype, code, msg, _ in ERRORS_LLM:
        err_pieces.append(
            (_attrs([("error.type", etype), ("http.response.status_code", code)]), _status(msg))
        )
    outage_piece = (
        _attrs([("error.type", "503"), ("http.response.status_code", 503)]),
        _status(OUTAGE_MESSAGE),
    )

    # evaluations of successful requests: accuracy label, sometimes relevance too
    tails = [""] * n
    ev = ~err & (rng.random(n) < LLM_EVAL_RATE)
    ev_idx = np.flatnonzero(ev)
    m = len(ev_idx)
    passed = rng.random(m) < (dep.accuracy or 0.0)
    to_log = rng.random(m) < EVAL_LOG_SHARE
    relevance = rng.random(m) < RELEVANCE_SHARE
    rel_value = rng.beta(8.0, 2.0, m)
    fail_kind = rng.integers(0, len(FAIL_ATTRS), m)
    delay = (rng.lognormal(math.log(20.0), 1.0, m) * NS_PER_S).astype(np.int64)
    observed = (rng.random(m) * 2 * NS_PER_S).astype(np.int64)
    end_l = end.tolist()
    gid_l = gid.tolist()
    for k, i in enumerate(ev_idx.tolist()):
        records = [PASS_ATTRS if passed[k] else FAIL_ATTRS[fail_kind[k]]]
        if relevance[k]:
            records.append(_eval_attrs("relevance", None, round(float(rel_value[k]), 4)))
        if to_log[k]:
            t = end_l[i] + int(delay[k])
            for attrs in records:
                rec = LOG_TMPL % (t, t + int(observed[k]), trace_ids[i], span_ids[i], attrs)
                batch.logs.append((t, gid_l[i], rec))
            stats.eval_logs += len(records)
        else:
            events = ",".join(EVENT_TMPL % (end_l[i], a) for a in records)
            tails[i] = ',"events":[' + events + "]"
            stats.eval_events += len(records)
        stats.evaluations += len(records)
        stats.eval_accuracy += 1
        stats.eval_pass += int(passed[k])

    finish = np.where(out_tok >= max_tok, "length", "stop").tolist()
    start_l, vidx_l = start.tolist(), vidx.tolist()
    mt_l, in_l, out_l, ttft_l = max_tok.tolist(), in_tok.tolist(), out_tok.tolist(), ttft.tolist()
    strs: list[str] = [""] * n
    ok_idx = np.flatnonzero(~err).tolist()
    for i in ok_idx:
        strs[i] = ok_tmpl % (
            trace_ids[i], span_ids[i], start_l[i], end_l[i], pieces[vidx_l[i]], mt_l[i],
            in_l[i], out_l[i], ttft_l[i], finish[i], tails[i],
        )  # fmt: skip
    ek = ekind.tolist()
    for i in np.flatnonzero(err).tolist():
        epiece, status = outage_piece if ek[i] < 0 else err_pieces[ek[i]]
        strs[i] = err_tmpl % (
            trace_ids[i], span_ids[i], start_l[i], end_l[i], pieces[vidx_l[i]], mt_l[i],
            in_l[i], epiece, status,
        )  # fmt: skip
    batch.entry.extend(strs)
    batch.child.extend([""] * n)
    batch.nspans.append(np.ones(n, np.int64))
    stats.spans += n
    stats.errors += int(err.sum())


def _http(
    rng: np.random.Generator, dp: DeploymentPlan, plan: Plan, start: np.ndarray,
    vidx: np.ndarray, gid: np.ndarray, batch: DayBatch, stats: Stats,
) -> None:  # fmt: skip
    """An HTTP entry span with one INTERNAL child that names the model."""
    dep, spec = dp.dep, dp.spec
    n = len(start)
    in_tok = None
    if spec.kind == "embedding":
        in_tok = np.clip(rng.lognormal(math.log(dep.in_tokens), 0.8, n), 4, 512).astype(np.int64)
        model_s = (dep.base_s + in_tok * dep.per_token_s) * rng.lognormal(0.0, 0.2, n)
    else:
        model_s = rng.lognormal(math.log(dep.base_s), dep.sigma, n)
    model_s *= _pareto_tail(rng, n)
    overhead = rng.lognormal(math.log(0.003), 0.5, n)
    err, ekind = _errors(rng, start, dep, plan, ERRORS_HTTP)
    timeout = err & (ekind == 0)
    fast = err & ~timeout
    model_s[timeout] = 10.0 + rng.random(int(timeout.sum())) * 0.02
    model_s[fast] = rng.lognormal(math.log(0.004), 0.6, int(fast.sum()))
    child_ns = np.maximum((model_s * NS_PER_S).astype(np.int64), 20_000)
    over_ns = np.maximum((overhead * NS_PER_S).astype(np.int64), 10_000)
    pre_ns = (over_ns * rng.uniform(0.3, 0.7, n)).astype(np.int64)
    child_start = start + pre_ns
    child_end = child_start + child_ns
    end = start + child_ns + over_ns

    trace_ids = _hex_ids(rng, n, 16)
    span_ids = _hex_ids(rng, n, 8)
    child_ids = _hex_ids(rng, n, 8)
    host = f"{spec.service}.{NAMESPACES[spec.service]}.svc.cluster.local"
    entry_common = _attrs(
        [
            ("http.request.method", "POST"),
            ("http.route", spec.route),
            ("url.path", spec.route),
            ("url.scheme", "http"),
            ("server.address", host),
            ("server.port", SERVER_PORT),
        ]
    )
    entry_tmpl = (
        _span_head(f"POST {spec.route}", 2, False) + entry_common
        + ',{"key":"http.response.status_code","value":{"intValue":"%d"}}%s]%s}'
    )  # fmt: skip
    child_tmpl = _span_head(spec.child_name, 1, True) + "%s]%s}"
    if spec.kind == "classifier":
        child_pieces = [
            _attrs([("gen_ai.request.model", dep.model), ("ml.model.version", v)])
            for _, v in dep.versions
        ]
    elif spec.kind == "embedding":
        child_pieces = [
            _attrs(
                [
                    ("gen_ai.operation.name", "embeddings"),
                    ("gen_ai.provider.name" if new else "gen_ai.system", "tei"),
                    ("gen_ai.request.model", dep.model),
                    ("gen_ai.response.model", dep.model),
                ]
            )
            + ',{"key":"gen_ai.usage.input_tokens","value":{"intValue":"%d"}}'
            for new in dp.new_semconv
        ]
    else:
        child_pieces = [
            _attrs([("ml.model.name", dep.model), ("ml.framework", "tensorrt")])
            for _ in dep.versions
        ]

    code = np.full(n, 200, np.int64)
    codes = np.array([e[1] for e in ERRORS_HTTP] + [503], np.int64)
    code[err] = codes[ekind[err]]
    err_piece = [(_attrs([("error.type", e[0])]), _status(e[2])) for e in ERRORS_HTTP] + [
        (_attrs([("error.type", "503")]), _status(OUTAGE_MESSAGE))
    ]
    ok_piece = ("", "")

    tails = [""] * n
    if spec.kind == "classifier":
        ev_idx = np.flatnonzero(~err & (rng.random(n) < CLASSIFIER_EVAL_RATE))
        acc = dep.accuracy or 0.0
        values = rng.beta(acc * 30.0, (1 - acc) * 30.0, len(ev_idx))
        ce = child_end.tolist()
        for k, i in enumerate(ev_idx.tolist()):
            attrs = _eval_attrs("accuracy", None, round(float(values[k]), 4))
            tails[i] = ',"events":[' + EVENT_TMPL % (ce[i], attrs) + "]"
        stats.evaluations += len(ev_idx)
        stats.eval_events += len(ev_idx)
        stats.eval_accuracy += len(ev_idx)
        stats.eval_pass += float(np.round(values, 4).sum())

    ek = ekind.tolist()
    err_l, code_l, vidx_l = err.tolist(), code.tolist(), vidx.tolist()
    s_l, e_l, cs_l, ce_l = start.tolist(), end.tolist(), child_start.tolist(), child_end.tolist()
    tok_l = in_tok.tolist() if in_tok is not None else None
    entries: list[str] = []
    children: list[str] = []
    for i in range(n):
        epiece, status = err_piece[ek[i]] if err_l[i] else ok_piece
        sep = "," if epiece else ""
        entries.append(
            entry_tmpl
            % (trace_ids[i], span_ids[i], s_l[i], e_l[i], code_l[i], sep + epiece, status)
        )
        cp = child_pieces[vidx_l[i]]
        if tok_l is not None:
            cp = cp % tok_l[i]
        children.append(
            child_tmpl
            % (trace_ids[i], child_ids[i], span_ids[i], cs_l[i], ce_l[i], cp, status + tails[i])
        )
    batch.entry.extend(entries)
    batch.child.extend(children)
    batch.nspans.append(np.full(n, 2, np.int64))
    stats.spans += 2 * n
    stats.errors += int(err.sum())


# -- one day ---------------------------------------------------------------------------------
PROFILE = _daily_profile()


def _minute_rates(dp: DeploymentPlan, plan: Plan, day: int, rng: np.random.Generator) -> np.ndarray:
    day_ns = plan.start_ns + day * DAY_NS
    minute_ns = day_ns + np.arange(MIN_PER_DAY, dtype=np.int64) * NS_PER_MIN
    growth = GROWTH_PER_90_DAYS ** ((minute_ns - plan.end_ns) / (90 * DAY_NS))
    hourly = np.repeat(dp.hour_noise[day * 24 : day * 24 + 24], 60)
    sigma = 0.10
    per_minute = np.exp(rng.standard_normal(MIN_PER_DAY) * sigma - sigma * sigma / 2)
    profile = PROFILE[(minute_ns // NS_PER_MIN) % MIN_PER_DAY]
    weekly = np.where(_weekday(minute_ns) >= 5, WEEKEND_FACTOR, 1.0)
    rate = dp.dep.peak_rpm * plan.scale * profile * weekly * growth * hourly * per_minute
    if dp.dep.env == OUTAGE_ENV:
        silent = (minute_ns >= plan.outage["errors_until"]) & (minute_ns < plan.outage["end"])
        rate[silent] = 0.0
    return rate


def _arrivals(
    dp: DeploymentPlan, plan: Plan, day: int, day_ns: int, rng: np.random.Generator
) -> np.ndarray:
    """Sorted request start times: Poisson bursts per minute, each burst 1 + Poisson(b) calls.

    Clients call in bursts (an agent's tool loop, a batch of chunks to embed, a camera's
    frames), so per-minute counts are over-dispersed beyond what the rate noise gives,
    by about 1 + b + b / (1 + b), while the mean rate stays `_minute_rates`.
    """
    b, gap_s = BURSTS[dp.spec.kind]
    arrivals = rng.poisson(_minute_rates(dp, plan, day, rng) / (1 + b))
    n_arr = int(arrivals.sum())
    if n_arr == 0:
        return np.zeros(0, np.int64)
    minute = np.repeat(np.arange(MIN_PER_DAY, dtype=np.int64), arrivals)
    t0 = day_ns + minute * NS_PER_MIN + rng.integers(0, NS_PER_MIN, n_arr)
    size = 1 + rng.poisson(b, n_arr)
    gaps = (rng.exponential(gap_s, int(size.sum())) * NS_PER_S).astype(np.int64)
    first = np.cumsum(size) - size
    gaps[first] = 0
    cs = np.cumsum(gaps)
    start = np.repeat(t0, size) + cs - np.repeat(cs[first], size)
    start = np.minimum(start, day_ns + DAY_NS - 1)
    if dp.dep.env == OUTAGE_ENV:  # a burst must not leak into the silent part of the outage
        silent = (start >= plan.outage["errors_until"]) & (start < plan.outage["end"])
        start = start[~silent]
    return np.sort(start)


def _day(plan: Plan, day: int, env: str, stats: dict[int, Stats]) -> DayBatch:
    batch = DayBatch()
    env_index = ENVIRONMENTS.index(env)
    rng = np.random.default_rng(np.random.SeedSequence([plan.seed, 1, day, env_index]))
    day_ns = plan.start_ns + day * DAY_NS
    for dp in plan.deployments:
        if dp.dep.env != env:
            continue
        start = _arrivals(dp, plan, day, day_ns, rng)
        n = len(start)
        if n == 0:
            continue
        vidx = np.searchsorted(dp.rollout_ns, start, side="right") - 1
        gid = dp.gids[vidx, rng.integers(0, dp.dep.replicas, n)]
        st = stats[dp.index]
        st.requests += n
        make = _llm if dp.spec.kind == "llm" else _http
        make(rng, dp, plan, start, vidx, gid, batch, st)
        batch.start_ns.append(start)
        batch.gid.append(gid)
    return batch


def window_minutes(scale: float) -> int:
    """Minutes per export batch: longer at small scales, where short windows would hold a
    span or two each and the repeated resource attributes would dominate the file size."""
    for minutes in (10, 15, 20, 30):
        if minutes * scale >= WINDOW_MIN:
            return minutes
    return 60


def _trace_lines(batch: DayBatch, plan: Plan, env: str, day_ns: int) -> list[str]:
    """Group a day's requests into export lines: time windows, <=500 spans, by resource."""
    if not batch.start_ns:
        return []
    start = np.concatenate(batch.start_ns)
    gid = np.concatenate(batch.gid)
    nspans = np.concatenate(batch.nspans)
    order = np.argsort(start, kind="stable")
    window = (start[order] - day_ns) // (window_minutes(plan.scale) * NS_PER_MIN)
    cs = np.cumsum(nspans[order])
    first = np.searchsorted(window, window, side="left")  # first request of each window
    before = np.where(first > 0, cs[np.maximum(first - 1, 0)], 0)
    chunk = (cs - before - 1) // (MAX_SPANS_PER_LINE - 1)
    line_key = window * 1000 + chunk
    order2 = order[np.lexsort((gid[order], line_key))]
    key_sorted = line_key[np.lexsort((gid[order], line_key))]
    gid_sorted = gid[order2]

    resources = plan.resources[env]
    scopes: dict[str, tuple[str, str]] = {}
    for dp in plan.deployments:
        if dp.dep.env == env:
            child_scope = _scope(dp.spec.child_scope) if dp.spec.child_scope[0] else ""
            scopes[dp.spec.service] = (_scope(dp.spec.entry_scope), child_scope)
    entry, child = batch.entry, batch.child
    lines: list[str] = []
    bounds = np.flatnonzero(np.diff(key_sorted)) + 1
    for seg in np.split(np.arange(len(order2)), bounds):
        idx = order2[seg]
        g = gid_sorted[seg]
        parts: list[str] = []
        gb = np.flatnonzero(np.diff(g)) + 1
        for sub in np.split(np.arange(len(idx)), gb):
            rows = idx[sub].tolist()
            res = resources[int(g[sub[0]])]
            entry_scope, child_scope = scopes[res.service]
            scope_spans = '{"scope":%s,"spans":[%s]}' % (
                entry_scope,
                ",".join([entry[i] for i in rows]),
            )
            if child_scope:
                scope_spans += ',{"scope":%s,"spans":[%s]}' % (
                    child_scope,
                    ",".join([child[i] for i in rows]),
                )
            parts.append(
                '{"resource":{"attributes":%s},"scopeSpans":[%s]}' % (res.json, scope_spans)
            )
        lines.append('{"resourceSpans":[%s]}' % ",".join(parts))
    return lines


def _log_lines(batch: DayBatch, plan: Plan, env: str) -> list[str]:
    """Evaluation log records grouped per hour and resource, as an evaluator would export."""
    if not batch.logs:
        return []
    resources = plan.resources[env]
    scope = _scope(LOG_SCOPE)
    logs = sorted(batch.logs, key=lambda r: (r[0] // (3600 * NS_PER_S), r[1], r[0]))
    lines: list[str] = []
    i = 0
    while i < len(logs):
        hour = logs[i][0] // (3600 * NS_PER_S)
        j = i
        while j < len(logs) and logs[j][0] // (3600 * NS_PER_S) == hour and j - i < 500:
            j += 1
        parts: list[str] = []
        k = i
        while k < j:
            g = logs[k][1]
            m = k
            while m < j and logs[m][1] == g:
                m += 1
            records = ",".join(r[2] for r in logs[k:m])
            parts.append(
                '{"resource":{"attributes":%s},"scopeLogs":[{"scope":%s,"logRecords":[%s]}]}'
                % (resources[g].json, scope, records)
            )
            k = m
        lines.append('{"resourceLogs":[%s]}' % ",".join(parts))
        i = j
    return lines


# -- protobuf for the edge site ---------------------------------------------------------------
def _pb_value(pb: AnyValue, v: dict[str, Any]) -> None:
    if "stringValue" in v:
        pb.string_value = v["stringValue"]
    elif "intValue" in v:
        pb.int_value = int(v["intValue"])
    elif "doubleValue" in v:
        pb.double_value = float(v["doubleValue"])
    elif "boolValue" in v:
        pb.bool_value = v["boolValue"]
    elif "arrayValue" in v:
        for x in v["arrayValue"].get("values", []):
            _pb_value(pb.array_value.values.add(), x)


def _pb_attrs(target: Any, attrs: list[dict[str, Any]]) -> None:
    for a in attrs:
        kv = target.add()
        kv.key = a["key"]
        _pb_value(kv.value, a["value"])


def _to_protobuf(line: str) -> bytes:
    """Our own OTLP/JSON line as protobuf; json_format would read the hex ids as base64."""
    doc = orjson.loads(line)
    req = ExportTraceServiceRequest()
    for rs in doc["resourceSpans"]:
        prs = req.resource_spans.add()
        _pb_attrs(prs.resource.attributes, rs["resource"]["attributes"])
        for ss in rs["scopeSpans"]:
            pss = prs.scope_spans.add()
            pss.scope.name = ss["scope"]["name"]
            pss.scope.version = ss["scope"]["version"]
            for s in ss["spans"]:
                ps = pss.spans.add()
                ps.trace_id = bytes.fromhex(s["traceId"])
                ps.span_id = bytes.fromhex(s["spanId"])
                if s.get("parentSpanId"):
                    ps.parent_span_id = bytes.fromhex(s["parentSpanId"])
                ps.name = s["name"]
                ps.kind = s["kind"]
                ps.start_time_unix_nano = int(s["startTimeUnixNano"])
                ps.end_time_unix_nano = int(s["endTimeUnixNano"])
                _pb_attrs(ps.attributes, s["attributes"])
                for e in s.get("events", ()):
                    pe = ps.events.add()
                    pe.time_unix_nano = int(e["timeUnixNano"])
                    pe.name = e["name"]
                    _pb_attrs(pe.attributes, e["attributes"])
                if "status" in s:
                    ps.status.code = s["status"]["code"]
                    ps.status.message = s["status"].get("message", "")
    return req.SerializeToString(deterministic=True)


# -- files -----------------------------------------------------------------------------------
def _write_traces(path: Path, lines: list[str], framing: str, native_zstd: bool) -> str:
    """Write one day's lines in the environment's framing; returns the file name used."""
    data: bytes
    if framing == "jsonl":
        name = path.name + ".jsonl"
        data = "".join(line + "\n" for line in lines).encode()
    elif framing == "zstd" and native_zstd:  # newer Collector: one zstd stream of JSON lines
        name = path.name + ".zst"
        raw = "".join(line + "\n" for line in lines).encode()
        data = zstandard.ZstdCompressor(level=3).compress(raw)
    elif framing == "zstd":  # legacy Collector: each message compressed, length-prefixed
        name = path.name + ".jsonl.zst"
        cctx = zstandard.ZstdCompressor(level=3)
        parts = []
        for line in lines:
            z = cctx.compress(line.encode())
            parts.append(struct.pack(">I", len(z)))
            parts.append(z)
        data = b"".join(parts)
    else:
        name = path.name + ".binpb"
        parts = []
        for line in lines:
            pb = _to_protobuf(line)
            parts.append(struct.pack(">I", len(pb)))
            parts.append(pb)
        data = b"".join(parts)
    (path.parent / name).write_bytes(data)
    return name


def _default_end() -> datetime:
    now = datetime.now(UTC)
    return datetime(now.year, now.month, now.day, tzinfo=UTC)


def generate(
    outdir: Path,
    *,
    days: int = 90,
    seed: int = 7,
    scale: float = 1.0,
    end: datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Write the scenario under `outdir` and return its summary (also in scenario.json).

    `end` is the exclusive end of the data (UTC, floored to the minute; default today 00:00
    so the demo looks current; a naive datetime is taken as UTC). Same arguments give
    byte-identical files: all randomness comes from `seed`. Files are per 24-hour slice
    from the start, named by the slice's UTC start date.
    """
    if days < 1:
        raise ValueError("days must be at least 1")
    if scale <= 0:
        raise ValueError("scale must be positive")
    if end is None:
        end = _default_end()
    elif end.tzinfo is None:
        end = end.replace(tzinfo=UTC)
    end = end.astimezone(UTC).replace(second=0, microsecond=0)
    outdir = Path(outdir)
    plan = _plan(days, seed, scale, end)
    native_days = min(3, days // 3)
    stats = {dp.index: Stats() for dp in plan.deployments}
    files = 0
    nbytes = 0
    written: dict[str, dict[str, str]] = {env: {} for env in ENVIRONMENTS}
    for env in ENVIRONMENTS:
        (outdir / "traces" / env).mkdir(parents=True, exist_ok=True)
    if progress:
        progress(0, days)
    for day in range(days):
        day_ns = plan.start_ns + day * DAY_NS
        date = datetime.fromtimestamp(day_ns / NS_PER_S, UTC).strftime("%Y-%m-%d")
        for env in ENVIRONMENTS:
            batch = _day(plan, day, env, stats)
            lines = _trace_lines(batch, plan, env, day_ns)
            native = day >= days - native_days
            name = _write_traces(outdir / "traces" / env / date, lines, FRAMING[env], native)
            written[env][date] = name
            files += 1
            nbytes += (outdir / "traces" / env / name).stat().st_size
            log_lines = _log_lines(batch, plan, env)
            if log_lines:
                log_path = outdir / "logs" / env / f"{date}.jsonl"
                log_path.parent.mkdir(parents=True, exist_ok=True)
                log_path.write_text("".join(line + "\n" for line in log_lines))
                files += 1
                nbytes += log_path.stat().st_size
        if progress:
            progress(day + 1, days)
    summary = _summary(plan, stats, files, nbytes, native_days, written)
    (outdir / "scenario.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return summary


def _summary(
    plan: Plan,
    stats: dict[int, Stats],
    files: int,
    nbytes: int,
    native_days: int,
    written: dict[str, dict[str, str]],
) -> dict[str, Any]:
    by_env: dict[str, dict[str, int]] = {}
    by_model: dict[str, dict[str, int]] = {}
    by_pair: dict[str, dict[str, dict[str, Any]]] = {}
    total = Stats()
    for dp in plan.deployments:
        st = stats[dp.index]
        counts = {
            "requests": st.requests,
            "spans": st.spans,
            "errors": st.errors,
            "evaluations": st.evaluations,
        }
        for bucket, key in ((by_env, dp.dep.env), (by_model, dp.dep.model)):
            agg = bucket.setdefault(key, dict.fromkeys(counts, 0))
            for k, v in counts.items():
                agg[k] += v
        pair: dict[str, Any] = dict(counts, eval_events=st.eval_events, eval_logs=st.eval_logs)
        pair["peak_rpm"] = dp.dep.peak_rpm * plan.scale
        pair["service"] = dp.spec.service
        pair["versions"] = [v for _, v in dp.dep.versions]
        if dp.dep.accuracy is not None:
            pair["accuracy_expected"] = dp.dep.accuracy
        if st.eval_accuracy:
            pair["accuracy_observed"] = round(st.eval_pass / st.eval_accuracy, 4)
        by_pair.setdefault(dp.dep.env, {})[dp.dep.model] = pair
        for k in ("requests", "spans", "errors", "evaluations"):
            setattr(total, k, getattr(total, k) + getattr(st, k))
    accuracy = {
        env: {
            model: {
                "evaluation": "accuracy",
                "expected": p["accuracy_expected"],
                "observed": p.get("accuracy_observed"),
                "score": "label" if MODEL_SPECS[model].kind == "llm" else "value",
            }
            for model, p in models.items()
            if "accuracy_expected" in p
        }
        for env, models in by_pair.items()
    }
    o = plan.outage
    aws = next(
        d
        for d in plan.deployments
        if d.dep.env == REGRESSION_ENV and d.spec.service == "chat-gateway"
    )
    return {
        "seed": plan.seed,
        "days": plan.days,
        "scale": plan.scale,
        "start": _iso(plan.start_ns),
        "end": _iso(plan.end_ns),
        "spans": total.spans,
        "requests": total.requests,
        "evaluations": total.evaluations,
        "errors": total.errors,
        "files": files,
        "bytes": nbytes,
        "environments": list(ENVIRONMENTS),
        "models": list(MODELS),
        "by_environment": by_env,
        "by_model": by_model,
        "by_environment_model": by_pair,
        "events": {
            "outage": {
                "environment": OUTAGE_ENV,
                "start": _iso(o["start"]),
                "errors_until": _iso(o["errors_until"]),
                "end": _iso(o["end"]),
                "error_ratio": 0.9,
                "http_status": 503,
                "description": "about 90% of requests fail with 503 for an hour, then no "
                "requests at all for two hours",
            },
            "regression": {
                "environment": REGRESSION_ENV,
                "service": "chat-gateway",
                "model": "llama-3.1-70b-instruct",
                "from_version": "2.3.1",
                "to_version": "2.4.0",
                "at": _iso(plan.regression_ns),
                "latency_factor": REGRESSION_FACTOR,
                "versions": [v for _, v in aws.dep.versions],
            },
            "accuracy": accuracy,
            "rollouts": plan.rollouts,
        },
        "load": {
            "profile": "two daily peaks at 10:00 and 16:00 UTC, night trough 0.25 of peak",
            "weekend_factor": WEEKEND_FACTOR,
            "growth_per_90_days": GROWTH_PER_90_DAYS,
            "rates_hold_at": "end",
            "noise": "lognormal, mean 1: hourly AR(1) per environment (sigma 0.10, phi 0.7) "
            "x hourly AR(1) per model (sigma 0.08, phi 0.5) x per minute (sigma 0.10)",
            "evaluation_rates": {
                "llm": LLM_EVAL_RATE,
                "classifier": CLASSIFIER_EVAL_RATE,
                "llm_as_logs": round(EVAL_LOG_SHARE, 4),
                "relevance_share": RELEVANCE_SHARE,
            },
        },
        "framings": {
            "dc-frankfurt": "json lines (.jsonl)",
            "gcp-europe-west4": "json lines (.jsonl)",
            "aws-us-east-1": "legacy zstd: 4-byte big-endian length + zstd frame per message "
            f"(.jsonl.zst); the last {native_days} days one zstd stream of json lines (.zst)",
            "edge-munich": "protobuf: 4-byte big-endian length + ExportTraceServiceRequest "
            "(.binpb)",
            "logs": "json lines of ExportLogsServiceRequest under logs/<env>/",
        },
        "trace_files": written,
    }

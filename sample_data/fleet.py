"""The demo fleet: which model runs where, in which versions, on how many GPUs of which pool.

Why one table: the traces, the stored config (``scenario.toml``'s ``gpu_pools``, rendered
from here by ``sample_data.scenario_config``) and the GPU-telemetry and billing generators
that follow all describe the same fleet, so they read it from here and cannot disagree.

A deployment is one model served in one environment by ``replicas`` service instances,
each on ``gpus_per_replica`` GPUs of one pool. A pool may hold more GPUs than its
deployments use (``Pool.count`` is what was bought or reserved); the rest are idle-free
capacity. ``Fleet.check()`` says why a fleet is inconsistent.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Environment:
    """A site, as the config describes it; `framing` is how its Collector writes files."""

    name: str
    kind: str  # "onprem" | "cloud" | "edge"
    provider: str
    region: str
    residency: str
    framing: str  # "jsonl" | "zstd" | "protobuf"


@dataclass(frozen=True)
class Pool:
    """GPUs of one kind in one environment, as the config's `gpu_pools` names them."""

    name: str
    environment: str
    gpu: str
    count: int


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


@dataclass(frozen=True)
class Deployment:
    """One model served in one environment, with its load, latency and quality parameters.

    Latency for LLMs is ``ttft + output_tokens * per_token_s``; for embeddings
    ``base_s + input_tokens * per_token_s``; for the rest a lognormal around ``base_s``.
    `versions` are (position in the date range as a fraction, service.version).
    `accuracy` is the build's usual accuracy; an incident (``sample_data.incidents``) may
    override it for a version or a window.
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
    pool: str = ""
    gpus_per_replica: int = 1
    # the share of a request's input tokens its server's prefix cache served, which the
    # versions that emit gen_ai.provider.name report as gen_ai.usage.cache_read.input_tokens
    cached_share: float = 0.0

    @property
    def gpus(self) -> int:
        return self.replicas * self.gpus_per_replica


@dataclass(frozen=True)
class Fleet:
    environments: tuple[Environment, ...]
    models: tuple[Model, ...]
    pools: tuple[Pool, ...]
    deployments: tuple[Deployment, ...]

    def environment_names(self) -> tuple[str, ...]:
        return tuple(e.name for e in self.environments)

    def model_names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.models)

    def model(self, name: str) -> Model:
        return next(m for m in self.models if m.name == name)

    def environment(self, name: str) -> Environment:
        return next(e for e in self.environments if e.name == name)

    def pools_of(self, env: str) -> tuple[Pool, ...]:
        return tuple(p for p in self.pools if p.environment == env)

    def in_environment(self, env: str) -> Iterator[Deployment]:
        return (d for d in self.deployments if d.env == env)

    def gpus_used(self, pool: str) -> int:
        return sum(d.gpus for d in self.deployments if d.pool == pool)

    def check(self) -> list[str]:
        """Every inconsistency, as a sentence; empty when the fleet holds together."""
        problems: list[str] = []
        envs, models = set(self.environment_names()), set(self.model_names())
        pools = {p.name: p for p in self.pools}
        if len(pools) != len(self.pools):
            problems.append("two pools share a name")
        for p in self.pools:
            if p.environment not in envs:
                problems.append(f"pool {p.name}: unknown environment {p.environment}")
            if self.gpus_used(p.name) > p.count:
                problems.append(f"pool {p.name}: {self.gpus_used(p.name)} GPUs used of {p.count}")
        seen: set[tuple[str, str]] = set()
        for d in self.deployments:
            where = f"deployment {d.env}/{d.model}"
            if (d.env, d.model) in seen:
                problems.append(f"{where}: listed twice")
            seen.add((d.env, d.model))
            if d.env not in envs or d.model not in models:
                problems.append(f"{where}: unknown environment or model")
            pool = pools.get(d.pool)
            if pool is None or pool.environment != d.env:
                problems.append(f"{where}: pool {d.pool!r} is not in {d.env}")
            if d.replicas < 1 or d.gpus_per_replica < 1:
                problems.append(f"{where}: needs at least one replica on one GPU")
        return problems


ENVIRONMENTS = (
    Environment("dc-frankfurt", "onprem", "onprem", "eu-central", "eu", "jsonl"),
    Environment("aws-us-east-1", "cloud", "aws", "us-east-1", "us", "zstd"),
    Environment("gcp-europe-west4", "cloud", "gcp", "europe-west4", "eu", "jsonl"),
    Environment("edge-munich", "edge", "onprem", "munich", "eu", "protobuf"),
)

MODELS = (
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

# GPUs per replica: llama-3.1-70b in 16-bit weights (about 141 GB) is tensor-parallel over
# 4 GPUs of 80 GB; the AWQ 4-bit build on aws (about 40 GB) over 2, for KV-cache room; the
# smaller models fit one GPU each.
POOLS = (
    Pool("fra-h100", "dc-frankfurt", "H100-80GB", 32),  # 8 servers x 4; 10 GPUs spare
    Pool("use1-p5", "aws-us-east-1", "H100-80GB", 16),  # 2 x p5.48xlarge, all in use
    Pool("euw4-a100", "gcp-europe-west4", "A100-80GB", 16),  # 2 x a2-ultragpu-8g; 3 spare
    Pool("muc-l4", "edge-munich", "L4", 4),  # 2 boxes x 2 L4; 1 spare
)

DEPLOYMENTS: tuple[Deployment, ...] = (
    # dc-frankfurt: on-prem H100s, the biggest site
    Deployment("dc-frankfurt", "llama-3.1-70b-instruct", 3.5, 4,
               ((0.0, "2.2.4"), (0.30, "2.3.1")), 0.006, 0.22, 0.0080, 160, 800,
               accuracy=0.93, response_model="llama-3.1-70b-instruct",
               new_semconv_from="2.3.1", pool="fra-h100", gpus_per_replica=4,
               cached_share=0.4),
    Deployment("dc-frankfurt", "mistral-7b-instruct", 3.0, 2,
               ((0.0, "1.8.0"), (0.50, "1.9.0")), 0.004, 0.07, 0.0040, 140, 600,
               accuracy=0.91, response_model="mistral-7b-instruct-v0.3",
               new_semconv_from="1.9.0", pool="fra-h100", cached_share=0.2),
    Deployment("dc-frankfurt", "fraud-classifier", 1.8, 2,
               ((0.0, "3.4.0"), (0.35, "3.5.0")), 0.003, 0.018, accuracy=0.95,
               pool="fra-h100"),
    Deployment("dc-frankfurt", "bge-large-en-v1.5", 1.5, 2,
               ((0.0, "0.9.3"), (0.20, "1.0.0")), 0.003, 0.012, 0.00008, in_tokens=300,
               new_semconv_from="1.0.0", pool="fra-h100"),
    # aws-us-east-1: EKS, AWQ-quantized llama, where the regression happens
    Deployment("aws-us-east-1", "llama-3.1-70b-instruct", 3.5, 4,
               ((0.0, "2.2.4"), (0.25, "2.3.1"), (0.70, "2.4.0")), 0.006, 0.28, 0.0090,
               160, 800, accuracy=0.92, response_model="llama-3.1-70b-instruct-awq",
               new_semconv_from="2.3.1", pool="use1-p5", gpus_per_replica=2,
               cached_share=0.4),
    Deployment("aws-us-east-1", "mistral-7b-instruct", 2.5, 2,
               ((0.0, "1.8.0"), (0.45, "1.9.0")), 0.004, 0.08, 0.0045, 140, 600,
               accuracy=0.91, response_model="mistral-7b-instruct-v0.3",
               new_semconv_from="1.9.0", pool="use1-p5", cached_share=0.2),
    Deployment("aws-us-east-1", "fraud-classifier", 1.5, 2,
               ((0.0, "3.4.0"), (0.38, "3.5.0")), 0.004, 0.025, accuracy=0.94,
               pool="use1-p5"),
    Deployment("aws-us-east-1", "bge-large-en-v1.5", 1.3, 2,
               ((0.0, "0.9.3"), (0.22, "1.0.0")), 0.003, 0.015, 0.00010, in_tokens=300,
               new_semconv_from="1.0.0", pool="use1-p5"),
    Deployment("aws-us-east-1", "yolov8-l", 1.2, 2,
               ((0.0, "5.1.0"), (0.50, "5.2.0")), 0.008, 0.060, sigma=0.3, pool="use1-p5"),
    # gcp-europe-west4: GKE A100s, where the outage happens
    Deployment("gcp-europe-west4", "llama-3.1-70b-instruct", 2.4, 2,
               ((0.0, "2.2.4"), (0.40, "2.3.1")), 0.007, 0.32, 0.0100, 160, 800,
               accuracy=0.92, response_model="llama-3.1-70b-instruct",
               new_semconv_from="2.3.1", pool="euw4-a100", gpus_per_replica=4,
               cached_share=0.4),
    Deployment("gcp-europe-west4", "mistral-7b-instruct", 2.2, 2,
               ((0.0, "1.8.0"), (0.60, "1.9.0")), 0.005, 0.09, 0.0050, 140, 600,
               accuracy=0.90, response_model="mistral-7b-instruct-v0.3",
               new_semconv_from="1.9.0", pool="euw4-a100", cached_share=0.2),
    Deployment("gcp-europe-west4", "bge-large-en-v1.5", 1.2, 1,
               ((0.0, "0.9.3"), (0.30, "1.0.0")), 0.004, 0.018, 0.00012, in_tokens=300,
               new_semconv_from="1.0.0", pool="euw4-a100"),
    Deployment("gcp-europe-west4", "yolov8-l", 1.6, 2,
               ((0.0, "5.1.0"), (0.52, "5.2.0")), 0.008, 0.075, sigma=0.3,
               pool="euw4-a100"),
    # edge-munich: two L4 boxes, quantized mistral (fast; its lower accuracy is an
    # incident record), old semconv
    Deployment("edge-munich", "mistral-7b-instruct", 1.2, 1,
               ((0.0, "1.8.2-q4"),), 0.008, 0.05, 0.0028, 120, 400,
               accuracy=0.91, response_model="mistral-7b-instruct-q4_k_m",
               provider="llama.cpp", pool="muc-l4"),
    Deployment("edge-munich", "yolov8-l", 1.8, 2,
               ((0.0, "5.1.0-edge"), (0.80, "5.2.0-edge")), 0.010, 0.045, sigma=0.25,
               pool="muc-l4"),
)  # fmt: skip

FLEET = Fleet(ENVIRONMENTS, MODELS, POOLS, DEPLOYMENTS)

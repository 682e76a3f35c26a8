"""``scenario.toml``, the demo's config, rendered from the fleet so the two cannot disagree.

Why rendered: the config's environments and GPU pools describe the same fleet as the
traces; written by hand they drifted (pools too small for the replicas placed on them).
The environments' kind, provider, region and residency and every pool come from
``sample_data.fleet``; what only the config knows (SLOs, resolver rules, model policies)
is kept here. ``tests/test_sample_data.py`` checks that the committed file is this text;
after changing the fleet, run ``python -m sample_data.scenario_config``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from sample_data.fleet import FLEET, Fleet

HEADER = """\
# The demo scenario's config: what `hybridlens demo` stores in its warehouse.
# Every key is explained in docs/config.md; examples/hybridlens.toml is a template for
# your own fleet.
#
# Generated from the fleet in sample_data/fleet.py by sample_data/scenario_config.py:
# edit those and run `python -m sample_data.scenario_config`, not this file.
#
# Uptime settings: the demo's traffic is light for minute-level judgement (about 6 to 9
# requests a minute per environment at daytime, a Poisson process). At 5% a single failed
# request among 5-19 would mark a minute down, and at an expected 1-5 requests an empty
# minute is ordinary chance, so the SLOs below judge a minute down on errors above 20% and
# on silence only where that minute of the week usually has at least 6 requests.

[dashboard]
trace_link = "http://localhost:16686/trace/{trace_id}"  # Jaeger UI; Tempo works too
"""

Value = str | int | float | Sequence[str] | Mapping[str, "Value"]


def _slo(latency_p95_ms: int, availability: float) -> dict[str, Value]:
    return {
        "latency_p95_ms": latency_p95_ms,
        "availability": availability,
        "down_error_ratio": 0.2,
        "uptime_min_expected": 6,
    }


SLOS: dict[str, dict[str, Value]] = {
    "dc-frankfurt": _slo(4000, 0.99),
    "aws-us-east-1": _slo(4000, 0.99),
    "gcp-europe-west4": _slo(5000, 0.99),
    "edge-munich": _slo(2500, 0.98),
}
# resolver rules; an environment without one is found by deployment.environment(.name)
MATCH: dict[str, list[dict[str, str]]] = {
    "dc-frankfurt": [{"k8s.cluster.name": "fra-dc-prod"}],
    "aws-us-east-1": [{"cloud.provider": "aws", "cloud.region": "us-east-1"}],
}
MODEL_POLICIES: dict[str, dict[str, Value]] = {
    "llama-3.1-70b-instruct": {
        "classification": "confidential",
        "residency": ["eu", "us"],
        "accuracy_floor": 0.85,
    },
    "mistral-7b-instruct": {
        "classification": "internal",
        "residency": ["eu", "us"],
        "accuracy_floor": 0.85,
    },
    "fraud-classifier": {
        "classification": "restricted",
        "residency": ["eu"],
        "accuracy_floor": 0.9,
    },
    "bge-large-en-v1.5": {"classification": "internal", "residency": ["eu", "us"]},
    "yolov8-l": {
        "classification": "internal",
        "residency": ["eu", "us"],
        "service": "vision-api",
        "model_attribute": "ml.model.name",
    },
}


def _value(v: Value) -> str:
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, bool):
        raise TypeError("no booleans in the scenario config")
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, Mapping):
        return _inline(v)
    return "[" + ", ".join(_value(x) for x in v) + "]"


def _key(k: str) -> str:
    return k if k.replace("_", "").isalnum() else json.dumps(k)


# GPU telemetry: which hosts belong to which pool (globs on the hosts the demo's GPU files
# name, see sample_data.gpu_inventory), how the node is named on Kubernetes, and which pod
# holds which workload. The fine-tuning job is a workload of its own, not a served model.
HOSTS = {
    "fra-h100": "fra-gpu-*",
    "use1-p5": "ip-10-42-*.ec2.internal",
    "euw4-a100": "gke-euw4-ml-gpu-pool-*",
    "muc-l4": "muc-edge-*",
}
# What the on-prem and edge hardware costs (docs/cost-model.md); the clouds' cost is their
# bill. Frankfurt: 8 servers of 4 H100 bought in March 2024 at EUR 180,000 each, a
# colocation PUE and a German grid; Munich: two small L4 boxes in a closet.
COSTS: dict[str, dict[str, Value]] = {
    "fra-h100": {
        "servers": 8, "gpus_per_server": 4, "purchase_date": "2024-03-01",
        "price_per_server": 180000, "residual_value": 10000, "amortization_years": 4,
        "server_power_w": 900, "power_price_per_kwh": 0.21, "pue": 1.35,
        "fixed_monthly_cost": 18000, "carbon_intensity_g_per_kwh": 380, "currency": "EUR",
    },
    "muc-l4": {
        "servers": 2, "gpus_per_server": 2, "purchase_date": "2025-09-15",
        "price_per_server": 9500, "residual_value": 500, "amortization_years": 3,
        "server_power_w": 120, "power_price_per_kwh": 0.27, "pue": 1.1,
        "fixed_monthly_cost": 150, "carbon_intensity_g_per_kwh": 380, "currency": "EUR",
    },
}  # fmt: skip
GPU = """\
[gpu]
idle_threshold_percent = 5
sample_cap_minutes = 5
node_label = "kubernetes_node"  # dcgm-exporter's Hostname is the exporter pod on Kubernetes
"""
BILLING = """\
# The on-prem and edge pools are priced in euros; costs are reported in dollars.
[billing]
reporting_currency = "USD"
rates = [{ currency = "EUR", rate = 1.08, since = 2024-01-01 }]

# Monthly budgets (EffectiveCost, USD). The scenario's month costs about 175,000 in all
# (AWS ~67,000, Google Cloud ~54,000, the modelled on-prem and edge pools ~53,000), so the
# fleet stays under its budget and aws-us-east-1 runs over its own.
[[billing.budgets]]
name = "Whole fleet"
amount = 200000

[[billing.budgets]]
name = "aws-us-east-1"
environment = "aws-us-east-1"
amount = 60000
"""
WORKLOADS = (
    ("llama-3.1-70b-instruct", "llm-serving", "llama-*"),
    ("mistral-7b-instruct", "llm-serving", "mistral-*"),
    ("fraud-classifier", "risk", "fraud-*"),
    ("bge-large-en-v1.5", "search", "bge-*"),
    ("yolov8-l", "vision", "yolov8-*"),
    ("finetune-mistral-lora", "batch", "finetune-mistral-lora-*"),
)


def _inline(table: Mapping[str, Value]) -> str:
    return "{ " + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in table.items()) + " }"


def scenario_toml(fleet: Fleet = FLEET) -> str:
    """The text of ``scenario.toml`` for `fleet`."""
    blocks = [HEADER]
    for env in fleet.environments:
        pools: list[dict[str, Value]] = []
        for p in fleet.pools_of(env.name):
            pool: dict[str, Value] = {"name": p.name, "gpu": p.gpu, "count": p.count}
            pool["hosts"] = [HOSTS[p.name]]
            if p.name in COSTS:
                pool["cost"] = COSTS[p.name]
            pools.append(pool)
        lines = [
            "[[environments]]",
            f"name = {_value(env.name)}",
            f"kind = {_value(env.kind)}",
            f"provider = {_value(env.provider)}",
            f"region = {_value(env.region)}",
            f"residency = {_value(env.residency)}",
            "gpu_pools = [" + ", ".join(_inline(p) for p in pools) + "]",
            f"slo = {_inline(SLOS[env.name])}",
        ]
        if env.name in MATCH:
            lines.append("match = [" + ", ".join(_inline(m) for m in MATCH[env.name]) + "]")
        blocks.append("\n".join(lines) + "\n")
    for model in fleet.models:
        lines = ["[[models]]", f"name = {_value(model.name)}"]
        lines += [f"{k} = {_value(v)}" for k, v in MODEL_POLICIES[model.name].items()]
        blocks.append("\n".join(lines) + "\n")
    blocks.append(GPU)
    for workload, namespace, pod in WORKLOADS:
        lines = ["[[gpu.workloads]]", f"workload = {_value(workload)}"]
        lines += [f"namespace = {_value(namespace)}", f"pod = {_value(pod)}"]
        blocks.append("\n".join(lines) + "\n")
    blocks.append(BILLING)
    return "\n".join(blocks)


SCENARIO_TOML = Path(__file__).with_name("scenario.toml")

if __name__ == "__main__":
    SCENARIO_TOML.write_text(scenario_toml())
    print(f"wrote {SCENARIO_TOML}")

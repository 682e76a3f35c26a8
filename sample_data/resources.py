"""OTLP resource attributes of a replica, in the style each site's platform really sets.

Why per site: the config's resolver rules match on exactly these attributes (the on-prem
cluster name, the clouds' provider and region, the edge's deprecated
``deployment.environment``), so each site has to look like its own platform.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sample_data.otlp_json import token, uuid4

NAMESPACES = {
    "chat-gateway": "llm-serving",
    "assistant-api": "llm-serving",
    "risk-scoring": "risk",
    "embedder": "search",
    "vision-api": "vision",
}
FRANKFURT_FIRST_HOST = {"chat-gateway": 1, "assistant-api": 5, "risk-scoring": 7, "embedder": 7}


def host_of(env: str, service: str, replica: int, rng: np.random.Generator) -> dict[str, Any]:
    """Where a replica runs: host, pod and platform attributes in each site's own style."""
    if env == "dc-frankfurt":
        return {"host.name": f"fra-gpu-{FRANKFURT_FIRST_HOST[service] + replica:02d}"}
    if env == "aws-us-east-1":
        return {
            "host.name": f"ip-10-42-{int(rng.integers(0, 64))}-{int(rng.integers(2, 250))}"
            ".ec2.internal",
            "cloud.availability_zone": "us-east-1" + "abc"[replica % 3],
        }
    if env == "gcp-europe-west4":
        return {
            "host.name": f"gke-euw4-ml-gpu-pool-{rng.bytes(4).hex()}-{token(rng, 4)}",
            "cloud.availability_zone": "europe-west4-" + "abc"[replica % 3],
        }
    return {"host.name": f"muc-edge-{(replica if service == 'vision-api' else 0) + 1:02d}"}


def resource_attrs(
    env: str, service: str, version: str, replica: int, rs_hash: str, rng: np.random.Generator
) -> list[tuple[str, Any]]:
    host = host_of(env, service, replica, rng)
    attrs: list[tuple[str, Any]] = [
        ("service.name", service),
        ("service.namespace", "ai-platform"),
        ("service.version", version),
        ("service.instance.id", uuid4(rng)),
        ("host.name", host["host.name"]),
        ("telemetry.sdk.name", "opentelemetry"),
        ("telemetry.sdk.language", "java" if service == "vision-api" else "python"),
        ("telemetry.sdk.version", "1.42.1" if service == "vision-api" else "1.27.0"),
    ]
    pod = f"{service}-{rs_hash}-{token(rng, 5)}"
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

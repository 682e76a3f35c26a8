"""The config's GPU sections: where GPU telemetry is pulled from and how it is judged.

Declared apart from `config_schema` so the cost slices add their sections beside these
instead of growing one file. Globs (`fnmatch`, case-sensitive) let one rule name a whole
rack (`fra-gpu-*`) or a Kubernetes deployment's pods (`llama-70b-*`).
"""

from __future__ import annotations

from dataclasses import dataclass

from warehouse.config_billing import BillingSource
from warehouse.config_fields import Integer, Number, Sections, Text, setting


@dataclass(frozen=True)
class WorkloadRule:
    """GPU -> workload: the first rule whose given globs all match names what holds a GPU."""

    workload: str = setting(
        Text(), "what holds the GPU: usually a model's name, as spans name it", required=True
    )
    namespace: str = setting(Text(), 'glob on the Kubernetes namespace (`""`: any)', "")
    pod: str = setting(Text(), 'glob on the Kubernetes pod name (`""`: any)', "")
    host: str = setting(Text(), 'glob on the host, for bare metal (`""`: any)', "")


@dataclass(frozen=True)
class GpuSettings:
    idle_threshold_percent: float = setting(
        Number(0, 100),
        "a GPU-hour whose mean utilization is below this is idle (held when a workload is "
        "mapped to the GPU, else free)",
        5.0,
    )
    sample_cap_minutes: float = setting(
        Number(0.1, 1440),
        "a sample stands for the time to the GPU's next one, at most this long (a gap beyond "
        "it is unmonitored)",
        5.0,
    )
    node_label: str = setting(
        Text(),
        "the label that names the node on Kubernetes, where DCGM's `Hostname` is the "
        'exporter pod (e.g. `kubernetes_node`); `""`: `Hostname`/`hostname`',
        "",
    )
    workloads: tuple[WorkloadRule, ...] = setting(
        Sections(WorkloadRule),
        "GPU -> workload rules, see below; without a match a GPU used by a pod is held by "
        "that pod, and a GPU with no pod by nothing",
        (),
    )


@dataclass(frozen=True)
class GpuSource:
    url: str = setting(
        Text(), "an http(s) URL to pull (a DCGM exporter's `/metrics`, a Prometheus server)", ""
    )
    path: str = setting(Text(), "a file or folder to read instead of a URL", "")
    environment: str = setting(
        Text(), "the environment its samples belong to when neither the data nor a rule says", ""
    )
    timeout_seconds: float = setting(
        Number(0.1, 600), "how long one pull may take before it is retried", 10.0
    )
    retries: int = setting(
        Integer(0, 10), "retries after a failed pull, with backoff (1 s, 2 s, …)", 2
    )


@dataclass(frozen=True)
class Sources:
    gpu: tuple[GpuSource, ...] = setting(
        Sections(GpuSource),
        "what `hybridlens ingest gpu` reads when it is given no SOURCE, one `[[sources.gpu]]` "
        "table each",
        (),
    )
    billing: tuple[BillingSource, ...] = setting(
        Sections(BillingSource),
        "what `hybridlens ingest billing` reads when it is given no PATH, one "
        "`[[sources.billing]]` table each",
        (),
    )

"""The demo's GPUs, one by one: which host each sits in, and which deployment holds it.

Why derived from the fleet: the GPU telemetry must describe the same machines the traces
ran on and the same pools the stored config prices, so every GPU here comes from a
`Pool` of ``sample_data.fleet`` and every busy one from a `Deployment` there. A pool's
GPUs are laid out server by server; each deployment takes its replicas' GPUs in order, and
what is left is spare (idle-free) capacity, except one GPU on purpose held by a
fine-tuning job that finished days ago (idle-held: the pod was never deleted).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sample_data.fleet import FLEET, Deployment, Fleet

# Per GPU model: memory (MiB), power at idle and at full load (W), as the data sheets say.
HARDWARE = {
    "H100-80GB": ("NVIDIA H100 80GB HBM3", 81559, 70.0, 700.0),
    "A100-80GB": ("NVIDIA A100-SXM4-80GB", 81920, 55.0, 400.0),
    "L4": ("NVIDIA L4", 23034, 16.0, 72.0),
}
# Per pool: GPUs per server and the host names, in the style of each platform.
SERVERS = {
    "fra-h100": (4, tuple(f"fra-gpu-{i:02d}" for i in range(1, 9))),
    "use1-p5": (8, ("ip-10-42-7-21.ec2.internal", "ip-10-42-19-133.ec2.internal")),
    "euw4-a100": (8, ("gke-euw4-ml-gpu-pool-5c1d2e3f-x7kq", "gke-euw4-ml-gpu-pool-5c1d2e3f-p2mz")),
    "muc-l4": (2, ("muc-edge-01", "muc-edge-02")),
}
# Where each pool's deployments start, so a replica sits on the host its spans name
# (``sample_data.resources.host_of``): (pool, model) -> (first server, first GPU on it).
PLACEMENT = {
    ("fra-h100", "llama-3.1-70b-instruct"): (0, 0),
    ("fra-h100", "mistral-7b-instruct"): (4, 0),
    ("fra-h100", "fraud-classifier"): (6, 0),
    ("fra-h100", "bge-large-en-v1.5"): (6, 1),
    ("muc-l4", "mistral-7b-instruct"): (0, 0),
    ("muc-l4", "yolov8-l"): (0, 1),
}
# The finished job that still holds a GPU: (pool, server, GPU, namespace, pod, days held idle).
STALE_JOB = ("fra-h100", 5, 3, "batch", "finetune-mistral-lora-8c2kq", 6)
NAMESPACES = {
    "llama-3.1-70b-instruct": "llm-serving",
    "mistral-7b-instruct": "llm-serving",
    "fraud-classifier": "risk",
    "bge-large-en-v1.5": "search",
    "yolov8-l": "vision",
}


@dataclass(frozen=True)
class Gpu:
    """One GPU of the demo fleet and what holds it (`deployment` None: spare or stale job)."""

    env: str
    pool: str
    host: str
    index: int  # on its host
    uuid: str
    model_name: str
    memory_mib: int
    idle_w: float
    max_w: float
    deployment: Deployment | None = None
    replica: int = 0
    namespace: str = ""
    pod: str = ""
    stale_days: int = 0  # > 0: held by a finished job, idle for the last this many days


def _uuid(host: str, index: int) -> str:
    h = hashlib.sha256(f"{host}/{index}".encode()).hexdigest()
    return f"GPU-{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def inventory(fleet: Fleet = FLEET) -> list[Gpu]:
    """Every GPU of every pool of `fleet`, in pool, host and index order."""
    gpus: list[Gpu] = []
    for pool in fleet.pools:
        per_server, hosts = SERVERS[pool.name]
        if per_server * len(hosts) != pool.count:
            raise ValueError(f"pool {pool.name}: {len(hosts)} x {per_server} != {pool.count}")
        name, memory, idle_w, max_w = HARDWARE[pool.gpu]
        slots: dict[tuple[int, int], Gpu] = {}
        free = [(s, g) for s in range(len(hosts)) for g in range(per_server)]
        for dep in (d for d in fleet.deployments if d.pool == pool.name):
            start = PLACEMENT.get((pool.name, dep.model))
            for r in range(dep.replicas):
                for k in range(dep.gpus_per_replica):
                    slot = _place(start, r, k, dep, per_server) if start else free[0]
                    if slot not in free:
                        raise ValueError(f"pool {pool.name}: GPU {slot} placed twice")
                    free.remove(slot)
                    pod = f"{dep.model.split('-')[0]}-{r}"
                    slots[slot] = Gpu(
                        pool.environment, pool.name, hosts[slot[0]], slot[1],
                        _uuid(hosts[slot[0]], slot[1]), name, memory, idle_w, max_w,
                        dep, r, NAMESPACES[dep.model], pod,
                    )  # fmt: skip
        for s, g in free:
            stale = STALE_JOB[:3] == (pool.name, s, g)
            slots[(s, g)] = Gpu(
                pool.environment, pool.name, hosts[s], g, _uuid(hosts[s], g), name, memory,
                idle_w, max_w, namespace=STALE_JOB[3] if stale else "",
                pod=STALE_JOB[4] if stale else "", stale_days=STALE_JOB[5] if stale else 0,
            )  # fmt: skip
        gpus += [slots[k] for k in sorted(slots)]
    return gpus


def _place(
    start: tuple[int, int], replica: int, k: int, dep: Deployment, per_server: int
) -> tuple[int, int]:
    """Replicas of a multi-GPU deployment fill whole servers; single-GPU ones one per server."""
    server, gpu = start
    if dep.gpus_per_replica >= per_server:
        return (server + replica, gpu + k)
    if dep.gpus_per_replica == 1:
        return (server + replica, gpu)
    per = per_server // dep.gpus_per_replica
    return (server + replica // per, gpu + (replica % per) * dep.gpus_per_replica + k)

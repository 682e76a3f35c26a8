"""A dcgm-exporter `/metrics` page of any size, for the GPU benchmarks (not a benchmark).

The series are those of dcgm-exporter's default counters plus the two profiling ratios,
with the label set its render template writes (`gpu`, `UUID`, `pci_bus_id`, `device`,
`modelName`, `Hostname`, the driver version, `container`, `namespace`, `pod`), so the
parser and the builder see what a real scrape gives them, at scale.
"""

from __future__ import annotations

import random

# (field, type): ours first, then default counters the collector reads past
SERIES = (
    ("DCGM_FI_DEV_GPU_UTIL", "gauge"),
    ("DCGM_FI_DEV_FB_USED", "gauge"),
    ("DCGM_FI_DEV_FB_FREE", "gauge"),
    ("DCGM_FI_DEV_POWER_USAGE", "gauge"),
    ("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "counter"),
    ("DCGM_FI_DEV_GPU_TEMP", "gauge"),
    ("DCGM_FI_PROF_GR_ENGINE_ACTIVE", "gauge"),
    ("DCGM_FI_PROF_SM_ACTIVE", "gauge"),
    ("DCGM_FI_DEV_SM_CLOCK", "gauge"),
    ("DCGM_FI_DEV_MEM_CLOCK", "gauge"),
    ("DCGM_FI_DEV_MEMORY_TEMP", "gauge"),
    ("DCGM_FI_DEV_MEM_COPY_UTIL", "gauge"),
    ("DCGM_FI_DEV_ENC_UTIL", "gauge"),
    ("DCGM_FI_DEV_DEC_UTIL", "gauge"),
    ("DCGM_FI_DEV_XID_ERRORS", "gauge"),
    ("DCGM_FI_DEV_PCIE_REPLAY_COUNTER", "counter"),
    ("DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", "gauge"),
    ("DCGM_FI_PROF_DRAM_ACTIVE", "gauge"),
)


def exposition(hosts: int, gpus: int, *, seed: int = 1, ts_ms: int | None = None) -> str:
    """One page holding `hosts` x `gpus` GPUs (several hosts on one page make a big one)."""
    rng = random.Random(seed)
    labels = []
    for h in range(hosts):
        for g in range(gpus):
            uuid = f"GPU-{h:08x}-{g:04x}-4000-8000-{rng.getrandbits(48):012x}"
            pod = (
                f'container="vllm",namespace="serving",pod="llama-70b-{h}-{g}"'
                if g % 2
                else ('container="",namespace="",pod=""')
            )
            labels.append(
                f'gpu="{g}",UUID="{uuid}",pci_bus_id="00000000:{g:02x}:00.0",device="nvidia{g}",'
                f'modelName="NVIDIA H100 80GB HBM3",Hostname="gpu-node-{h:04d}",'
                f'DCGM_FI_DRIVER_VERSION="550.90.07",{pod}'
            )
    stamp = f" {ts_ms}" if ts_ms is not None else ""
    out = []
    for field, kind in SERIES:
        out.append(f"# HELP {field} {field.lower()}.")
        out.append(f"# TYPE {field} {kind}")
        for i, label in enumerate(labels):
            value = _value(field, rng, i)
            out.append(f"{field}{{{label}}} {value}{stamp}")
    return "\n".join(out) + "\n"


def _value(field: str, rng: random.Random, i: int) -> str:
    if field == "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION":
        return str(10**11 + i * 1_000_003)
    if "PROF" in field:
        return f"{rng.random():.6f}"
    if field == "DCGM_FI_DEV_POWER_USAGE":
        return f"{rng.uniform(60, 700):.3f}"
    return str(rng.randrange(0, 100))

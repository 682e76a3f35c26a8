"""What each demo GPU does minute by minute: utilization from the traces' own load.

Why from `traffic.minute_rates`: a GPU serving a deployment is as busy as that
deployment's requests make it, so the GPU pages and the latency pages tell one story (the
gcp outage empties its GPUs, the night empties on-prem ones). Per site kind the load maps
to utilization differently: on-prem capacity was bought for the daytime peak and sits
mostly idle at night (``util = peak × load²``), the cloud pool is sized tight and runs hot
(``load^0.8``), the edge boxes in between. One deployment on purpose looks busy while its
SMs idle (a text-embedding server that spin-polls: utilization near 100%, SM activity
under 10%), which is what the GPUs page must flag.

Every series is computed per minute of a day and subsampled for 5-minute files, so the
minute-level scrapes of the last day agree with the history where both exist, and the
energy counter integrates the same power either way.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from sample_data.gpu_inventory import Gpu
from sample_data.traffic_shape import MIN_PER_DAY

PEAK_UTIL = {"onprem": 72.0, "cloud": 94.0, "edge": 60.0}  # percent at the range's peak load
SHAPE = {"onprem": 2.0, "cloud": 0.8, "edge": 1.5}  # util = peak × load^shape
SPIN_POLLING = {("dc-frankfurt", "bge-large-en-v1.5")}  # busy-looking idle
# A reboot resets the energy counter: (host, days before the end of the range).
REBOOTS = {("fra-gpu-03", 20)}
STALE_JOB_MEMORY_MIB = 41_200.0
LLM_MEMORY_SHARE = 0.92  # vLLM reserves this share of GPU memory at start-up


@dataclass
class Day:
    """One GPU's minutes of one day: percent, ratio, MiB, W, mJ (counter), °C."""

    util: np.ndarray
    sm_active: np.ndarray
    gr_active: np.ndarray
    memory_used: np.ndarray
    power: np.ndarray
    energy_mj: np.ndarray
    temperature: np.ndarray


@dataclass
class GpuClock:
    """What a GPU carries from one day to the next: its energy counter since boot."""

    energy_mj: float
    rng: np.random.Generator = field(repr=False)


def clock(gpu: Gpu, seed: int) -> GpuClock:
    digest = hashlib.sha256(f"{seed}/{gpu.uuid}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
    return GpuClock(float(rng.uniform(1e9, 5e10)), rng)  # days of uptime before the range


def load_of(gpu: Gpu, rates: np.ndarray, peak: float) -> np.ndarray:
    """The replica's share of its deployment's load, 0..1 (minutes of one day)."""
    return np.clip(rates / peak, 0.0, 1.0) if peak > 0 else np.zeros_like(rates)


def day_series(
    gpu: Gpu,
    kind: str,
    rates: np.ndarray | None,
    peak: float,
    state: GpuClock,
    day: int,
    days: int,
) -> Day:
    """The minutes of `day` (0-based) of a GPU; `rates` the deployment's per-minute rates."""
    rng, n = state.rng, MIN_PER_DAY
    noise = rng.normal(0.0, 1.0, n)
    if gpu.deployment is not None and rates is not None:
        load = load_of(gpu, rates, peak)
        if (gpu.env, gpu.deployment.model) in SPIN_POLLING:
            util = 96.0 + 1.5 * noise
            sm = 0.03 + 0.07 * load
        else:
            util = PEAK_UTIL[kind] * load ** SHAPE[kind] + 1.0 + 2.0 * noise * np.sqrt(load)
            sm = util / 100.0 * (0.62 if gpu.deployment.out_tokens else 0.8)
        memory = _memory(gpu, load)
    elif gpu.stale_days and day < days - gpu.stale_days:  # the job still ran: training
        util, sm = 88.0 + 3.0 * noise, np.full(n, 0.71)
        memory = np.full(n, STALE_JOB_MEMORY_MIB + 2000.0)
    else:
        util = np.zeros(n)
        sm = np.zeros(n)
        memory = np.full(n, STALE_JOB_MEMORY_MIB if gpu.stale_days else 0.0)
    util = np.clip(util, 0.0, 100.0).round()
    sm = np.clip(sm, 0.0, 1.0).round(4)
    gr = np.clip(np.maximum(sm, util / 100.0 * 0.95), 0.0, 1.0).round(4)
    power = gpu.idle_w + (gpu.max_w - gpu.idle_w) * util / 100.0 * 0.88 + rng.normal(0, 1.5, n)
    power = np.clip(power, gpu.idle_w * 0.8, gpu.max_w).round(3)
    joules = np.cumsum(power * 60.0) * 1000.0  # mJ after each minute
    energy = state.energy_mj + joules
    if (gpu.host, days - day) in REBOOTS:  # rebooted at noon: the counter starts again
        half = n // 2
        energy[half:] = joules[half:] - joules[half - 1]
    energy = energy.round()
    state.energy_mj = float(energy[-1])
    temperature = np.round(31.0 + 0.42 * util + rng.normal(0, 0.8, n))
    return Day(util, sm, gr, np.round(memory), power, energy, temperature)


def _memory(gpu: Gpu, load: np.ndarray) -> np.ndarray:
    dep = gpu.deployment
    assert dep is not None
    if dep.out_tokens:  # an LLM server: memory reserved at start-up, whatever the load
        return np.full(load.shape, gpu.memory_mib * LLM_MEMORY_SHARE)
    base = {"fraud-classifier": 2900.0, "bge-large-en-v1.5": 3600.0, "yolov8-l": 5200.0}
    return base.get(dep.model, 4000.0) + 1800.0 * load

"""The one shape every GPU format is read into before it becomes `gpu_samples` rows.

A reading is one GPU (or MIG instance) at one time, with labels and fields named as
dcgm-exporter names them (`UUID`, `Hostname`, `GPU_I_ID`; `DCGM_FI_DEV_GPU_UTIL`, ...).
nvidia-smi columns, OpenTelemetry `hw.gpu.*` metrics and NVML calls are mapped onto these
names by their own collectors, each in one documented table, so the rules after that
(environment, pool, workload, MIG share, bounds) exist once, in `samples.py`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from ingest.contract import Rejected, Unit

# The fields a reading may carry, in the unit gpu_samples stores (DCGM's own units).
UTIL = "DCGM_FI_DEV_GPU_UTIL"  # percent 0-100
FB_USED = "DCGM_FI_DEV_FB_USED"  # MiB
FB_FREE = "DCGM_FI_DEV_FB_FREE"  # MiB
POWER = "DCGM_FI_DEV_POWER_USAGE"  # W
ENERGY = "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"  # mJ, a counter since boot
TEMP = "DCGM_FI_DEV_GPU_TEMP"  # degrees C
GR_ENGINE_ACTIVE = "DCGM_FI_PROF_GR_ENGINE_ACTIVE"  # ratio 0-1
SM_ACTIVE = "DCGM_FI_PROF_SM_ACTIVE"  # ratio 0-1
FIELDS = (UTIL, FB_USED, FB_FREE, POWER, ENERGY, TEMP, GR_ENGINE_ACTIVE, SM_ACTIVE)


@dataclass(frozen=True)
class Reading:
    """One GPU or MIG instance at one time, labels and fields in dcgm-exporter's names."""

    ts: datetime  # timezone-aware UTC
    labels: dict[str, str]  # gpu, UUID, modelName, Hostname, GPU_I_ID, pod, ... as read
    fields: dict[str, float] = field(default_factory=dict)  # FIELDS -> value, as read
    location: str = ""  # where in the input it came from, for quarantine ("line 12")


@dataclass
class Parsed:
    """What one GPU format made of one input: readings, rejects, and what it skipped."""

    readings: list[Reading] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)  # "non-GPU series" -> count


@dataclass(frozen=True)
class ReadOptions:
    """What the command line adds to an input: the fallbacks the data itself may lack."""

    environment: str = ""  # --environment / a source's `environment`
    timezone: str = "UTC"  # --timezone: how nvidia-smi's local timestamps are read


class GpuFormat(Protocol):
    """One GPU input format; the `gpu` collector sniffs each input and hands it to one."""

    @property
    def name(self) -> str:
        """The format's name: `gpu_samples.source` and the load report say it."""
        ...

    def sniff(self, head: bytes) -> bool:
        """True when an input starting with these bytes is in this format."""
        ...

    def read(self, data: bytes, unit: Unit, options: ReadOptions) -> Parsed:
        """The readings of one whole input (a file, a scrape, a response body)."""
        ...

"""DESIGN.md's GPU-hour definitions, in one place for the rollup, `metrics`, pages and ingest.

Each rule that SQL also applies is written once here and handed to the SQL as text
(`state_sql`, `busy_looking_idle_sql`), so the rollup's `state` column, a page's flag and a
Python check can never disagree. Nothing here touches the warehouse: ingest imports
`mig_share` to set `gpu_samples.gpu_share`, and a warehouse module imports nothing of
ingest's.
"""

from __future__ import annotations

import math
import re

BUSY = "busy"
IDLE_HELD = "idle-held"
IDLE_FREE = "idle-free"
# An hour whose samples carry no utilization at all (DCGM's blanks, a MIG instance without
# GR_ENGINE_ACTIVE): it was monitored, so it is not unmonitored, but busy or idle cannot be
# told; calling it idle would price real work as waste.
UNKNOWN = "unknown"
STATES = (BUSY, IDLE_HELD, IDLE_FREE, UNKNOWN)

# "util" near 100% with the SMs mostly stalled: DCGM_FI_DEV_GPU_UTIL counts any kernel
# running, however little of the chip it uses (a spin-waiting kernel reads 100%).
BUSY_LOOKING_UTIL_PERCENT = 80.0
BUSY_LOOKING_SM_RATIO = 0.20

# GPU_I_PROFILE: `1g.10gb`, `3g.40gb`, `1g.10gb+me`, `1c.3g.40gb` (a compute instance of a
# 3g instance: it has the GPU instance's share, since the slices are the GPU instance's).
_PROFILE = re.compile(r"^(?:\d+c\.)?(\d+)g\.\d+gb(?:\+[a-z0-9.]+)?$", re.IGNORECASE)
SLICES_DEFAULT = 7  # A100, H100, H200, B200, GB200: seven GPU slices
SLICES_BY_MODEL = (("A30", 4),)  # A30: four


def mig_share(profile: str, model: str | None = None) -> float | None:
    """The share of a GPU a MIG profile stands for (`1g.10gb` on an H100: 1/7), so an
    instance's GPU-hours add up to the GPU's; None when the profile is not one MIG spells
    or asks for more slices than the GPU has (the caller rejects the sample)."""
    match = _PROFILE.match(profile.strip())
    if match is None:
        return None
    total = next((n for name, n in SLICES_BY_MODEL if model and name in model), SLICES_DEFAULT)
    used = int(match[1])
    if not 1 <= used <= total:
        return None
    return used / total


def gpu_state(util_mean: float | None, workload: str | None, idle_threshold: float) -> str:
    """An hour's kind: busy at or above the idle threshold whoever holds the GPU; below it,
    idle-held when a workload holds it (its cost goes to that workload), else idle-free."""
    if util_mean is None or math.isnan(util_mean):
        return UNKNOWN
    if util_mean >= idle_threshold:
        return BUSY
    return IDLE_HELD if workload is not None else IDLE_FREE


def state_sql(util: str, workload: str, threshold: str) -> str:
    """`gpu_state` as a SQL expression over the given column / parameter names."""
    return (
        f"CASE WHEN {util} IS NULL OR isnan({util}) THEN '{UNKNOWN}' "
        f"WHEN {util} >= {threshold} THEN '{BUSY}' "
        f"WHEN {workload} IS NOT NULL THEN '{IDLE_HELD}' ELSE '{IDLE_FREE}' END"
    )


def is_busy_looking_idle(util_percent: float | None, sm_active: float | None) -> bool:
    """True when utilization looks busy but the SMs are mostly idle, so pages can flag a GPU
    whose "util" hides a stalled or spin-waiting workload. Unknown SM activity flags nothing."""
    if util_percent is None or sm_active is None:
        return False
    return util_percent >= BUSY_LOOKING_UTIL_PERCENT and sm_active < BUSY_LOOKING_SM_RATIO


def busy_looking_idle_sql(util: str, sm_active: str) -> str:
    """`is_busy_looking_idle` as a SQL boolean expression (false, not NULL, when unknown)."""
    return (
        f"coalesce({util} >= {BUSY_LOOKING_UTIL_PERCENT} "
        f"AND {sm_active} < {BUSY_LOOKING_SM_RATIO}, false)"
    )


def unmonitored_gpu_hours(pool_count: int, hours: float, monitored_gpu_hours: float) -> float:
    """A configured pool's GPU-hours with no samples: its capacity over the range less what
    was monitored, never below 0 (a pool whose `count` is understated, or hosts matched by
    its globs that are not its own, must not make capacity negative). A pool whose count is
    not stated (0) has no capacity to miss."""
    return max(pool_count * hours - monitored_gpu_hours, 0.0)


def energy_increase_mj(previous: float, current: float) -> float:
    """The energy counter's increase between two samples, as Prometheus's `increase()`
    reads a counter: after a drop (the driver reloaded, the GPU reset) the new value is
    what was used since the reset, counted from zero."""
    return current - previous if current >= previous else current


MJ_PER_WH = 3_600_000.0  # 1 Wh = 3600 J


def energy_increase_sql(previous: str, current: str) -> str:
    """`energy_increase_mj` as a SQL expression."""
    return f"CASE WHEN {current} >= {previous} THEN {current} - {previous} ELSE {current} END"

"""GPU readings sampled from NVML on this host (`nvidia-ml-py`), for hosts without DCGM.

One call of `sample()` reads every GPU the driver shows: utilization, memory used and
free, power, the energy counter (mJ since the driver loaded, DCGM's own unit), the GPU
temperature, UUID and name; on a GPU in MIG mode, each MIG instance as well, under the
parent's UUID with `GPU_I_ID` and `GPU_I_PROFILE` (from the instance's name, as
dcgm-exporter labels it). A field the GPU does not support is left out and counted, and a
GPU whose calls fail is rejected with the NVML error while the others are still read.

The NVML module is passed in (`nvml=`) or imported, so tests hand in a fake one; without
an NVIDIA driver `NvmlUnavailableError` says so in one sentence.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any, cast

from ingest.contract import Rejected
from ingest.errors import IngestError
from ingest.gpu.readings import ENERGY, FB_FREE, FB_USED, POWER, TEMP, UTIL, Parsed, Reading

SOURCE = "nvml"  # gpu_samples.source and ingest_log.source
# An EC2 Nitro instance (every GPU instance type is one) names itself in its board's asset
# tag, so its bill's ResourceId is known without asking the metadata service
EC2_ASSET_TAG = Path("/sys/devices/virtual/dmi/id/board_asset_tag")
_EC2_INSTANCE = re.compile(r"i-[0-9a-f]{8,17}")
MIB = 1024 * 1024
_PROFILE = re.compile(r"\b(\d+c\.)?\d+g\.\d+gb(\+[a-z0-9.]+)?\b", re.IGNORECASE)
# NVML return codes (nvml.h) that mean "this GPU has no such reading", not "it failed"
_ABSENT = ("NVML_ERROR_NOT_SUPPORTED", "NVML_ERROR_NOT_FOUND", "NVML_ERROR_NO_DATA")


class NvmlUnavailableError(IngestError):
    """NVML cannot be used here: no NVIDIA driver, or no nvidia-ml-py."""


def load_nvml() -> ModuleType:
    """The `pynvml` module of nvidia-ml-py, initialized; NvmlUnavailableError otherwise."""
    try:
        import pynvml
    except ImportError:
        raise NvmlUnavailableError(
            "NVML is not installed: pip install nvidia-ml-py (a dependency of hybridlens)"
        ) from None
    init(pynvml)
    return cast(ModuleType, pynvml)


def init(nvml: Any) -> None:
    """nvmlInit, with a missing library or driver turned into one sentence."""
    try:
        nvml.nvmlInit()
    except nvml.NVMLError as exc:
        raise NvmlUnavailableError(
            f"no NVIDIA driver here: NVML could not be initialized ({_text(nvml, exc)})"
        ) from None


def instance_id(path: Path = EC2_ASSET_TAG) -> str | None:
    """This host's EC2 instance id (`i-...`), the bill's name for it; None off EC2."""
    try:
        text = path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return None
    return text if _EC2_INSTANCE.fullmatch(text) else None


def sample(
    nvml: Any,
    *,
    host: str | None = None,
    host_id: str | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Parsed:
    """One reading per GPU and per MIG instance, all stamped with the same time; `host_id`
    is the cloud's id of this host, where it has one."""
    parsed = Parsed()
    taken = now()
    ts = taken.replace(microsecond=taken.microsecond // 1000 * 1000)  # DCGM's ms precision
    hostname = host or socket.gethostname()
    try:
        count = int(nvml.nvmlDeviceGetCount())
    except nvml.NVMLError as exc:
        parsed.rejected.append(Rejected("nvmlDeviceGetCount", _text(nvml, exc)))
        return parsed
    for index in range(count):
        where = f"GPU {index}"
        try:
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            labels = {
                "gpu": str(index),
                "UUID": _str(nvml.nvmlDeviceGetUUID(handle)),
                "modelName": _str(nvml.nvmlDeviceGetName(handle)),
                "Hostname": hostname,
            }
            if host_id:
                labels["host_id"] = host_id
        except nvml.NVMLError as exc:
            parsed.rejected.append(Rejected(where, f"cannot identify the GPU: {_text(nvml, exc)}"))
            continue
        try:
            fields = _device_fields(nvml, handle, parsed)
        except nvml.NVMLError as exc:  # a GPU fallen off the bus, say: the others still read
            parsed.rejected.append(Rejected(where, f"cannot read the GPU: {_text(nvml, exc)}"))
            continue
        parsed.readings.append(Reading(ts, labels, fields, where))
        parsed.readings.extend(_mig_readings(nvml, handle, labels, ts, where, parsed))
    return parsed


def _device_fields(nvml: Any, handle: Any, parsed: Parsed) -> dict[str, float]:
    reads: tuple[tuple[str, Callable[[], float]], ...] = (
        (UTIL, lambda: float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu)),
        (POWER, lambda: nvml.nvmlDeviceGetPowerUsage(handle) / 1000.0),  # mW -> W
        (ENERGY, lambda: float(nvml.nvmlDeviceGetTotalEnergyConsumption(handle))),  # mJ
        (TEMP, lambda: float(nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU))),
    )
    fields: dict[str, float] = {}
    for name, read in reads:
        value = _optional(nvml, read, name, parsed)
        if value is not None:
            fields[name] = value
    fields.update(_memory(nvml, handle, parsed))
    return fields


def _memory(nvml: Any, handle: Any, parsed: Parsed) -> dict[str, float]:
    info = _optional(nvml, lambda: nvml.nvmlDeviceGetMemoryInfo(handle), "memory", parsed)
    if info is None:
        return {}
    return {FB_USED: info.used / MIB, FB_FREE: info.free / MIB}


def _mig_readings(
    nvml: Any, handle: Any, parent: dict[str, str], ts: datetime, where: str, parsed: Parsed
) -> list[Reading]:
    """The MIG instances of a GPU in MIG mode (none when MIG is off or unsupported)."""
    try:
        current, _pending = nvml.nvmlDeviceGetMigMode(handle)
    except nvml.NVMLError as exc:
        if not _absent(nvml, exc):
            parsed.rejected.append(Rejected(where, f"cannot read MIG mode: {_text(nvml, exc)}"))
        return []
    if current != getattr(nvml, "NVML_DEVICE_MIG_ENABLE", 1):
        return []
    out: list[Reading] = []
    try:
        slots = int(nvml.nvmlDeviceGetMaxMigDeviceCount(handle))
    except nvml.NVMLError as exc:
        parsed.rejected.append(Rejected(where, f"cannot count MIG slots: {_text(nvml, exc)}"))
        return []
    for slot in range(slots):
        try:
            mig = nvml.nvmlDeviceGetMigDeviceHandleByIndex(handle, slot)
        except nvml.NVMLError as exc:
            if not _absent(nvml, exc):
                parsed.rejected.append(Rejected(f"{where} MIG slot {slot}", _text(nvml, exc)))
            continue  # an empty slot
        at = f"{where} MIG slot {slot}"
        try:
            instance = str(int(nvml.nvmlDeviceGetGpuInstanceId(mig)))
            name = _str(nvml.nvmlDeviceGetName(mig))
        except nvml.NVMLError as exc:
            parsed.rejected.append(Rejected(at, f"cannot identify the instance: "
                                                f"{_text(nvml, exc)}"))  # fmt: skip
            continue
        profile = _PROFILE.search(name)
        if profile is None:
            parsed.rejected.append(Rejected(at, f"no MIG profile in the instance name {name!r}"))
            continue
        labels = {**parent, "GPU_I_ID": instance, "GPU_I_PROFILE": profile[0].lower()}
        # NVML has no utilization per MIG instance (DCGM's GR_ENGINE_ACTIVE is profiling
        # data NVML does not offer): memory only, so the instance's share is still known
        try:
            out.append(Reading(ts, labels, _memory(nvml, mig, parsed), at))
        except nvml.NVMLError as exc:
            parsed.rejected.append(Rejected(at, f"cannot read the instance: {_text(nvml, exc)}"))
    return out


def _optional(nvml: Any, read: Callable[[], Any], name: str, parsed: Parsed) -> Any:
    """The value, or None (counted) when the GPU does not offer it."""
    try:
        return read()
    except nvml.NVMLError as exc:
        if _absent(nvml, exc):
            parsed.skipped[f"NVML fields not supported ({name})"] += 1
            return None
        raise


def _absent(nvml: Any, exc: BaseException) -> bool:
    codes = {getattr(nvml, name, None) for name in _ABSENT} - {None}
    return getattr(exc, "value", None) in codes


def _text(nvml: Any, exc: BaseException) -> str:
    return str(exc) or f"NVML error {getattr(exc, 'value', '?')}"


def _str(value: Any) -> str:
    """nvidia-ml-py returns str since 11.5, bytes before."""
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)

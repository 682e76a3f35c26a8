"""NVML sampling and `hybridlens collect gpu`, with a fake `pynvml` in sys.modules."""

from __future__ import annotations

import argparse
import sys
import types
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hybridlens import collect_gpu, gpu_args
from ingest.gpu.nvml import instance_id, sample
from ingest.gpu.readings import ENERGY, FB_FREE, FB_USED, POWER, TEMP, UTIL, Parsed, ReadOptions

MIB = 1024 * 1024
NOW = datetime(2026, 10, 26, 8, 0, 0, 123456, tzinfo=UTC)


@dataclass
class _Device:
    uuid: str
    name: str | bytes
    util: int = 0
    used: int = 0
    free: int = 0
    power_mw: int | None = 0  # None: not supported
    energy_mj: int = 0
    temp: int = 0
    mig: list[_Device | None] | None = None  # slots; None in a slot: empty
    instance_id: int = 0
    broken: int | None = None  # an NVML error code every reading call raises
    calls: list[str] = field(default_factory=list)


class _NVMLError(Exception):
    def __init__(self, value: int) -> None:
        super().__init__(f"NVML error {value}")
        self.value = value


def fake_nvml(devices: list[_Device], *, init_error: int | None = None) -> Any:
    """A module with the nvidia-ml-py functions `ingest.gpu.nvml` calls, over `devices`."""
    m: Any = types.ModuleType("pynvml")
    m.NVMLError = _NVMLError
    m.NVML_ERROR_NOT_SUPPORTED, m.NVML_ERROR_NOT_FOUND, m.NVML_ERROR_NO_DATA = 3, 6, 21
    m.NVML_ERROR_DRIVER_NOT_LOADED, m.NVML_ERROR_GPU_IS_LOST = 9, 15
    m.NVML_DEVICE_MIG_ENABLE, m.NVML_TEMPERATURE_GPU = 1, 0
    m.shutdowns = 0

    def init() -> None:
        if init_error is not None:
            raise _NVMLError(init_error)

    def shutdown() -> None:
        m.shutdowns += 1

    def reading(fn: Any) -> Any:
        def call(d: _Device, *args: Any) -> Any:
            d.calls.append(fn.__name__)
            if d.broken is not None:
                raise _NVMLError(d.broken)
            return fn(d, *args)

        return call

    @reading
    def utilization(d: _Device) -> Any:
        return types.SimpleNamespace(gpu=d.util, memory=0)

    @reading
    def power(d: _Device) -> int:
        if d.power_mw is None:
            raise _NVMLError(3)
        return d.power_mw

    def mig_handle(d: _Device, slot: int) -> _Device:
        inst = (d.mig or [])[slot]
        if inst is None:
            raise _NVMLError(6)
        return inst

    m.nvmlInit, m.nvmlShutdown = init, shutdown
    m.nvmlDeviceGetCount = lambda: len(devices)
    m.nvmlDeviceGetHandleByIndex = lambda i: devices[i]
    m.nvmlDeviceGetUUID = lambda d: d.uuid
    m.nvmlDeviceGetName = lambda d: d.name
    m.nvmlDeviceGetUtilizationRates = utilization
    m.nvmlDeviceGetPowerUsage = power
    m.nvmlDeviceGetTotalEnergyConsumption = reading(lambda d: d.energy_mj)
    m.nvmlDeviceGetTemperature = reading(lambda d, sensor: d.temp)
    m.nvmlDeviceGetMemoryInfo = lambda d: types.SimpleNamespace(
        total=d.used + d.free, used=d.used, free=d.free
    )
    m.nvmlDeviceGetMigMode = lambda d: (1, 1) if d.mig is not None else (0, 0)
    m.nvmlDeviceGetMaxMigDeviceCount = lambda d: len(d.mig or [])
    m.nvmlDeviceGetMigDeviceHandleByIndex = mig_handle
    m.nvmlDeviceGetGpuInstanceId = lambda d: d.instance_id
    return m


def _fleet() -> list[_Device]:
    mig = [
        _Device("MIG-a", "NVIDIA H100 80GB HBM3 MIG 3g.40gb", used=10 * MIB, free=30 * MIB,
                instance_id=1),
        None,  # an empty slot
        _Device("MIG-b", "NVIDIA H100 80GB HBM3 MIG 1g.10gb", used=2 * MIB, free=8 * MIB,
                instance_id=9),
    ]  # fmt: skip
    return [
        _Device("GPU-aaaa", "NVIDIA H100 80GB HBM3", util=63, used=40 * 1024 * MIB,
                free=40 * 1024 * MIB, power_mw=412_345, energy_mj=987_654_321, temp=58,
                mig=mig),
        _Device("GPU-bbbb", b"Tesla T4", util=0, used=0, free=15 * 1024 * MIB, power_mw=None,
                energy_mj=5, temp=31),
    ]  # fmt: skip


def test_every_gpu_and_mig_instance_is_one_reading() -> None:
    parsed = sample(fake_nvml(_fleet()), host="edge-box-7", now=lambda: NOW)
    assert not parsed.rejected
    h100, mig_a, mig_b, t4 = parsed.readings
    assert {r.ts for r in parsed.readings} == {NOW.replace(microsecond=123000)}
    assert h100.labels == {"gpu": "0", "UUID": "GPU-aaaa", "modelName": "NVIDIA H100 80GB HBM3",
                           "Hostname": "edge-box-7"}  # fmt: skip
    assert h100.fields == {
        UTIL: 63.0,
        POWER: 412.345,  # mW -> W
        ENERGY: 987_654_321.0,  # mJ, as DCGM counts it
        TEMP: 58.0,
        FB_USED: 40 * 1024.0,  # bytes -> MiB
        FB_FREE: 40 * 1024.0,
    }
    assert mig_a.labels["UUID"] == "GPU-aaaa"  # the parent's, as dcgm-exporter labels it
    assert (mig_a.labels["GPU_I_ID"], mig_a.labels["GPU_I_PROFILE"]) == ("1", "3g.40gb")
    assert (mig_b.labels["GPU_I_ID"], mig_b.labels["GPU_I_PROFILE"]) == ("9", "1g.10gb")
    assert mig_a.fields == {FB_USED: 10.0, FB_FREE: 30.0}
    assert t4.labels["modelName"] == "Tesla T4"  # bytes from an old nvidia-ml-py
    assert POWER not in t4.fields
    assert parsed.skipped == {"NVML fields not supported (DCGM_FI_DEV_POWER_USAGE)": 1}


def test_the_ec2_instance_id_comes_from_the_boards_asset_tag(tmp_path: Path) -> None:
    tag = tmp_path / "board_asset_tag"
    assert instance_id(tag) is None  # not on EC2: no such file
    for text, found in [
        ("i-0abc1234567890def\n", "i-0abc1234567890def"),
        ("i-12345678", "i-12345678"),  # the older 8-digit ids
        ("Not Specified", None),
        ("i-0abc123; rm -rf /", None),
        ("I-0ABC1234567890DEF", None),
        ("", None),
    ]:
        tag.write_text(text, encoding="ascii")
        assert instance_id(tag) == found, text
    tag.write_bytes(b"\xff\xfe")
    assert instance_id(tag) is None


def test_the_host_id_labels_every_reading_when_known() -> None:
    parsed = sample(fake_nvml(_fleet()), host="ip-10-0-1-23", host_id="i-0abc", now=lambda: NOW)
    assert {r.labels.get("host_id") for r in parsed.readings} == {"i-0abc"}
    parsed = sample(fake_nvml(_fleet()), host="edge-box-7", now=lambda: NOW)
    assert all("host_id" not in r.labels for r in parsed.readings)


def test_a_lost_gpu_is_rejected_and_the_others_still_read() -> None:
    fleet = _fleet()
    fleet[0].broken = 15  # NVML_ERROR_GPU_IS_LOST
    parsed = sample(fake_nvml(fleet), host="h", now=lambda: NOW)
    assert [r.labels["UUID"] for r in parsed.readings] == ["GPU-bbbb"]
    [rejected] = parsed.rejected
    assert rejected.location == "GPU 0" and "NVML error 15" in rejected.error


def test_a_mig_instance_without_a_profile_in_its_name_is_rejected() -> None:
    fleet = _fleet()
    assert fleet[0].mig is not None and fleet[0].mig[0] is not None
    fleet[0].mig[0].name = "NVIDIA H100 MIG ???"
    parsed = sample(fake_nvml(fleet), host="h", now=lambda: NOW)
    assert len(parsed.readings) == 3
    assert parsed.rejected[0].location == "GPU 0 MIG slot 0"
    assert "no MIG profile" in parsed.rejected[0].error


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    gpu_args.add_collect_arguments(parser)
    return parser.parse_args(list(argv))


class _Loader:
    def __init__(self, status: int = 0) -> None:
        self.calls: list[tuple[str, str, Parsed, ReadOptions, str | None]] = []
        self.status = status

    def __call__(
        self, source: str, uri: str, parsed: Parsed, options: ReadOptions, error: str | None
    ) -> int:
        self.calls.append((source, uri, parsed, options, error))
        return self.status


def test_collect_samples_on_a_fixed_schedule_and_loads_each_sample() -> None:
    nvml = fake_nvml(_fleet())
    t = [100.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(round(s, 6))
        t[0] += s + 0.25  # each sample takes a quarter of a second

    load = _Loader()
    args = _args("--interval", "10s", "--count", "3", "--environment", "edge-berlin")
    assert collect_gpu.run(args, load=load, nvml=nvml, sleep=sleep, clock=lambda: t[0]) == 0
    assert len(load.calls) == 3
    source, uri, parsed, options, error = load.calls[0]
    assert (source, error, options.environment) == ("nvml", None, "edge-berlin")
    args = _args("--count", "1", "--host-id", "i-0abc1234567890def")
    collect_gpu.run(args, load=load, nvml=fake_nvml(_fleet()), sleep=sleep, clock=lambda: t[0])
    assert {r.labels["host_id"] for r in load.calls[-1][2].readings} == {"i-0abc1234567890def"}
    assert uri.startswith("nvml://") and len(parsed.readings) == 4
    assert slept == [10.0, 9.75]  # the schedule does not drift by the time a sample takes
    assert nvml.shutdowns == 1


def test_collect_passes_on_the_loaders_status() -> None:
    load = _Loader(status=1)
    args = _args("--interval", "1s", "--count", "1")
    assert collect_gpu.run(args, load=load, nvml=fake_nvml(_fleet()), sleep=lambda s: None) == 1


def test_without_a_driver_collect_says_so_in_one_line_and_exits_1(
    capsys: pytest.CaptureFixture[str],
) -> None:
    load = _Loader()
    nvml = fake_nvml([], init_error=9)  # NVML_ERROR_DRIVER_NOT_LOADED
    assert collect_gpu.run(_args("--count", "1"), load=load, nvml=nvml) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "hybridlens: no NVIDIA driver here: NVML could not be initialized (NVML error 9)"
    ]
    assert load.calls == []


def test_the_fake_module_stands_in_for_pynvml_when_imported(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml([], init_error=9))
    assert collect_gpu.run(_args("--count", "1"), load=_Loader()) == 1
    assert "no NVIDIA driver here" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(_fleet()))
    load = _Loader()
    assert collect_gpu.run(_args("--count", "1"), load=load, sleep=lambda s: None) == 0
    assert len(load.calls[0][2].readings) == 4


def test_the_real_nvidia_ml_py_on_this_machine(capsys: pytest.CaptureFixture[str]) -> None:
    """The installed nvidia-ml-py, unfaked: one line and 1 without a driver, else samples."""
    load = _Loader()
    status = collect_gpu.run(_args("--count", "1"), load=load, sleep=lambda s: None)
    err = capsys.readouterr().err.strip().splitlines()
    if load.calls:  # a host with an NVIDIA driver: it sampled its GPUs
        assert status == 0 and load.calls[0][2].readings
    else:
        assert status == 1 and len(err) == 1
        assert err[0].startswith("hybridlens: no NVIDIA driver here: NVML could not be")


def test_count_and_interval_are_checked() -> None:
    for bad in (["--count", "0"], ["--count", "x"], ["--interval", "10"], ["--interval", "0s"]):
        with pytest.raises(SystemExit):
            _args(*bad)
    assert _args().interval == timedelta(seconds=10) and _args().count is None

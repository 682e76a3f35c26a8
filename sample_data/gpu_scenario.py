"""The demo's GPU telemetry, a day at a time, beside the traces of the same day.

Which site writes which format (what each would really have): the on-prem cluster ships
OpenTelemetry metrics and, for the last day, minute-level dcgm-exporter scrapes; the
clouds ship OpenTelemetry metrics; the edge site has one box with only an nvidia-smi log
and one with the OpenTelemetry collector. History is at 5-minute resolution, so 90 days
of the fleet's 68 GPUs is about 1.8M samples.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from sample_data.gpu_files import (
    NVIDIA_SMI_HEADER,
    dcgm_scrapes,
    nvidia_smi_rows,
    otlp_lines,
    write,
    write_zstd,
)
from sample_data.gpu_inventory import Gpu, inventory
from sample_data.gpu_load import Day, GpuClock, clock, day_series
from sample_data.plan import Plan
from sample_data.traffic import expected_rates
from sample_data.traffic_shape import DAY_NS, MIN_PER_DAY, NS_PER_MIN, NS_PER_S

DCGM_HOSTS = {"fra-gpu-07"}  # their last day comes as minute-level dcgm-exporter scrapes
NVIDIA_SMI_HOSTS = {"muc-edge-01"}  # no exporter: an nvidia-smi log


@dataclass
class GpuWriter:
    """Writes each day's GPU files; keeps the energy counters from day to day."""

    outdir: Path
    plan: Plan
    gpus: list[Gpu] = field(default_factory=list)
    clocks: dict[str, GpuClock] = field(default_factory=dict)
    peaks: dict[tuple[str, str], float] = field(default_factory=dict)
    samples: int = 0
    files: int = 0
    nbytes: int = 0

    def __post_init__(self) -> None:
        self.gpus = inventory(self.plan.fleet)
        self.clocks = {g.uuid: clock(g, self.plan.seed) for g in self.gpus}
        minutes = self.plan.days * MIN_PER_DAY
        for dp in self.plan.deployments:
            rates = expected_rates(dp, self.plan, self.plan.start_ns, minutes)
            self.peaks[(dp.dep.env, dp.dep.model)] = float(np.percentile(rates, 99.5))

    def day(self, day: int) -> None:
        plan = self.plan
        day_ns = plan.start_ns + day * DAY_NS
        date = datetime.fromtimestamp(day_ns / NS_PER_S, UTC).strftime("%Y-%m-%d")
        rates = {
            (dp.dep.env, dp.dep.model): expected_rates(dp, plan, day_ns, MIN_PER_DAY)
            for dp in plan.deployments
        }
        by_host: dict[tuple[str, str], list[tuple[Gpu, Day]]] = defaultdict(list)
        for gpu in self.gpus:
            kind = plan.fleet.environment(gpu.env).kind
            key = (gpu.env, gpu.deployment.model) if gpu.deployment else None
            series = day_series(
                gpu,
                kind,
                rates.get(key) if key else None,
                self.peaks.get(key, 0.0) if key else 0.0,
                self.clocks[gpu.uuid],
                day,
                plan.days,
            )
            by_host[(gpu.env, gpu.host)].append((gpu, series))
        last = day == plan.days - 1
        scrapes: list[tuple[Gpu, Day]] = []
        for (env, host), pairs in by_host.items():
            gpus, days = [p[0] for p in pairs], [p[1] for p in pairs]
            if host in DCGM_HOSTS and last:
                scrapes += pairs
            elif host in NVIDIA_SMI_HOSTS:
                path = self.outdir / "gpu" / env / "nvidia-smi" / f"{host}.csv"
                text = nvidia_smi_rows(gpus, days, day_ns)
                self._append(path, text, header=NVIDIA_SMI_HEADER)
                self.samples += len(gpus) * MIN_PER_DAY // 5
            else:
                path = self.outdir / "gpu" / env / f"{date}.{host}.jsonl.zst"
                text = otlp_lines(env, host, gpus, days, day_ns)
                self._count(write_zstd(path, text))
                self.samples += len(gpus) * MIN_PER_DAY // 5
        if scrapes:
            gpus, days = [p[0] for p in scrapes], [p[1] for p in scrapes]
            stamps = [
                datetime.fromtimestamp((day_ns + m * NS_PER_MIN) / NS_PER_S, UTC)
                for m in range(MIN_PER_DAY)
            ]
            folder = self.outdir / "gpu" / scrapes[0][0].env / "dcgm"
            for stamp, text in zip(stamps, dcgm_scrapes(gpus, days, stamps), strict=True):
                self._count(write(folder / (stamp.strftime("%Y-%m-%dT%H%MZ") + ".prom"), text))
            self.samples += len(gpus) * MIN_PER_DAY

    def _count(self, size: int) -> None:
        self.files += 1
        self.nbytes += size

    def _append(self, path: Path, text: str, *, header: str) -> None:
        new = not path.exists()
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as f:
            if new:
                f.write(header)
            f.write(text)
        if new:
            self.files += 1
        self.nbytes += len(text.encode()) + (len(header) if new else 0)

    def summary(self) -> dict[str, int]:
        return {"gpus": len(self.gpus), "samples": self.samples, "files": self.files,
                "bytes": self.nbytes}  # fmt: skip

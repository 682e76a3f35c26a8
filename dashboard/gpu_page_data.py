"""What the GPUs page draws, read in one go over one connection (see `page_data`)."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from dashboard.page_data import Filters
from warehouse import gpu_reads
from warehouse.config import Config
from warehouse.session import Source, reading


@dataclass(frozen=True)
class GpuPage:
    utilization: pl.DataFrame  # per GPU and period (the filters' grain)
    fleet: pl.DataFrame  # per GPU over the range
    daily: pl.DataFrame  # per environment and day
    costs: pl.DataFrame  # the cost model's rows per environment, day and currency
    billed: pl.DataFrame  # clouds: the allocated bill per environment and day with samples
    idle_threshold: float  # percent


def gpu_page(warehouse: Source, config: Config, f: Filters) -> GpuPage:
    envs = list(f.environments)
    with reading(warehouse) as s:
        return GpuPage(
            utilization=gpu_reads.utilization(s, f.start, f.end, envs, grain=f.grain),
            fleet=gpu_reads.fleet(s, f.start, f.end, envs),
            daily=gpu_reads.daily(s, f.start, f.end, envs),
            costs=gpu_reads.modelled_costs(s, f.start, f.end, envs),
            billed=gpu_reads.billed_costs(s, f.start, f.end, envs),
            idle_threshold=config.gpu.idle_threshold_percent,
        )

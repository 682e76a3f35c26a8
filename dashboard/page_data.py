"""What each page draws, read in one go: one connection per page run, each figure once.

A page used to make a dozen reads, each opening its own connection and some computing the
same `metrics` again; here a page's figures are read as one bundle inside one
`warehouse.session`, then the page only formats and draws them. Plain Polars and no
Streamlit, so the weekly report can take the same bundles.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal

import polars as pl

from warehouse import definitions, reads, slo
from warehouse.config import Config
from warehouse.metrics import FIGURES, metrics
from warehouse.session import Session, Source, reading

Grain = Literal["hour", "day"]
HOURLY_UP_TO_DAYS = 14  # ranges up to this many days are drawn per hour, longer per day
ACCURACY = frozenset({"accuracy"})
VERSIONS = frozenset({"latency", "accuracy"})
MAX_BAD_MINUTES = 500  # down minutes listed with their traces, most failed requests first


@dataclass(frozen=True)
class Filters:
    """The sidebar's selection: whole UTC days [start, end) and optional name filters.

    Empty `environments` / `models` mean "all", matching `metrics`'s convention.
    """

    start: datetime
    end: datetime
    environments: tuple[str, ...] = ()
    models: tuple[str, ...] = ()

    @property
    def days(self) -> int:
        return max(1, round((self.end - self.start) / timedelta(days=1)))

    @property
    def grain(self) -> Grain:
        return "hour" if self.days <= HOURLY_UP_TO_DAYS else "day"

    @property
    def last_day(self) -> date:
        return (self.end - timedelta(days=1)).date()

    def previous(self) -> Filters:
        """The same number of days just before this range, for KPI deltas."""
        span = self.end - self.start
        return Filters(self.start - span, self.start, self.environments, self.models)


def _row(frame: pl.DataFrame) -> dict[str, Any]:
    return frame.row(0, named=True) if not frame.is_empty() else {}


# The request pages' figures: cost is the Spend page's (and a currency without a rate is
# its one sentence, never an error on a latency page); GPU time is the GPUs page's, which
# reads it in its own bundle, so these pages skip its two queries
REQUEST_FIGURES = FIGURES - {"cost", "gpu"}


def _metrics(
    s: Session,
    cfg: Config,
    f: Filters,
    by: tuple[str, ...],
    figures: frozenset[str] = REQUEST_FIGURES,
) -> pl.DataFrame:
    """`metrics` for the request pages: an environment that only reported GPU samples (a row
    with no requests, which `metrics` keeps so idle capacity stays visible) is the GPUs
    page's, not an SLO row."""
    found = metrics(
        s,
        cfg,
        start=f.start,
        end=f.end,
        by=by,
        environments=list(f.environments) or None,
        models=list(f.models) or None,
        figures=figures,
    )
    return found.filter(pl.col("requests") > 0) if by else found


@dataclass(frozen=True)
class Overview:
    """The fleet overview: KPIs now and the span before, verdict tables, budget, uptime."""

    report: pl.DataFrame  # environment x model with verdicts, worst first
    fleet: dict[str, Any]  # `metrics(by=())` over the filters
    previous: dict[str, Any]  # the same over the span just before; {} when unlike
    environments: pl.DataFrame  # per environment with verdicts, worst first
    budget: pl.DataFrame
    uptime: pl.DataFrame  # per environment and day, environments serving the selection
    traffic: pl.DataFrame
    # environments serving now whose data starts after the span before does: no change shown
    unlike: tuple[str, ...] = ()


def overview(warehouse: Source, cfg: Config, targets: pl.DataFrame, f: Filters) -> Overview:
    floors = slo.floors(cfg)
    with reading(warehouse) as s:
        by_model = _metrics(s, cfg, f, ("environment", "model"))
        report = slo.worst_first(slo.evaluate(by_model, targets, floors), ["environment", "model"])
        # Uptime is per environment (all models): with a model filter, judge the environments
        # serving it, as `metrics` does.
        serving = tuple(sorted(set(report["environment"].to_list()))) if f.models else ()
        judged = serving or f.environments
        by_env = _metrics(s, cfg, f, ("environment",))
        before = f.previous()
        serving_now = set(by_env["environment"].to_list())
        first_seen = reads.dimensions(s).group_by("environment").agg(pl.col("first_hour").min())
        unlike = definitions.started_after(
            (r for r in first_seen.iter_rows() if r[0] in serving_now), before.start
        )
        return Overview(
            report=report,
            fleet=_row(_metrics(s, cfg, f, ())),
            previous={} if unlike else _row(_metrics(s, cfg, before, ())),
            unlike=unlike,
            environments=slo.worst_first(slo.evaluate(by_env, targets, floors), ["environment"]),
            budget=reads.error_budget(s, cfg, environments=f.environments),
            uptime=reads.uptime_daily(s, cfg, start=f.start, end=f.end, environments=judged),
            traffic=reads.traffic_series(
                s,
                start=f.start,
                end=f.end,
                grain=f.grain,
                environments=f.environments,
                models=f.models,
            ),
        )


@dataclass(frozen=True)
class Environment:
    """One environment in depth, for the filters `ef` (that environment, maybe one model)."""

    kpis: dict[str, Any]  # `metrics` by environment: one row, or {} without requests
    budget: dict[str, Any]  # its rolling 30-day error budget row, or {}
    down: pl.DataFrame  # every down minute
    changes: pl.DataFrame  # first and last request of each version, over all data
    latency: pl.DataFrame
    traffic: pl.DataFrame
    uptime: pl.DataFrame
    accuracy: pl.DataFrame  # environment x model over every environment, for comparison
    versions: pl.DataFrame
    bad_minutes: pl.DataFrame  # the down minutes listed, most failed requests first
    traces: pl.DataFrame  # failed requests behind `bad_minutes`


def environment(
    warehouse: Source, cfg: Config, ef: Filters, everywhere: Filters, grain: Grain
) -> Environment:
    start, end, envs = ef.start, ef.end, ef.environments
    with reading(warehouse) as s:
        kpis = _row(_metrics(s, cfg, ef, ("environment",)))
        down = reads.down_minutes(s, cfg, start=start, end=end, environments=envs)
        shown = down.sort(["errors", "minute"], descending=True).head(MAX_BAD_MINUTES)
        return Environment(
            kpis=kpis,
            budget=_row(reads.error_budget(s, cfg, environments=ef.environments)),
            down=down,
            changes=reads.version_changes(s, environments=ef.environments, models=ef.models),
            latency=reads.latency_series(
                s, start=start, end=end, grain=grain, environments=envs, models=ef.models
            ),
            traffic=reads.traffic_series(
                s, start=start, end=end, grain=grain, environments=envs, models=ef.models
            ),
            uptime=reads.uptime_daily(s, cfg, start=start, end=end, environments=envs),
            # the accuracy and versions panels draw no uptime or GPU time
            accuracy=_metrics(s, cfg, everywhere, ("environment", "model"), ACCURACY),
            versions=_metrics(s, cfg, ef, ("environment", "model", "version"), VERSIONS),
            bad_minutes=shown,
            traces=reads.minute_traces(s, shown),
        )

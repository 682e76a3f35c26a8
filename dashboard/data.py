"""The dashboard's cached data layer: the only module of `dashboard/` that reads the warehouse.

Every read is cached with `st.cache_data` under a key made of the newest load id and the
stored config's time, so a page stays fast while a new load (or a new config) shows up
within `SNAPSHOT_TTL_S` seconds without anyone clearing a cache. Pages get Polars frames
and the current `Filters`; they never see SQL, DuckDB or the config resolver.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import polars as pl
import streamlit as st

from dashboard import slo
from warehouse import reads
from warehouse.config import Config, find_file, resolve
from warehouse.db import Warehouse, default_path
from warehouse.errors import WarehouseError, WarehouseMissingError
from warehouse.metrics import metrics

SNAPSHOT_TTL_S = 5  # how long before a new load or config is noticed
FIGURE_TTL_S = 900  # figures are keyed by load id, so this only bounds memory
MAX_ENTRIES = 64
FILTERS_KEY = "hybridlens_filters"
HOURLY_UP_TO_DAYS = 14  # ranges up to this many days are drawn per hour, longer per day
LOAD_HINT = (
    "Load the demo scenario with `hybridlens demo`, or your own OTLP traces with "
    "`hybridlens ingest traces PATH`, then reload this page."
)

State = Literal["ok", "empty", "missing", "error"]
Grain = Literal["hour", "day"]


@dataclass(frozen=True)
class Snapshot:
    """What the warehouse holds right now, and the cache key derived from it."""

    path: str
    state: State
    message: str = ""
    detail: str = ""  # the underlying error, shown verbatim in a code block
    first: datetime | None = None
    last: datetime | None = None
    load_id: int | None = None
    requests: int = 0
    key: str = ""

    @property
    def first_day(self) -> date | None:
        return self.first.date() if self.first else None

    @property
    def last_day(self) -> date | None:
        return self.last.date() if self.last else None


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


# -- the warehouse and its state -------------------------------------------------------------
def warehouse_path() -> Path:
    """HYBRIDLENS_WAREHOUSE (set by `hybridlens dashboard`), else ./hybridlens.duckdb."""
    return default_path().absolute()


def snapshot() -> Snapshot:
    """The warehouse's state; a missing or empty warehouse is a state, not an error."""
    return _snapshot(str(warehouse_path()), _config_file_stamp())


def _config_file_stamp() -> str:
    """The config file that applies and its mtime, so editing it changes the cache key."""
    path = find_file(None)
    if path is None:
        return ""
    try:
        return f"{path.absolute()}@{path.stat().st_mtime_ns}"
    except OSError:
        return str(path)


@st.cache_data(ttl=SNAPSHOT_TTL_S, show_spinner=False)
def _snapshot(path: str, config_stamp: str) -> Snapshot:
    warehouse = Warehouse(path)
    if not warehouse.exists():
        return Snapshot(
            path, "missing", f"There is no warehouse at `{path}` yet. {LOAD_HINT}", key="missing"
        )
    try:
        row = reads.bounds(warehouse).row(0, named=True)
    except WarehouseMissingError:
        return Snapshot(
            path, "missing", f"There is no warehouse at `{path}` yet. {LOAD_HINT}", key="missing"
        )
    except WarehouseError as exc:
        return Snapshot(
            path,
            "error",
            f"The warehouse at `{path}` cannot be read right now; the reason is below. "
            "Reload in a moment, or check the file with `hybridlens metrics`.",
            detail=str(exc),
        )
    requests = int(row["request_spans"] or 0)
    if not requests or row["first_request"] is None:
        return Snapshot(
            path, "empty", f"The warehouse at `{path}` has no requests yet. {LOAD_HINT}"
        )
    key = f"{row['load_id']}|{row['config_stored_at']}|{config_stamp}"
    return Snapshot(
        path,
        "ok",
        first=_utc(row["first_request"]),
        last=_utc(row["last_request"]),
        load_id=row["load_id"],
        requests=requests,
        key=key,
    )


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def require_data() -> Snapshot | None:
    """The snapshot when there is data; otherwise say why on the page and return None."""
    snap = snapshot()
    if snap.state == "ok":
        return snap
    if snap.state == "error":
        st.error(snap.message)
        st.code(snap.detail, language=None)
    else:
        st.info(snap.message)
    return None


# -- config -------------------------------------------------------------------------------------
def config() -> Config:
    """The config that applies: HYBRIDLENS_CONFIG, ./hybridlens.toml, the stored one, defaults."""
    snap = snapshot()
    return _config(snap.path, snap.key)


@st.cache_data(ttl=FIGURE_TTL_S, max_entries=MAX_ENTRIES, show_spinner=False)
def _config(path: str, key: str) -> Config:
    warehouse = Warehouse(path) if Path(path).exists() else None
    return resolve(os.environ.get("HYBRIDLENS_CONFIG"), warehouse)[0]


def trace_link() -> str:
    """The trace URL template with `{trace_id}`, or "" when none is configured."""
    template = config().dashboard.trace_link
    return template if "{trace_id}" in template else ""


def default_days() -> int:
    return max(1, int(config().dashboard.default_days))


def slo_targets() -> pl.DataFrame:
    """Per environment (configured or only seen in data): kind, place and SLO targets."""
    cfg = config()
    rows = [
        {
            "environment": e.name,
            "configured": True,
            "kind": e.kind,
            "provider": e.provider,
            "region": e.region,
            "residency": e.residency,
            "latency_p95_slo_ms": e.slo.latency_p95_ms,
            "availability_slo": e.slo.availability,
        }
        for e in cfg.environments
    ]
    known = {e.name for e in cfg.environments}
    rows += [
        {
            "environment": name,
            "configured": False,
            "kind": None,
            "provider": None,
            "region": None,
            "residency": None,
            "latency_p95_slo_ms": None,
            "availability_slo": None,
        }
        for name in environments()
        if name not in known
    ]
    return pl.DataFrame(rows, schema=slo.TARGET_SCHEMA, orient="row")


def accuracy_floors() -> pl.DataFrame:
    cfg = config()
    rows = [(m.name, m.accuracy_floor) for m in cfg.models]
    return pl.DataFrame(rows, schema=slo.FLOOR_SCHEMA, orient="row")


# -- what is in the data ------------------------------------------------------------------------
def dimensions() -> pl.DataFrame:
    snap = snapshot()
    return _dimensions(snap.path, snap.key)


@st.cache_data(ttl=FIGURE_TTL_S, max_entries=MAX_ENTRIES, show_spinner=False)
def _dimensions(path: str, key: str) -> pl.DataFrame:
    return reads.dimensions(Warehouse(path))


def environments() -> list[str]:
    """Configured environments in config order, then any others found in the data."""
    configured = [e.name for e in config().environments]
    present = set(dimensions()["environment"].to_list())
    return [e for e in configured if e in present] + sorted(present - set(configured))


def models() -> list[str]:
    """Configured models in config order, then any others found in the data."""
    configured = [m.name for m in config().models]
    present = set(dimensions()["model"].to_list())
    return [m for m in configured if m in present] + sorted(present - set(configured))


def default_range(snap: Snapshot) -> tuple[date, date]:
    """The last `default_days` whole UTC days ending at the newest data (not the wall clock)."""
    assert snap.first_day is not None and snap.last_day is not None
    last = snap.last_day
    first = max(snap.first_day, last - timedelta(days=default_days() - 1))
    return first, last


def current_filters() -> Filters:
    """The filters the sidebar set on this run (the default range when run without it)."""
    found = st.session_state.get(FILTERS_KEY)
    if isinstance(found, Filters):
        return found
    snap = snapshot()
    first, last = default_range(snap)
    return filters_for(first, last, (), ())


def filters_for(
    first: date, last: date, environments: tuple[str, ...], models: tuple[str, ...]
) -> Filters:
    """Filters for the whole UTC days first..last (both included)."""
    start = datetime(first.year, first.month, first.day, tzinfo=UTC)
    end = datetime(last.year, last.month, last.day, tzinfo=UTC) + timedelta(days=1)
    return Filters(start, end, tuple(environments), tuple(models))


# -- figures ------------------------------------------------------------------------------------
def metrics_by(f: Filters, by: tuple[str, ...]) -> pl.DataFrame:
    """`warehouse.metrics.metrics` for the filters, grouped by `by`."""
    snap = snapshot()
    return _metrics(snap.path, snap.key, f.start, f.end, by, f.environments, f.models)


@st.cache_data(ttl=FIGURE_TTL_S, max_entries=MAX_ENTRIES, show_spinner=False)
def _metrics(
    path: str,
    key: str,
    start: datetime,
    end: datetime,
    by: tuple[str, ...],
    environments: tuple[str, ...],
    models: tuple[str, ...],
) -> pl.DataFrame:
    return metrics(
        Warehouse(path),
        _config(path, key),
        start=start,
        end=end,
        by=by,
        environments=list(environments) or None,
        models=list(models) or None,
    )


def slo_report(f: Filters, by: tuple[str, ...] = ("environment", "model")) -> pl.DataFrame:
    """`metrics` rows with their SLO targets and verdicts, worst first."""
    frame = slo.evaluate(metrics_by(f, by), slo_targets(), accuracy_floors())
    return slo.worst_first(frame, list(by))


def versions(f: Filters) -> pl.DataFrame:
    """`metrics` per (environment, model, version), so versions compare on one definition."""
    return metrics_by(f, ("environment", "model", "version"))


def fleet_latency(f: Filters) -> pl.DataFrame:
    return _cached(
        "fleet_latency", start=f.start, end=f.end, environments=f.environments, models=f.models
    )


def latency_series(f: Filters, grain: Grain | None = None) -> pl.DataFrame:
    return _cached(
        "latency_series",
        start=f.start,
        end=f.end,
        grain=grain or f.grain,
        environments=f.environments,
        models=f.models,
    )


def traffic_series(f: Filters, grain: Grain | None = None) -> pl.DataFrame:
    return _cached(
        "traffic_series",
        start=f.start,
        end=f.end,
        grain=grain or f.grain,
        environments=f.environments,
        models=f.models,
    )


def uptime_daily(f: Filters) -> pl.DataFrame:
    """Uptime per environment and day; all models together, as uptime is defined."""
    return _cached(
        "uptime_daily", with_config=True, start=f.start, end=f.end, environments=f.environments
    )


def down_minutes(f: Filters) -> pl.DataFrame:
    return _cached(
        "down_minutes", with_config=True, start=f.start, end=f.end, environments=f.environments
    )


def minute_traces(minutes: pl.DataFrame, per_minute: int = 3) -> pl.DataFrame:
    """Example failed request spans for each (environment, minute) row of `minutes`."""
    snap = snapshot()
    wanted = tuple(minutes.select("environment", "minute").iter_rows())
    return _minute_traces(snap.path, snap.key, wanted, per_minute)


@st.cache_data(ttl=FIGURE_TTL_S, max_entries=MAX_ENTRIES, show_spinner=False)
def _minute_traces(
    path: str, key: str, wanted: tuple[tuple[str, datetime], ...], per_minute: int
) -> pl.DataFrame:
    frame = pl.DataFrame(
        list(wanted),
        schema={"environment": pl.String, "minute": pl.Datetime("us", "UTC")},
        orient="row",
    )
    return reads.minute_traces(Warehouse(path), frame, per_minute=per_minute)


def version_changes(f: Filters) -> pl.DataFrame:
    return _cached("version_changes", environments=f.environments, models=f.models)


def error_budget(f: Filters) -> pl.DataFrame:
    """Rolling 30-day error budget per environment, ending at the newest data."""
    return _cached("error_budget", with_config=True, environments=f.environments)


def _cached(query: str, *, with_config: bool = False, **params: Any) -> pl.DataFrame:
    """`reads.<query>(...)` through the one cache, keyed by the newest load and the params."""
    snap = snapshot()
    return _read(query, snap.path, snap.key, with_config, **params)


@st.cache_data(ttl=FIGURE_TTL_S, max_entries=MAX_ENTRIES * 8, show_spinner=False)
def _read(query: str, path: str, key: str, with_config: bool, **params: Any) -> pl.DataFrame:
    warehouse = Warehouse(path)
    read = getattr(reads, query)
    if with_config:
        return read(warehouse, _config(path, key), **params)  # type: ignore[no-any-return]
    return read(warehouse, **params)  # type: ignore[no-any-return]

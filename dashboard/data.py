"""The dashboard's cached data layer: the only module of `dashboard/` that reads the warehouse.

Every read is cached with `st.cache_data` under a key made of the newest load id and the
stored config's time, so a page stays fast while a new load (or a new config) shows up
within `SNAPSHOT_TTL_S` seconds without anyone clearing a cache. Pages get Polars frames
and the current `Filters`; they never see SQL, DuckDB or the config resolver. What a page
shows is read as one bundle (`dashboard.page_data`) over one connection, each figure once.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Literal

import polars as pl
import streamlit as st

from dashboard import allocation_page_data, gpu_page_data, page_data, spend_page_data
from warehouse import reads, slo
from warehouse.config import Config, find_file, resolve
from warehouse.db import Warehouse, default_path
from warehouse.errors import ConfigError, WarehouseError, WarehouseMissingError
from warehouse.session import Session, Source, session

SNAPSHOT_TTL_S = 5  # how long before a new load or config is noticed
FIGURE_TTL_S = 900  # figures are keyed by load id, so this only bounds memory
MAX_ENTRIES = 64
FILTERS_KEY = "hybridlens_filters"
# The request pages' note when only bills or GPU samples are loaded, not a filter's fault.
NO_REQUESTS = (
    "No request spans are loaded yet: this page is built from traces (`hybridlens ingest "
    "traces PATH`, or the OTLP receiver `hybridlens serve-otlp`). What is loaded so far is "
    "on the GPUs and Spend pages."
)
LOAD_HINT = (
    "Load the demo scenario with `hybridlens demo`, or your own data with `hybridlens ingest "
    "traces PATH`, `hybridlens ingest billing PATH` or `hybridlens ingest gpu PATH`, then reload "
    "this page."
)

State = Literal["ok", "empty", "missing", "error"]
Grain = page_data.Grain


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
    # every kind of data (requests, GPU samples, bills): the days a range may be picked in,
    # so bills from before the first trace, say, can still be looked at
    data_first: datetime | None = None
    data_last: datetime | None = None

    @property
    def first_day(self) -> date | None:
        return self.first.date() if self.first else None

    @property
    def last_day(self) -> date | None:
        return self.last.date() if self.last else None

    @property
    def pickable(self) -> tuple[date, date]:
        """The first and last day a range may cover (the any-data span holds the requests')."""
        first, last = self.data_first or self.first, self.data_last or self.last
        assert first is not None and last is not None
        return first.date(), last.date()


Filters = page_data.Filters


# -- the warehouse and its state -------------------------------------------------------------
class _RunReads:
    """The read connection that one run of the app script's cache misses share, opened on
    first use (a run whose figures are all cached opens none)."""

    def __init__(self) -> None:
        self._stack = ExitStack()
        self._open: dict[str, Session] = {}

    def source(self, path: str) -> Session:
        found = self._open.get(path)
        if found is None:
            found = self._open[path] = self._stack.enter_context(session(Warehouse(path)))
        return found

    def close(self) -> None:
        self._stack.close()


_RUN: ContextVar[_RunReads | None] = ContextVar("hybridlens_run_reads", default=None)


@contextmanager
def one_connection() -> Iterator[None]:
    """Around one run of the app script: its reads share one connection, closed (and the
    shared lock released) when the run ends. With an empty cache a page opened five, at
    30-50 ms each; they also see one state of the warehouse."""
    run = _RunReads()
    token = _RUN.set(run)
    try:
        yield
    finally:
        _RUN.reset(token)
        run.close()


def _source(path: str) -> Source:
    """The run's shared connection inside `one_connection`, else the warehouse itself."""
    run = _RUN.get()
    return Warehouse(path) if run is None else run.source(path)


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
    if not Warehouse(path).exists():
        return Snapshot(
            path, "missing", f"There is no warehouse at `{path}` yet. {LOAD_HINT}", key="missing"
        )
    try:
        warehouse = _source(path)
        skew = resolve(os.environ.get("HYBRIDLENS_CONFIG"), warehouse)[0].ingest
        horizon = datetime.now(UTC) + timedelta(hours=skew.max_clock_skew_hours)
        row = reads.bounds(warehouse, horizon=horizon).row(0, named=True)
    except WarehouseMissingError:
        return Snapshot(
            path, "missing", f"There is no warehouse at `{path}` yet. {LOAD_HINT}", key="missing"
        )
    except ConfigError as exc:  # the config's fault, not the warehouse's: a reload won't do
        return Snapshot(
            path,
            "error",
            "The config cannot be used; the reason is below. Fix the file (every key is in "
            "docs/config.md) and reload the page.",
            detail=str(exc),
        )
    except WarehouseError as exc:
        return Snapshot(
            path,
            "error",
            f"The warehouse at `{path}` cannot be read right now; the reason is below. "
            "Reload in a moment, or check the file with `hybridlens metrics`.",
            detail=str(exc),
        )
    if row["first_data"] is None:
        return Snapshot(path, "empty", f"The warehouse at `{path}` holds no data yet. {LOAD_HINT}")
    # the requests' span where there are requests (every page reads them), else that of the
    # bills or GPU samples, which finance or a GPU collector may load before any traces
    first, last = (
        (row["first_request"], row["last_request"])
        if row["first_request"] is not None
        else (row["first_data"], row["last_data"])
    )
    key = f"{row['load_id']}|{row['config_stored_at']}|{config_stamp}"
    return Snapshot(
        path,
        "ok",
        first=_utc(first),
        last=_utc(last),
        load_id=row["load_id"],
        requests=int(row["request_spans"] or 0),
        key=key,
        data_first=_utc(row["first_data"]),
        data_last=_utc(row["last_data"]),
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
    warehouse = _source(path) if Path(path).exists() else None
    return resolve(os.environ.get("HYBRIDLENS_CONFIG"), warehouse)[0]


def trace_link() -> str:
    """The trace URL template with `{trace_id}`, or "" when none is configured."""
    template = config().dashboard.trace_link
    return template if "{trace_id}" in template else ""


def default_days() -> int:
    return max(1, int(config().dashboard.default_days))


def _clamped_days(snap: Snapshot) -> int:
    """`default_days`, but never more days than the data spans (a huge value stays a page)."""
    assert snap.first_day is not None and snap.last_day is not None
    return min(default_days(), (snap.last_day - snap.first_day).days + 1)


def slo_targets() -> pl.DataFrame:
    """Per environment (configured or only seen in data): kind, place and SLO targets."""
    return slo.targets(config(), environments())


def accuracy_floors() -> pl.DataFrame:
    return slo.floors(config())


# -- what is in the data ------------------------------------------------------------------------
def dimensions() -> pl.DataFrame:
    snap = snapshot()
    return _dimensions(snap.path, snap.key)


@st.cache_data(ttl=FIGURE_TTL_S, max_entries=MAX_ENTRIES, show_spinner=False)
def _dimensions(path: str, key: str) -> pl.DataFrame:
    return reads.dimensions(_source(path))


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
    """The last `default_days` whole UTC days ending at the newest data (not the wall clock;
    data beyond now + the ingest clock skew is ignored, so one span from the future cannot
    move the range)."""
    assert snap.first_day is not None and snap.last_day is not None
    last = snap.last_day
    return last - timedelta(days=_clamped_days(snap) - 1), last


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


# -- what a page shows --------------------------------------------------------------------------
def overview(f: Filters) -> page_data.Overview:
    """Everything the fleet overview draws for `f`, read once."""
    snap = snapshot()
    return _overview(snap.path, snap.key, f)


@st.cache_data(ttl=FIGURE_TTL_S, max_entries=MAX_ENTRIES, show_spinner=False)
def _overview(path: str, key: str, f: Filters) -> page_data.Overview:
    cfg = _config(path, key)
    return page_data.overview(_source(path), cfg, _targets(path, key), f)


def environment(ef: Filters, everywhere: Filters, grain: Grain) -> page_data.Environment:
    """Everything the environment page draws for one environment, read once."""
    snap = snapshot()
    return _environment(snap.path, snap.key, ef, everywhere, grain)


@st.cache_data(ttl=FIGURE_TTL_S, max_entries=MAX_ENTRIES, show_spinner=False)
def _environment(
    path: str, key: str, ef: Filters, everywhere: Filters, grain: Grain
) -> page_data.Environment:
    return page_data.environment(_source(path), _config(path, key), ef, everywhere, grain)


def _targets(path: str, key: str) -> pl.DataFrame:
    return slo.targets(_config(path, key), environments())


def gpus(f: Filters) -> gpu_page_data.GpuPage:
    """Everything the GPUs page draws for `f`, read once."""
    snap = snapshot()
    return _gpus(snap.path, snap.key, f)


@st.cache_data(ttl=FIGURE_TTL_S, max_entries=MAX_ENTRIES, show_spinner=False)
def _gpus(path: str, key: str, f: Filters) -> gpu_page_data.GpuPage:
    return gpu_page_data.gpu_page(_source(path), _config(path, key), f)


def spend(f: Filters, measure: str) -> spend_page_data.SpendPage:
    """Everything the Spend page draws for `f` and one cost measure, read once."""
    snap = snapshot()
    return _spend(snap.path, snap.key, f, measure)


@st.cache_data(ttl=FIGURE_TTL_S, max_entries=MAX_ENTRIES, show_spinner=False)
def _spend(path: str, key: str, f: Filters, measure: str) -> spend_page_data.SpendPage:
    return spend_page_data.spend_page(_source(path), _config(path, key), f, measure)


def allocation(f: Filters, basis: str) -> allocation_page_data.AllocationView:
    """The Spend page's cost-per-model part for `f` on one cost basis, read once."""
    snap = snapshot()
    return _allocation(snap.path, snap.key, f, basis)


@st.cache_data(ttl=FIGURE_TTL_S, max_entries=MAX_ENTRIES, show_spinner=False)
def _allocation(path: str, key: str, f: Filters, basis: str) -> allocation_page_data.AllocationView:
    return allocation_page_data.allocation_view(_source(path), _config(path, key), f, basis)

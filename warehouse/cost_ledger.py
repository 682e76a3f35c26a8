"""Keeping the ledger's modelled rows current: recompute the days whose inputs changed.

Where the rows are written, and why not through `publish`: the model must be recomputed
inside the transaction that changed its inputs — a publish of `gpu_samples` (its hook runs
after the GPU rollup hook, so the rollup it reads is current) or a config change
(`warehouse.ingest_state.store_config`). Both already hold the exclusive write lock, and
`publish` takes it again, so calling it from there would wait on itself. The hook instead
applies the `billing` spec's own rule in that transaction: each (environment, day) is a
replace unit (`x_ReplaceUnit`, made by `tables.replace_unit`), and `cost_replace_units.sql`
deletes the units recomputed and inserts their rows. A recompute therefore never
duplicates, a crash leaves the previous state, and a cloud delivery published through
`publish` (its own units) is never touched.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa

from warehouse.config_schema import Config, Environment
from warehouse.cost_model import (
    ROW_SCHEMA,
    Measured,
    ledger_row,
    midnight,
    modelled_unit,
    price_pool_day,
)
from warehouse.db import Warehouse, one, read_sql
from warehouse.errors import ConfigError
from warehouse.gpu_rollups import affected_ranges, gpu_settings
from warehouse.rollups import statements

if TYPE_CHECKING:  # polars is imported by the reads that return frames, not by the hooks
    import polars as pl

log = logging.getLogger(__name__)


# -- recomputing ----------------------------------------------------------------------------
def priced(config: Config) -> dict[str, Environment]:
    """The environments with at least one pool that has a cost model, by name."""
    return {e.name: e for e in config.environments if any(p.cost for p in e.gpu_pools)}


def _first_day(env: Environment) -> date:
    return min(date.fromisoformat(p.cost.purchase_date) for p in env.gpu_pools if p.cost)


def _days(first: date, last: date) -> set[date]:
    return {first + timedelta(days=i) for i in range((last - first).days + 1)}


def _today() -> date:
    return datetime.now(UTC).date()


def _modelled_days(con: duckdb.DuckDBPyConnection, names: list[str]) -> dict[str, set[date]]:
    found: dict[str, set[date]] = {n: set() for n in names}
    for name, day in con.execute(
        read_sql("cost_modelled_days"), {"environments": names}
    ).fetchall():
        found[name].add(day)
    return found


def _measured(
    con: duckdb.DuckDBPyConnection, names: list[str], first: date, last: date
) -> dict[tuple[str, str, date], Measured]:
    rows = con.execute(
        read_sql("cost_pool_hours"),
        {
            "environments": names,
            "lo": midnight(first),
            "hi": midnight(last + timedelta(days=1)),
        },
    ).fetchall()
    found = {}
    for env, pool, day, busy, held, free, energy_wh, bad in rows:
        if bad:
            log.warning(
                "%s/%s on %s: %d GPU-hour rows with a negative or non-finite energy were "
                "counted as 0 Wh",
                env,
                pool,
                day,
                bad,
            )
        found[(env, pool, day)] = Measured(*(_finite(v) for v in (busy, held, free, energy_wh)))
    return found


def _finite(value: float | None) -> float:
    return float(value) if value is not None and math.isfinite(value) and value > 0 else 0.0


def replace_days(
    con: duckdb.DuckDBPyConnection,
    config: Config,
    days: dict[str, set[date]],
    *,
    load_id: int | None,
) -> int:
    """Recompute the (environment, day) units in `days` from the rollup and `config`, and
    replace them in the ledger (a unit whose environment has no model any more is only
    deleted). Returns the rows written."""
    days = {name: wanted for name, wanted in days.items() if wanted}
    if not days:
        return 0
    envs = priced(config)
    names = sorted(n for n in days if n in envs)
    every = [d for wanted in days.values() for d in wanted]
    measured = _measured(con, names, min(every), max(every)) if names else {}
    rows = []
    for name in names:
        env = envs[name]
        for day in sorted(days[name]):
            for pool in env.gpu_pools:
                figures = price_pool_day(
                    pool, day, measured.get((name, pool.name, day), Measured())
                )
                if figures is not None:
                    rows.append(ledger_row(env, pool, figures, load_id))
    units = pa.table(
        {"unit": [modelled_unit(n, d) for n, wanted in sorted(days.items()) for d in wanted]}
    )
    con.register("_cost_units", units)
    con.register("_cost_rows", pa.Table.from_pylist(rows, schema=ROW_SCHEMA))
    try:
        for statement in statements("cost_replace_units"):
            con.execute(statement)
    finally:
        con.unregister("_cost_units")
        con.unregister("_cost_rows")
    return len(rows)


def stored_config(con: duckdb.DuckDBPyConnection, unusable: str) -> Config | None:
    """The stored config, for a hook inside a publish; None when there is none, or when it
    no longer passes validation, which is logged after `unusable` (what the hook does
    without it): the input still loads (bad config is never fatal to good input), and the
    next config stored recomputes what derives from it."""
    row = one(con, "SELECT body::VARCHAR FROM config ORDER BY stored_at DESC LIMIT 1")
    if not row:
        return None
    try:
        return Config.from_json(row[0], "the config stored in the warehouse")
    except ConfigError as exc:
        log.warning("%s: %s", unusable, exc)
        return None


def refresh_hours(
    con: duckdb.DuckDBPyConnection, hours: Iterable[datetime], *, today: date | None = None
) -> int:
    """The `gpu_samples` after-publish hook: recompute the days these hours fall on for
    every modelled environment under the stored config, and fill any day since a pool's
    purchase that has no modelled row yet (up to `today`), so a day without samples is
    never missing. Returns the rows written."""
    config = stored_config(con, "the cost model was not recomputed for this load")
    envs = priced(config) if config is not None else {}
    if config is None or not envs:
        return 0
    touched = touched_days(con, hours)
    have = _modelled_days(con, sorted(envs))
    last = today or _today()
    wanted = {
        name: touched | (_days(_first_day(env), last) - have[name]) for name, env in envs.items()
    }
    return replace_days(con, config, wanted, load_id=_current_load(con))


def touched_days(con: duckdb.DuckDBPyConnection, hours: Iterable[datetime]) -> set[date]:
    """The days whose GPU-hour rows the samples in `hours` can change: the rollup widens
    each hour by the sample cap (a day's last sample gets its energy from the next one,
    after midnight), so the cost model reprices the same, wider range."""
    cap, _ = gpu_settings(con)
    touched: set[date] = set()
    for lo, hi in affected_ranges(hours, cap):
        last = (hi - timedelta(microseconds=1)).astimezone(UTC).date()
        touched |= _days(lo.astimezone(UTC).date(), last)
    return touched


def _current_load(con: duckdb.DuckDBPyConnection) -> int | None:
    """The id of the publish this hook runs in (None when called outside one)."""
    try:
        row = one(con, "SELECT currval('load_ids')")
    except duckdb.Error:  # no nextval on this connection yet: not inside a publish
        return None
    return int(row[0]) if row and row[0] is not None else None


def _signature(env: Environment | None) -> Any:
    """What the model of an environment depends on in the config (None: not modelled)."""
    if env is None or not any(p.cost for p in env.gpu_pools):
        return None
    return (env.kind, env.region, tuple(p for p in env.gpu_pools if p.cost))


def refresh_config(
    con: duckdb.DuckDBPyConnection,
    previous: str | None,
    body: str,
    *,
    today: date | None = None,
) -> int:
    """Called by `store_config` in its transaction when a different config is stored: every
    environment whose cost model changed is recomputed from its first purchase date to
    `today`, and its modelled days outside that range are deleted. Returns the rows written.

    A body that does not parse (the stored-config tests store such bodies on purpose)
    leaves the ledger as it was: every command then stops on that config anyway, with the
    way out (`warehouse.config._stored`)."""
    try:
        new = Config.from_json(body, "the config being stored")
    except ConfigError as exc:
        log.warning("the cost model was not recomputed: %s", exc)
        return 0
    old = None
    if previous is not None:
        try:
            old = Config.from_json(previous, "the config stored before")
        except ConfigError:
            old = None
    names = {e.name for e in new.environments} | (
        {e.name for e in old.environments} if old else set()
    )
    changed = sorted(
        n
        for n in names
        if _signature(new.environment(n)) != _signature(old.environment(n) if old else None)
    )
    if not changed:
        return 0
    have = _modelled_days(con, changed)
    envs = priced(new)
    last = today or _today()
    wanted = {
        name: have[name] | (_days(_first_day(envs[name]), last) if name in envs else set())
        for name in changed
    }
    return replace_days(con, new, wanted, load_id=None)


def cost_days(warehouse: Warehouse, lo: datetime | None, hi: datetime | None) -> pl.DataFrame:
    """Modelled cost per environment, day and currency in [lo, hi): the cost, its parts
    and idle split, capacity GPU-hours, cost per GPU-hour, energy (kWh) and emissions (kg),
    for pages and `metrics`."""
    return warehouse.query(
        "cost_environment_days",
        lo=lo or datetime(1970, 1, 1, tzinfo=UTC),
        hi=hi or datetime(9999, 1, 1, tzinfo=UTC),
    )

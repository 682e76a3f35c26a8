"""Cost allocated to models: every ledger row's cost, split so that it sums back exactly.

Finance asks "what does one answer of model M cost in environment E"; the ledger answers
per line item, and most line items name no model (a GPU instance, an on-prem pool's day).
This module turns the attributed ledger (`warehouse.attribution`) into `cost_allocation`:
per (day, environment, model, cost center, method, currency), amounts that add up to the
ledger's exactly, because each pool of charges is split in whole units of the ledger's
scale by largest remainder.

How a row is split (docs/billing.md, "Allocation"):
- a row a rule gave a model to (tag, inherited label, resource rule, GPU host) is that
  model's, whole;
- a modelled on-prem/edge row's busy and idle-held cost goes to the workloads that held
  its pool's GPUs that day, by GPU-hours (busy time with no workload mapped stays the
  environment's, `unmapped`); its idle-free and unmonitored cost stays the environment's
  as `idle`;
- a row with an environment but no model is split across the environment's models by the
  configured key (`[allocation] key`): GPU-hours held, else requests, or tokens; with no
  usage that day it stays the environment's (`no-usage`);
- a row with no environment is `unallocated`, shown, never dropped.

The table is derived, like the rollups: the after-publish hooks of spans, GPU samples
and billing, and a config change, rebuild the days they touch in their own transaction,
so the allocation is never stale and a crash leaves the previous state.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_FLOOR, ROUND_HALF_EVEN, Decimal, localcontext
from typing import Any, TypeVar

import duckdb
import pyarrow as pa

from warehouse.attribution import UNALLOCATED, params_for
from warehouse.config_schema import Config
from warehouse.cost_model import midnight
from warehouse.db import read_sql
from warehouse.money import rate_params

log = logging.getLogger(__name__)

PLACES = Decimal("1e-12")  # DECIMAL(38, 12): the ledger's scale, and the allocation's
AMOUNTS = ("cost", "marginal_cost", "reporting_cost", "reporting_marginal_cost")
MONEY = pa.decimal128(38, 12)
ROW_SCHEMA = pa.schema(
    [
        ("day", pa.date32()),
        ("environment", pa.string()),
        ("model", pa.string()),
        ("cost_center", pa.string()),
        ("method", pa.string()),
        ("currency", pa.string()),
        *((name, MONEY) for name in AMOUNTS),
        ("reporting_currency", pa.string()),
        ("charges", pa.int64()),
    ]
)
K = TypeVar("K", bound=Hashable)


def split(amount: Decimal, weights: Mapping[K, float | int | Decimal]) -> dict[K, Decimal]:
    """`amount` (at the ledger's scale) split in proportion to `weights`, in whole units of
    1e-12 that sum exactly to it: each share is floored, and the units left over go one each
    to the largest remainders (ties: the key that sorts first by its text). Keys whose
    weight is not above 0 get nothing; with none left, a ValueError."""
    positive = {k: Decimal(str(w)) for k, w in weights.items() if w > 0}
    if not positive:
        raise ValueError("nothing to split by: every weight is 0")
    with localcontext() as ctx:
        ctx.prec = 80  # units (up to 1e38) times a weight's digits, kept exact enough
        units = (amount / PLACES).to_integral_value(rounding=ROUND_HALF_EVEN)
        total = sum(positive.values())
        raw = {k: units * w / total for k, w in positive.items()}
        base = {k: v.to_integral_value(rounding=ROUND_FLOOR) for k, v in raw.items()}
        left = int(units - sum(base.values()))
        order = sorted(positive, key=lambda k: (-(raw[k] - base[k]), str(k)))
        for k in order[:left]:
            base[k] += 1
        return {k: (v * PLACES).quantize(PLACES) for k, v in base.items()}


@dataclass(frozen=True)
class Pool:
    """Charges split together: one (day, environment, cost center, currency, kind) sum."""

    day: date
    environment: str
    cost_center: str
    currency: str | None
    kind: str
    pool: str | None
    model: str
    method: str
    amounts: tuple[Decimal | None, ...]  # in AMOUNTS order
    idle_cost: Decimal
    charges: int


Weights = dict[tuple[str, date, str, str | None], dict[str | None, float]]


def _pools(con: duckdb.DuckDBPyConnection, config: Config, days: list[date]) -> list[Pool]:
    lo, hi = midnight(min(days)), midnight(max(days) + timedelta(days=1))
    sql = read_sql("allocation_pools").format(
        allocation_rows=rows_sql(), rates=read_sql("money_rates")
    )
    params = {
        **params_for(con, config, lo, hi),
        "days": days,
        "rates": rate_params(config),
        "reporting": config.billing.reporting_currency,
    }
    rows = con.execute(sql, params).fetchall()
    return [
        Pool(day, env, cc, cur, kind, pool, model, method, (a, b, c, d), idle, n)
        for (day, env, cc, cur, kind, pool, model, method, a, b, c, d, idle, n) in rows
    ]


def rows_sql() -> str:
    """allocation_rows.sql with the attribution spliced in: the ledger rows as the
    allocation sees them, for the pools here and the FOCUS export's per-row split."""
    return read_sql("allocation_rows").format(billing_attribution=read_sql("billing_attribution"))


def weights_of(con: duckdb.DuckDBPyConnection, days: list[date]) -> Weights:
    """(source, day, environment, pool) -> {model: weight}; source `gpu` per pool and, with
    pool None, per environment (mapped workloads only), `requests` and `tokens` per
    environment."""
    lo, hi = midnight(min(days)), midnight(max(days) + timedelta(days=1))
    found: Weights = {}
    rows = con.execute(read_sql("allocation_weights"), {"lo": lo, "hi": hi, "days": days})
    for source, day, env, pool, model, weight in rows.fetchall():
        found.setdefault((source, day, env, pool), {})[model] = float(weight)
        if source == "gpu" and model is not None:
            per_env = found.setdefault((source, day, env, None), {})
            per_env[model] = per_env.get(model, 0.0) + float(weight)
    return found


def shared_key(key: str, weights: Weights, day: date, env: str) -> tuple[str, dict[Any, float]]:
    """The key a shared pool is split by and its weights: the configured one, GPU time
    falling back to requests on a day without mapped GPU time."""
    if key == "gpu-seconds":
        gpu = weights.get(("gpu", day, env, None), {})
        if gpu:
            return "gpu-seconds", gpu
        key = "requests"
    return key, weights.get((key, day, env, None), {})


def portion(amounts: tuple[Decimal | None, ...], part: Decimal, whole: Decimal) -> list[Any]:
    """Each amount's share `part / whole` (rounded to the ledger's scale): the usage part
    of a modelled pool, in each of its amounts."""
    if whole == 0:
        return [None if a is None else Decimal(0) for a in amounts]
    with localcontext() as ctx:
        ctx.prec = 80
        return [None if a is None else (a * part / whole).quantize(PLACES) for a in amounts]


def split_all(
    amounts: Iterable[Decimal | None], weights: Mapping[K, float]
) -> dict[K, list[Decimal | None]]:
    """Every amount split by the same weights (None stays None: an unconverted pool)."""
    out: dict[K, list[Decimal | None]] = {k: [] for k, w in weights.items() if w > 0}
    for amount in amounts:
        shares = split(amount, weights) if amount is not None else dict.fromkeys(out)
        for k in out:
            out[k].append(shares[k])
    return out


def allocate(pools: list[Pool], weights: Weights, key: str) -> list[dict[str, Any]]:
    """The allocation rows of `pools`: each pool's amounts, split, summing exactly to it."""
    rows: dict[tuple[Any, ...], list[Any]] = {}

    def add(p: Pool, model: str, method: str, amounts: Iterable[Decimal | None], n: int) -> None:
        k = (p.day, p.environment, model, p.cost_center, method, p.currency)
        have = rows.setdefault(k, [Decimal(0)] * len(AMOUNTS) + [0])
        for i, a in enumerate(amounts):
            have[i] = None if a is None or have[i] is None else have[i] + a
        have[-1] += n

    for p in pools:
        if p.kind in ("direct", "unallocated"):
            add(p, p.model, p.method, p.amounts, p.charges)
            continue
        if p.kind == "modelled":
            cost = p.amounts[0] or Decimal(0)
            usage = portion(p.amounts, cost - p.idle_cost, cost)
            idle = [None if a is None else a - u for a, u in zip(p.amounts, usage, strict=True)]
            add(p, UNALLOCATED, "idle", idle, p.charges)
            method, by = "gpu-seconds", weights.get(("gpu", p.day, p.environment, p.pool), {})
            amounts: list[Decimal | None] = usage
            n = 0
        else:
            method, by = shared_key(key, weights, p.day, p.environment)
            amounts, n = list(p.amounts), p.charges
        if not by or not any(a for a in amounts if a):
            if n or any(a for a in amounts if a is None or a):  # not a modelled pool's 0 usage
                add(p, UNALLOCATED, method if by else "no-usage", amounts, n)
            continue
        for model, shares in split_all(amounts, by).items():
            if model is None:
                add(p, UNALLOCATED, "unmapped", shares, n)
            else:
                add(p, model, method, shares, n)
            n = 0  # the pool's charges are counted once, on its first share
    return [
        dict(zip(("day", "environment", "model", "cost_center", "method", "currency"), k,
                 strict=True))
        | dict(zip((*AMOUNTS, "charges"), v, strict=True))
        for k, v in sorted(rows.items(), key=lambda kv: tuple(str(x) for x in kv[0]))
    ]  # fmt: skip


def rebuild_days(con: duckdb.DuckDBPyConnection, config: Config, days: Iterable[date]) -> int:
    """Replace the allocation of `days` (a day without ledger rows is only deleted).
    Returns the rows written."""
    wanted = sorted(set(days))
    if not wanted:
        return 0
    pools = _pools(con, config, wanted)
    rows = allocate(pools, weights_of(con, wanted), config.allocation.key) if pools else []
    for row in rows:
        row["reporting_currency"] = config.billing.reporting_currency
    con.execute("DELETE FROM cost_allocation WHERE list_contains($days, day)", {"days": wanted})
    if rows:
        con.register("_allocation_rows", pa.Table.from_pylist(rows, schema=ROW_SCHEMA))
        try:
            con.execute("INSERT INTO cost_allocation BY NAME SELECT * FROM _allocation_rows")
        finally:
            con.unregister("_allocation_rows")
    return len(rows)


def stale_days(con: duckdb.DuckDBPyConnection) -> set[date]:
    """Days the ledger and the allocation disagree on having: a warehouse from before the
    allocation existed, or modelled days the cost model filled without touching an hour."""
    found = con.execute(read_sql("allocation_stale_days")).fetchall()
    return {r[0] for r in found}


def refresh_hours(
    con: duckdb.DuckDBPyConnection, hours: Iterable[datetime], *, heal: bool = True
) -> int:
    """The after-publish hook of spans and billing: `refresh_days` of the UTC days of
    `hours`."""
    return refresh_days(con, {h.astimezone(UTC).date() for h in hours}, heal=heal)


def refresh_days(con: duckdb.DuckDBPyConnection, touched: set[date], *, heal: bool = True) -> int:
    """Rebuild the days of `touched` that have ledger rows and, with `heal`, any day the
    allocation lacks or has too many (the spans hook skips that scan of the whole ledger:
    the receiver publishes every second or so, and a span never adds or removes a ledger
    day)."""
    days = stale_days(con) if heal else set()
    if touched:
        ordered = sorted(touched)
        params = {
            "days": ordered,
            "lo": midnight(ordered[0]),
            "hi": midnight(ordered[-1] + timedelta(days=1)),
        }
        found = con.execute(read_sql("allocation_ledger_days"), params)
        days |= {r[0] for r in found.fetchall()}
    if not days:
        return 0
    config = stored(con)
    return rebuild_days(con, config, days)


def refresh_all(con: duckdb.DuckDBPyConnection, config: Config) -> int:
    """Rebuild every day: the config changed, and any rule may place any row elsewhere."""
    found = con.execute("SELECT DISTINCT day FROM cost_allocation").fetchall()
    days = {r[0] for r in found} | stale_days(con)
    return rebuild_days(con, config, days)


def stored(con: duckdb.DuckDBPyConnection) -> Config:
    """The stored config, or the defaults where none is stored or it no longer validates
    (the allocation of good input never waits on a config the next `ingest` will refuse)."""
    from warehouse.cost_ledger import stored_config

    return stored_config(con, "the allocation used the default config") or Config()

"""The allocation to models as FOCUS split cost allocation rows, for the FOCUS export.

`warehouse.allocation` splits pools of ledger rows (a day's, an environment's, ...) to
models; a FOCUS reader needs the same split per line item. Here every ledger row of the
exported month (an *origin charge*) that the allocation gives, in whole or in part, to a
model is replaced by its *allocated charges*, one per share: the same weights
(`allocation.weights_of`, the same key fallback), the same largest-remainder `split` in
units of 1e-12, so each summable metric of the allocated charges sums exactly to the
origin's, and per model the month's split EffectiveCost equals `cost_allocation`'s to
within the rounding (per row here, per pool there: under 1e-12 a row).

Which rows split, and into what (docs/export.md, "Split cost allocation"):
- a row a rule gave a model to (`direct`, or `unallocated` where no rule gave it an
  environment): one allocated charge, the model's, whole;
- a row with an environment but no model (`shared`): one per model, by the allocation key
  of its day and environment;
- a modelled on-prem/edge row (`modelled`): its usage part one per workload by GPU-hours
  held in its pool, busy time without a workload (`unmapped`) and its idle-free and
  unmonitored part (`idle`) as allocated charges with no AllocatedResourceId, which FOCUS
  reserves for the unallocated portion of an origin charge;
- a row the allocation gives no model any of (neither environment nor model, no usage
  that day, a zero cost) is not split: it is exported as it is, its Allocated* columns null.

The origin row itself is not exported beside its allocated charges: FOCUS derives it from
them (their sum), and leaving it would count its cost twice.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import duckdb
import pyarrow as pa

from warehouse.allocation import (
    MONEY,
    PLACES,
    Weights,
    portion,
    rows_sql,
    shared_key,
    split,
    split_all,
    stored,
    weights_of,
)
from warehouse.attribution import UNALLOCATED, params_for
from warehouse.cost_model import COST_PARTS, HOUR_PARTS, midnight
from warehouse.focus_spec import COLUMNS
from warehouse.tabular import Kind

ALLOCATED = ("AllocatedMethodId", "AllocatedMethodDetails", "AllocatedResourceId",
             "AllocatedResourceName", "AllocatedTags")  # fmt: skip
# The summable metrics, split: FOCUS's decimal columns but the unit prices (which every
# allocated charge keeps, as its dimensions), and the modelled cost's decimal parts ...
EXACT = (
    *(c for c, (kind, _) in COLUMNS.items() if kind is Kind.DECIMAL and "UnitPrice" not in c),
    *COST_PARTS,
)
# ... and our DOUBLE quantities, split by the same ratios (to float precision, not exact)
FLOATS = (*HOUR_PARTS, "x_EnergyKwh", "x_Co2eKg")
UNITS = {"gpu-seconds": "GPU-Hours", "requests": "Requests", "tokens": "Tokens"}
TAG = "hybridlens/"  # our prefix for the tags an allocated charge gets (AllocatedTags)
PREFIX = "_s_"  # the split table's columns, apart from the ledger's in the export's join
COST = EXACT.index("EffectiveCost")


@dataclass(frozen=True)
class Origin:
    """A ledger row as the allocation sees it (allocation_rows.sql)."""

    row_id: int
    day: date
    environment: str
    cost_center: str
    kind: str
    pool: str | None
    model: str
    model_how: str
    idle: Decimal


@dataclass(frozen=True)
class Part:
    """One allocated charge: to `model` (None: the environment's own), by `method`."""

    model: str | None
    method: str  # as cost_allocation labels it: the key, the rule, `idle` or `unmapped`
    key: str  # its AllocatedMethodId: the rule of a direct row, else the key it was split by
    ratio: Decimal  # of the origin charge; an origin's ratios sum to 1 exactly
    usage: float | None  # the allocation key's quantity behind the share, if any
    amounts: list[Decimal | None]  # in EXACT order


def parts(origin: Origin, amounts: Sequence[Decimal | None], weights: Weights,
          key: str) -> list[Part]:  # fmt: skip
    """The allocated charges of one origin row (`amounts` in EXACT order), or none where
    the allocation gives no model any of it."""
    values = list(amounts)
    if origin.kind in ("direct", "unallocated"):
        if origin.model == UNALLOCATED:
            return []  # no environment and no model: nothing to split by
        how = origin.model_how
        # cost_allocation labels a model's row without environment `unallocated`
        method = how if origin.kind == "direct" else UNALLOCATED
        return [Part(origin.model, method, how, Decimal(1), None, values)]
    if origin.kind == "shared":
        method, by = shared_key(key, weights, origin.day, origin.environment)
        if not by or not any(values):
            return []
        return _shares(values, Decimal(1), by, method)
    cost = values[COST] or Decimal(0)
    by = weights.get(("gpu", origin.day, origin.environment, origin.pool), {})
    if not cost or not by:
        return []
    usage = portion(tuple(values), cost - origin.idle, cost)
    if not any(usage):
        return []  # all idle: it stays the environment's, as the allocation keeps it
    share = portion((Decimal(1),), cost - origin.idle, cost)[0]
    idle = [None if a is None else a - u for a, u in zip(values, usage, strict=True)]
    found = _shares(usage, share, by, "gpu-seconds")
    if share != 1 or any(idle):
        found.append(Part(None, "idle", "gpu-seconds", Decimal(1) - share, None, idle))
    return found


def _shares(amounts: list[Decimal | None], whole: Decimal, by: dict[Any, float],
            method: str) -> list[Part]:  # fmt: skip
    """`amounts` (a `whole` of the origin) split by `by`, as the allocation splits a pool."""
    ratios = split(whole, by)
    return [
        Part(model, method if model is not None else "unmapped", method, ratios[model],
             by[model], shares)
        for model, shares in sorted(split_all(amounts, by).items(), key=lambda kv: str(kv[0]))
    ]  # fmt: skip


def split_table(con: duckdb.DuckDBPyConnection, start: datetime, end: datetime) -> pa.Table:
    """The allocated charges of the billing rows whose period starts in [start, end): per
    origin `_s_row` (its rowid) and `_s_part`, the split metrics and the Allocated* values,
    all prefixed `_s_`."""
    period = {"start": start, "end": end}
    found = con.execute(
        "SELECT rowid, "
        + ", ".join(f'"{c}"' for c in (*EXACT, *FLOATS))
        + " FROM billing WHERE BillingPeriodStart >= $start AND BillingPeriodStart < $end",
        period,
    ).fetchall()
    values = {r[0]: r[1:] for r in found}
    days = sorted(
        {
            r[0]
            for r in con.execute(
                "SELECT DISTINCT CAST(timezone('UTC', coalesce(ChargePeriodStart, "
                "BillingPeriodStart)) AS DATE) FROM billing "
                "WHERE BillingPeriodStart >= $start AND BillingPeriodStart < $end",
                period,
            ).fetchall()
        }
    )
    rows: list[dict[str, Any]] = []
    if days:
        config = stored(con)
        weights = weights_of(con, days)
        for origin in _origins(con, config, days):
            if origin.row_id in values:
                rows += _rows(origin, values[origin.row_id], weights, config.allocation.key)
    return pa.Table.from_pylist(rows, schema=SCHEMA)


def _origins(con: duckdb.DuckDBPyConnection, config: Any, days: list[date]) -> list[Origin]:
    lo, hi = midnight(min(days)), midnight(max(days) + timedelta(days=1))
    # a provider's allocated charge is exported as it came: only origin charges split
    sql = (
        "SELECT row_id, day, environment, cost_center, kind, pool, model, model_how, idle "
        f"FROM ({rows_sql()}) WHERE NOT provider_split ORDER BY row_id"
    )
    found = con.execute(sql, {**params_for(con, config, lo, hi), "days": days}).fetchall()
    return [Origin(*r) for r in found]


def _rows(origin: Origin, values: Sequence[Any], weights: Weights,
          key: str) -> list[dict[str, Any]]:  # fmt: skip
    """The split table's rows of one origin: its parts, the floats split by their ratios
    (the last part taking what is left, so they add up as closely as floats do)."""
    exact, floats = values[: len(EXACT)], values[len(EXACT) :]
    found = parts(origin, exact, weights, key)
    out = []
    left = list(floats)
    for i, part in enumerate(found):
        last = i == len(found) - 1
        row: dict[str, Any] = {f"{PREFIX}row": origin.row_id, f"{PREFIX}part": i}
        for name, amount in zip(EXACT, part.amounts, strict=True):
            row[PREFIX + name] = amount
        for j, (name, whole) in enumerate(zip(FLOATS, floats, strict=True)):
            if whole is None:
                row[PREFIX + name] = None
                continue
            share = left[j] if last else whole * float(part.ratio)
            left[j] -= share
            row[PREFIX + name] = share
        row.update({PREFIX + k: v for k, v in _allocated(origin, part).items()})
        out.append(row)
    return out


def _allocated(origin: Origin, part: Part) -> dict[str, str | None]:
    """The five Allocated* values of one allocated charge."""
    element = f'"AllocatedRatio": {_number(part.ratio)}'
    if part.usage is not None and part.key in UNITS:
        element += f', "UsageUnit": "{UNITS[part.key]}", "UsageQuantity": {part.usage!r}'
    extra = {"x_Method": part.method, "x_Environment": origin.environment,
             "x_CostCenter": origin.cost_center}  # fmt: skip
    details = '{"Elements": [{' + element + "}], " + json.dumps(extra)[1:]
    tags = {f"{TAG}environment": origin.environment, f"{TAG}cost_center": origin.cost_center}
    if part.model is not None:
        tags[f"{TAG}model"] = part.model
    return {
        "AllocatedMethodId": part.key,
        "AllocatedMethodDetails": details,
        "AllocatedResourceId": part.model,
        "AllocatedResourceName": part.model,
        "AllocatedTags": json.dumps(tags, sort_keys=True),
    }


def _number(value: Decimal) -> str:
    """A JSON number with every digit of `value` (a ratio at the ledger's scale)."""
    text = format(value.quantize(PLACES).normalize(), "f")
    return text if text not in ("-0", "") else "0"


SCHEMA = pa.schema(
    [
        (f"{PREFIX}row", pa.int64()),
        (f"{PREFIX}part", pa.int32()),
        *((PREFIX + c, MONEY) for c in EXACT),
        *((PREFIX + c, pa.float64()) for c in FLOATS),
        *((PREFIX + c, pa.string()) for c in ALLOCATED),
    ]
)

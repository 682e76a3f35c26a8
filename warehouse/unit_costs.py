"""Unit costs: the allocated cost beside the work it paid for, on a stated cost basis.

`cost_allocation` (warehouse/allocation.py) says what each model cost per day; the rollups
say what it did. This module puts them side by side for `metrics`: cost, cost per 1k
requests, per 1M tokens and per correct answer (cost / (requests × accuracy)), in the
reporting currency. Its rows include environments that only cost money (idle capacity,
`unallocated`), so the costs of `metrics --by environment` add up to the ledger.

Plain rows and no Polars at import: `hybridlens metrics` stays a light command.
"""

from __future__ import annotations

from typing import Any

from warehouse.config import Config
from warehouse.db import read_sql
from warehouse.money import MoneyError, refuse_unconverted
from warehouse.session import Session

Row = dict[str, Any]

BASES = ("full", "marginal")
COST_KEYS = (
    "cost",
    "currency",
    "cost_per_1k_requests",
    "cost_per_1m_tokens",
    "cost_per_correct_answer",
)
COST_TYPES = {"currency": "String"} | dict.fromkeys(
    (k for k in COST_KEYS if k != "currency"), "Float64"
)


def check_basis(basis: str) -> str:
    if basis not in BASES:
        raise ValueError(f"the cost basis must be one of {', '.join(BASES)}, got {basis!r}")
    return basis


def cost_rows(
    s: Session,
    config: Config,
    group: tuple[str, ...],
    params: dict[str, Any],
    *,
    basis: str = "full",
) -> dict[tuple[Any, ...], Row] | None:
    """Allocated cost per group key (the group's values, or ("all",) for the fleet); None
    when the rows are split by version, which the allocation does not know. A MoneyError
    when a cost in the range has no rate into the reporting currency (it names the currency
    and the rate to add), or the days were allocated under different reporting currencies:
    a sum without those costs, or of two currencies, would be wrong."""
    if "version" in group:
        return None
    cols = ", ".join(group) or "'all' AS fleet"
    found = s.rows(
        "metrics_cost",
        read_sql("metrics_cost").format(group=cols),
        {**params, "marginal": check_basis(basis) == "marginal"},
    )
    refuse_unconverted(found, config)
    currencies = {c for r in found for c in r["reporting_currencies"] or []}
    if len(currencies) > 1:  # days allocated under configs of different reporting currencies
        raise MoneyError(
            f"the allocation mixes {', '.join(sorted(currencies))}: run a load given the config "
            "(`--config`), which allocates every day again in one reporting currency"
        )
    keys = group or ("fleet",)
    return {
        tuple(r[k] for k in keys): r | {"currency": next(iter(currencies))}
        for r in found
        if r["cost"] is not None
    }


def _per(cost: float, amount: float | None, scale: float) -> float | None:
    return cost / amount * scale if amount else None


def figures(cost: Any, row: Row, currency: str | None) -> Row:
    """The cost keys of one metrics row from its cost and its request figures."""
    if cost is None:
        return dict.fromkeys(COST_KEYS)
    value = float(cost)
    requests = float(row.get("requests") or 0)
    tokens = float(row.get("input_tokens") or 0) + float(row.get("output_tokens") or 0)
    accuracy = row.get("accuracy")
    correct = requests * accuracy if accuracy is not None else None
    return {
        "cost": value,
        "currency": currency,
        "cost_per_1k_requests": _per(value, requests, 1000.0),
        "cost_per_1m_tokens": _per(value, tokens, 1_000_000.0),
        "cost_per_correct_answer": _per(value, correct, 1.0),
    }


def join_cost(
    rows: list[Row], keys: tuple[str, ...], costs: dict[tuple[Any, ...], Row] | None, blank: Row
) -> list[Row]:
    """`rows` with the cost keys; a group with cost but no row gains one (`blank`'s figures:
    no requests), so idle capacity and the unallocated cost are never out of sight."""
    present = set()
    for r in rows:
        key = tuple(r[k] for k in keys)
        present.add(key)
        found = (costs or {}).get(key, {})
        r.update(figures(found.get("cost"), r, found.get("currency")))
    for key, found in (costs or {}).items():
        if key in present:
            continue
        row = {**dict(zip(keys, key, strict=True)), **blank}
        row.update(figures(found["cost"], row, found["currency"]))
        rows.append(row)
    return sorted(rows, key=lambda r: tuple((r[k] is None, r[k] or "") for k in keys))

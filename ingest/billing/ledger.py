"""From a format's line items to `billing` rows: the replace unit, our bookkeeping columns
and the counts the load report gives, made once for every billing format.

The unit is (provider, billing account, billing period start, dataset) as DESIGN.md
defines it, made by `warehouse.tables.replace_unit` under the prefix `billed`, so no cloud
unit can ever equal a modelled one (`modelled/...`) and a later CUR or Azure reader that
fills the same FOCUS columns lands in the same units. The unit is computed once per
distinct key in Python and spread over the rows with Arrow, never row by row.

A row without a provider, account or billing period belongs to no delivery and is
quarantined; every other null that FOCUS forbids, and every usage row with a negative
cost (an in-period correction, as in the public FOCUS sample), is loaded as delivered and
counted.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc

from ingest.billing.formats import Read
from ingest.contract import Rejected
from warehouse.focus_spec import NOT_NULL
from warehouse.tables import replace_unit

PREFIX = "billed"
UNIT = ("ProviderName", "BillingAccountId", "BillingPeriodStart")
ROW = "_row"
SEP = "\x1f"


def period(start: datetime) -> str:
    """A billing period's part of the unit: its start, as a date when it starts at midnight."""
    start = start.astimezone(UTC)
    if start == start.replace(hour=0, minute=0, second=0, microsecond=0):
        return start.date().isoformat()
    return start.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def ledger_rows(read: Read, uri: str) -> tuple[pa.Table, list[Rejected], Counter[str]]:
    """The `billing` rows of one file, the rows quarantined for lacking a unit part, and
    the counts of what was loaded as delivered."""
    rows = read.rows
    noted: Counter[str] = Counter()
    rejected: list[Rejected] = []
    if rows.num_rows == 0:
        return rows, rejected, noted
    keyless = pc.or_kleene(
        pc.or_kleene(pc.is_null(rows["ProviderName"]), pc.is_null(rows["BillingAccountId"])),
        pc.is_null(rows["BillingPeriodStart"]),
    )
    if pc.any(keyless).as_py():
        bad = rows.filter(keyless)
        for number, raw, *parts in zip(
            bad[ROW].to_pylist(), bad["x_SourceRow"].to_pylist(),
            *(bad[c].to_pylist() for c in UNIT), strict=True,
        ):  # fmt: skip
            empty = ", ".join(c for c, v in zip(UNIT, parts, strict=True) if v is None)
            rejected.append(
                Rejected(
                    f"row {number}",
                    f"{empty} is null: a line item without a provider, billing account and "
                    "billing period belongs to no delivery, so it was not loaded",
                    str(raw or "")[:500],
                )
            )
        rows = rows.filter(pc.invert(keyless))
    for column in NOT_NULL:
        n = rows[column].null_count
        if n and column not in UNIT:
            noted[f"rows with a null {column} (FOCUS says not null), loaded as delivered"] += n
    negative = pc.and_kleene(
        pc.equal(rows["ChargeCategory"], "Usage"), pc.less(rows["EffectiveCost"], 0)
    )
    n = pc.sum(pc.cast(pc.fill_null(negative, False), pa.int64())).as_py() or 0
    if n:
        noted["usage rows with a negative EffectiveCost (corrections), loaded as delivered"] += n
    return _with_units(rows, read, uri), rejected, noted


def _with_units(rows: pa.Table, read: Read, uri: str) -> pa.Table:
    starts = pc.strftime(rows["BillingPeriodStart"], "%Y-%m-%dT%H:%M:%S")
    key = pc.binary_join_element_wise(rows["ProviderName"], rows["BillingAccountId"], starts, SEP)
    distinct = pc.unique(key)
    firsts = pc.index_in(distinct, value_set=key)  # the first row of each key
    units = []
    for first in firsts.to_pylist():
        provider = rows["ProviderName"][first].as_py()
        account = rows["BillingAccountId"][first].as_py()
        start = rows["BillingPeriodStart"][first].as_py()
        units.append(replace_unit(PREFIX, provider, account, period(start), read.dataset))
    unit = pc.take(pa.array(units, pa.string()), pc.index_in(key, value_set=distinct))
    n = rows.num_rows
    rows = rows.rename_columns(["x_SourceRowNumber" if c == ROW else c for c in rows.column_names])
    return (
        rows.append_column("x_ReplaceUnit", unit)
        .append_column("x_Modelled", pa.array([False] * n, pa.bool_()))
        .append_column("x_SourceFormat", pa.array([read.version] * n, pa.string()))
        .append_column("x_SourceUri", pa.array([uri] * n, pa.string()))
    )

"""How each table is written: its key, its disposition, its time column and its hooks.

One declaration per table, beside its migration, is all `warehouse.publish` needs: a new
table is one `TableSpec` and one migration, never a new publish function. The spec says
what a second delivery of the same data does (nothing, for `merge`; it replaces its
partition, for `replace`), so idempotence is a property of the table, not of a collector.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING
from urllib.parse import quote

if TYPE_CHECKING:
    import duckdb

# A hook runs inside the publish transaction, after every table is written, with the hours
# (UTC, truncated) the load touched in the tables that declare it.
Hook = Callable[["duckdb.DuckDBPyConnection", "set[datetime]"], None]


class Disposition(StrEnum):
    """What publishing a batch does to the rows already in the table."""

    APPEND = "append"  # insert every row: the source never repeats itself
    MERGE = "merge"  # insert rows whose key is new (anti-join within the batch's time range)
    REPLACE = "replace"  # delete the partitions present in the batch, then insert it


@dataclass(frozen=True)
class TableSpec:
    """The write spec of one table; `docs/schema.md` documents each one (a test checks)."""

    name: str
    disposition: Disposition
    # merge: the key that makes a row the same row; replace: the partition columns
    key: tuple[str, ...] = ()
    time_column: str | None = None  # bounds the anti-join and says which hours a row touches
    keep_first_by: str | None = None  # in-batch duplicates of a key: the first by this order
    # replace: a batch's rows equal in these columns are one row (a copy of a file beside
    # it in one delivery), counted as duplicates
    unique: tuple[str, ...] = ()
    # replace: a query (warehouse/queries/<supersedes>.sql) making `_superseded_<name>` from
    # `_batch_<name>`: the earlier partitions (key columns) the batch replaces beside its
    # own, with `_file` (the input whose rows do), `replaced` (what the load report says) and
    # `n` (the rows replaced); for data that two deliveries describe differently
    supersedes: str | None = None
    # a query (warehouse/queries/<prepare>.sql) that turns `_batch_<name>` into
    # `_fresh_<name>` (the rows to insert) and `_new_<name>` (their key, time and `_file`
    # columns at least) itself, for tables whose rows are completed at publish (spans)
    prepare: str | None = None
    # queries run after the insert, each returning the times of older rows it changed
    # (they read `_new_<name>`)
    after: tuple[str, ...] = ()
    touches: str | None = None  # a query returning the times the new rows touch
    hooks: tuple[Hook, ...] = ()
    load_id_column: str | None = "load_id"
    # DuckDB's memory for this table's publish (it spills past it): the blocks a big insert
    # writes otherwise stay cached up to 80% of the machine's memory
    memory_limit: str | None = None

    def __post_init__(self) -> None:
        if self.disposition is not Disposition.APPEND and not self.key:
            raise ValueError(f"table {self.name!r}: a {self.disposition} table needs a key")
        if self.disposition is Disposition.MERGE and self.time_column is None:
            raise ValueError(f"table {self.name!r}: merge dedupes within a time range")


def _rollups(con: duckdb.DuckDBPyConnection, hours: set[datetime]) -> None:
    from warehouse import rollups  # looked up at call time: tests replace refresh_rollups

    rollups.refresh_hours(con, hours)


def _uptime(con: duckdb.DuckDBPyConnection, hours: set[datetime]) -> None:
    from warehouse import rollups

    rollups.refresh_uptime_hours(con, hours)


def _gpu_hours(con: duckdb.DuckDBPyConnection, hours: set[datetime]) -> None:
    from warehouse import gpu_rollups  # looked up at call time, like the rollups

    gpu_rollups.refresh_gpu_hours(con, hours)


def _gpu_cost(con: duckdb.DuckDBPyConnection, hours: set[datetime]) -> None:
    from warehouse import cost_ledger  # after the GPU rollup hook: it reads rollup_gpu_hours

    cost_ledger.refresh_hours(con, hours)


def _allocation(con: duckdb.DuckDBPyConnection, hours: set[datetime]) -> None:
    from warehouse import allocation  # last: it reads the rollups and the modelled rows

    allocation.refresh_hours(con, hours)


def _gpu_allocation(con: duckdb.DuckDBPyConnection, hours: set[datetime]) -> None:
    from warehouse import allocation, cost_ledger

    # the days the cost model repriced: a sample's energy and time reach back over midnight
    allocation.refresh_days(con, cost_ledger.touched_days(con, hours))


def _span_allocation(con: duckdb.DuckDBPyConnection, hours: set[datetime]) -> None:
    from warehouse import allocation  # after the rollups: requests and tokens are keys

    allocation.refresh_hours(con, hours, heal=False)


def replace_unit(*parts: str) -> str:
    """The `billing.x_ReplaceUnit` of a delivery or a modelled day: its parts joined by `/`,
    each percent-encoded, so no environment or account name can fake another's unit."""
    return "/".join(quote(part, safe="") for part in parts)


TABLES: Mapping[str, TableSpec] = {
    spec.name: spec
    for spec in (
        TableSpec(
            "spans",
            Disposition.MERGE,
            key=("trace_id", "span_id"),
            time_column="start_time",
            keep_first_by="start_time",
            prepare="publish_spans",
            after=("publish_span_models", "publish_span_demote"),
            hooks=(_rollups, _uptime, _span_allocation),
        ),
        TableSpec(
            "evaluations",
            Disposition.MERGE,
            key=("trace_id", "span_id", "evaluation_name", "time"),
            time_column="time",
            keep_first_by="origin",
            touches="publish_evaluations_touch",
            hooks=(_rollups,),
        ),
        TableSpec(
            "gpu_samples",
            Disposition.MERGE,
            key=("host", "gpu_uuid", "mig_instance", "ts"),
            time_column="ts",
            # the cost model reads the GPU rollup, the allocation both: they run in order
            hooks=(_gpu_hours, _gpu_cost, _gpu_allocation),
        ),
        TableSpec(
            "billing",
            Disposition.REPLACE,
            key=("x_ReplaceUnit",),
            time_column="ChargePeriodStart",
            unique=("x_ReplaceUnit", "x_SourceRowNumber", "x_SourceRow"),
            keep_first_by='_file, "x_SourceRowNumber"',
            # Azure's FOCUS export and its cost details describe the same charges; its actual
            # and amortized cost details share one month's measures (docs/billing.md)
            supersedes="billing_supersedes",
            after=("billing_split_measures",),
            hooks=(_allocation,),
            memory_limit="1GB",  # a ten-million-row export is one insert
        ),
    )
}

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

import json
import shutil
import tempfile
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ingest.contract import Rejected
from warehouse.focus_spec import ALLOWED, NOT_NULL
from warehouse.stage import StagedFile
from warehouse.tables import replace_unit

PREFIX = "billed"
UNIT = ("ProviderName", "BillingAccountId", "BillingPeriodStart")
ROW = "_row"
SPILL_ROWS = 100_000  # past this many rows, a file's rows go to Parquet as they come
ROW_GROUP = 122_880  # DuckDB's own row group: the publish reads them on every core
RAW = "x_SourceRow"
# the staged file lives for one publish: lz4 writes it in two thirds of zstd's time and the
# publish reads it faster, for a file about twice as big (25 MB at 200k FOCUS rows)
CODEC = "lz4"


def period(start: datetime) -> str:
    """A billing period's part of the unit: its start, as a date when it starts at midnight."""
    start = start.astimezone(UTC)
    if start == start.replace(hour=0, minute=0, second=0, microsecond=0):
        return start.date().isoformat()
    return start.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Ledger:
    """The `billing` rows of one file, made batch by batch as the file is read: each batch's
    keyless rows quarantined and its counts added up, the units found once per key for the
    whole file. Up to SPILL_ROWS rows are kept in memory (a test's file, most deliveries);
    past that they go to a Parquet file the stage adopts, so a ten-million-row export
    costs the memory of a few batches, not of the whole file."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.rejected: list[Rejected] = []
        self.noted: Counter[str] = Counter()
        self._units: dict[tuple[object, ...], str] = {}
        self._frames: list[pa.Table] = []
        self._in_memory = 0
        self._rows = 0
        self._writer: pq.ParquetWriter | None = None
        self._folder: Path | None = None

    def add(self, rows: pa.Table, version: str, dataset: str) -> None:
        """One batch of a format's line items, in file order."""
        if rows.num_rows == 0:
            return
        rows = self._checked(rows)
        if rows.num_rows == 0:
            return
        rows = self._with_units(rows, version, dataset)
        self._rows += rows.num_rows
        if self._writer is None:
            self._frames.append(rows)
            self._in_memory += rows.num_rows
            if self._in_memory < SPILL_ROWS:
                return
            self._folder = Path(tempfile.mkdtemp(prefix="hybridlens-billing-stage-"))
            self._writer = pq.ParquetWriter(
                self._folder / "billing.parquet", _json_raw(rows).schema, compression=CODEC
            )
            for frame in self._frames[:-1]:  # one at a time: a concatenated copy cost memory
                self._writer.write_table(_json_raw(frame), row_group_size=ROW_GROUP)
            self._frames = []
        self._writer.write_table(_json_raw(rows), row_group_size=ROW_GROUP)

    def finish(self) -> tuple[pa.Table | None, StagedFile | None]:
        """The rows in memory, or the file they were written to (None: no rows)."""
        if self._writer is None:
            return (pa.concat_tables(self._frames) if self._frames else None), None
        self._writer.close()
        pa.default_memory_pool().release_unused()  # the batches' memory, before the publish
        assert self._folder is not None
        return None, StagedFile(self._folder / "billing.parquet", self._rows, self._folder)

    def discard(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
        self._frames, self._writer, self._folder = [], None, None

    def _checked(self, rows: pa.Table) -> pa.Table:
        """Quarantine the rows without a unit part; count what is loaded as delivered."""
        keyless = pc.or_kleene(
            pc.or_kleene(pc.is_null(rows["ProviderName"]), pc.is_null(rows["BillingAccountId"])),
            pc.is_null(rows["BillingPeriodStart"]),
        )
        if pc.any(keyless).as_py():
            bad = rows.filter(keyless)
            for number, raw, *parts in zip(
                bad[ROW].to_pylist(), bad[RAW].to_pylist(),
                *(bad[c].to_pylist() for c in UNIT), strict=True,
            ):  # fmt: skip
                empty = ", ".join(c for c, v in zip(UNIT, parts, strict=True) if v is None)
                self.rejected.append(
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
                self.noted[
                    f"rows with a null {column} (FOCUS says not null), loaded as delivered"
                ] += n
        for column, allowed in ALLOWED.items():
            values = rows[column]
            unknown = pc.and_kleene(
                pc.is_valid(values), pc.invert(pc.is_in(values, value_set=pa.array(allowed)))
            )
            if n := _count(unknown):
                seen = sorted(set(values.filter(unknown).to_pylist()))
                shown = ", ".join(json.dumps(v)[:40] for v in seen[:3])
                more = f" and {len(seen) - 3} more" if len(seen) > 3 else ""
                self.noted[
                    f"rows whose {column} is none of FOCUS's values ({shown}{more}), "
                    "loaded as delivered"
                ] += n
        for start, end in PERIODS:  # a charge's day is its start's, so it still counts once
            if n := _count(pc.less(rows[end], rows[start])):
                self.noted[f"rows whose {end} is before their {start}, loaded as delivered"] += n
        negative = pc.and_kleene(
            pc.equal(rows["ChargeCategory"], "Usage"), pc.less(rows["EffectiveCost"], 0)
        )
        if n := _count(negative):
            self.noted[
                "usage rows with a negative EffectiveCost (corrections), loaded as delivered"
            ] += n
        return rows

    def _with_units(self, rows: pa.Table, version: str, dataset: str) -> pa.Table:
        # each row's key as one integer, from the unit columns' dictionary codes (two
        # columns at a time, re-coded, so the product never overflows): a string key per
        # row cost more than the rest of the ledger together
        code = None
        for column in UNIT:
            encoded = pc.dictionary_encode(rows[column].combine_chunks())
            indices = pc.cast(encoded.indices, pa.int64())
            if code is None:
                code = indices
                continue
            combined = pc.add(pc.multiply(code, len(encoded.dictionary)), indices)
            code = pc.cast(pc.dictionary_encode(combined).indices, pa.int64())
        distinct = pc.unique(code)
        firsts = pc.index_in(distinct, value_set=code)  # the first row of each key
        units = []
        for first in firsts.to_pylist():
            key = tuple(rows[c][first].as_py() for c in UNIT)
            if key not in self._units:
                provider, account, start = key
                self._units[key] = replace_unit(PREFIX, provider, account, period(start), dataset)
            units.append(self._units[key])
        unit = pc.take(pa.array(units, pa.string()), pc.index_in(code, value_set=distinct))
        n = rows.num_rows
        rows = rows.rename_columns(
            ["x_SourceRowNumber" if c == ROW else c for c in rows.column_names]
        )
        return (
            rows.append_column("x_ReplaceUnit", unit)
            .append_column("x_Modelled", pa.array([False] * n, pa.bool_()))
            .append_column("x_SourceFormat", pa.array([version] * n, pa.string()))
            .append_column("x_SourceUri", pa.array([self.uri] * n, pa.string()))
        )


def _json_raw(rows: pa.Table) -> pa.Table:
    """The raw row typed JSON in the staged file (the same text: the type is a label on it),
    so the publish stores it as it is. `warehouse.tabular` makes it from each value's own
    `to_json`, so it is a JSON object by construction; the insert's cast from text checked
    it again (about 3% of the insert's CPU at 200k FOCUS rows)."""
    at = rows.schema.get_field_index(RAW)
    if at < 0 or not pa.types.is_string(rows.schema.field(at).type):
        return rows
    chunks = [pa.ExtensionArray.from_storage(pa.json_(), c) for c in rows[RAW].chunks]
    return rows.set_column(at, RAW, pa.chunked_array(chunks, pa.json_()))


PERIODS = (("ChargePeriodStart", "ChargePeriodEnd"), ("BillingPeriodStart", "BillingPeriodEnd"))


def _count(mask: pa.ChunkedArray | pa.Array) -> int:
    """How many rows a boolean mask holds true (a null is not)."""
    return int(pc.sum(pc.cast(pc.fill_null(mask, False), pa.int64())).as_py() or 0)

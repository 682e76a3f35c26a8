"""The ledger as a FOCUS dataset: one billing month of `billing` (cloud bills, on-prem and
edge modelled cost alike) written as FOCUS 1.2 or 1.3, so other FinOps tools can read
what hybridlens knows, above all the cost of hardware no cloud bills.

Every column of the version is present, in the spec's spelling, whether or not a source
filled it; the few a source may lack are derived as the spec allows (`ServiceSubcategory`
`Other (<ServiceCategory>)`, the 1.3 provider pair from `ProviderName`), a provider's own
legal entity is named as the provider in `InvoiceIssuerName` (`OWN_ISSUERS`), and nothing
else is invented: `InvoiceId` stays null where there is no invoice. Money stays DECIMAL(38, 12)
in Parquet (a decimal type) and in CSV (its exact text). Our `x_` columns that say where a
cost belongs and what a modelled cost is made of go along; the raw source rows do not.

The file is written beside its target and renamed into place, so a reader never sees half
an export and a failed one leaves the previous file.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from warehouse.cost_model import COST_PARTS, HOUR_PARTS
from warehouse.db import Warehouse
from warehouse.errors import UserError
from warehouse.focus_spec import COLUMNS, VERSIONS
from warehouse.focus_split import ALLOCATED, EXACT, FLOATS, PREFIX, split_table
from warehouse.tabular import Kind

EXPORT_VERSIONS = ("1.2", "1.3")
SUFFIXES = (".parquet", ".csv")
# Ours, exported: where a cost belongs and what a modelled cost is made of.
OURS = (
    "x_Environment",
    "x_Modelled",
    "x_Pool",
    "x_GpuModel",
    "x_SourceFormat",
    *COST_PARTS,
    *HOUR_PARTS,
    "x_EnergyKwh",
    "x_Co2eKg",
)
# A 1.2 export's split cost allocation columns (1.3 has them as FOCUS columns)
SPLIT_OURS = tuple(f"x_{c}" for c in ALLOCATED)
# The invoicing legal entities of providers that invoice their own services. FOCUS's
# ProviderName/InvoiceIssuerName pair tells a resale or marketplace charge by the two
# differing (the validator's BilledCost-C-005-C), and AWS writes its legal entities
# (`Amazon Web Services EMEA SARL`) beside the provider `AWS`: such an issuer is the
# provider itself, so the export names it as the provider; the billed name goes along
# as x_InvoiceIssuerBilledName. A reseller (an Azure partner) keeps its own name.
OWN_ISSUERS = {
    "AWS": ("aws", "amazon web services%"),
    "Microsoft": ("microsoft%",),
    "Google Cloud": ("google%",),
    "Oracle": ("oracle%",),
}
_OWN = " OR ".join(
    f"(ProviderName = '{provider}' AND ("
    + " OR ".join(f"lower(InvoiceIssuerName) LIKE '{p}'" for p in patterns)
    + "))"
    for provider, patterns in OWN_ISSUERS.items()
)
ISSUER_BILLED = "x_InvoiceIssuerBilledName"
# What a column holds when the ledger row has none, where the spec allows one.
DERIVED = {
    "InvoiceIssuerName": f"CASE WHEN {_OWN} THEN ProviderName ELSE InvoiceIssuerName END",
    "ServiceSubcategory": "coalesce(ServiceSubcategory, 'Other (' || ServiceCategory || ')')",
    "ServiceProviderName": "coalesce(ServiceProviderName, ProviderName)",
    "HostProviderName": "coalesce(HostProviderName, ServiceProviderName, ProviderName)",
}
TIME_TEXT = "%Y-%m-%dT%H:%M:%SZ"  # FOCUS's date-time format, in UTC


class ExportError(UserError):
    """The export cannot be written as asked: the message says why."""


@dataclass(frozen=True)
class Exported:
    path: Path
    version: str
    month: date
    rows: int
    columns: int
    allocated: int  # of `rows`, the allocated charges that replace their origin rows
    origins: int  # the ledger rows split to models
    currencies: tuple[str, ...]


def focus_columns(version: str) -> list[str]:
    """Every FOCUS column of `version`, in the catalogue's order."""
    if version not in EXPORT_VERSIONS:
        raise ExportError(f"FOCUS {version} is not exported: choose {' or '.join(EXPORT_VERSIONS)}")
    upto = VERSIONS.index(version)
    return [name for name, (_, since) in COLUMNS.items() if VERSIONS.index(since) <= upto]


def parse_month(text: str) -> date:
    try:
        return datetime.strptime(text, "%Y-%m").date()
    except ValueError:
        raise ExportError(f"--month {text!r} is not a month: write it as YYYY-MM") from None


def export_focus(warehouse: Warehouse, month: date, out: Path, version: str = "1.2") -> Exported:
    """Write the billing period that starts in `month` to `out` (.parquet or .csv)."""
    columns = focus_columns(version)
    suffix = out.suffix.lower()
    if suffix not in SUFFIXES:
        raise ExportError(f"{out} must end in .parquet or .csv: the format is told from it")
    start = datetime(month.year, month.month, 1, tzinfo=UTC)
    end = datetime(month.year + month.month // 12, month.month % 12 + 1, 1, tzinfo=UTC)
    text = suffix == ".csv"
    select = [f"{_value(c, text)} AS {_q(c)}" for c in columns]
    select += [f"{_split(c, _q(c))} AS {_q(c)}" for c in OURS]
    select.append(f"InvoiceIssuerName AS {ISSUER_BILLED}")
    if "AllocatedMethodId" not in columns:  # 1.2 has no split columns: ours carry them
        select += [
            f"{_q(PREFIX + c)} AS {_q(x)}" for c, x in zip(ALLOCATED, SPLIT_OURS, strict=True)
        ]
    sql = (
        f"SELECT {', '.join(select)} FROM billing LEFT JOIN _focus_splits "
        f"ON {PREFIX}row = billing.rowid "
        "WHERE BillingPeriodStart >= $start AND BillingPeriodStart < $end "
        "ORDER BY ChargePeriodStart, x_ReplaceUnit, x_SourceRowNumber NULLS LAST, ResourceId, "
        f"billing.rowid, {PREFIX}part"
    )
    with warehouse.read() as con:
        from warehouse.db import run

        splits = split_table(con, start, end)
        con.register("_focus_splits", splits)
        try:
            frame = run(con, "focus_export", sql, {"start": start, "end": end})
        finally:
            con.unregister("_focus_splits")
    table = frame.to_arrow()
    _write(table, out, text)
    currencies = tuple(sorted({c for c in frame["BillingCurrency"].to_list() if c}))
    origins = len(set(splits.column(f"{PREFIX}row").to_pylist()))
    return Exported(
        out,
        version,
        month,
        frame.height,
        len(table.column_names),
        splits.num_rows,
        origins,
        currencies,
    )


def _value(column: str, text: bool) -> str:
    value = _split(column, DERIVED.get(column, _q(column)))
    kind = COLUMNS[column][0]
    if text and kind is Kind.TIME:
        return f"strftime({value}, '{TIME_TEXT}')"
    if kind is Kind.JSON:
        return f"{value}::VARCHAR"
    return value


def _split(column: str, value: str) -> str:
    """An allocated charge's own value where the column is split, else the origin's."""
    if column in EXACT or column in FLOATS:
        return f"CASE WHEN {PREFIX}row IS NULL THEN {value} ELSE {_q(PREFIX + column)} END"
    if column in ALLOCATED:
        return f"CASE WHEN {PREFIX}row IS NULL THEN {value}::VARCHAR ELSE {_q(PREFIX + column)} END"
    return value


def _write(table: object, out: Path, text: bool) -> None:
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    assert isinstance(table, pa.Table)
    folder = out.parent
    if not folder.is_dir():
        raise ExportError(f"cannot write {out}: the folder {folder} does not exist")
    fd, name = tempfile.mkstemp(prefix=f".{out.name}.", dir=folder)
    os.close(fd)
    partial = Path(name)
    try:
        if text:
            pacsv.write_csv(table, partial, pacsv.WriteOptions(quoting_style="needed"))
        else:
            pq.write_table(table, partial, compression="zstd")
        partial.replace(out)
    except OSError as exc:
        raise ExportError(f"cannot write {out}: {exc.strerror or exc}") from None
    finally:
        partial.unlink(missing_ok=True)


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'

"""How a display table is shown: right-aligned numbers, the Status colours, and a CSV
download that a spreadsheet cannot run as formulas.

`dashboard.tables` builds the tables (figures as labels); this module only presents them,
so every page's tables look and download alike.
"""

from __future__ import annotations

import re
from typing import Any

import polars as pl

from dashboard.formatting import DASH
from warehouse import slo

STATUS_STYLE = {
    slo.BREACH: "background-color: #FDE2E1; color: #9B1C1C; font-weight: 600",
    slo.AT_RISK: "background-color: #FEF3C7; color: #92400E; font-weight: 600",
    slo.MET: "background-color: #DCFCE7; color: #166534",
    slo.NO_SLO: "color: #6B7280",
}


# Columns that hold numbers formatted as text (so "—" can stand in for a missing one):
# pages right-align them like the numeric columns beside them.
RIGHT_ALIGNED = frozenset(
    {
        "Availability",
        "Availability SLO",
        "Uptime",
        "p50 (ms)",
        "p95 (ms)",
        "p95 SLO (ms)",
        "p99 (ms)",
        "Accuracy",
        "Accuracy 95% interval",
        "95% interval",
        "Accuracy floor",
        "Floor",
        "Input tokens",
        "Output tokens",
        "Error rate",
        "Budget left (30 d)",
        "Usual requests",
    }
)
COUNT_COLUMNS = frozenset({"Requests", "Errors", "Evaluations", "Down minutes"})

# A table wider than the page scrolls sideways (the models table has 20 columns): the
# leading columns that say what a row is stay pinned, so a p99 or a token count far to the
# right is still read against its environment and model.
ROW_NAMES = frozenset({"Status", "Environment", "Model", "Version"})
WIDE = 9
# Columns whose longest value may sit in any row: Streamlit sizes a column from the rows it
# first measures, and cut "p95 latency" to "p95 latenc" when "accuracy" came first.
MEDIUM = frozenset({"Missed"})
# Cloud resource ids (an ARN is up to 2,048 characters) sized to their content pushed the
# columns after them off the table: they get a fixed large width, the whole id on hover and
# in the CSV.
LARGE = frozenset({"Resource", "Commitment"})


def styled(table: pl.DataFrame) -> Any:
    """A pandas Styler colouring the Status column (Streamlit and HTML reports both take it)."""
    frame = table.to_pandas()
    style = frame.style
    if "Status" in frame.columns:
        style = style.map(lambda v: STATUS_STYLE.get(v, ""), subset=["Status"])
    return style


# A text cell a spreadsheet would run as a formula (`=HYPERLINK(...)` in a service name from
# a bill) is quoted in a CSV download with a leading apostrophe, as OWASP advises; a number
# shown as text (`-15.00`, `+3.0%`) is left as it is.
FORMULA = r"^[=+\-@\t\r]"
NUMBER = r"^[-+]?[\d,]*\.?\d+%?$"


def csv_bytes(table: pl.DataFrame) -> bytes:
    """The table as UTF-8 CSV, header first, cells as shown, formula-like text made inert."""
    inert = [
        pl.when(pl.col(c).str.contains(FORMULA) & ~pl.col(c).str.contains(NUMBER))
        .then(pl.lit("'") + pl.col(c)).otherwise(pl.col(c)).alias(c)
        for c, dtype in table.schema.items()
        if dtype == pl.String
    ]  # fmt: skip
    return table.with_columns(inert).write_csv().encode("utf-8")


def csv_name(*parts: str) -> str:
    """A download's file name from its parts: lower case words joined by `-`, then `.csv`."""
    return (re.sub(r"[^a-z0-9]+", "-", "-".join(parts).lower()).strip("-") or "table") + ".csv"


# A label that is a number: "1,234", "-15.00", "98.6%", "2,472.00 USD", "+0.5 pp", "30.0 d".
NUMBER_LABEL = re.compile(r"[+\-−]?\d[\d,]*(\.\d+)?( ?%| [A-Z]{3}| pp| d| h| ms| kWh| W| GiB)?")


def column_config(table: pl.DataFrame, **extra: Any) -> dict[str, Any]:
    """Counts with thousands separators, and numbers-as-text right-aligned like the numeric
    columns beside them (the RIGHT_ALIGNED names, and any text column whose every value is
    a number label or "—"), MEDIUM and LARGE columns of a fixed width, the leading
    ROW_NAMES columns of a WIDE table pinned, plus `extra`."""
    import streamlit as st

    config: dict[str, Any] = {}
    for column in table.columns:
        if column in COUNT_COLUMNS:
            config[column] = st.column_config.NumberColumn(format="localized")
        elif column in RIGHT_ALIGNED or _numbers_as_text(table[column]):
            config[column] = st.column_config.TextColumn(alignment="right")
        elif column in MEDIUM:
            config[column] = st.column_config.TextColumn(width="medium")
        elif column in LARGE:
            config[column] = st.column_config.TextColumn(width="large")
    if len(table.columns) >= WIDE:
        for column in table.columns:
            if column not in ROW_NAMES:
                break
            config[column] = st.column_config.Column(pinned=True)
    return config | extra


def _numbers_as_text(values: pl.Series) -> bool:
    if values.dtype != pl.String:
        return False
    shown = [v for v in values.to_list() if v is not None and v != DASH]
    return bool(shown) and all(NUMBER_LABEL.fullmatch(v) for v in shown)


def show_table(table: pl.DataFrame, file_name: str, *, key: str, shown: Any = None,
               **options: Any) -> None:  # fmt: skip
    """Draw a display table (or `shown`, its styled form) and under it a button that
    downloads the same frame as CSV (`csv_bytes`), named `file_name`. Its columns are
    `column_config`'s unless `options` names others."""
    import streamlit as st  # only this helper draws: the tables are the report's too

    options["column_config"] = column_config(table, **options.get("column_config") or {})
    st.dataframe(table if shown is None else shown, hide_index=True, **options)
    st.download_button(
        "Download CSV", csv_bytes(table), file_name=file_name, mime="text/csv", key=key,
        icon=":material/download:", on_click="ignore", disabled=table.is_empty(),
    )  # fmt: skip

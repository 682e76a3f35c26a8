"""The SQL that types one text value for `warehouse.tabular`: what each kind of wanted
column may hold, the expression that turns its text into that type (NULL when it cannot),
and the reason, for the quarantine, when it cannot. Apart from the reader so the rules for
a value are read in one place.
"""

from __future__ import annotations

from enum import StrEnum

from warehouse.tabular_files import lit as _lit
from warehouse.tabular_files import q as _q

DECIMAL = "DECIMAL(38, 12)"
NUMBER = r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?"  # a number, however big
# The times kept: DuckDB holds years to 294247, but Python's datetime (every reader of the
# warehouse, the after-publish hooks) only 1 to 9999, and a day is added to a charge's day
YEARS = ("0001-01-01 00:00:00", "9999-01-01 00:00:00")


class Kind(StrEnum):
    """What a wanted column holds, and so how its text is checked."""

    TEXT = "text"  # kept as read
    DECIMAL = "decimal"  # DECIMAL(38, 12): money and quantities, never a float
    TIME = "time"  # TIMESTAMPTZ; a time without a zone is UTC
    JSON = "json"  # a JSON object, kept as its text
    JSON_ARRAY = "json array"  # a JSON array (GCP's `credits`, `labels`), kept as its text
    DAY = "day"  # TIMESTAMPTZ at midnight UTC, from M/D/YYYY (as Azure writes) or YYYY-MM-DD


def why(kind: Kind, v: str) -> str:
    """SQL for the reason a text value is not of `kind` (NULL when it is)."""
    if kind is Kind.DECIMAL:
        return (
            f"CASE WHEN {decimal(v)} IS NOT NULL THEN NULL "
            f"WHEN regexp_full_match(trim({v}), '{NUMBER}') THEN "
            "'is out of range for DECIMAL(38, 12) (at most 26 digits before the point)' "
            "ELSE 'is not a number' END"
        )
    if kind in (Kind.TIME, Kind.DAY):
        what = "an ISO 8601 date-time" if kind is Kind.TIME else "a date (M/D/YYYY or YYYY-MM-DD)"
        t = _time(kind, v)
        return (
            f"CASE WHEN {_kept(t)} THEN NULL WHEN isfinite({t}) THEN 'is outside the years 1 "
            f"to 9998 (UTC) that the warehouse keeps' ELSE 'is not {what}' END"
        )
    shape = "ARRAY" if kind is Kind.JSON_ARRAY else "OBJECT"
    return (
        f"CASE WHEN json_valid({v}) AND json_type({v}::JSON) = '{shape}' THEN NULL "
        f"ELSE 'is not a JSON {shape.lower()}' END"
    )


def typed(kind: Kind, value: str) -> str:
    if kind is Kind.DECIMAL:
        return decimal(value)
    if kind in (Kind.TIME, Kind.DAY):
        t = _time(kind, value)
        return f"(CASE WHEN {_kept(t)} THEN {t} END)"
    return f"{value}::VARCHAR"


def decimal(text: str) -> str:
    """SQL: the text `text` as DECIMAL(38, 12), NULL when it is not a number. DuckDB's cast
    also reads digits grouped by underscores (`1_000.5`), which no export writes: in a bill
    that is a damaged value, not a thousand."""
    return f"(CASE WHEN strpos({text}, '_') = 0 THEN TRY_CAST({text} AS {DECIMAL}) END)"


def _kept(t: str) -> str:
    """SQL: the time `t` lies in YEARS (NULL for a NULL `t`)."""
    return f"({t} >= TIMESTAMPTZ '{YEARS[0]}+00' AND {t} < TIMESTAMPTZ '{YEARS[1]}+00')"


def _time(kind: Kind, value: str) -> str:
    if kind is Kind.TIME:
        return f"TRY_CAST({value} AS TIMESTAMPTZ)"
    # a DAY: the shape first, since DuckDB reads '9/2/23' as a date in the year 9
    v = f"trim({value})"
    return (
        rf"(CASE WHEN regexp_full_match({v}, '\d{{1,2}}/\d{{1,2}}/\d{{4}}') THEN "
        f"TRY_STRPTIME({v}, '%m/%d/%Y') WHEN regexp_full_match({v}, "
        rf"'\d{{4}}-\d{{2}}-\d{{2}}([T ].*)?') THEN date_trunc('day', "
        f"TRY_CAST({v} AS TIMESTAMPTZ)) END)::TIMESTAMPTZ"
    )


def value_of(name: str, path: str | None) -> str:
    """A source column's value as text, or its member at `path` (a nested column's)."""
    if path is None:
        return _q(name)
    return (
        f"json_extract_string(CASE WHEN json_valid({_q(name)}) THEN {_q(name)} END, {_lit(path)})"
    )

"""Labels for figures: fractions as percents, milliseconds, counts, UTC times.

Ratios arrive as fractions (0..1) and leave as percent labels; a missing, NaN or infinite
value is shown as "—", never as "nan" or "None". Names that come from telemetry are
HTML-escaped (`safe`) before they reach plotly, whose text accepts a subset of HTML.
"""

from __future__ import annotations

import html
import re
from datetime import date, datetime
from typing import Any

from warehouse.definitions import finite

DASH = "—"


# -- formatting ---------------------------------------------------------------------------------
def fmt_count(value: Any) -> str:
    """12,345 (rounded), or "—"."""
    number = finite(value)
    return DASH if number is None else f"{round(number):,}"


def fmt_number(value: Any, digits: int = 2) -> str:
    """A number with thousands separators and fixed decimals ("48,554.17"), or "—"."""
    number = finite(value)
    return DASH if number is None else f"{number:,.{digits}f}"


def fmt_pct(value: Any, digits: int = 2) -> str:
    """A fraction as a percent label: 0.99617 -> "99.62%"."""
    number = finite(value)
    return DASH if number is None else f"{number * 100:.{digits}f}%"


def fmt_shares(costs: list[Any]) -> list[str]:
    """Each cost as a share of the charges, the positive costs. Over the net total, a
    credit that nearly cancels the charges would put each far above 100%; so the charges'
    shares sum to 100%, and a credit shows what part of them it took back."""
    values = [finite(c) or 0.0 for c in costs]
    charges = sum(v for v in values if v > 0)
    return [f"{v / charges:.1%}" if charges else DASH for v in values]


def fmt_ms(value: Any, unit: bool = True) -> str:
    """Milliseconds: one decimal below 100 ms, whole numbers above ("48.2 ms", "4,794 ms")."""
    number = finite(value)
    if number is None:
        return DASH
    text = f"{number:,.1f}" if abs(number) < 100 else f"{number:,.0f}"
    return f"{text} ms" if unit else text


def fmt_interval(low: Any, high: Any, digits: int = 1) -> str:
    """A 95% interval of fractions: "90.3% – 93.7%"."""
    lo, hi = finite(low), finite(high)
    if lo is None or hi is None:
        return DASH
    return f"{lo * 100:.{digits}f}% – {hi * 100:.{digits}f}%"


def fmt_pp(value: Any, digits: int = 2) -> str:
    """A difference of fractions in percentage points: +0.38 pp."""
    number = finite(value)
    return DASH if number is None else f"{number * 100:+.{digits}f} pp"


def fmt_time(value: datetime | date | None, *, minutes: bool = True) -> str:
    """UTC time as "2026-11-16 09:45" (or a date), or "—"."""
    if value is None:
        return DASH
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M" if minutes else "%Y-%m-%d")
    return value.isoformat()


def safe(text: Any) -> str:
    """Telemetry text made inert for plotly's HTML-like labels."""
    return html.escape(str(text), quote=False)


def md_text(text: Any) -> str:
    """Telemetry or bill text made inert inside Streamlit markdown (a help text, a caption):
    every ASCII punctuation mark backslash-escaped, so a name never becomes a link, markup
    or HTML, and line breaks folded to spaces."""
    return re.sub(r"([!-/:-@\[-`{-~])", r"\\\1", " ".join(str(text).split()))


def fmt_ms_change(value: Any, unit: bool = True) -> str:
    """A change in milliseconds, always signed like the other deltas: "+386 ms"."""
    number = finite(value)
    if number is None:
        return DASH
    return ("+" if number > 0 else "") + fmt_ms(number, unit)

"""The sidebar filters every page shares: time range, environments, models.

Each widget is bound to a URL query parameter (`range`, `env`, `model`), so a copied URL
opens the same view, and a value left at its default is dropped from the URL. The chosen
filters are handed to the pages through `st.session_state` (see `data.current_filters`).
"""

from __future__ import annotations

from datetime import date

import streamlit as st

from dashboard import data
from dashboard.formatting import fmt_time


def render(snap: data.Snapshot) -> data.Filters:
    """Draw the filters and return what they select (the default range when half-picked)."""
    first_default, last_default = data.default_range(snap)
    lowest, highest = snap.pickable
    with st.sidebar:
        st.subheader("Filters")
        picked = st.date_input(
            "Time range (UTC days)",
            value=(first_default, last_default),
            min_value=lowest,
            max_value=highest,
            key="range",
            bind="query-params",
            format="YYYY-MM-DD",
            help=f"Defaults to the last {data.default_days()} days that have data.",
        )
        environments = st.multiselect(
            "Environments",
            options=data.environments(),
            key="env",
            placeholder="All environments",
            bind="query-params",
        )
        models = st.multiselect(
            "Models",
            options=data.models(),
            key="model",
            placeholder="All models",
            bind="query-params",
        )
        st.caption(
            f"{coverage(snap)} Load {snap.load_id or '—'}. "
            "The filters are kept in the URL, so a link shares this view."
        )
    first, last = _range(picked, first_default, last_default, snap)
    return data.filters_for(first, last, tuple(environments), tuple(models))


def _range(
    picked: object, first_default: date, last_default: date, snap: data.Snapshot
) -> tuple[date, date]:
    """(first, last) day from the widget; while only a start is picked, that single day."""
    days = [d for d in picked if isinstance(d, date)] if isinstance(picked, tuple | list) else []
    if isinstance(picked, date):
        days = [picked]
    if not days:
        return first_default, last_default
    first, last = min(days), max(days)
    lowest, highest = snap.pickable
    return max(first, lowest), min(last, highest)


def coverage(snap: data.Snapshot) -> str:
    """What times the warehouse covers, requests apart from the rest: the on-prem cost model
    prices a pool from its purchase date, so costs may reach back years before the first
    trace, and one "Data from" range would read as if the requests did too."""
    first, last = snap.data_first or snap.first, snap.data_last or snap.last
    if not snap.requests:  # `first`/`last` then come from the samples and bills too
        span = f"{fmt_time(first)} to {fmt_time(last)}"
        return f"GPU samples and costs from {span} UTC; no request spans."
    requests = (
        f"Requests from {fmt_time(snap.first)} to {fmt_time(snap.last)} UTC "
        f"({snap.requests:,} spans)"
    )
    if (first, last) == (snap.first, snap.last):
        return requests + "."
    return f"{requests}; with GPU samples and costs, {fmt_time(first)} to {fmt_time(last)}."

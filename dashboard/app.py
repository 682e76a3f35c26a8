"""hybridlens dashboard entry point and its only router (`streamlit run dashboard/app.py`).

`hybridlens dashboard` starts it with HYBRIDLENS_WAREHOUSE (and HYBRIDLENS_CONFIG when
given). The sidebar filters are drawn here, once, so every page shares them; a warehouse
that is missing or empty is a sentence on the page, never a traceback. While
`hybridlens demo` is still loading, a banner above every page says how many days are in
and how many are left, and reruns the page as days arrive.
"""

from __future__ import annotations

from datetime import UTC, datetime

import streamlit as st

from dashboard import data, sidebar
from warehouse.errors import WarehouseError
from warehouse.progress import LoadProgress, read_progress

LOADING_POLL_S = 5  # how often the banner looks at the progress record while a load runs

st.set_page_config(
    page_title="hybridlens",
    page_icon=":material/monitoring:",
    layout="wide",
    initial_sidebar_state="expanded",
)

st.set_option("client.toolbarMode", "viewer")  # no deploy / rerun buttons for viewers

PAGES = [
    st.Page("views/overview.py", title="Fleet overview", icon=":material/dashboard:", default=True),
    st.Page("views/environments.py", title="Environments", icon=":material/dns:"),
    st.Page("views/gpus.py", title="GPUs", icon=":material/memory:"),
    st.Page("views/spend.py", title="Spend", icon=":material/payments:"),
]


def loading_text(progress: LoadProgress) -> str:
    """The banner's sentence: only what the record says is loaded, and what is left."""
    loaded = f"{progress.days_loaded} of {progress.days_total} days"
    through = f" (through {progress.loaded_through})" if progress.loaded_through else ""
    if progress.state == "loading":
        return (
            f"Loading the demo scenario: {loaded} loaded{through}, {progress.files_loaded} "
            "files. The figures cover the loaded days only; this page updates as days arrive."
        )
    why = f" ({progress.message})" if progress.message else ""
    return (
        f"The demo load stopped{why} with {loaded} loaded{through}: the figures cover those "
        "days only. Run `hybridlens demo` again to finish it."
    )


def loading_banner() -> None:
    """Say what is loaded while a load runs; rerun the page when more has been published.

    The page reruns once the warehouse's snapshot (cached for `data.SNAPSHOT_TTL_S`) shows
    a newer load than the one the page was drawn from, so the figures and the banner move
    together; when the load ends the banner waits that long too, so the last rerun never
    draws from a snapshot taken before the last publish.
    """
    path = data.warehouse_path()
    seen = read_progress(path)
    if seen is None or seen.state == "done":
        return
    if seen.state != "loading":
        st.warning(loading_text(seen), icon=":material/hourglass_disabled:")
        return
    drawn_from = data.snapshot().key

    @st.fragment(run_every=LOADING_POLL_S)
    def banner() -> None:
        now = read_progress(path)
        if data.snapshot().key != drawn_from:
            st.rerun()  # the whole page, so its figures take in the new days
        if now is None or now.state != "loading":
            age = datetime.now(UTC) - datetime.fromisoformat(now.updated_at) if now else None
            if age is None or age.total_seconds() > data.SNAPSHOT_TTL_S:
                st.rerun()
        shown = now if now is not None and now.state == "loading" else seen
        st.info(loading_text(shown), icon=":material/hourglass_top:")

    banner()


page = st.navigation(PAGES)
with st.sidebar:
    st.markdown("**hybridlens** · AI models across data centers, clouds and edge")

with data.one_connection():  # this run's reads share one connection
    snap = data.snapshot()
    if snap.state == "ok":
        st.session_state[data.FILTERS_KEY] = sidebar.render(snap)
    else:
        st.session_state.pop(data.FILTERS_KEY, None)

    loading_banner()
    try:
        page.run()
    except WarehouseError as exc:
        st.error(
            "The warehouse could not answer this page. Nothing is lost: reload in a moment. "
            "The reason is below."
        )
        st.code(str(exc), language=None)

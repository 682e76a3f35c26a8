"""hybridlens dashboard entry point and its only router (`streamlit run dashboard/app.py`).

`hybridlens dashboard` starts it with HYBRIDLENS_WAREHOUSE (and HYBRIDLENS_CONFIG when
given). The sidebar filters are drawn here, once, so every page shares them; a warehouse
that is missing or empty is a sentence on the page, never a traceback.
"""

from __future__ import annotations

import streamlit as st

from dashboard import data, sidebar
from warehouse.errors import WarehouseError

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
]

page = st.navigation(PAGES)
with st.sidebar:
    st.markdown("**hybridlens** · AI models across data centers, clouds and edge")

snap = data.snapshot()
if snap.state == "ok":
    st.session_state[data.FILTERS_KEY] = sidebar.render(snap)
else:
    st.session_state.pop(data.FILTERS_KEY, None)

try:
    page.run()
except WarehouseError as exc:
    st.error(
        "The warehouse could not answer this page. Nothing is lost: reload in a moment. "
        "The reason is below."
    )
    st.code(str(exc), language=None)

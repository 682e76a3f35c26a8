"""The Streamlit dashboard: pages, the cached data layer and the figure builders."""

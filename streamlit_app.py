"""Scenario Tuner: the entry point. Sign-in gate, the shared sidebar, then the page."""

import streamlit as st

from dashboard import frame, resources

st.set_page_config(page_title="Scenario Tuner", page_icon="🎛️", layout="wide")
resources.init_state()
user = resources.current_user()
frame.sidebar(user)

PAGES = [
    st.Page("pages/overview.py", title="Overview", icon="🏠", default=True),
    st.Page("pages/new_sweep.py", title="New sweep", icon="➕"),
    st.Page("pages/runs.py", title="Runs", icon="🔄"),
    st.Page("pages/gallery.py", title="Gallery", icon="🖼️"),
    st.Page("pages/review.py", title="Review", icon="⭐"),
    st.Page("pages/decide.py", title="Decide", icon="🧭"),
    st.Page("pages/compare.py", title="Compare", icon="⚖️"),
    st.Page("pages/monitoring.py", title="Monitoring", icon="📈"),
    st.Page("pages/scenarios.py", title="Scenarios", icon="🎯"),
    st.Page("pages/gate.py", title="Gate", icon="🚦"),
    st.Page("pages/settings.py", title="Settings", icon="⚙️"),
]
frame.run_pages(PAGES)

"""Overview: spend (real and emulated apart), outcomes, latency, the queue, recent sweeps,
budgets and anything failing — at a glance."""

import streamlit as st

from dashboard import frame, resources, runs_view
from dashboard import overview_widgets as ov
from dashboard.errors import shown_errors

frame.page_setup()
st.title("Overview")
runs_view.show_flash()

summaries = runs_view.sweeps_or_stop(
    "No sweeps yet. Start with New sweep: upload a test image, pick a few strengths and "
    "steps, and submit — spend, latency and progress show up here.")

numbers = None
queue = resources.queue_status()
with shown_errors("reading spend and outcomes"):
    numbers = ov.headline(*ov.last_days(7))
    ov.spend_panel(numbers, float(resources.effective("daily_budget_usd")),
                   float(resources.effective("monthly_budget_usd")))
    st.divider()
    ov.outcome_panel(numbers, queue)
    if not queue["ok"]:
        st.warning("Redis does not answer, so queue depth and workers are unknown. Start "
                   "redis-server (or `python -m core up`) or fix REDIS_URL.", icon="🚨")

left, right = st.columns([3, 2])
with left:
    st.subheader("Recent sweeps")
    ov.recent_sweeps(summaries[:8])
    st.page_link("pages/runs.py", label="All sweeps on Runs", icon="🔄")
with right:
    st.subheader("Needs attention")
    with shown_errors("checking what is failing"):
        if numbers is not None:
            ov.failing_panel(numbers, resources.health(), summaries[:20], queue)

"""Runs: every sweep with its progress, and a live panel for the chosen one."""

import streamlit as st

from dashboard import (actions, frame, insight_queries, insight_widgets, queries, resources,
                       review_widgets, runs_view)
from dashboard.errors import shown_errors

user = frame.page_setup()
st.title("Runs")
runs_view.show_flash()

summaries = runs_view.sweeps_or_stop("No sweeps yet — start one on New sweep.")

sweep_id = runs_view.choose_sweep(summaries)


def cancel() -> None:
    with shown_errors("cancelling the sweep"):
        outcome = actions.cancel(sweep_id, user=user)
        (st.info if outcome.already_finished else st.success)(outcome.message())


def retry() -> None:
    with shown_errors("retrying failed cells"):
        outcome = actions.retry(sweep_id, user=user)
        (st.success if outcome.queued else st.warning)(outcome.message())


def resume(budget: float | None) -> None:
    with shown_errors("resuming canceled cells"):
        outcome = actions.resume(sweep_id, user=user, budget_usd=budget)
        (st.success if outcome.queued else st.warning)(outcome.message())


@st.fragment(run_every=2)
def live_panel() -> None:
    with shown_errors("refreshing the sweep"):
        summary = queries.sweep_summary(sweep_id)
        if summary is None:
            st.warning(f"Sweep {sweep_id} no longer exists.")
            return
        progress = queries.live_progress(sweep_id)
        runs_view.header(summary, progress)
        runs_view.state_counts(summary)
        runs_view.controls(summary, cancel, retry, resume)
        runs_view.issues(progress)
        review_widgets.sweep_reviews(sweep_id)
        with st.expander("Estimate against actual", expanded=summary.done == summary.total):
            insight_widgets.estimate_vs_actual(*insight_queries.estimate_and_actual(sweep_id))
        runs_view.queue_health(resources.queue_status())


@st.fragment(run_every=2)
def all_sweeps() -> None:
    """Refreshed with the panel above, from the same counts."""
    with shown_errors("refreshing the sweeps"):
        runs_view.sweeps_table(queries.sweep_summaries())


with st.container(border=True):
    live_panel()
st.page_link("pages/gallery.py", label="See this sweep in the gallery", icon="🖼️")
st.page_link("pages/decide.py", label="Which setting to ship: the evidence", icon="🧭")

st.subheader("All sweeps")
all_sweeps()

"""Runs: every sweep with its progress, and a live panel for the chosen one."""

import streamlit as st

from dashboard import actions, frame, queries, resources, runs_view
from dashboard.errors import shown_errors

user = frame.page_setup()
st.title("Runs")
runs_view.show_flash()

summaries = runs_view.sweeps_or_stop("No sweeps yet — start one on New sweep.")

sweep_id = runs_view.choose_sweep(summaries)
chosen = next(s for s in summaries if s.id == sweep_id)
was_running = chosen.done < chosen.total


def cancel() -> None:
    with shown_errors("cancelling the sweep"):
        n, told = actions.cancel(sweep_id, user=user)
        st.success(f"Canceled {n} queued cell(s)." + (
            " In-flight predictions are being cancelled." if told else
            " Redis is down, so in-flight predictions finish on their own."))


def retry() -> None:
    with shown_errors("retrying failed cells"):
        n, queued = actions.retry(sweep_id, user=user)
        st.success(f"{n} cell(s) sent again." if queued else
                   f"{n} cell(s) reset; Redis is down, they are sent when it is back.")


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
        runs_view.controls(summary, cancel, retry)
        runs_view.issues(progress)
        runs_view.queue_health(resources.queue_status())
        if was_running and summary.done >= summary.total:
            queries.sweep_summaries.clear()
            st.rerun(scope="app")  # finished: refresh the table of sweeps too


with st.container(border=True):
    live_panel()
st.page_link("pages/gallery.py", label="See this sweep in the gallery", icon="🖼️")

st.subheader("All sweeps")
runs_view.sweeps_table(summaries)

"""Review: the oldest generation still wanted from you, input beside output; rate, tag, note
and move on by mouse or keyboard. Only the panel reruns on each action; each action is bound
to the generation that was on screen. Below: reviewers, their agreement, and which settings
rate best; the shown settings can be promoted into a scenario."""

import streamlit as st

from dashboard import actions, frame, runs_view
from dashboard import review_widgets as rw
from dashboard.errors import shown_errors
from dashboard.scenario_widgets import promote_form

user = frame.page_setup()
rw.init_state()
st.title("Review")
runs_view.show_flash()

summaries = runs_view.sweeps_or_stop(
    "No sweeps yet — run one on New sweep; its images can be reviewed here as they finish.")

scope = rw.scope_picker(summaries)
done = None
with shown_errors("counting what is left to review"):
    done = rw.progress(user, scope)
if done is None:
    st.stop()
if done.total == 0:
    st.info("No finished images to review in this scope yet. Watch the sweep on Runs; "
            "succeeded images appear here.")
    st.page_link("pages/runs.py", label="See runs", icon="🔄")
    st.stop()


@st.fragment
def review_panel() -> None:
    with shown_errors("showing the review panel"):
        rw.panel(user, scope)
    shown = st.session_state.rv_shown
    left, right = st.columns([1, 2])
    if left.button("Go through them again from the oldest", key="rv_again"):
        with shown_errors("going back to the oldest"):
            rw.start_over(user, scope)
            st.rerun(scope="fragment")
    if shown is not None:
        with right.expander(f"Promote the settings of generation {shown} to a scenario"):
            promote_form(shown, key=f"rv_promote_{shown}", disabled=False,
                         promote=lambda g, name, **options: actions.promote(
                             g, name, user=user, **options))


review_panel()


# Below the panel, each section runs and draws only when opened (lazy expanders): with
# their tables and charts drawn on every load, the browser took ~0.3 s more to settle the page
# a reviewer came for.
@st.fragment  # refreshed by its button, not on a timer: redrawing charts while someone
def team() -> None:  # presses keys would hold up the browser between images
    box = st.expander("Reviewers and agreement", key="rv_team_open", on_change="rerun")
    if box.open:
        with box:
            if st.button("Refresh", key="rv_team_refresh", icon=":material/refresh:"):
                rw.reviews_changed()
            with shown_errors("summarising the reviewers"):
                data = rw.team(user, scope)
                if scope.sweep_id is not None:
                    rw.min_ratings_picker(scope.sweep_id, data.min_ratings, user)
                rw.team_sections(data)
    box = st.expander("Ratings by parameter", key="rv_ratings_open", on_change="rerun")
    if box.open:
        with box, shown_errors("summarising ratings"):
            rw.summary(rw.ratings_summary(scope.sweep_id))


team()

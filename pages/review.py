"""Review: the oldest unreviewed generation, input beside output; rate, tag, note, and move
on — by mouse or keyboard. Progress counts the first 100; the summary shows which settings
rate best, and the current settings can be promoted into a scenario."""

import streamlit as st

from dashboard import actions, frame, resources, runs_view
from dashboard import review_widgets as rw
from dashboard.errors import shown_errors

user = frame.page_setup()
rw.init_state()
st.title("Review")
runs_view.show_flash()

summaries = runs_view.sweeps_or_stop(
    "No sweeps yet — run one on New sweep; its images can be reviewed here as they finish.")

scope = rw.scope_picker(summaries)
done = rw.progress(user, scope)
if done.total == 0:
    st.info("No finished images to review in this scope yet. Watch the sweep on Runs; "
            "succeeded images appear here.")
    st.page_link("pages/runs.py", label="See runs", icon="🔄")
    st.stop()
rw.progress_bar(done)

if st.session_state.rv_current is None:
    st.session_state.rv_current = rw.next_to_review(None, user, scope)
gid = st.session_state.rv_current
if gid is None:
    st.success(f"You have reviewed all {done.total} generations in this scope.", icon="🎉")
    if st.button("Go through them again from the oldest"):
        st.session_state.rv_current = rw.neighbour(None, user, scope)
        st.rerun()
else:
    entry = None
    with shown_errors("loading the generation"):
        entry = rw.item(gid, user)
    if entry is not None:
        images, panel = st.columns([2, 1], gap="medium")
        with images:
            rw.pair(entry, resources.media)
        with panel:
            if entry.review:
                st.caption(f"You reviewed this on {entry.review.updated_at:%d %b %H:%M} UTC; "
                           "saving replaces that review.")
            answer = rw.controls(entry)

        def save_and_advance(rating: int | None) -> None:
            with shown_errors("saving the review"):
                rw.save(gid, user, rating=rating, thumbs=answer.thumbs, tags=answer.tags,
                        note=answer.note, seconds_spent=rw.seconds_on(gid))
                st.session_state.rv_current = rw.next_to_review(gid, user, scope)
                st.session_state.flash.append(("success", f"Saved your review of generation "
                                                          f"{gid}."))
                st.rerun()

        def move(forward: bool) -> None:
            with shown_errors("moving in the queue"):
                target = rw.neighbour(gid, user, scope, forward=forward)
                if target is None:
                    st.info("That is the " + ("last" if forward else "first") +
                            " generation in this scope.")
                    return
                st.session_state.rv_current = target
                st.rerun()

        rw.seconds_on(gid)
        with panel:
            if st.button("Save and next", shortcut="Ctrl+Enter", type="primary",
                         icon=":material/check:", width="stretch"):
                save_and_advance(answer.rating)
            prev_col, next_col = st.columns(2)
            if prev_col.button("Previous", shortcut="K", icon=":material/arrow_back:",
                               width="stretch"):
                move(forward=False)
            if next_col.button("Next", shortcut="J", icon=":material/arrow_forward:",
                               width="stretch"):
                move(forward=True)
            st.caption("Or rate and go on in one step:")
            for stars, column in enumerate(st.columns(5), start=1):
                if column.button(str(stars), key=f"rv_quick_{stars}", shortcut=str(stars),
                                 icon=":material/star:",
                                 width="stretch", help=f"Save {stars} stars and go on"):
                    save_and_advance(stars)
            st.caption("Keys: 1–5 rate and go on · Ctrl+Enter save and go on · J next · "
                       "K previous (not while typing in a field, except Ctrl+Enter).")

        with st.expander("Promote these settings to a scenario"):
            name = st.text_input("Scenario name", placeholder="projection-level-1",
                                 key=f"rv_promote_name_{gid}")
            if st.button("Promote to scenario", key=f"rv_promote_{gid}"):
                with shown_errors("promoting the settings"):
                    promoted = actions.promote(gid, name, user=user)
                    st.success(f"Settings of generation {gid} promoted into scenario "
                               f"{promoted}; see it on Scenarios.")

st.subheader("Ratings by parameter")
with shown_errors("summarising ratings"):
    rw.summary(rw.ratings_summary(scope.sweep_id))

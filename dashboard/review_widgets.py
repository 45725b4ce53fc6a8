"""Review: the scope (first 100 or all, one sweep or all), the queue position in session state,
the input/output pair, the rating controls, and the summary of ratings by parameter.

Keyboard (Streamlit ignores these while typing in a field, except Ctrl+Enter):
1–5 rate and advance, Ctrl+Enter save and advance, J next, K previous."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd
import streamlit as st

from core.insight import review as core_review
from core.data.db import session_scope
from core.insight.review import FIRST_N, PRESET_TAGS, Progress, QueueItem, ReviewRecord
from core.planning.sweeps import SweepSummary
from dashboard import charts
from dashboard import format as fmt
from dashboard.resources import runtime

STATE_DEFAULTS: dict[str, Any] = {
    "rv_current": None,   # generation shown; None → the oldest unreviewed in scope
    "rv_scope": None,     # the Scope rv_current belongs to; a new scope starts over
    "rv_shown_at": {},    # generation id → monotonic time first shown (time spent)
}


@dataclasses.dataclass(frozen=True)
class Scope:
    sweep_id: int | None
    first_n: int | None

    def kwargs(self) -> dict[str, Any]:
        return {"sweep_id": self.sweep_id, "first_n": self.first_n}


def init_state() -> None:
    for key, value in STATE_DEFAULTS.items():
        if key not in st.session_state:
            st.session_state[key] = value.copy() if hasattr(value, "copy") else value


# -- reads and writes through core.insight.review --------------------------------------------------------
@st.cache_data(ttl=5, show_spinner=False)
def progress(reviewer: str, scope: Scope) -> Progress:
    with session_scope(runtime().engine) as session:
        return core_review.progress(session, reviewer, **scope.kwargs())


def item(generation_id: int, reviewer: str) -> QueueItem:
    with session_scope(runtime().engine) as session:
        return core_review.review_item(session, generation_id, reviewer)


def neighbour(current_id: int | None, reviewer: str, scope: Scope, *, forward: bool = True,
              unreviewed_only: bool = False) -> int | None:
    step = core_review.next_generation_id if forward else core_review.previous_generation_id
    with session_scope(runtime().engine) as session:
        return step(session, current_id, reviewer, unreviewed_only=unreviewed_only,
                    **scope.kwargs())


def next_to_review(current_id: int | None, reviewer: str, scope: Scope) -> int | None:
    """The next unreviewed after ``current_id``, wrapping round to the oldest unreviewed."""
    after = neighbour(current_id, reviewer, scope, unreviewed_only=True)
    return after if after is not None else neighbour(None, reviewer, scope, unreviewed_only=True)


def save(generation_id: int, reviewer: str, *, rating: int | None, thumbs: int | None,
         tags: Sequence[str], note: str, seconds_spent: float | None) -> ReviewRecord:
    """One review saved in its own transaction; core validates (InvalidInput on bad input)."""
    with session_scope(runtime().engine) as session:
        saved = core_review.save_review(session, generation_id, reviewer, rating=rating,
                                        thumbs=thumbs, tags=list(tags), note=note,
                                        seconds_spent=seconds_spent)
    progress.clear()
    ratings_summary.clear()
    return saved


@st.cache_data(ttl=10, show_spinner=False)
def ratings_summary(sweep_id: int | None) -> pd.DataFrame:
    with session_scope(runtime().engine) as session:
        return core_review.ratings_by_parameter(session, sweep_id)


# -- widgets -------------------------------------------------------------------------------------
def scope_picker(summaries: list[SweepSummary]) -> Scope:
    left, right = st.columns([3, 1])
    by_id = {s.id: s for s in summaries}
    sweep_id = left.selectbox(
        "Sweep", [None, *by_id], key="rv_sweep",
        format_func=lambda i: "All sweeps" if i is None else f"#{i} {by_id[i].name}")
    first = right.toggle(f"First {FIRST_N} only", value=True, key="rv_first",
                         help=f"The first {FIRST_N} generations that finished, oldest first.")
    scope = Scope(sweep_id, FIRST_N if first else None)
    if st.session_state.rv_scope != scope:
        st.session_state.rv_scope = scope
        st.session_state.rv_current = None
    return scope


def progress_bar(done: Progress) -> None:
    share = done.reviewed / done.total if done.total else 1.0
    st.progress(share, text=f"**{done}** reviewed by you")


def seconds_on(generation_id: int) -> float:
    shown = st.session_state.rv_shown_at.setdefault(generation_id, time.monotonic())
    return round(time.monotonic() - shown, 1)


def _image(load: Callable[[str], bytes], key: str | None, caption: str) -> None:
    if not key:
        st.caption(f"{caption}: no image stored.")
        return
    try:
        st.image(load(key), caption=caption, width="stretch")
    except Exception:  # noqa: BLE001 - a missing file must not hide the rating controls
        st.warning(f"{caption}: the stored image could not be read ({key}).")


def pair(entry: QueueItem, load: Callable[[str], bytes]) -> None:
    """Input and output side by side, with the parameters that made the output."""
    left, right = st.columns(2)
    with left:
        _image(load, entry.input_key, f"Input image #{entry.input_image_id}")
    with right:
        _image(load, entry.output_key, f"Output · generation {entry.generation_id}")
    st.markdown(
        f"{fmt.endpoint_badge(entry.endpoint)} strength **{fmt.axis_value(entry.strength)}** · "
        f"steps **{entry.steps}** · guidance **{fmt.axis_value(entry.guidance)}** · seed "
        f"**{entry.seed}** · prompt **{entry.prompt_label or '–'}** · sweep #{entry.sweep_id}")
    st.caption(f"Prompt: {entry.prompt}"
               + (f" · Negative: {entry.negative_prompt}" if entry.negative_prompt else "")
               + f" · {entry.model_ref} · {fmt.usd(entry.cost_usd)} · "
               f"{fmt.duration(entry.latency_s)}")


@dataclasses.dataclass(frozen=True)
class Answer:
    rating: int | None
    thumbs: int | None
    tags: list[str]
    note: str


def controls(entry: QueueItem) -> Answer:
    """Stars, thumbs, tags (presets plus any typed) and a note, prefilled from an earlier
    review by this reviewer; keys per generation, so moving on starts clean."""
    gid, earlier = entry.generation_id, entry.review
    stars_col, thumbs_col = st.columns([3, 2])
    with stars_col:
        st.markdown("**Rating**")
        stars = st.feedback("stars", key=f"rv_stars_{gid}",
                            default=earlier.rating - 1 if earlier and earlier.rating else None)
    with thumbs_col:
        st.markdown("**Thumbs**")
        thumb_default = None if not earlier or earlier.thumbs is None else int(earlier.thumbs == 1)
        thumb = st.feedback("thumbs", key=f"rv_thumbs_{gid}", default=thumb_default)
    known = list(dict.fromkeys([*PRESET_TAGS, *(earlier.tags if earlier else ())]))
    tags = st.multiselect("Tags", known, default=list(earlier.tags) if earlier else [],
                          key=f"rv_tags_{gid}", accept_new_options=True,
                          placeholder="Pick tags or type your own")
    note = st.text_area("Note", value=earlier.note if earlier else "", key=f"rv_note_{gid}",
                        height=80)
    return Answer(rating=None if stars is None else stars + 1,
                  thumbs=None if thumb is None else (1 if thumb == 1 else -1),
                  tags=list(tags), note=note)


def summary(frame: pd.DataFrame) -> None:
    if frame.empty:
        st.caption("No reviews yet: the mean rating per strength, steps, guidance and prompt "
                   "variant appears here as you rate.")
        return
    rated = [p for p in ("strength", "steps", "guidance", "prompt")
             if frame[(frame["parameter"] == p) & frame["mean_rating"].notna()].shape[0]]
    for column, parameter in zip(st.columns(max(len(rated), 1)), rated):
        with column:
            st.altair_chart(charts.mean_rating(frame, parameter), width="stretch")
    # values mix numbers and prompt labels; as text they make one Arrow column
    st.dataframe(frame.astype({"value": str}), hide_index=True, width="stretch", column_config={
        "mean_rating": st.column_config.NumberColumn("Mean rating", format="%.2f ★")})
    st.download_button("CSV of ratings by parameter", frame.to_csv(index=False).encode(),
                       file_name="ratings-by-parameter.csv", mime="text/csv")

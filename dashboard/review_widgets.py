"""Review: the scope (first 100 or all, one sweep or all), the review panel, how many
reviews each generation should get, who reviewed what, their agreement, and the summary of
ratings by parameter.

The panel (assets/review_panel.js) shows the pair and the controls in the browser and sends
each action with the id of the generation that was on screen when it was taken; ``on_panel``
applies the actions in order, once each, to exactly those generations. A refused action is
shown in the panel and on the page, and nothing stored changes. The next pairs are sent ahead
so the panel shows the next image as soon as a rating key is pressed.

Keyboard (handled by the panel; not while typing in a field, except Ctrl+Enter):
1–5 rate and go on, Ctrl+Enter save and go on, J next, K previous, U / D thumbs."""

from __future__ import annotations

import dataclasses
import functools
import itertools
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd
import streamlit as st

from core.data.db import read_scope, session_scope
from core.errors import TunerError
from core.insight import agreement as core_agreement
from core.insight import review as core_review
from core.insight.review import FIRST_N, PRESET_TAGS, Progress, QueueItem, ReviewRecord
from core.planning.sweeps import SweepSummary
from dashboard import charts
from dashboard import format as fmt
from dashboard.errors import message_for
from dashboard.panels import Outcome, log_id, not_applied, panel_component
from dashboard.resources import media_url, runtime

PANEL_KEY = "rv_panel"
QUEUE_AHEAD = 16  # generations sent to the panel: the one to show and 15 preloaded (~5 s of keys)

STATE_DEFAULTS: dict[str, Any] = {
    "rv_scope": None,     # the Scope the panel shows; a new scope starts over
    "rv_focus": None,     # a generation asked for by Previous / Next / start over (else the queue)
    "rv_focus_why": "",   # why it is on screen, in words
    "rv_view": 0,         # a new value makes the panel show the head of what it is sent afresh
    "rv_applied": {},     # panel client id → last action sequence number applied
    "rv_notice": None,    # the last outcome, shown in the panel: {"id", "kind", "text"}
    "rv_refused": [],     # refusals of the last batch of actions, shown on the page too
    "rv_shown": None,     # the generation the panel says is on screen
}
_notices = itertools.count(1)


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


# -- reads and writes through core.insight.review -----------------------------------------------
def progress(reviewer: str, scope: Scope) -> Progress:
    with read_scope(runtime().engine) as session:
        return core_review.progress(session, reviewer, **scope.kwargs())


def neighbour(current_id: int | None, reviewer: str, scope: Scope, *, forward: bool = True,
              unreviewed_only: bool = False) -> int | None:
    step = core_review.next_generation_id if forward else core_review.previous_generation_id
    with session_scope(runtime().engine) as session:
        return step(session, current_id, reviewer, unreviewed_only=unreviewed_only,
                    **scope.kwargs())


def save(generation_id: int, reviewer: str, *, rating: int | None, thumbs: int | None,
         tags: Sequence[str], note: str, seconds_spent: float | None) -> ReviewRecord:
    """One review saved in its own transaction; core validates (InvalidInput on bad input,
    and then nothing is written)."""
    with session_scope(runtime().engine) as session:
        saved = core_review.save_review(session, generation_id, reviewer, rating=rating,
                                        thumbs=thumbs, tags=list(tags), note=note,
                                        seconds_spent=seconds_spent)
    reviews_changed()
    return saved


def reviews_changed() -> None:
    ratings_summary.clear()
    team.clear()  # the gallery's marks follow by themselves (queries.sweep_cells)


@st.cache_data(ttl=10, show_spinner=False)
def ratings_summary(sweep_id: int | None) -> pd.DataFrame:
    with read_scope(runtime().engine) as session:
        return core_review.ratings_by_parameter(session, sweep_id)


def set_min_ratings(sweep_id: int, value: int | None, *, user: str) -> None:
    with session_scope(runtime().engine) as session:
        core_review.set_min_ratings(session, sweep_id, value, actor=user)
    team.clear()


@dataclasses.dataclass(frozen=True)
class Team:
    """Who reviews this scope and how they agree, for the page's summary sections."""

    people: list[core_review.ReviewerProgress]
    coverage: core_review.Coverage
    min_ratings: int | None
    agreement: core_agreement.Agreement
    scenario: str | None
    scenario_agreement: core_agreement.Agreement | None
    log: pd.DataFrame  # who reviewed what, when, how long (others' stars hidden until mine)


@st.cache_data(ttl=5, show_spinner=False)
def team(reviewer: str, scope: Scope) -> Team:
    from core.data.models import Scenario, Sweep

    with read_scope(runtime().engine) as session:
        min_ratings = (core_review.min_ratings_of(session, scope.sweep_id)
                       if scope.sweep_id is not None else None)
        scenario = None
        if scope.sweep_id is not None:
            sweep = session.get(Sweep, scope.sweep_id)
            scenario_row = session.get(Scenario, sweep.scenario_id) if sweep and sweep.scenario_id else None
            scenario = scenario_row.name if scenario_row else None
        return Team(
            people=core_review.reviewer_progress(session, **scope.kwargs()),
            coverage=core_review.coverage(session, wanted=min_ratings or 1, **scope.kwargs()),
            min_ratings=min_ratings,
            agreement=core_agreement.agreement(session, sweep_id=scope.sweep_id),
            scenario=scenario,
            scenario_agreement=(core_agreement.agreement(session, scenario=scenario)
                                if scenario else None),
            log=_review_log(session, reviewer, scope))


def _review_log(session: Any, reviewer: str, scope: Scope, limit: int = 500) -> pd.DataFrame:
    queue = core_review.review_queue(session, reviewer, include_reviewed=True, limit=100_000,
                                     **scope.kwargs())
    ids = [item.generation_id for item in queue]
    everything = core_review.reviews_of(session, ids)
    mine = {gid for gid, reviews in everything.items()
            if any(r.reviewer == reviewer for r in reviews)}
    rows = []
    for gid, reviews in everything.items():
        for r in reviews:
            visible = r.reviewer == reviewer or gid in mine
            rows.append({"generation": gid, "reviewer": r.reviewer,
                         "rating": (("★" * r.rating) if r.rating else "–") if visible
                         else "hidden until you review it",
                         "thumbs": {1: "👍", -1: "👎", None: ""}[r.thumbs] if visible else "",
                         "tags": ", ".join(r.tags) if visible else "",
                         "note": r.note if visible else "",
                         "seconds on page": r.seconds_spent, "at (UTC)": r.updated_at})
    frame = pd.DataFrame(rows, columns=["generation", "reviewer", "rating", "thumbs", "tags",
                                        "note", "seconds on page", "at (UTC)"])
    return frame.sort_values("at (UTC)", ascending=False).head(limit)


# -- the panel: actions in, pairs out -----------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class PanelAction:
    """One action from the panel, bound to the generation on screen when it was taken."""

    seq: int
    kind: str  # "save" | "next" | "prev"
    generation_id: int | None
    rating: Any = None
    thumbs: Any = None
    tags: Any = ()
    note: Any = ""
    seconds: Any = None


def parse_log(log: Any) -> tuple[str, int | None, list[PanelAction]]:
    """(client id, generation on screen, actions) from the panel's state; junk is skipped."""
    if not isinstance(log, dict):
        return "", None, []
    actions = []
    for raw in log.get("events") or []:
        if not isinstance(raw, dict) or not isinstance(raw.get("seq"), int):
            continue
        actions.append(PanelAction(
            seq=raw["seq"], kind=str(raw.get("kind")), generation_id=log_id(raw.get("gid")),
            rating=raw.get("rating"), thumbs=raw.get("thumbs"), tags=raw.get("tags") or [],
            note=raw.get("note") or "", seconds=raw.get("seconds")))
    shown = log.get("shown")
    return (str(log.get("client") or ""), shown if isinstance(shown, int) else None,
            sorted(actions, key=lambda a: a.seq))


def apply_actions(client: str, actions: list[PanelAction], applied: dict[str, int],
                  user: str, scope: Scope) -> tuple[list[Outcome], int | None, str | None]:
    """Each action not applied yet, in order, to the generation it names. Returns the
    outcomes and, when the last navigation asked for one, the generation to show next and
    why (None, None otherwise)."""
    outcomes: list[Outcome] = []
    focus: int | None = None
    why: str | None = None
    for action in not_applied(client, actions, applied):
        gid = action.generation_id
        if action.kind == "save":
            outcomes.append(_save_action(action, user))
        elif action.kind in ("next", "prev"):
            forward = action.kind == "next"
            try:
                target = neighbour(gid, user, scope, forward=forward)
            except TunerError as exc:
                outcomes.append(Outcome("error", str(exc)))
                continue
            if target is None:
                outcomes.append(Outcome("info", "That is the " + ("last" if forward else "first")
                                        + " generation in this scope."))
                continue
            focus, why = target, ("You moved on to it with Next." if forward
                                  else "You went back to it with Previous.")
        else:
            outcomes.append(Outcome("error", f"Unknown action {action.kind!r} from the review "
                                             "panel; reload the page."))
    return outcomes, focus, why


def _save_action(action: PanelAction, user: str) -> Outcome:
    gid = action.generation_id
    if gid is None:
        return Outcome("error", "A review arrived without the generation it was given on; "
                                "nothing was saved. Reload the page and rate it again.")
    try:
        save(gid, user, rating=action.rating, thumbs=action.thumbs, tags=action.tags,
             note=action.note, seconds_spent=action.seconds)
    except TunerError as exc:
        return Outcome("error", f"Your review of generation {gid} was not saved: {exc}")
    except Exception as exc:  # noqa: BLE001 - the boundary: the person must know it is not saved
        return Outcome("error", f"Your review of generation {gid} was not saved: "
                                f"{message_for(exc, 'saving the review')}")
    stars = f" ({action.rating} ★)" if action.rating else ""
    return Outcome("success", f"Saved your review of generation {gid}{stars}.")


def on_panel(user: str, scope: Scope) -> None:
    """The panel sent its state: apply what is new, remember what to show and say."""
    state = st.session_state.get(PANEL_KEY) or {}
    client, shown, actions = parse_log(state.get("log"))
    if shown is not None:
        st.session_state.rv_shown = shown
    if not client or not actions:
        return
    outcomes, focus, why = apply_actions(client, actions, st.session_state.rv_applied, user,
                                         scope)
    saved = {a.generation_id for a in actions if a.kind == "save"}
    if st.session_state.rv_focus in saved:
        st.session_state.rv_focus = None  # reviewed: back to the queue
    if focus is not None:
        st.session_state.rv_focus, st.session_state.rv_focus_why = focus, why
        st.session_state.rv_view += 1
    if outcomes:
        refused = [o for o in outcomes if o.kind == "error"]
        last = refused[-1] if refused else outcomes[-1]
        st.session_state.rv_notice = {"id": next(_notices), "kind": last.kind, "text": last.text}
        st.session_state.rv_refused = [o.text for o in refused]


def start_over(user: str, scope: Scope) -> None:
    """Show the oldest generation in scope again, reviewed or not."""
    first = neighbour(None, user, scope)
    st.session_state.rv_focus, st.session_state.rv_focus_why = (
        first, "Going through them again from the oldest.")
    st.session_state.rv_view += 1


def panel_data(user: str, scope: Scope, url: Callable[[str, str], str]) -> dict[str, Any]:
    """What the panel needs: the generation to show, the ones after it (preloaded), progress,
    the tags to offer and the last outcome. ``url(key, slot)`` makes a stored image loadable."""
    focus = st.session_state.rv_focus
    with read_scope(runtime().engine) as session:
        queue = core_review.review_queue(session, user, limit=QUEUE_AHEAD, **scope.kwargs())
        if focus is not None and all(i.generation_id != focus for i in queue):
            try:
                queue = [core_review.review_item(session, focus, user), *queue[:-1]]
            except TunerError:
                st.session_state.rv_focus = focus = None
        done = core_review.progress(session, user, **scope.kwargs())
        min_ratings = (core_review.min_ratings_of(session, scope.sweep_id)
                       if scope.sweep_id is not None else None)
        covered = (core_review.coverage(session, wanted=min_ratings, **scope.kwargs())
                   if min_ratings else None)
    if focus is not None:
        queue.sort(key=lambda i: i.generation_id != focus)  # the asked-for one first
    items = [_panel_item(item, slot, url, focus) for slot, item in enumerate(queue)]
    text = f"{done} reviewed by you"
    if covered is not None:
        text += (f" · {covered.covered} / {covered.total} generations have the "
                 f"{min_ratings} reviews wanted")
    end = (f"You have reviewed all {done.total} generations in this scope."
           if done.reviewed >= done.total else
           "Nothing left for you here: every other generation has the reviews it needs.")
    return {"view": st.session_state.rv_view, "items": items, "progress": text, "end": end,
            "tags": list(PRESET_TAGS), "acked": dict(st.session_state.rv_applied),
            "notice": st.session_state.rv_notice}


def _panel_item(item: QueueItem, slot: int, url: Callable[[str, str], str],
                focus: int | None) -> dict[str, Any]:
    if item.generation_id == focus:
        why = st.session_state.rv_focus_why or "You asked for it."
    else:
        when = f" (finished {item.completed_at:%d %b %H:%M} UTC)" if item.completed_at else ""
        why = ("Next because it is the oldest generation in this scope that still lacks your "
               f"review{when}.")
    if item.min_ratings:
        why += f" {item.n_reviews} of the {item.min_ratings} reviews wanted so far."
    mine = item.review
    return {
        "id": item.generation_id, "sweep_id": item.sweep_id, "sweep_name": item.sweep_name,
        "input_label": item.input_label or (f"image #{item.input_image_id}"
                                            if item.input_image_id else "deleted input"),
        "input_url": _url(url, item.input_key, f"{slot}.input"),
        "output_url": _url(url, item.output_key, f"{slot}.output"),
        "why": why, "meta": _meta(item), "others_text": _others(item),
        "review": None if mine is None else {
            "rating": mine.rating, "thumbs": mine.thumbs, "tags": list(mine.tags),
            "note": mine.note, "at": f"{mine.updated_at:%d %b %H:%M} UTC"},
    }


def _url(url: Callable[[str, str], str], key: str | None, slot: str) -> str | None:
    if not key:
        return None
    try:
        return url(key, slot)
    except Exception:  # noqa: BLE001 - a missing file shows as such; the panel goes on
        return None


def _meta(item: QueueItem) -> str:
    emulated = "emulated · " if item.endpoint == "emulator" else ""
    return (f"{emulated}strength {fmt.axis_value(item.strength)} · steps {item.steps} · guidance "
            f"{fmt.axis_value(item.guidance)} · seed {item.seed} · prompt "
            f"{item.prompt_label or '–'}\nPrompt: {item.prompt}"
            + (f" · Negative: {item.negative_prompt}" if item.negative_prompt else "")
            + f"\n{item.model_ref} · {fmt.usd(item.cost_usd)} · {fmt.duration(item.latency_s)}")


def _others(item: QueueItem) -> str:
    if item.review is None:
        others = item.n_reviews
        return (f"{others} other review(s) of this generation, hidden until you review it."
                if others else "")
    if not item.others:
        return "Nobody else has reviewed this generation yet."
    parts = [f"{r.reviewer} {'★' * r.rating if r.rating else ''}"
             f"{' 👍' if r.thumbs == 1 else ' 👎' if r.thumbs == -1 else ''}".strip()
             for r in item.others]
    mean = item.mean_rating
    return ("Others: " + " · ".join(parts)
            + (f" — mean {mean:.1f} ★ over {item.n_reviews}" if mean is not None else ""))


_panel = panel_component("review_panel")


def panel(user: str, scope: Scope) -> None:
    """The review panel, fed fresh on every run of its fragment."""
    data = panel_data(user, scope, media_url)
    _panel(key=PANEL_KEY, data=data, on_log_change=functools.partial(on_panel, user, scope),
           height="content")
    for text in st.session_state.rv_refused:
        st.error(fmt.plain(text), icon="⚠️")


@st.cache_data(ttl=10, show_spinner=False)
def _sweep_agreement(sweep_id: int) -> tuple[core_agreement.Agreement, core_review.Coverage]:
    with read_scope(runtime().engine) as session:
        return (core_agreement.agreement(session, sweep_id=sweep_id),
                core_review.coverage(session, sweep_id=sweep_id, first_n=None))


def sweep_reviews(sweep_id: int) -> None:
    """One line for a sweep's summary: how much is reviewed and how much reviewers agree."""
    agree, cov = _sweep_agreement(sweep_id)
    if not cov.covered:
        return
    text = f"Reviews: {cov.covered} of {cov.total} generations reviewed"
    if agree.alpha is not None:
        text += (f" · Krippendorff's α {agree.alpha:.2f} over {agree.n_items} rated by 2+ · "
                 f"{agree.exact:.0%} exact, {agree.within_one:.0%} within one star")
    elif agree.n_ratings:
        text += f" · no α yet ({agree.why_no_alpha})"
    st.caption(text)
    if agree.warning:
        st.warning(agree.warning, icon="⚠️")


# -- rating where a generation appears (the gallery's cell dialog) -------------------------------
def my_review(generation_id: int, reviewer: str) -> ReviewRecord | None:
    with read_scope(runtime().engine) as session:
        return core_review.review_item(session, generation_id, reviewer).review


def rate_cell(cell: dict[str, Any], user: str) -> None:
    """A cell's ratings (mean, n, yours) and the controls to give or change yours; saved on
    the button, onto this cell's generation (its id is in every widget key)."""
    from dashboard.grid_view import rating_text

    gid = cell["id"]
    st.markdown(f"**Ratings** {rating_text(cell, user)}")
    if cell["state"] != "succeeded":
        st.caption("Only a succeeded generation can be rated.")
        return
    mine = my_review(gid, user)
    left, right = st.columns([3, 2])
    with left:
        stars = st.feedback("stars", key=f"g_stars_{gid}",
                            default=mine.rating - 1 if mine and mine.rating else None)
    with right:
        thumb = st.feedback("thumbs", key=f"g_thumbs_{gid}",
                            default=None if not mine or mine.thumbs is None
                            else int(mine.thumbs == 1))
    known = list(dict.fromkeys([*PRESET_TAGS, *(mine.tags if mine else ())]))
    tags = st.multiselect("Tags", known, default=list(mine.tags) if mine else [],
                          key=f"g_tags_{gid}", accept_new_options=True,
                          placeholder="Pick tags or type your own")
    note = st.text_area("Note", value=mine.note if mine else "", key=f"g_note_{gid}", height=68)
    if st.button("Save my review", key=f"g_save_{gid}", type="primary"):
        try:
            save(gid, user, rating=None if stars is None else stars + 1,
                 thumbs=None if thumb is None else (1 if thumb == 1 else -1), tags=tags,
                 note=note, seconds_spent=None)
        except TunerError as exc:
            st.error(f"Your review of generation {gid} was not saved: {fmt.plain(exc)}", icon="⚠️")
        else:
            st.success(f"Saved your review of generation {gid}.")


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
        st.session_state.rv_focus = None
        st.session_state.rv_view += 1
    return scope


MIN_RATING_CHOICES = (None, 1, 2, 3, 4, 5)


def min_ratings_picker(sweep_id: int, current: int | None, user: str) -> None:
    """How many people should review each generation of this sweep."""
    def changed() -> None:
        try:
            set_min_ratings(sweep_id, st.session_state[f"rv_min_{sweep_id}"], user=user)
        except TunerError as exc:
            st.session_state.flash.append(("error", str(exc)))

    st.selectbox(
        "Reviews per generation", MIN_RATING_CHOICES,
        index=MIN_RATING_CHOICES.index(current) if current in MIN_RATING_CHOICES else 0,
        key=f"rv_min_{sweep_id}", on_change=changed,
        format_func=lambda n: "Everyone reviews everything" if n is None
        else f"At least {n} reviewer{'s' if n > 1 else ''}, then it leaves the queue",
        help="With several reviewers, each person is served what still lacks their review "
             "until a generation has this many; others' ratings stay hidden until you rate.")


def team_sections(data: Team) -> None:
    """Agreement, per-reviewer progress and who reviewed what."""
    agree = data.agreement
    cols = st.columns(4)
    cols[0].metric("Krippendorff's α (ordinal)",
                   "–" if agree.alpha is None else f"{agree.alpha:.2f}",
                   help=agree.why_no_alpha or "1 is full agreement, 0 is what chance gives.")
    cols[1].metric("Generations rated by 2+", agree.n_items)
    cols[2].metric("Exact agreement", "–" if agree.exact is None else f"{agree.exact:.0%}",
                   help=f"Of {agree.n_pairs} pairs of ratings of the same generation.")
    cols[3].metric("Within one star", "–" if agree.within_one is None
                   else f"{agree.within_one:.0%}")
    if agree.warning:
        st.warning(agree.warning, icon="⚠️")
    if agree.alpha is None and agree.why_no_alpha:
        st.caption(f"No α yet: {agree.why_no_alpha}.")
    if data.scenario_agreement is not None:
        sa = data.scenario_agreement
        st.caption(f"Across all sweeps of scenario {fmt.plain(data.scenario)}: α "
                   + ("–" if sa.alpha is None else f"{sa.alpha:.2f}")
                   + f" over {sa.n_items} generations rated by 2+"
                   + ("" if sa.exact is None else f", {sa.exact:.0%} exact, "
                      f"{sa.within_one:.0%} within one star"))
        if sa.warning:
            st.warning(f"Scenario {fmt.plain(data.scenario)}: {sa.warning}", icon="⚠️")
    cov = data.coverage
    st.caption(f"{cov.covered} / {cov.total} generations have at least {cov.wanted} "
               f"review{'s' if cov.wanted > 1 else ''}"
               + ("" if data.min_ratings else " (everyone reviews everything)") + ".")
    if data.people:
        st.dataframe(pd.DataFrame([{
            "reviewer": p.reviewer, "reviewed": p.reviewed,
            "share": p.reviewed / cov.total if cov.total else 0.0, "with stars": p.rated,
            "median seconds": p.median_seconds, "last review (UTC)": p.last_at}
            for p in data.people]), hide_index=True, width="stretch", column_config={
            "share": st.column_config.ProgressColumn("progress", format="percent",
                                                     min_value=0.0, max_value=1.0)})
        with st.expander("Who reviewed what, when, and in how long"):
            st.dataframe(data.log, hide_index=True, width="stretch")
    else:
        st.caption("Nobody has reviewed in this scope yet.")


def summary(frame: pd.DataFrame) -> None:
    if frame.empty:
        st.caption("No reviews yet: the mean rating per strength, steps, guidance and prompt "
                   "variant appears here as you rate.")
        return
    rated = [p for p in ("strength", "steps", "guidance", "prompt")
             if frame[(frame["parameter"] == p) & frame["mean_rating"].notna()].shape[0]]
    for column, parameter in zip(st.columns(max(len(rated), 1)), rated):
        with column:
            charts.draw(charts.mean_rating, frame, parameter)
    # values mix numbers and prompt labels; as text they make one Arrow column
    st.dataframe(frame.astype({"value": str}), hide_index=True, width="stretch", column_config={
        "mean_rating": st.column_config.NumberColumn("Mean rating", format="%.2f ★")})
    st.download_button("CSV of ratings by parameter", frame.to_csv(index=False).encode(),
                       file_name="ratings-by-parameter.csv", mime="text/csv")

"""The blind pair panel of the Gate page: a browser component (assets/gate_pairs.js) showing
the photo and two unlabelled outputs, and the server side that applies its choices.

Integrity, as on the Review page: each choice the browser sends names the pair that was on
screen and carries a per-client sequence number; choices are applied in order, each once, to
the pair they name (``core.scenarios.gate.judge`` maps "left"/"right" to a version itself), and
acknowledged so the browser stops resending them. A choice the server refuses is shown, never
moved to another pair or dropped silently."""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

import streamlit as st

from core.data.db import session_scope
from core.errors import TunerError
from core.scenarios import gate as core_gate
from dashboard.format import plain
from dashboard.panels import Outcome, log_id, not_applied, panel_component
from dashboard.resources import media_url, runtime

PANEL_KEY = "gate_pairs"
AHEAD = 6  # pairs sent to the browser at once (the one shown + preloaded)
STATE_DEFAULTS: dict[str, Any] = {
    "gp_applied": {},   # browser client id -> last sequence number applied
    "gp_view": 0,       # a new value makes the browser start from the queue's head
    "gp_run": None,     # the gate run the panel shows
    "gp_notice": None,
    "gp_refused": [],
}
_notices = itertools.count(1)
_panel = panel_component("gate_pairs")


def init_state() -> None:
    for key, value in STATE_DEFAULTS.items():
        if key not in st.session_state:
            st.session_state[key] = value.copy() if hasattr(value, "copy") else value


@dataclasses.dataclass(frozen=True)
class Choice:
    seq: int
    pair_id: int | None
    pick: str
    seconds: float | None


def parse_log(log: Any) -> tuple[str, list[Choice]]:
    """(client id, choices in sequence order) from the panel's state; junk is skipped."""
    if not isinstance(log, dict):
        return "", []
    choices = []
    for raw in log.get("events") or []:
        if not isinstance(raw, dict) or not isinstance(raw.get("seq"), int):
            continue
        seconds = raw.get("seconds")
        choices.append(Choice(raw["seq"], log_id(raw.get("pair")), str(raw.get("pick")),
                              float(seconds) if isinstance(seconds, (int, float)) else None))
    return str(log.get("client") or ""), sorted(choices, key=lambda c: c.seq)


def apply_choices(client: str, choices: list[Choice], applied: dict[str, int],
                  reviewer: str) -> list[Outcome]:
    """Each choice not applied yet, in order, to the pair it names, in its own transaction."""
    outcomes = []
    for choice in not_applied(client, choices, applied):
        if choice.pair_id is None:
            outcomes.append(Outcome("error", "A choice arrived without the pair it was made on; "
                                             "nothing was saved. Reload the page."))
            continue
        try:
            with session_scope(runtime().engine) as session:
                saved = core_gate.judge(session, choice.pair_id, reviewer, choice.pick,
                                        seconds_spent=choice.seconds)
            outcomes.append(Outcome("success", f"Saved your choice on pair {saved.pair_id}."))
        except TunerError as exc:
            outcomes.append(Outcome("error", f"Pair {choice.pair_id}: {exc}"))
    return outcomes


def on_panel(reviewer: str) -> None:
    state = st.session_state.get(PANEL_KEY) or {}
    client, choices = parse_log(state.get("log"))
    if not client or not choices:
        return
    outcomes = apply_choices(client, choices, st.session_state.gp_applied, reviewer)
    if outcomes:
        refused = [o for o in outcomes if o.kind == "error"]
        last = refused[-1] if refused else outcomes[-1]
        st.session_state.gp_notice = {"id": next(_notices), "kind": last.kind, "text": last.text}
        st.session_state.gp_refused = [o.text for o in refused]


def _url(key: str | None, slot: str) -> str | None:
    if not key:
        return None
    try:
        return media_url(key, f"gate.{slot}")
    except Exception:  # noqa: BLE001 - a missing file shows as such; the panel goes on
        return None


def panel_data(gate_run_id: int, reviewer: str) -> dict[str, Any]:
    with session_scope(runtime().engine) as session:
        ids = core_gate.upcoming_pairs(session, gate_run_id, reviewer, limit=AHEAD)
        views = [core_gate.pair_view(session, pair_id, reviewer) for pair_id in ids]
        done = core_gate.review_progress(session, gate_run_id, reviewer)
    items = [{"id": v.pair_id, "note": v.note, "your_pick": v.your_pick,
              "input_url": _url(v.input_key, f"{n}.input"),
              "left_url": _url(v.left_key, f"{n}.left"),
              "right_url": _url(v.right_key, f"{n}.right")} for n, v in enumerate(views)]
    progress = (f"You judged {done.judged_by_you} of {done.reviewable} reviewable pairs · "
                f"{done.complete} of {done.reviewable} have every reviewer they need "
                f"({done.judgments} of {done.needed_judgments} judgments)")
    if done.reviewable < done.pairs:
        progress += f" · {done.pairs - done.reviewable} pair(s) wait for their outputs"
    end = ("Nothing left for you here: you judged every pair that still needs a reviewer."
           if done.reviewable else "No pair can be judged yet: the outputs are still running.")
    return {"view": st.session_state.gp_view, "items": items, "progress": progress,
            "end": end, "acked": dict(st.session_state.gp_applied),
            "notice": st.session_state.gp_notice}


def panel(gate_run_id: int, reviewer: str) -> None:
    """The pair panel for ``gate_run_id`` (run it in a fragment: a choice reruns only the
    panel); choosing another run starts its queue afresh."""
    if st.session_state.gp_run != gate_run_id:
        st.session_state.gp_run = gate_run_id
        st.session_state.gp_view += 1
        st.session_state.gp_refused = []
    _panel(key=PANEL_KEY, data=panel_data(gate_run_id, reviewer),
           on_log_change=lambda: on_panel(reviewer), height="content")
    for text in st.session_state.gp_refused:
        st.error(plain(text), icon="⚠️")

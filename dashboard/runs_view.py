"""Runs widgets: the table of sweeps, the sweep chooser, and the live panel of one sweep."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import streamlit as st

from core.insight.progress import SweepProgress
from core.planning.sweeps import SweepSummary
from dashboard import format as fmt
from dashboard import frame


def show_flash() -> None:
    """Messages left by the previous page (e.g. "sweep submitted"), shown once, as text: they
    may name what the user typed; in a place that stays when they are gone
    (``frame.steady``)."""
    with frame.steady():
        for kind, message in st.session_state.flash:
            getattr(st, kind)(fmt.plain(message))
    st.session_state.flash = []


def sweeps_or_stop(empty_message: str, *, limit: int = 50) -> list[SweepSummary]:
    """The newest sweeps; with none, the empty state with its next step, and the page stops."""
    from dashboard import queries
    from dashboard.errors import shown_errors

    summaries: list[SweepSummary] = []
    with shown_errors("loading sweeps"):
        summaries = queries.sweep_summaries(limit=limit)
    if not summaries:
        st.info(empty_message)
        st.page_link("pages/new_sweep.py", label="Start a new sweep", icon="➕")
        st.stop()
    return summaries


def sweeps_table(summaries: list[SweepSummary]) -> None:
    rows = [{"sweep": s.id, "name": s.name, "status": fmt.status(s.status),
             "progress": s.done / s.total if s.total else 1.0, "done": f"{s.done}/{s.total}",
             "succeeded": s.counts.succeeded, "failed": s.counts.failed,
             "canceled": s.counts.canceled, "pending": s.counts.pending,
             "cost so far": fmt.usd(s.cost_usd), "started by": s.created_by,
             "endpoint": s.endpoint.upper(), "created": s.created_at}
            for s in summaries]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", column_config={
        "progress": st.column_config.ProgressColumn("progress", min_value=0.0, max_value=1.0,
                                                    format="percent"),
        "created": st.column_config.DatetimeColumn("created", format="YYYY-MM-DD HH:mm"),
    })


def choose_sweep(summaries: list[SweepSummary], label: str = "Sweep") -> int:
    """A sweep chooser that remembers the choice across pages (session_state.sweep_id) and
    keeps it in the link (``?sweep=ID``): pasting the link opens the same sweep."""
    ids = [s.id for s in summaries]
    names = {s.id: f"#{s.id} · {s.name} · {s.status}" for s in summaries}
    linked = st.query_params.get("sweep")
    if linked is not None and linked.isdigit() and int(linked) in ids \
            and st.session_state.get("linked_sweep") != linked:
        st.session_state.sweep_id = int(linked)  # a pasted link wins once, then the chooser
        st.session_state.linked_sweep = linked
    current = st.session_state.sweep_id
    index = ids.index(current) if current in ids else 0
    chosen = st.selectbox(label, ids, index=index, format_func=names.get)
    if chosen != st.session_state.sweep_id:
        st.session_state.pop("open_cell", None)
    st.session_state.sweep_id = chosen
    st.query_params["sweep"] = str(chosen)
    st.session_state.linked_sweep = str(chosen)
    return chosen


def state_counts(summary: SweepSummary) -> None:
    """Succeeded, failed, canceled and pending side by side: never one merged "done"."""
    c = summary.counts
    chips = [(fmt.state("succeeded"), c.succeeded), (fmt.state("failed"), c.failed),
             (fmt.state("canceled"), c.canceled), (fmt.state("pending"), c.queued),
             ("🔄 in flight", c.in_flight)]
    st.markdown("  ".join(f"{label} **{n}**" for label, n in chips) if c.total else "No cells.")
    notes = []
    if summary.failed_attempts > c.failed:
        notes.append(f"{summary.failed_attempts} failed attempts in all "
                     f"({summary.failed_attempts - c.failed} on cells retried since)")
    if summary.reused:
        notes.append(f"{summary.reused} succeeded cell(s) reuse an earlier output (nothing ran)")
    if notes:
        st.caption(" · ".join(notes))


def header(summary: SweepSummary, progress: SweepProgress) -> None:
    st.markdown(f"### #{summary.id} {fmt.plain(summary.name)} "
                f"{fmt.endpoint_badge(summary.endpoint)}")
    st.progress(summary.done / summary.total if summary.total else 1.0,
                text=f"{fmt.status(summary.status)} — {summary.counts.describe()}")
    a, b, c, d = st.columns(4)
    a.metric("In flight", progress.in_flight)
    b.metric("Retried cells", progress.retried, help="Cells that needed more than one attempt.")
    c.metric("Cost so far", fmt.usd(summary.cost_usd),
             help="Emulated cost is shown but never counts as real spend."
             if summary.endpoint == "emulator" else None)
    d.metric("Estimate", fmt.usd(summary.estimated_cost_usd))
    if summary.halted_reason:
        st.warning(f"Stopped: {fmt.plain(summary.halted_reason)}")


def issues(progress: SweepProgress) -> None:
    if progress.failures:
        st.markdown(f"**Failed cells** ({len(progress.failures)})")
        st.dataframe(pd.DataFrame([{"cell": f.cell_index, "attempts": f.attempts, "error": f.error}
                                   for f in progress.failures]),
                     hide_index=True, width="stretch")
    if progress.stuck:
        st.warning(f"{len(progress.stuck)} cell(s) have made no progress for a while.")
        st.dataframe(pd.DataFrame([{"cell": s.cell_index, "state": fmt.state(s.state),
                                    "waiting": fmt.duration(s.waiting_s), "why": s.error}
                                   for s in progress.stuck]),
                     hide_index=True, width="stretch")


def queue_health(status: dict) -> None:
    if not status["ok"]:
        st.error("Redis is down: nothing can be queued or cancelled on workers until it is back. "
                 "Start redis-server or fix REDIS_URL.")
        return
    text = (f"Workers: **{status['workers']}** live, {status['busy']} busy · "
            f"Queue: **{status['queued']}** chunk(s) waiting")
    if status["workers"] == 0:
        st.warning(text + " — no worker is running: start `python -m core worker`.")
    else:
        st.caption(text)


def controls(summary: SweepSummary, on_cancel: Callable[[], None],
             on_retry: Callable[[], None], on_resume: Callable[[float | None], None]) -> None:
    """Cancel (only while cells are unfinished), retry the failed cells, resume the
    canceled ones (with a new budget when a budget stopped them)."""
    c = summary.counts
    left, middle, right, budget_box = st.columns([1, 1, 1, 1])
    if left.button("Cancel sweep", disabled=c.finished or summary.canceled,
                   key=f"cancel_{summary.id}",
                   help="Every cell has ended: nothing to cancel." if c.finished else None):
        on_cancel()
    if middle.button(f"Retry failed cells ({c.failed})", disabled=not c.failed,
                     key=f"retry_{summary.id}", help="Runs the failed cells again, only those."):
        on_retry()
    budget = None
    if c.canceled and summary.halted_reason:
        budget = budget_box.number_input("New sweep budget (USD)", min_value=0.0, value=None,
                                         key=f"resume_budget_{summary.id}")
    if right.button(f"Resume canceled cells ({c.canceled})", disabled=not c.canceled,
                    key=f"resume_{summary.id}",
                    help="Runs the cells that were canceled before they ran."):
        on_resume(budget)

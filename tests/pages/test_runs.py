"""Runs: empty state, a sweep's live panel, cancel, retry, failures inline, Redis down."""

from __future__ import annotations

from sqlalchemy import select, update

from core.data import keys
from core.data.db import session_scope
from core.data.models import Generation, GenerationState
from tests.pages.conftest import clear_caches, run_workers, start_sweep
from tests.services import free_port

PAGE = "pages/runs.py"


def _button(app, label: str):
    return next(b for b in app.button if b.label.startswith(label))


def _states(runtime, sweep_id: int) -> list[str]:
    with session_scope(runtime.engine) as session:
        return [g.state.value for g in session.scalars(
            select(Generation).where(Generation.sweep_id == sweep_id))]


def test_empty_state_points_to_new_sweep(open_page) -> None:
    app = open_page(PAGE)
    assert not app.exception
    assert "No sweeps yet — start one on New sweep" in app.info[0].value
    assert app.get("page_link")


def test_a_finished_sweep_shows_progress_cost_and_who(open_page, finished_sweep) -> None:
    app = open_page(PAGE)
    assert not app.exception
    text = " ".join(m.value for m in app.markdown)
    assert f"#{finished_sweep}" in text and "EMULATOR" in text
    assert "✅ succeeded **4**" in text
    assert app.get("progress")
    assert {m.label for m in app.metric} >= {"In flight", "Retried cells", "Cost so far"}
    assert app.dataframe  # the table of all sweeps
    assert _button(app, "Cancel sweep").disabled  # nothing left to cancel


def test_cancel_stops_queued_cells(open_page, runtime) -> None:
    sweep_id = start_sweep(runtime)  # no worker runs: every cell is still queued
    app = open_page(PAGE)
    assert "no worker is running" in app.warning[0].value
    _button(app, "Cancel sweep").click().run()
    assert not app.exception
    assert "4 queued cell(s) will not start" in app.success[0].value
    assert _states(runtime, sweep_id) == ["canceled"] * 4
    assert runtime.redis.get(keys.sweep_cancel(runtime.deployment, sweep_id)) is not None


def test_retry_sends_failed_cells_again_and_errors_show_inline(open_page, runtime) -> None:
    sweep_id = start_sweep(runtime)
    with session_scope(runtime.engine) as session:
        session.execute(update(Generation).where(Generation.sweep_id == sweep_id).values(
            state=GenerationState.FAILED, error="NSFW content detected", attempts=2, job_id=None))
    app = open_page(PAGE)
    assert any("NSFW content detected" in str(d.value) for d in app.dataframe)
    retry = _button(app, "Retry failed cells (4)")
    retry.click().run()
    assert not app.exception
    assert "4 failed cell(s) retried; queued." in app.success[0].value
    with session_scope(runtime.engine) as session:
        cells = list(session.scalars(select(Generation).where(Generation.sweep_id == sweep_id)))
    assert {c.state for c in cells} == {GenerationState.PENDING} and all(c.job_id for c in cells)


def test_redis_down_is_a_message_not_a_crash(open_page, finished_sweep, monkeypatch) -> None:
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    clear_caches()
    app = open_page(PAGE)
    assert not app.exception
    assert any("Redis is down" in e.value for e in app.error)
    assert f"#{finished_sweep}" in " ".join(m.value for m in app.markdown)


def test_a_canceled_sweep_reads_as_canceled_and_resumes_on_its_own_button(open_page, runtime) -> None:
    sweep_id = start_sweep(runtime)
    with session_scope(runtime.engine) as session:  # one cell ran, one failed, two canceled
        cells = list(session.scalars(select(Generation).where(Generation.sweep_id == sweep_id)
                                     .order_by(Generation.cell_index)))
        for cell, state in zip(cells, ("succeeded", "failed", "canceled", "canceled")):
            cell.state = GenerationState(state)
    app = open_page(PAGE)
    assert not app.exception
    bar = app.get("progress")[0]
    assert "canceled — 2 of 4 cells done (1 succeeded, 1 failed) · 2 canceled" in bar.proto.text
    table = app.dataframe[-1].value
    assert list(table.loc[0, ["succeeded", "failed", "canceled", "pending"]]) == [1, 1, 2, 0]
    assert _button(app, "Cancel sweep").disabled
    _button(app, "Resume canceled cells (2)").click().run()
    assert not app.exception
    assert "2 canceled cell(s) resumed; queued." in app.success[0].value
    assert sorted(_states(runtime, sweep_id)) == ["failed", "pending", "pending", "succeeded"]


def test_the_sweep_summary_says_how_much_reviewers_agree(open_page, runtime, finished_sweep) -> None:
    from core.insight.review import save_review

    with session_scope(runtime.engine) as session:
        ids = list(session.scalars(select(Generation.id)
                                   .where(Generation.sweep_id == finished_sweep)))
        for gid, a, b in zip(ids, (1, 5, 1), (5, 1, 5)):
            save_review(session, gid, "ann", rating=a)
            save_review(session, gid, "ben", rating=b)
    app = open_page(PAGE)
    assert not app.exception
    line = next(c.value for c in app.caption if c.value.startswith("Reviews:"))
    assert line.startswith("Reviews: 3 of 4 generations reviewed · Krippendorff's α -")
    assert "over 3 rated by 2+ · 0% exact, 0% within one star" in line
    assert any("reviewers disagree" in w.value for w in app.warning)


def test_estimate_against_actual_follows_the_cells_at_once(open_page, runtime) -> None:
    """Cached by content: read again the moment a cell moves, not after a few seconds."""
    start_sweep(runtime)
    app = open_page(PAGE)

    def shown() -> dict[str, str]:
        return {m.label: m.value for m in app.metric if m.label in ("Cost", "Duration")}

    assert shown() == {"Cost": "$0.00", "Duration": "running"}
    app.run()
    assert shown() == {"Cost": "$0.00", "Duration": "running"}  # a run with nothing moved
    run_workers(runtime)  # every cell ends; no cache is cleared
    app.run()
    cost, duration = shown()["Cost"], shown()["Duration"]
    assert cost != "$0.00" and duration not in ("running", "—"), shown()

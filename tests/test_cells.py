"""The cell state machine's database side, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import datetime as dt

from core.engine import lifecycle as cells
from core.data.models import Endpoint, Generation, GenerationState
from core.engine.polling import PredictionTiming
from tests.factories import at, make_generation, make_model, make_sweep

NOW = at(2026, 3, 2, 12)


def test_claim_counts_every_pick_up_and_keeps_the_first_queue_wait(db_session):
    sweep = make_sweep(db_session)
    cell = make_generation(db_session, sweep, state=GenerationState.PENDING,
                           enqueued_at=NOW - dt.timedelta(seconds=7))
    task = cells.claim(db_session, cell.id, NOW)
    assert task is not None and task.id == cell.id and task.steps == 25
    cells.claim(db_session, cell.id, NOW + dt.timedelta(minutes=5))  # resumed elsewhere
    db_session.expire_all()
    claimed = db_session.get(Generation, cell.id)
    assert claimed.attempts == 2 and claimed.queue_s == 7.0
    assert claimed.claimed_at == NOW


def test_claim_of_a_finished_or_missing_cell_changes_nothing(db_session):
    done = make_generation(db_session, make_sweep(db_session))
    task = cells.claim(db_session, done.id, NOW)
    assert task is not None and task.state == GenerationState.SUCCEEDED
    db_session.expire_all()
    assert db_session.get(Generation, done.id).attempts == 0
    assert cells.claim(db_session, 10**9, NOW) is None


def test_recent_timings_are_the_newest_own_successes_of_one_version(db_session):
    sdxl = make_sweep(db_session)
    other_version = make_sweep(db_session, make_model(db_session, "acme/other", version_id="v2"))
    emulated = make_sweep(db_session, endpoint=Endpoint.EMULATOR)

    def cell(sweep, minutes_ago: int, predict_time_s: float | None, **fields):
        return make_generation(db_session, sweep, predict_time_s=predict_time_s,
                               completed_at=NOW - dt.timedelta(minutes=minutes_ago), **fields)

    cell(sdxl, 1, 6.0, steps=30, replicate_queue_s=0.4)
    cell(sdxl, 2, 5.0, steps=25)
    newest_but_reused = cell(sdxl, 3, 4.0)
    newest_but_reused.reused_from_id = newest_but_reused.id  # a copy: not a prediction of its own
    cell(sdxl, 4, 9.0, state=GenerationState.FAILED)
    cell(sdxl, 5, None)
    cell(other_version, 1, 30.0)
    cell(emulated, 1, 2.0)
    cell(sdxl, 6, 4.5, steps=20, replicate_queue_s=90.0)
    cell(sdxl, 60 * 24 * 8, 3.0)  # older than the window
    db_session.flush()

    since = NOW - dt.timedelta(days=7)
    recent = cells.recent_timings(db_session, sdxl.version_id, Endpoint.REPLICATE, since,
                                  limit=10)
    assert recent == [PredictionTiming(6.0, 30, 0.4), PredictionTiming(5.0, 25),
                      PredictionTiming(4.5, 20, 90.0)]
    assert cells.recent_timings(db_session, sdxl.version_id, Endpoint.REPLICATE, since,
                                limit=2) == recent[:2]
    assert cells.recent_timings(db_session, sdxl.version_id, Endpoint.EMULATOR, since,
                                limit=10) == [PredictionTiming(2.0, 25)]


def test_a_worker_whose_fence_moved_can_neither_create_record_nor_finish(db_session):
    """Fencing: the second pick-up moves the fence; the first worker's begin submit, next
    create attempt, recording and finishing are all refused, the second worker's apply."""
    cell = make_generation(db_session, make_sweep(db_session), state=GenerationState.PENDING)
    first = cells.claim(db_session, cell.id, NOW)
    second = cells.claim(db_session, cell.id, NOW)
    assert second.fence == first.fence + 1
    assert not cells.begin_submit(db_session, cell.id, first.fence, NOW)
    assert cells.begin_submit(db_session, cell.id, second.fence, NOW, reserved_usd=0.02)
    assert not cells.begin_create_attempt(db_session, cell.id, first.fence, NOW)
    assert not cells.record_prediction(db_session, cell.id, first.fence, {"id": "p-first"}, NOW)
    assert not cells.finish(db_session, cell.id, first.fence, GenerationState.FAILED)
    assert cells.begin_create_attempt(db_session, cell.id, second.fence, NOW, "HTTP 500")
    assert cells.record_prediction(db_session, cell.id, second.fence, {"id": "p-second"}, NOW)
    assert cells.finish(db_session, cell.id, second.fence, GenerationState.SUCCEEDED,
                        cost_usd=0.003)
    db_session.expire_all()
    done = db_session.get(Generation, cell.id)
    assert done.prediction_id == "p-second" and done.state == GenerationState.SUCCEEDED
    assert done.reserved_usd == 0 and done.cost_usd == 0.003  # the reservation settled
    assert done.create_attempts == 2 and done.fence == second.fence


def test_a_claim_of_a_finished_cell_moves_no_fence(db_session):
    done = make_generation(db_session, make_sweep(db_session))
    before = done.fence
    assert cells.claim(db_session, done.id, NOW).fence == before


def test_a_chunk_is_claimed_at_once_each_cell_as_claim_would(db_session):
    """claim_many: every unfinished cell's fence moves and its pick-up is counted, each with
    its own queue wait (cells queued at different times), a finished cell is returned as it
    is, a missing one is left out."""
    sweep = make_sweep(db_session)
    early = [make_generation(db_session, sweep, state=GenerationState.PENDING,
                             enqueued_at=NOW - dt.timedelta(seconds=9)) for _ in range(3)]
    late = make_generation(db_session, sweep, state=GenerationState.SUBMITTED,
                           enqueued_at=NOW - dt.timedelta(seconds=2))
    done = make_generation(db_session, sweep)
    db_session.flush()
    fences = {c.id: c.fence for c in [*early, late, done]}
    tasks = cells.claim_many(db_session, [c.id for c in [*early, late, done]] + [10**9], NOW)
    assert sorted(tasks) == sorted(fences)
    for cell in [*early, late]:
        assert tasks[cell.id].fence == fences[cell.id] + 1
    assert tasks[done.id].fence == fences[done.id]
    assert tasks[late.id].state == GenerationState.SUBMITTED
    db_session.expire_all()
    assert [db_session.get(Generation, c.id).queue_s for c in early] == [9.0, 9.0, 9.0]
    assert db_session.get(Generation, late.id).queue_s == 2.0
    assert db_session.get(Generation, done.id).attempts == 0
    assert all(db_session.get(Generation, c.id).attempts == 1 for c in [*early, late])
    # each task as claim alone reads it
    single = cells.claim(db_session, early[0].id, NOW)
    assert dataclasses.replace(single, fence=tasks[early[0].id].fence) == tasks[early[0].id]
    assert cells.claim_many(db_session, [], NOW) == {}

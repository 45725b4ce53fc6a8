"""A sweep's status says what happened to its cells: one rule (CellCounts), the same for every
page, the CLI and the exports; cancel, retry and resume do what they say or say why not.
Each rule on SQLite and PostgreSQL (db_session), the end-to-end runs on real workers."""

from __future__ import annotations

import pytest
from redis import Redis
from sqlalchemy import func, select

from core.data import keys
from core.data.settings_store import deployment_id
from core.data.models import AuditEntry, FailedAttempt, GenerationState, utcnow
from core.errors import BudgetExceeded, InvalidInput
from core.insight.progress import CellCounts, SweepStatus
from core.planning.budget import Caps
from core.planning.sweeps import (cancel_sweep, cell_counts, resume_canceled, retry_failed,
                                  summarize)
from tests.factories import make_generation, make_sweep

S, F, C, P = (GenerationState.SUCCEEDED, GenerationState.FAILED, GenerationState.CANCELED,
              GenerationState.PENDING)
CAPS = Caps(sweep_usd=None, daily_usd=20, monthly_usd=300)


def sweep_with(session, *states: GenerationState, **fields):
    sweep = make_sweep(session, **fields)
    for state in states:
        make_generation(session, sweep, state=state,
                        error="NSFW content detected" if state == F else None)
    return sweep


@pytest.mark.parametrize(("counts", "cancel", "status"), [
    (CellCounts(), False, SweepStatus.EMPTY),
    (CellCounts(succeeded=3, queued=1), False, SweepStatus.RUNNING),
    (CellCounts(succeeded=3, in_flight=1), True, SweepStatus.CANCELING),
    (CellCounts(succeeded=4), False, SweepStatus.SUCCEEDED),
    (CellCounts(succeeded=4), True, SweepStatus.SUCCEEDED),  # a late cancel changes nothing
    (CellCounts(succeeded=3, failed=1), False, SweepStatus.FAILED),
    (CellCounts(succeeded=88, canceled=416), True, SweepStatus.CANCELED),
    (CellCounts(succeeded=80, failed=8, canceled=416), True, SweepStatus.CANCELED),
])
def test_one_rule_derives_the_status_from_the_counts(counts, cancel, status):
    assert counts.status(cancel_requested=cancel) is status


def test_done_never_counts_canceled_cells(db_session):
    sweep = sweep_with(db_session, S, S, F, C, C, C, P, cancel_requested_at=utcnow())
    summary = summarize(db_session, [sweep.id])[0]
    c = summary.counts
    assert (c.succeeded, c.failed, c.canceled, c.pending, c.done, c.total) == (2, 1, 3, 1, 3, 7)
    assert summary.done == 3 and summary.status == "canceling"
    assert summary.counts.describe() == (
        "3 of 7 cells done (2 succeeded, 1 failed) · 3 canceled · 1 pending")


def test_cancel_on_a_finished_sweep_changes_nothing_and_says_so(db_session):
    sweep = sweep_with(db_session, S)
    outcome = cancel_sweep(db_session, None, sweep.id, actor="ann")
    assert outcome.already_finished and "nothing changed" in outcome.message()
    assert sweep.cancel_requested_at is None
    assert summarize(db_session, [sweep.id])[0].status == "succeeded"
    assert db_session.scalar(select(func.count()).select_from(AuditEntry)) == 0


def test_cancel_stops_queued_cells_only(db_session):
    sweep = sweep_with(db_session, S, P, P)
    outcome = cancel_sweep(db_session, None, sweep.id, actor="ann")
    assert (outcome.queued_canceled, outcome.already_finished) == (2, False)
    counts = cell_counts(db_session, sweep.id)
    assert (counts.succeeded, counts.canceled, counts.done) == (1, 2, 1)
    assert summarize(db_session, [sweep.id])[0].status == "canceled"


def test_retry_runs_failed_cells_only_and_keeps_their_failures(db_session):
    sweep = sweep_with(db_session, S, F, F, C, C, cancel_requested_at=utcnow())
    ids = retry_failed(db_session, None, sweep.id, actor="ann", caps=CAPS)
    assert len(ids) == 2
    counts = cell_counts(db_session, sweep.id)
    assert (counts.queued, counts.canceled, counts.failed) == (2, 2, 0)
    kept = db_session.scalars(select(FailedAttempt)).all()
    assert sorted(k.generation_id for k in kept) == sorted(ids)
    assert {k.error for k in kept} == {"NSFW content detected"}
    assert sweep.cancel_requested_at is None  # else the retried cells are canceled at once


def test_retry_with_no_failed_cells_says_why_and_points_to_resume(db_session):
    sweep = sweep_with(db_session, S, C)
    with pytest.raises(InvalidInput, match=r"no failed cells.*1 canceled: resume them"):
        retry_failed(db_session, None, sweep.id, actor="ann", caps=CAPS)


def test_resume_puts_canceled_cells_back_and_lowers_the_flag(db_session, redis_url):
    redis = Redis.from_url(redis_url)
    sweep = sweep_with(db_session, S, C, C, F, cancel_requested_at=utcnow())
    flag = keys.sweep_cancel(deployment_id(db_session), sweep.id)
    redis.set(flag, "ann")
    ids = resume_canceled(db_session, redis, sweep.id, actor="ann", caps=CAPS)
    assert len(ids) == 2 and not redis.exists(flag)
    counts = cell_counts(db_session, sweep.id)
    assert (counts.queued, counts.failed, counts.canceled) == (2, 1, 0)  # failed stay failed


def test_resume_refuses_while_the_cancel_is_still_running(db_session):
    sweep = sweep_with(db_session, C, GenerationState.SUBMITTED, cancel_requested_at=utcnow())
    with pytest.raises(InvalidInput, match="still canceling"):
        resume_canceled(db_session, None, sweep.id, actor="ann", caps=CAPS)


def test_resume_after_a_budget_halt_needs_a_budget_that_fits(db_session):
    sweep = make_sweep(db_session, budget_usd=0.01, estimated_cost_usd=0.04,
                       halted_reason="Sweep budget $0.0100 reached")
    for state in (S, S, C, C):
        make_generation(db_session, sweep, state=state, cost_usd=0.005 if state == S else 0.0)
    with pytest.raises(BudgetExceeded, match=r"spent \$0\.0100 of its budget \$0\.0100"):
        resume_canceled(db_session, None, sweep.id, actor="ann", caps=CAPS)
    ids = resume_canceled(db_session, None, sweep.id, actor="ann", caps=CAPS, budget_usd=0.05)
    assert len(ids) == 2 and sweep.halted_reason is None and sweep.budget_usd == 0.05


def test_the_reaper_lowers_a_flag_left_by_a_resume_while_redis_was_down(db_session, redis_url):
    from core.engine.reaper import _lower_stale_cancel_flags

    redis = Redis.from_url(redis_url)
    resumed = sweep_with(db_session, C)
    still = sweep_with(db_session, P, cancel_requested_at=utcnow())
    resume_canceled(db_session, None, resumed.id, actor="ann", caps=CAPS)  # Redis "down"
    deployment = deployment_id(db_session)
    for sweep in (resumed, still):
        redis.set(keys.sweep_cancel(deployment, sweep.id), "ann")
    _lower_stale_cancel_flags(db_session, redis)
    assert not redis.exists(keys.sweep_cancel(deployment, resumed.id))
    assert redis.exists(keys.sweep_cancel(deployment, still.id))


def test_export_and_cli_record_use_the_same_counts(db_session):
    from core.cli import sweep_status_record
    from core.insight.export import sweep_header

    sweep = sweep_with(db_session, S, F, C, C, cancel_requested_at=utcnow())
    summary = summarize(db_session, [sweep.id])[0]
    header, record = sweep_header(db_session, sweep), sweep_status_record(summary)
    assert header["status"] == record["status"] == "canceled"
    assert header["cell_counts"] == record["cell_counts"] == {
        "succeeded": 1, "failed": 1, "canceled": 2, "pending": 0, "in_flight": 0, "done": 2,
        "total": 4}

"""Overview, Monitoring and the sweep summary count the same things: each number computed here
from the raw rows and compared, on SQLite and PostgreSQL. A canceled sweep, a retried failure
and a reused output are in the rows, as in the issue that asked for it."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from core.data.models import FailedAttempt, Generation, GenerationState, utcnow
from core.insight import analytics, performance
from core.insight.sqlstats import day_range
from core.planning.sweeps import retry_failed, summarize
from tests.factories import at, make_generation, make_sweep

S, F, C = GenerationState.SUCCEEDED, GenerationState.FAILED, GenerationState.CANCELED
DAY = dt.date(2026, 1, 15)


@pytest.fixture
def rows(db_session):
    session = db_session
    sweep = make_sweep(session, cancel_requested_at=utcnow(), estimated_cost_usd=0.0)
    first = make_generation(session, sweep, state=S, cost_usd=0.003, strength=0.3,
                            completed_at=at(2026, 1, 15, 9))
    make_generation(session, sweep, state=S, cost_usd=0.003, strength=0.6,
                    completed_at=at(2026, 1, 15, 9, 5))
    make_generation(session, sweep, state=S, strength=0.3, reused_from_id=first.id,
                    completed_at=at(2026, 1, 15, 9, 6))  # reused: saved 0.003
    retried = make_generation(session, sweep, state=F, cost_usd=0.002, strength=0.9,
                              error="NSFW content detected", completed_at=at(2026, 1, 15, 10))
    make_generation(session, sweep, state=F, cost_usd=0.002, strength=0.9,
                    error="CUDA out of memory", completed_at=at(2026, 1, 15, 10, 5))
    for minute in range(5):  # canceled at $0: they never ran
        make_generation(session, sweep, state=C, completed_at=at(2026, 1, 15, 11, minute))
    # the failed cells are retried and one succeeds: their failures must still count
    retry_failed(session, None, sweep.id, actor="ann")
    session.execute(Generation.__table__.update().where(Generation.id == retried.id).values(
        state=S, completed_at=at(2026, 1, 15, 12), cost_usd=0.002 + 0.003,
        error=None, output_key="outputs/x.png"))
    session.execute(FailedAttempt.__table__.update().values(failed_at=at(2026, 1, 15, 10)))
    session.expire_all()
    return session, sweep.id


def raw(session):
    """Every number from the rows, in Python."""
    cells = session.scalars(select(Generation)).all()
    kept = session.scalars(select(FailedAttempt)).all()
    ran = [g for g in cells if g.state in (S, F) and g.reused_from_id is None]
    succeeded = sum(1 for g in ran if g.state == S)
    failed = sum(1 for g in ran if g.state == F) + len(kept)
    by_id = {g.id: g for g in cells}
    return {
        "succeeded": succeeded, "failed_attempts": failed, "generations": succeeded + failed,
        "canceled": sum(1 for g in cells if g.state == C),
        "reused": sum(1 for g in cells if g.reused_from_id is not None),
        "saved_usd": sum(by_id[g.reused_from_id].cost_usd for g in cells if g.reused_from_id),
        "failure_rate": failed / (succeeded + failed),
        "cost_per_generation": sum(g.cost_usd for g in ran) / len(ran),
        "errors": sorted([g.error for g in cells if g.state == F] + [k.error for k in kept]),
    }


def test_overview_monitoring_and_sweep_summary_agree_with_the_rows(rows):
    session, sweep_id = rows
    expected = raw(session)
    assert expected["failed_attempts"] == 2 and expected["generations"] == 5  # the setup holds
    span = day_range(DAY, DAY)

    overview = analytics.overview(session, *span, now=at(2026, 1, 15, 18))
    assert overview.generations == expected["generations"]
    assert (overview.succeeded, overview.failed) == (expected["succeeded"],
                                                     expected["failed_attempts"])
    assert (overview.canceled, overview.reused) == (expected["canceled"], expected["reused"])
    assert overview.saved_usd == pytest.approx(expected["saved_usd"])
    assert overview.success_rate == pytest.approx(1 - expected["failure_rate"])
    assert overview.failures_24h == expected["failed_attempts"]  # "Nothing is failing" is false

    daily = performance.throughput(session, *span, "day").iloc[0]
    assert (daily["succeeded"], daily["failed"], daily["total"]) == (
        expected["succeeded"], expected["failed_attempts"], expected["generations"])
    rate = performance.failure_rate_per_day(session, *span).iloc[0]["failure_rate"]
    assert rate == pytest.approx(expected["failure_rate"])
    per_generation = analytics.cost_per_generation(session, *span).iloc[0]
    assert per_generation["predictions"] == expected["generations"] - len(
        session.scalars(select(FailedAttempt)).all())  # cells that ran; retries in their cost
    assert per_generation["cost_per_prediction_usd"] == pytest.approx(
        expected["cost_per_generation"])
    errors = performance.top_errors(session, *span)
    assert sorted(e.error for e in errors for _ in range(e.count)) == expected["errors"]

    summary = summarize(session, [sweep_id])[0]
    assert summary.failed_attempts == expected["failed_attempts"]
    assert summary.reused == expected["reused"]
    assert summary.counts.succeeded - summary.reused == expected["succeeded"]
    assert summary.counts.canceled == expected["canceled"]
    # both failed cells were retried: one succeeded since, one waits; canceled cells are not done
    assert summary.status == "running" and summary.done == 4 and summary.counts.pending == 1


def test_failure_reasons_by_strength(rows):
    session, _ = rows
    by_strength = performance.failures_by(session, *day_range(DAY, DAY), "strength")
    at_09 = by_strength[by_strength["strength"] == 0.9].iloc[0]
    # both 0.9 cells failed once (one since retried and succeeded): 2 failed of 3 runs
    assert (at_09["ran"], at_09["failed"]) == (3, 2)
    assert at_09["failure_rate"] == pytest.approx(2 / 3)
    at_03 = by_strength[by_strength["strength"] == 0.3].iloc[0]
    assert (at_03["ran"], at_03["failed"], at_03["failure_rate"]) == (1, 0, 0.0)
    by_prompt = performance.failures_by(session, *day_range(DAY, DAY), "prompt")
    assert by_prompt["failed"].sum() == 2
    with pytest.raises(Exception, match="strength, steps, prompt, model"):
        performance.failures_by(session, *day_range(DAY, DAY), "colour")

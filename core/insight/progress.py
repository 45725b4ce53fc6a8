"""Live state of sweeps and the queue, for the Runs panel: what is in flight, what retried,
what failed and why, and which cells look stuck."""

from __future__ import annotations

import dataclasses
import datetime as dt

from redis import Redis
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.data import keys
from core.data.models import Generation, GenerationState

IN_FLIGHT = (GenerationState.SUBMITTING, GenerationState.SUBMITTED)


@dataclasses.dataclass(frozen=True)
class CellIssue:
    """One cell worth a look: it failed, retried, or has made no progress for a while."""

    generation_id: int
    cell_index: int
    state: str
    attempts: int
    error: str
    waiting_s: float | None = None


@dataclasses.dataclass(frozen=True)
class SweepProgress:
    in_flight: int
    retried: int
    failures: list[CellIssue]
    stuck: list[CellIssue]
    undispatched: int  # pending cells no job holds yet (Redis was down at submit)


def sweep_progress(session: Session, sweep_id: int, *, now: dt.datetime,
                   stuck_after_s: float = 120.0, limit: int = 200) -> SweepProgress:
    """In flight, retried, failed and stuck cells of one sweep, in a few small queries."""
    base = select(func.count()).select_from(Generation).where(Generation.sweep_id == sweep_id)
    in_flight = session.scalar(base.where(Generation.state.in_(IN_FLIGHT))) or 0
    retried = session.scalar(base.where(Generation.attempts > 1)) or 0
    undispatched = session.scalar(base.where(Generation.state == GenerationState.PENDING,
                                             Generation.job_id.is_(None))) or 0
    failed = session.scalars(
        select(Generation).where(Generation.sweep_id == sweep_id,
                                 Generation.state == GenerationState.FAILED)
        .order_by(Generation.cell_index).limit(limit))
    failures = [_issue(g) for g in failed]
    return SweepProgress(in_flight, retried, failures,
                         stuck_cells(session, sweep_id, now=now, older_than_s=stuck_after_s,
                                     limit=limit), undispatched)


def stuck_cells(session: Session, sweep_id: int, *, now: dt.datetime, older_than_s: float,
                limit: int = 200) -> list[CellIssue]:
    """Unfinished cells whose last step is older than ``older_than_s``: queued with no worker
    picking them up, or submitted with no answer from Replicate."""
    cutoff = now - dt.timedelta(seconds=older_than_s)
    last_step = func.coalesce(Generation.started_at, Generation.submitted_at,
                              Generation.submitting_at, Generation.claimed_at,
                              Generation.enqueued_at, Generation.created_at)
    rows = session.scalars(
        select(Generation).where(
            Generation.sweep_id == sweep_id,
            Generation.state.in_([GenerationState.PENDING, *IN_FLIGHT]),
            last_step < cutoff)
        .order_by(Generation.cell_index).limit(limit))
    issues = []
    for gen in rows:
        since = max(t for t in (gen.started_at, gen.submitted_at, gen.submitting_at,
                                gen.claimed_at, gen.enqueued_at, gen.created_at) if t)
        issues.append(_issue(gen, waiting_s=(now - since).total_seconds(),
                             error=_stuck_reason(gen)))
    return issues


def _stuck_reason(gen: Generation) -> str:
    if gen.state == GenerationState.PENDING and gen.job_id is None:
        return "not sent to the queue yet (was Redis down?); the reaper sends it when Redis answers"
    if gen.state == GenerationState.PENDING:
        return "queued, but no worker has picked it up: are workers running?"
    if gen.state == GenerationState.SUBMITTING:
        return "create sent, no prediction id recorded yet"
    return f"prediction {gen.prediction_id} has not finished on Replicate"


def _issue(gen: Generation, *, waiting_s: float | None = None, error: str | None = None) -> CellIssue:
    return CellIssue(gen.id, gen.cell_index, gen.state.value, gen.attempts,
                     error if error is not None else (gen.error or ""), waiting_s)


def queue_depth(redis: Redis) -> int:
    """Jobs (chunks of cells) waiting in the cell queue."""
    from rq import Queue

    return Queue(keys.QUEUE_NAME, connection=redis).count

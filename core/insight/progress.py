"""Live state of sweeps and the queue: the one rule that says what a sweep's cells add up to
(``CellCounts`` → ``SweepStatus``), and, for the Runs panel, what is in flight, what retried,
what failed and why, and which cells look stuck.

Every page, the CLI and the exports read a sweep's status from ``CellCounts.status``; nothing
else derives one."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from collections.abc import Mapping

from redis import Redis
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.data import keys
from core.data.models import Generation, GenerationState

IN_FLIGHT = (GenerationState.SUBMITTING, GenerationState.SUBMITTED)


class SweepStatus(str, enum.Enum):
    """What a sweep's cells add up to; derived, never stored."""

    EMPTY = "empty"  # no cells at all
    RUNNING = "running"  # some cells unfinished, no cancel asked
    CANCELING = "canceling"  # cancel asked, in-flight cells still being stopped
    SUCCEEDED = "succeeded"  # every cell succeeded
    FAILED = "finished with failures"  # every cell ran; some failed
    CANCELED = "canceled"  # every cell ended; some never ran (canceled or budget-halted)


@dataclasses.dataclass(frozen=True)
class CellCounts:
    """A sweep's cells by what happened to them; ``done`` is cells that ran to an end
    (succeeded or failed): a canceled cell never counts as done."""

    succeeded: int = 0
    failed: int = 0
    canceled: int = 0
    queued: int = 0  # pending: waiting for a worker
    in_flight: int = 0  # submitting or submitted

    @classmethod
    def from_states(cls, by_state: Mapping[str, int]) -> CellCounts:
        get = {GenerationState(k).value: int(v) for k, v in by_state.items()}.get
        return cls(succeeded=get("succeeded", 0), failed=get("failed", 0),
                   canceled=get("canceled", 0), queued=get("pending", 0),
                   in_flight=get("submitting", 0) + get("submitted", 0))

    @property
    def total(self) -> int:
        return self.succeeded + self.failed + self.canceled + self.queued + self.in_flight

    @property
    def done(self) -> int:
        return self.succeeded + self.failed

    @property
    def pending(self) -> int:
        """Cells that have not ended yet (queued or in flight)."""
        return self.queued + self.in_flight

    @property
    def finished(self) -> bool:
        return self.pending == 0

    def status(self, *, cancel_requested: bool = False) -> SweepStatus:
        if self.total == 0:
            return SweepStatus.EMPTY
        if self.pending:
            return SweepStatus.CANCELING if cancel_requested else SweepStatus.RUNNING
        if self.canceled:
            return SweepStatus.CANCELED
        if self.failed:
            return SweepStatus.FAILED
        return SweepStatus.SUCCEEDED

    def describe(self) -> str:
        """``88 of 504 cells done (80 succeeded, 8 failed) · 416 canceled · 0 pending``."""
        text = (f"{self.done} of {self.total} cells done ({self.succeeded} succeeded, "
                f"{self.failed} failed)")
        if self.canceled:
            text += f" · {self.canceled} canceled"
        if self.pending:
            text += f" · {self.pending} pending"
        return text

    def as_dict(self) -> dict[str, int]:
        return {"succeeded": self.succeeded, "failed": self.failed, "canceled": self.canceled,
                "pending": self.pending, "in_flight": self.in_flight, "done": self.done,
                "total": self.total}


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


def queue_depth(redis: Redis, deployment: str) -> int:
    """Jobs (chunks of cells) waiting in the deployment's cell queue."""
    from rq import Queue

    return Queue(keys.queue_name(deployment), connection=redis).count

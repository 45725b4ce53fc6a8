"""Finds cells nobody is working on and hands them to the queue again.

A cell is abandoned when it is unfinished, its lease has lapsed (no worker renewed it for
``cell_lease_s``) and no queued job holds it: its worker was killed, or Redis lost the
queue. Cells of sweeps submitted while Redis was down (no job yet) are sent the same way.
Every worker runs this every few seconds; a Redis lock lets one at a time do it.
"""

from __future__ import annotations

import logging

from redis import Redis
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import keys
from core.models import Generation, GenerationState, Sweep
from core.sweeps import dispatch

log = logging.getLogger(__name__)

UNFINISHED = (GenerationState.PENDING, GenerationState.SUBMITTING, GenerationState.SUBMITTED)
WAITING_JOB_STATES = {JobStatus.QUEUED, JobStatus.DEFERRED, JobStatus.SCHEDULED}


def find_abandoned(session: Session, redis: Redis) -> list[int]:
    rows = session.execute(
        select(Generation.id, Generation.job_id, Sweep.cancel_requested_at)
        .join(Sweep, Generation.sweep_id == Sweep.id)
        .where(Generation.state.in_(UNFINISHED))
        .order_by(Generation.id)).all()
    if not rows:
        return []
    pipe = redis.pipeline()
    for gid, _, _ in rows:
        pipe.exists(keys.cell_lease(gid))
    leased = pipe.execute()
    job_status: dict[str, JobStatus | None] = {}
    abandoned = []
    for (gid, job_id, _canceled), has_lease in zip(rows, leased):
        if has_lease:
            continue
        if job_id is not None:
            if job_id not in job_status:
                job_status[job_id] = _status(redis, job_id)
            if job_status[job_id] in WAITING_JOB_STATES:
                continue
        abandoned.append(gid)  # canceled sweeps too: a worker finishes them as canceled
    return abandoned


def _status(redis: Redis, job_id: str) -> JobStatus | None:
    try:
        return Job.fetch(job_id, connection=redis).get_status(refresh=False)
    except NoSuchJobError:
        return None


def reap(session: Session, redis: Redis, *, chunk_size: int, lock_ttl_s: int = 20) -> int:
    """Re-dispatch abandoned cells; returns how many (0 when another worker holds the lock)."""
    lock = redis.lock(keys.REAPER_LOCK, timeout=lock_ttl_s, blocking=False)
    if not lock.acquire(blocking=False):
        return 0
    try:
        ids = find_abandoned(session, redis)
        if ids:
            log.warning("resuming %d abandoned cell(s): %s", len(ids), ids[:20])
            dispatch(session, redis, ids, chunk_size=chunk_size)
        return len(ids)
    finally:
        try:
            lock.release()
        except Exception:  # noqa: BLE001 - expired meanwhile: harmless
            pass

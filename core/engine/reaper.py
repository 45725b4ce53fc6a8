"""Finds cells nobody is working on and hands them to the queue again.

A cell is abandoned when it is unfinished, its lease has lapsed (no worker renewed it for
``cell_lease_s``) and no queued job holds it: its worker was killed, or Redis lost the
queue. Cells of sweeps submitted while Redis was down (no job yet) are sent the same way.
Every worker runs this every few seconds; a Redis lock lets one at a time do it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging

from redis import Redis
from redis.exceptions import RedisError
from rq.job import Job, JobStatus
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.data import keys
from core.data.models import Generation, GenerationState, Sweep
from core.data.settings_store import deployment_id
from core.planning.sweeps import CANCEL_FLAG_TTL_S, dispatch

log = logging.getLogger(__name__)

UNFINISHED = (GenerationState.PENDING, GenerationState.SUBMITTING, GenerationState.SUBMITTED)
WAITING_JOB_STATES = {JobStatus.QUEUED, JobStatus.DEFERRED, JobStatus.SCHEDULED}


def find_abandoned(session: Session, redis: Redis, *, grace_s: float) -> list[int]:
    """Unfinished cells with no lease whose job is neither waiting nor just started (a
    worker takes the leases within moments of starting a job; ``grace_s`` covers that).

    Jobs first, in one pipelined read: the cells of a waiting job (most of a big sweep's
    cells while it runs) need no lease check, so a 10,000-cell sweep costs a read per job of
    32 cells rather than a Redis call per cell every round."""
    rows = session.execute(
        select(Generation.id, Generation.job_id).where(Generation.state.in_(UNFINISHED))
        .order_by(Generation.id)).all()
    if not rows:
        return []
    deployment = deployment_id(session)
    queue = keys.queue_name(deployment)
    job_ids = sorted({job_id for _, job_id in rows if job_id is not None})
    jobs = Job.fetch_many(job_ids, connection=redis) if job_ids else []
    job_alive = {job_id: job is not None and _job_alive(job, grace_s, queue)
                 for job_id, job in zip(job_ids, jobs)}
    candidates = [gid for gid, job_id in rows if job_id is None or not job_alive[job_id]]
    if not candidates:
        return []
    pipe = redis.pipeline()
    for gid in candidates:
        pipe.exists(keys.cell_lease(deployment, gid))
    leased = pipe.execute()
    # canceled sweeps too: a worker finishes them as canceled
    return [gid for gid, has_lease in zip(candidates, leased) if not has_lease]


def _job_alive(job: Job, grace_s: float, queue: str) -> bool:
    status = job.get_status(refresh=False)
    if status in WAITING_JOB_STATES and job.origin != queue:
        # Waiting in a queue no worker of this deployment reads: the one queue of a version
        # before queues were named per deployment. Taken out; its cells are sent again.
        job.delete()
        return False
    if status in WAITING_JOB_STATES:
        return True
    if status == JobStatus.STARTED and job.started_at is not None:
        started = job.started_at.replace(tzinfo=dt.timezone.utc) if job.started_at.tzinfo is None \
            else job.started_at
        return (dt.datetime.now(dt.timezone.utc) - started).total_seconds() < grace_s
    return False


def _raise_cancel_flags(session: Session, redis: Redis) -> None:
    """Canceled sweeps with unfinished cells keep their Redis flag (lost if Redis restarted,
    or never set if it was down when the sweep was canceled), so running cells stop."""
    canceled = session.scalars(
        select(Sweep.id).where(Sweep.cancel_requested_at.is_not(None)).where(
            select(Generation.id).where(Generation.sweep_id == Sweep.id,
                                        Generation.state.in_(UNFINISHED)).exists()))
    deployment = deployment_id(session)
    for sweep_id in canceled:
        redis.set(keys.sweep_cancel(deployment, sweep_id), "reaper", ex=CANCEL_FLAG_TTL_S,
                  nx=True)
    _lower_stale_cancel_flags(session, redis)


def _lower_stale_cancel_flags(session: Session, redis: Redis) -> None:
    """A sweep resumed or retried while Redis was down still has its old flag there: drop
    it before the reaper sends the cells, or they would be canceled again at once."""
    flagged = {}
    pattern = keys.sweep_cancel(deployment_id(session), 0).replace(":0:", ":*:")
    for key in redis.scan_iter(match=pattern, count=500):
        sweep_id = (key.decode() if isinstance(key, bytes) else key).split(":")[-2]
        if sweep_id.isdigit():
            flagged[int(sweep_id)] = key
    if not flagged:
        return
    still = set(session.scalars(select(Sweep.id).where(Sweep.id.in_(list(flagged)),
                                                       Sweep.cancel_requested_at.is_not(None))))
    stale = [key for sweep_id, key in flagged.items() if sweep_id not in still]
    if stale:
        redis.delete(*stale)


def claim_round(redis: Redis, deployment: str, every_s: float) -> bool:
    """True for the one worker process of the deployment that runs this interval's round:
    every process wakes each interval, the first to claim it runs it (each ran its own
    before: four processes, four rounds an interval)."""
    return bool(redis.set(keys.reaper_round(deployment), "1", nx=True,
                          ex=max(1, int(every_s) - 1)))


def reap(session: Session, redis: Redis, *, chunk_size: int, grace_s: float,
         lock_ttl_s: int = 20) -> int:
    """Re-dispatch abandoned cells; returns how many (0 when another worker holds the lock)."""
    lock = redis.lock(keys.reaper_lock(deployment_id(session)), timeout=lock_ttl_s,
                      blocking=False)
    if not lock.acquire(blocking=False):
        return 0
    try:
        _raise_cancel_flags(session, redis)
        ids = find_abandoned(session, redis, grace_s=grace_s)
        if ids:
            log.warning("resuming %d abandoned cell(s): %s", len(ids), ids[:20])
            dispatch(session, redis, ids, chunk_size=chunk_size)
        return len(ids)
    finally:
        with contextlib.suppress(RedisError):  # the lock expired meanwhile, or Redis went: harmless
            lock.release()

"""The reaper resumes cells nobody works on, and leaves alone those that are waiting in the
queue or whose worker has only just started their job."""

from __future__ import annotations

import datetime as dt
import time

from redis import Redis
from rq import Queue
from rq.job import JobStatus
from sqlalchemy import select

from core.data import keys
from core.config import Settings
from core.data.db import session_scope
from core.engine.limits import CellLeases
from core.data.models import Generation
from core.engine.reaper import claim_round, find_abandoned, reap
from core.runtime import open_runtime
from tests.test_execution import GRID, submit


def _cell_ids(runtime, sweep_id: int) -> list[int]:
    with session_scope(runtime.engine) as session:
        return list(session.scalars(select(Generation.id).where(Generation.sweep_id == sweep_id)
                                    .order_by(Generation.id)))


def _start_job(redis: Redis, job_id: str, started_at: dt.datetime) -> None:
    """Mark a queued job as picked up by a worker, as RQ does (no worker runs here)."""
    from rq.job import Job

    job = Job.fetch(job_id, connection=redis)
    Queue(job.origin, connection=redis).remove(job)
    job.set_status(JobStatus.STARTED)
    job.started_at = started_at.replace(tzinfo=None)
    job.save()


def test_cells_waiting_in_the_queue_are_not_abandoned(tuner_env):
    runtime = open_runtime(Settings())
    submit(runtime, GRID)
    with session_scope(runtime.engine) as session:
        assert find_abandoned(session, runtime.redis, grace_s=30) == []


def test_a_round_checks_no_lease_of_a_waiting_jobs_cells(tuner_env):
    # A round used to check every unfinished cell's lease: at 10,000 queued cells that was
    # 180 Redis EXISTS calls a cell over a sweep (bench/sweep.py --scale). The cells of a
    # waiting job cannot be abandoned, so their jobs are read (one pipelined fetch) instead.
    runtime = open_runtime(Settings())
    submit(runtime, GRID)
    runtime.redis.config_resetstat()
    with session_scope(runtime.engine) as session:
        assert find_abandoned(session, runtime.redis, grace_s=30) == []
    calls = runtime.redis.info("commandstats")
    assert "cmdstat_exists" not in calls


def test_a_job_started_moments_ago_is_alive_a_stale_one_is_not(tuner_env):
    runtime = open_runtime(Settings())
    sweep_id = submit(runtime, GRID)
    ids = _cell_ids(runtime, sweep_id)
    with session_scope(runtime.engine) as session:
        job_ids = sorted({g.job_id for g in session.scalars(
            select(Generation).where(Generation.sweep_id == sweep_id))})
    now = dt.datetime.now(dt.timezone.utc)
    _start_job(runtime.redis, job_ids[0], now)  # leases not taken yet
    with session_scope(runtime.engine) as session:
        assert find_abandoned(session, runtime.redis, grace_s=30) == []
    _start_job(runtime.redis, job_ids[0], now - dt.timedelta(minutes=5))  # its worker died
    with session_scope(runtime.engine) as session:
        stale = find_abandoned(session, runtime.redis, grace_s=30)
    assert stale and set(stale) <= set(ids)
    CellLeases(runtime.redis, runtime.deployment, "w:1", 30).take(stale)  # unless its cells are leased
    with session_scope(runtime.engine) as session:
        assert find_abandoned(session, runtime.redis, grace_s=30) == []


def test_cells_without_a_job_are_sent_once_redis_is_back(tuner_env):
    runtime = open_runtime(Settings())
    sweep_id = submit(runtime, GRID)
    runtime.redis.flushall()  # Redis lost the queue
    with session_scope(runtime.engine) as session:
        assert reap(session, runtime.redis, chunk_size=16, grace_s=30) == 18
    assert Queue(keys.queue_name(runtime.deployment), connection=runtime.redis).count == 2
    with session_scope(runtime.engine) as session:
        assert reap(session, runtime.redis, chunk_size=16, grace_s=30) == 0  # queued now
    assert len(_cell_ids(runtime, sweep_id)) == 18


def test_jobs_left_in_the_queue_of_before_deployment_ids_are_sent_again(tuner_env):
    """After the upgrade that named queues per deployment, a job still waiting in the old
    shared queue (``tuner-cells``) would wait forever: the reaper takes it out and sends its
    cells to this deployment's queue."""
    from rq.job import Job

    runtime = open_runtime(Settings())
    sweep_id = submit(runtime, GRID)
    ours, legacy = (Queue(name, connection=runtime.redis)
                    for name in (keys.queue_name(runtime.deployment), "tuner-cells"))
    job_ids = ours.job_ids
    for job_id in job_ids:  # as the previous version queued them
        job = Job.fetch(job_id, connection=runtime.redis)
        ours.remove(job)
        job.origin = "tuner-cells"
        job.save()
        legacy.push_job_id(job_id)
    with session_scope(runtime.engine) as session:
        assert reap(session, runtime.redis, chunk_size=16, grace_s=30) == 18
    assert legacy.count == 0 and ours.count == 2 and not set(ours.job_ids) & set(job_ids)
    assert len(_cell_ids(runtime, sweep_id)) == 18


def test_a_cancel_that_missed_redis_is_flagged_by_the_reaper(tuner_env):
    from core.planning.sweeps import cancel_sweep

    runtime = open_runtime(Settings())
    sweep_id = submit(runtime, GRID)
    with session_scope(runtime.engine) as session:  # cells in flight keep it unfinished
        session.execute(Generation.__table__.update().where(
            Generation.sweep_id == sweep_id).values(state="submitted"))
        cancel_sweep(session, None, sweep_id, actor="ann")  # Redis was down at the time
    assert not runtime.redis.exists(keys.sweep_cancel(runtime.deployment, sweep_id))
    with session_scope(runtime.engine) as session:
        reap(session, runtime.redis, chunk_size=16, grace_s=30)
    assert runtime.redis.exists(keys.sweep_cancel(runtime.deployment, sweep_id))


def test_one_process_of_the_deployment_runs_each_rounds_interval(tuner_env):
    runtime = open_runtime(Settings())
    deployment = runtime.deployment
    assert claim_round(runtime.redis, deployment, 2) is True
    assert claim_round(runtime.redis, deployment, 2) is False  # another process, same interval
    assert claim_round(runtime.redis, "another-deployment", 2) is True  # rounds are per database
    deadline = time.monotonic() + 5
    while not claim_round(runtime.redis, deployment, 2):  # the next interval is claimable
        assert time.monotonic() < deadline, "the round was never claimable again"
        time.sleep(0.05)  # polling the condition, under a deadline

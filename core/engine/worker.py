"""``python -m core worker``: RQ workers for the cell queue, plus the reaper.

Each worker process takes chunks one at a time and runs their cells concurrently on one
event loop of its own (core.engine.cell_loop): a chunk's job ends once its cells are created,
so the next chunk starts while the first one's stragglers finish. ``--concurrency N``
starts N such processes. Jobs run in the worker process itself (no fork per job): the
database engine and HTTP pools are kept between chunks, and no thread is forked mid-lock.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
import time

from redis import Redis
from rq import Queue, SimpleWorker

from core.data import keys
from core.data.redisio import redis_errors
from core.errors import RedisUnavailable
from core.config import Settings
from core.data.db import session_scope
from core.engine.cell_loop import CELLS
from core.engine.reaper import claim_round, reap
from core.runtime import open_runtime
from core.data.settings_store import effective_settings

log = logging.getLogger(__name__)
REAP_EVERY_S = 10
# A worker leases a job's cells first thing (core.engine.tasks.run_chunk); until then a just-started
# job counts as alive. Longer would only delay resuming a job whose worker died.
JOB_START_GRACE_S = 5


def run_worker(settings: Settings, *, concurrency: int = 1, burst: bool = False) -> int:
    if concurrency > 1:
        return _supervise(concurrency, burst)
    runtime = open_runtime(settings)
    stop = threading.Event()
    reaper = threading.Thread(target=_reap_forever, args=(runtime, stop), daemon=True,
                              name="reaper")
    reaper.start()
    try:
        while True:
            try:
                with redis_errors():
                    work(runtime.redis, runtime.deployment, burst=burst)
                return 0
            except RedisUnavailable:
                log.warning("Redis at %s is unreachable; retrying in 2 s", _safe(settings.redis_url))
                if burst:
                    return 1
                time.sleep(2)  # waiting for Redis to come back, not for work
    finally:
        stop.set()


def work(redis: Redis, deployment: str, *, burst: bool = False,
         logging_level: str = "WARNING") -> None:
    """Run the deployment's cell queue in this process until told to stop (or, ``burst``,
    until it is empty), then wait for the cells still running on the process's cell loop:
    a job returns once its cells are created, their stragglers finish after it."""
    SimpleWorker([Queue(keys.queue_name(deployment), connection=redis)],
                 connection=redis).work(burst=burst, logging_level=logging_level,
                                        with_scheduler=False)
    CELLS.wait_until_idle()


def _reap_forever(runtime, stop: threading.Event) -> None:  # noqa: ANN001
    while not stop.wait(REAP_EVERY_S):
        try:
            # Claimed before any transaction: a process that does not run the round takes
            # no database lock for it.
            if not claim_round(runtime.redis, runtime.deployment, REAP_EVERY_S):
                continue
            with session_scope(runtime.engine) as session:
                current = effective_settings(session, runtime.settings)
                reap(session, runtime.redis, chunk_size=current.chunk_size,
                     grace_s=JOB_START_GRACE_S)
        except Exception:
            log.warning("reaper round failed", exc_info=True)


def _supervise(concurrency: int, burst: bool) -> int:
    """Run N single worker processes; SIGTERM/SIGINT stop them all."""
    args = [sys.executable, "-m", "core", "worker", "--concurrency", "1"]
    if burst:
        args.append("--burst")
    children = [subprocess.Popen(args) for _ in range(concurrency)]

    def stop(signum: int, _frame: object) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    codes = [child.wait() for child in children]
    return max(codes, default=0)


def _safe(url: str) -> str:
    """A Redis URL without its password, for log lines."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}:{parts.port or 6379}{parts.path}"


def live_workers(redis: Redis, deployment: str | None = None) -> list[dict[str, object]]:
    """Workers that are registered and heartbeating, for health panels: those serving the
    deployment's queue (another deployment may share the Redis database), or all of them."""
    from rq import Worker

    found = (Worker.all(queue=Queue(keys.queue_name(deployment), connection=redis))
             if deployment else Worker.all(connection=redis))
    return [{"name": w.name, "state": w.get_state(), "pid": w.pid,
             "current_job": w.get_current_job_id(), "last_heartbeat": w.last_heartbeat}
            for w in found]


"""One event loop per worker process, on a thread of its own, where every chunk's cells run.

An RQ job (``core.engine.tasks.run_chunk``) hands its chunk to this loop and returns once
every cell of the chunk has its prediction created (or has ended): the worker then takes
its next chunk while the first one's stragglers are still running on Replicate, so a slot a
finished cell gives back goes to a waiting cell at once instead of sitting idle until the
slowest cell of the chunk ends. A job still waits while any of its cells waits for a slot,
so a worker never holds more than its share of queued work.

The cells stay leased by their runner's heartbeat after the job has returned; a worker that
dies mid-way leaves leases that lapse, and the reaper resumes those cells elsewhere (their
predictions are adopted, never created again). Before the worker process exits it waits
for every runner here (``wait_until_idle``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Coroutine
from typing import Any, Protocol

import uvloop

log = logging.getLogger(__name__)

# Threads for the runners' blocking calls (database, storage): every chunk of the process
# shares them now, where each chunk used to have its own loop and pool.
EXECUTOR_THREADS = 16
# Threads for the CPU-bound part of storing an output (decode, thumbnail, image metrics), apart
# from the pool above: with the stores spread over all 16 threads, they fought for the GIL and
# the database calls queued behind them. Two can store about 30 cells a second per process
# (~60 ms of CPU each), three times the create rate of a whole deployment; bench/README.md
# has the runs.
IMAGE_THREADS = 2
_image_pool: concurrent.futures.ThreadPoolExecutor | None = None
_image_pool_lock = threading.Lock()


def image_executor() -> concurrent.futures.ThreadPoolExecutor:
    """The process's pool for image work (created on first use; every loop shares it)."""
    global _image_pool
    with _image_pool_lock:
        if _image_pool is None:
            _image_pool = concurrent.futures.ThreadPoolExecutor(
                IMAGE_THREADS, thread_name_prefix="cells-images")
        return _image_pool


class Runner(Protocol):
    handed_off: threading.Event

    def run(self) -> Coroutine[Any, Any, None]: ...


class CellLoop:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._running: set[concurrent.futures.Future[None]] = set()

    def _started(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._thread is None or not self._thread.is_alive():
                loop = uvloop.new_event_loop()
                loop.set_default_executor(concurrent.futures.ThreadPoolExecutor(
                    EXECUTOR_THREADS, thread_name_prefix="cells-io"))
                self._thread = threading.Thread(target=loop.run_forever, name="cells",
                                                daemon=True)
                self._thread.start()
                self._loop = loop
            return self._loop

    def run_until_handed_off(self, runner: Runner) -> None:
        """Start ``runner`` on the loop; return once it has handed its cells off (every
        prediction created) or has ended. An error before the hand-off is raised here, as
        a job failure; one after it is logged (the cells say what happened to them)."""
        future = asyncio.run_coroutine_threadsafe(runner.run(), self._started())
        with self._lock:
            self._running.add(future)
        future.add_done_callback(self._ended)
        runner.handed_off.wait()
        if future.done():
            future.result()

    def _ended(self, future: concurrent.futures.Future[None]) -> None:
        with self._lock:
            self._running.discard(future)
        if not future.cancelled() and future.exception() is not None:
            log.error("a chunk's runner failed after handing its cells off",
                      exc_info=future.exception())

    def wait_until_idle(self) -> None:
        """Block until every runner started here has ended (runners started meanwhile too)."""
        while True:
            with self._lock:
                running = list(self._running)
            if not running:
                return
            concurrent.futures.wait(running)

CELLS = CellLoop()  # the process's one loop

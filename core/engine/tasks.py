"""RQ job functions. This module is imported by workers: it must not import Streamlit.

Jobs take ids and primitives only; everything else is rebuilt from Settings in the worker.
"""

from __future__ import annotations

import os
import socket

from core.config import get_settings
from core.data.db import session_scope
from core.engine.cell_loop import CELLS
from core.engine.execution import ChunkRunner, ExecutionContext
from core.engine.limits import CellLeases
from core.runtime import open_runtime
from core.data.settings_store import effective_settings


def run_chunk(generation_ids: list[int]) -> dict[str, int]:
    """Run a chunk of cells concurrently; safe to run again after a crash (it resumes)."""
    runtime = open_runtime(get_settings(), migrate=False)
    worker_name = f"{socket.gethostname()}:{os.getpid()}"
    # Lease the cells before anything slow, so the reaper never mistakes them for abandoned.
    CellLeases(runtime.redis, runtime.deployment, worker_name,
               runtime.settings.cell_lease_s).take(generation_ids)
    with session_scope(runtime.engine) as session:
        settings = effective_settings(session, runtime.settings)
        caps = runtime.caps(session)
    ctx = ExecutionContext(
        engine=runtime.engine, redis=runtime.redis, store=runtime.store,
        endpoint=runtime.endpoint, caps=caps, default_inflight_cap=settings.inflight_cap,
        create_rate_per_minute=settings.create_rate_per_minute,
        poll_interval_s=settings.poll_interval_s, lease_s=settings.cell_lease_s,
        thumbnail_max_px=settings.thumbnail_max_px,
        worker_name=worker_name, deployment=runtime.deployment,
    )
    # The process's cell loop (uvloop: 41 against 44 ms of CPU a cell in bench/sweep.py);
    # the job ends once every cell is created, its stragglers finishing there meanwhile.
    CELLS.run_until_handed_off(ChunkRunner(ctx, generation_ids))
    return {"cells": len(generation_ids)}

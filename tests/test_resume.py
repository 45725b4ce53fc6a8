"""Crash safety: a killed worker's cells are resumed elsewhere with exactly one prediction
created per cell, and a create whose answer was lost is found again, not repeated."""

from __future__ import annotations

import base64
import datetime
import signal

from sqlalchemy import select, update

from core.config import Settings
from core.data.db import session_scope
from core.data.models import Generation, GenerationState, utcnow
from core.engine.replicate_api import build_client
from core.runtime import open_runtime
from core.planning.sweeps import SweepRequest, summarize
from tests.services import wait_for
from tests.test_execution import GRID, configure, emulator_stats, run_queue, submit


def states(runtime, sweep_id: int) -> dict[str, int]:
    with session_scope(runtime.engine) as session:
        return summarize(session, [sweep_id])[0].by_state


def test_killing_a_worker_mid_sweep_resumes_with_one_prediction_per_cell(
        tuner_env, emulator, processes, tmp_path):
    configure(emulator, predict_time_s=3.0)
    runtime = open_runtime(Settings())
    sweep_id = submit(runtime, SweepRequest(**{**GRID.__dict__, "strength": "0.2-0.7 (+0.1)"}))
    first = processes.python(["core", "worker"], tuner_env, tmp_path / "worker1.log")
    wait_for(lambda: states(runtime, sweep_id).get("submitted", 0) >= 6, 30,
             "the first worker to have predictions in flight")
    processes.kill(first, signal.SIGKILL)
    in_flight_when_killed = states(runtime, sweep_id).get("submitted", 0)
    assert in_flight_when_killed > 0

    processes.python(["core", "worker"], tuner_env, tmp_path / "worker2.log")
    wait_for(lambda: states(runtime, sweep_id) == {"succeeded": 36}, 90,
             "the second worker to finish every cell")
    stats = emulator_stats(emulator)
    assert stats["creates_total"] == 36
    assert set(stats["creates_by_input_hash"].values()) == {1}


def test_a_create_whose_reply_was_lost_is_adopted_not_repeated(tuner_env, emulator):
    runtime = open_runtime(Settings())
    sweep_id = submit(runtime, SweepRequest(**{**GRID.__dict__, "strength": "0.4", "steps": "20",
                                               "prompts": ["a portrait"]}))
    with session_scope(runtime.engine) as session:
        cell = session.scalars(select(Generation).where(Generation.sweep_id == sweep_id)).one()
        image = runtime.store.get(cell.input_image.storage_key)
        model_input = {**cell.model_input,
                       "image": "data:image/png;base64," + base64.b64encode(image).decode()}
        version = f"stability-ai/sdxl:{cell.sweep.version_id}"
        # The worker sent the create a minute ago and died before the reply: the cell says
        # "submitting".
        a_minute_ago = utcnow() - datetime.timedelta(minutes=1)
        session.execute(update(Generation).where(Generation.id == cell.id).values(
            state=GenerationState.SUBMITTING, submitting_at=a_minute_ago, create_attempts=1))
    client = build_client(runtime.endpoint)
    created = client.predictions.create(version=version.split(":")[1], input=model_input)

    run_queue(runtime.settings.redis_url)

    with session_scope(runtime.engine) as session:
        cell = session.scalars(select(Generation).where(Generation.sweep_id == sweep_id)).one()
        assert cell.prediction_id == created.id
        assert cell.state == GenerationState.SUCCEEDED
    assert emulator_stats(emulator)["creates_total"] == 1

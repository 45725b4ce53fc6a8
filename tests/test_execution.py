"""A sweep end to end: planned, stored, dispatched to real RQ workers, run against the
emulator over HTTP, outputs and thumbnails stored, cost and latency recorded."""

from __future__ import annotations

import asyncio
import io
import signal

import httpx
import numpy as np
import pytest
from PIL import Image
from redis import Redis
from sqlalchemy import select

from core.data import keys
from core.config import Settings
from core.data.db import session_scope
from core.data.library import add_image
from core.data.models import Generation, GenerationState
from core.engine.worker import live_workers, work
from core.runtime import open_runtime
from core.planning.submit import requeue, submit_sweep
from core.planning.sweeps import SweepRequest, cancel_sweep, pending_cell_ids, summarize
from core.errors import InvalidInput
from tests.services import wait_for


def png_bytes(seed: int = 1, size: int = 256) -> bytes:
    pixels = (np.random.default_rng(seed).random((size, size, 3)) * 255).astype("uint8")
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def submit(runtime, request: SweepRequest, *, image: bytes | None = None) -> int:
    """Upload a test image and submit through the one submit path the page and CLI use."""
    with session_scope(runtime.engine) as session:
        image_id = add_image(session, runtime.store, runtime.settings, image or png_bytes(),
                             filename="face.png", uploaded_by="tester").id
    request = SweepRequest(**{**request.__dict__, "image_ids": [image_id]})
    return submit_sweep(runtime, request, actor="tester").sweep_id


def run_queue(redis_url: str, deployment: str | None = None) -> None:
    """Run the queued chunks here, as a worker of the deployment (by default the one
    DATABASE_URL names) would, until the queue is empty."""
    if deployment is None:
        deployment = open_runtime(Settings(), migrate=False).deployment
    work(Redis.from_url(redis_url), deployment, burst=True)


GRID = SweepRequest(model_ref="stability-ai/sdxl", image_ids=[], strength="0.3, 0.5, 0.7",
                    steps="20-30 [3]", prompts=["a portrait, studio light", "a portrait, film"],
                    seed="42")


def emulator_stats(emulator) -> dict:
    return httpx.get(f"{emulator.base_url}/_emulator/stats").json()


def configure(emulator, **changes: float) -> dict:
    """Change the running emulator's behaviour (latency, failure rate, retention, …); its
    runtime settings as they are now (none changed: as they were)."""
    response = httpx.post(f"{emulator.base_url}/_emulator/config", json=changes)
    assert response.status_code == 200, response.text
    return response.json()


def age(emulator, seconds: float) -> None:
    """Make every prediction and file the emulator holds ``seconds`` older, as if that much
    time had passed (those whose wait is over have finished)."""
    response = httpx.post(f"{emulator.base_url}/_emulator/age", json={"seconds": seconds})
    assert response.status_code == 200, response.text


def inject(emulator, **fault) -> None:
    response = httpx.post(f"{emulator.base_url}/_emulator/faults", json=fault)
    assert response.status_code == 201, response.text


def test_a_3x3x2_sweep_stores_18_outputs_with_cost_and_latency(
        tuner_env, db_url, monkeypatch, emulator):
    monkeypatch.setenv("DATABASE_URL", db_url)
    runtime = open_runtime(Settings())
    sweep_id = submit(runtime, GRID)
    run_queue(runtime.settings.redis_url)

    with session_scope(runtime.engine) as session:
        cells = list(session.scalars(select(Generation).where(Generation.sweep_id == sweep_id)))
        assert len(cells) == 18
        assert {c.state for c in cells} == {GenerationState.SUCCEEDED}
        for cell in cells:
            assert runtime.store.exists(cell.output_key)
            thumb = Image.open(io.BytesIO(runtime.store.get(cell.thumbnail_key)))
            assert max(thumb.size) <= 400 and thumb.format == "JPEG"
            assert cell.cost_usd == pytest.approx(cell.predict_time_s * 0.000725)
            assert cell.latency_s > 0 and cell.queue_s >= 0 and cell.overhead_s > 0
            assert cell.prediction_id and cell.endpoint.value == "emulator"
        assert {(c.strength, c.steps) for c in cells} == {
            (s, n) for s in (0.3, 0.5, 0.7) for n in (20, 25, 30)}
    assert emulator_stats(emulator)["creates_total"] == 18
    assert summarize_one(runtime, sweep_id).status == "succeeded"


def summarize_one(runtime, sweep_id):
    with session_scope(runtime.engine) as session:
        return summarize(session, [sweep_id])[0]


def test_an_identical_sweep_reuses_outputs_without_paying_again(tuner_env, emulator):
    runtime = open_runtime(Settings())
    first = submit(runtime, GRID)
    run_queue(runtime.settings.redis_url)
    second = submit(runtime, GRID)
    with session_scope(runtime.engine) as session:
        assert pending_cell_ids(session, second) == []
        reused = list(session.scalars(select(Generation).where(Generation.sweep_id == second)))
        assert all(c.reused_from_id and c.state == GenerationState.SUCCEEDED for c in reused)
        assert sum(c.cost_usd for c in reused) == 0
    assert emulator_stats(emulator)["creates_total"] == 18
    fresh = submit(runtime, SweepRequest(**{**GRID.__dict__, "fresh_run": True}))
    run_queue(runtime.settings.redis_url)
    assert summarize_one(runtime, fresh).by_state == {"succeeded": 18}
    assert emulator_stats(emulator)["creates_total"] == 36
    assert first != second != fresh


def test_cancel_stops_queued_cells_and_cancels_running_predictions(tuner_env, emulator, processes):
    configure(emulator, predict_time_s=30)
    runtime = open_runtime(Settings())
    sweep_id = submit(runtime, SweepRequest(**{**GRID.__dict__, "steps": "20"}))  # 6 cells
    worker = processes.python(["core", "worker"], tuner_env)
    wait_for(lambda: summarize_one(runtime, sweep_id).by_state.get("submitted", 0) == 6, 30,
             "all six predictions to be running")
    with session_scope(runtime.engine) as session:
        cancel_sweep(session, runtime.redis, sweep_id, actor="tester")
    wait_for(lambda: summarize_one(runtime, sweep_id).by_state == {"canceled": 6}, 30,
             "every cell to end canceled")
    assert emulator_stats(emulator)["predictions"]["canceled"] == 6
    processes.kill(worker, signal.SIGTERM)


def test_failed_cells_keep_replicates_error_and_can_be_retried(tuner_env, emulator):
    configure(emulator, failure_rate=1.0)
    runtime = open_runtime(Settings())
    sweep_id = submit(runtime, SweepRequest(**{**GRID.__dict__, "steps": "20", "prompts": ["x"]}))
    run_queue(runtime.settings.redis_url)
    with session_scope(runtime.engine) as session:
        failed = list(session.scalars(select(Generation).where(Generation.sweep_id == sweep_id)))
        assert {c.state for c in failed} == {GenerationState.FAILED}
        assert all(c.error and c.cost_usd > 0 for c in failed)  # failed time is billed
        paid = sum(c.cost_usd for c in failed)
    configure(emulator, failure_rate=0.0)
    assert requeue(runtime, sweep_id, "failed", actor="tester").queued
    run_queue(runtime.settings.redis_url)
    summary = summarize_one(runtime, sweep_id)
    assert summary.by_state == {"succeeded": 3}
    assert summary.cost_usd > paid  # the failed attempts' cost is kept, not overwritten


def test_once_a_version_has_history_each_prediction_is_polled_once(tuner_env, emulator):
    # Every poll costs CPU here and a request at Replicate: with known queue and predict
    # times a cell polls once, just after its expected finish.
    configure(emulator, predict_time_s=1.0, queue_delay_s=0)
    runtime = open_runtime(Settings())
    grid = SweepRequest(**{**GRID.__dict__, "steps": "25", "prompts": ["a portrait"],
                           "strength": "0.3, 0.4, 0.5, 0.6", "fresh_run": True})

    def requests_per_cell(seed: str) -> float:
        before = emulator_stats(emulator)["requests_total"]
        sweep_id = submit(runtime, SweepRequest(**{**grid.__dict__, "seed": seed}))
        run_queue(runtime.settings.redis_url)
        assert summarize_one(runtime, sweep_id).by_state == {"succeeded": 4}
        return (emulator_stats(emulator)["requests_total"] - before) / 4

    # No history: polled every POLL_INTERVAL_S (0.1 s here), backing off, all second long.
    first = requests_per_cell("1")
    # With history: the create, one poll, the download; the image is already uploaded.
    second = requests_per_cell("2")
    assert second <= 3.5 < first, (first, second)


def test_cancel_flags_are_read_for_the_whole_chunk_once_an_interval(redis_url):
    from core.engine.execution import CancelFlags

    redis = Redis.from_url(redis_url)
    flags = CancelFlags(redis, "dep")

    async def until_the_watcher_sees_it() -> None:
        await flags.track(1)
        await flags.track(2)
        assert not flags.is_set(1) and not flags.is_set(2)
        redis.set(keys.sweep_cancel("dep", 2), "tester")
        assert not flags.is_set(2)  # as last read, until the watcher reads again
        watcher = asyncio.create_task(flags.watch(0.05))
        try:
            async with asyncio.timeout(10):
                while not flags.is_set(2):
                    await asyncio.sleep(0.01)
        finally:
            watcher.cancel()

    asyncio.run(until_the_watcher_sees_it())
    assert not flags.is_set(1)


def test_cancel_flags_with_redis_away_keep_what_was_known(redis_url, redis_server):
    from core.engine.execution import CancelFlags

    redis = Redis.from_url(redis_url, socket_connect_timeout=0.5, socket_timeout=0.5)
    redis.set(keys.sweep_cancel("dep", 2), "tester")
    flags = CancelFlags(redis, "dep")
    reads, read = [], flags._read  # count the watcher's reads; each one goes to real Redis
    flags._read = lambda sweep_ids: reads.append(sweep_ids) or read(sweep_ids)

    async def watch_through_the_outage() -> None:
        await flags.track(1)
        await flags.track(2)
        assert flags.is_set(2) and not flags.is_set(1)
        redis_server.stop()
        await flags.track(3)  # Redis away: no error; never read, so not canceled
        watcher = asyncio.create_task(flags.watch(0.05))
        try:
            reads.clear()
            async with asyncio.timeout(10):
                while len(reads) < 3:  # three reads against the stopped server
                    await asyncio.sleep(0.01)
            assert not watcher.done()  # the watcher outlives the outage
            assert flags.is_set(2) and not flags.is_set(1)  # and keeps what was known
            redis_server.start()
            redis_server.client().set(keys.sweep_cancel("dep", 1), "tester")
            async with asyncio.timeout(10):
                while not flags.is_set(1):  # Redis back: the same watcher reads again
                    await asyncio.sleep(0.01)
        finally:
            watcher.cancel()

    asyncio.run(watch_through_the_outage())
    assert not flags.is_set(3)  # never read: not canceled; the database check at pick-up stands


def test_two_worker_processes_share_the_inflight_cap_and_use_all_of_it(tuner_env, emulator,
                                                                      processes, monkeypatch):
    configure(emulator, predict_time_s=0.5, queue_delay_s=0)
    monkeypatch.setenv("INFLIGHT_CAP", "3")
    monkeypatch.setenv("CHUNK_SIZE", "6")
    env = {**tuner_env, "INFLIGHT_CAP": "3", "CHUNK_SIZE": "6"}
    runtime = open_runtime(Settings())
    grid = SweepRequest(**{**GRID.__dict__, "steps": "25", "prompts": ["a portrait"],
                           "strength": "0.2, 0.3, 0.4, 0.5, 0.6, 0.7", "seed": "1, 2"})
    for _ in range(2):
        processes.python(["core", "worker"], env)
    wait_for(lambda: len(live_workers(runtime.redis)) == 2, 30, "two workers to register")
    sweep_id = submit(runtime, grid)  # 12 cells in two chunks, one for each worker
    peak = 0

    def finished() -> bool:
        nonlocal peak
        counts = emulator_stats(emulator)["predictions"]
        peak = max(peak, counts["starting"] + counts["processing"])
        return summarize_one(runtime, sweep_id).by_state == {"succeeded": 12}

    wait_for(finished, 60, "all 12 cells to succeed", interval=0.02)
    assert peak == 3


def test_resumed_canceled_cells_run_to_the_end(tuner_env, emulator):
    # The cancel flag stays on Redis for a week: a resume that left it would show the cells
    # pending for a moment and canceled again.
    runtime = open_runtime(Settings())
    sweep_id = submit(runtime, SweepRequest(**{**GRID.__dict__, "steps": "20"}))  # 6 cells
    with session_scope(runtime.engine) as session:
        assert cancel_sweep(session, runtime.redis, sweep_id, actor="tester").queued_canceled == 6
    run_queue(runtime.settings.redis_url)
    assert summarize_one(runtime, sweep_id).status == "canceled"
    with pytest.raises(InvalidInput, match="resume"):
        requeue(runtime, sweep_id, "failed", actor="tester")
    resumed = requeue(runtime, sweep_id, "canceled", actor="tester")
    assert (resumed.cells, resumed.queued) == (6, True)
    run_queue(runtime.settings.redis_url)
    summary = summarize_one(runtime, sweep_id)
    assert summary.by_state == {"succeeded": 6} and summary.status == "succeeded"


# -- real is real (issue 16, reproduction 4) -------------------------------------------------
def test_the_emulator_says_so_and_any_other_server_is_real(emulator, monkeypatch):
    import http.server
    import threading

    from core.engine.replicate_api import EMULATOR_HEADER, resolve_endpoint
    from core.errors import ConfigurationError
    from tests.services import free_port

    assert httpx.get(f"{emulator.base_url}/v1/predictions").headers[EMULATOR_HEADER] == "1"

    class NotTheEmulator(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(401)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", free_port()), NotTheEmulator)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    other = f"http://127.0.0.1:{server.server_port}"
    try:
        def resolved(base_url: str, token: str | None):
            monkeypatch.setenv("REPLICATE_BASE_URL", base_url)
            if token:
                monkeypatch.setenv("REPLICATE_API_TOKEN", token)
            else:
                monkeypatch.delenv("REPLICATE_API_TOKEN", raising=False)
            return resolve_endpoint(Settings())

        assert resolved(emulator.base_url, "r8_x").is_emulator  # it says so
        assert resolved(emulator.base_url, None).is_emulator
        assert not resolved(other, "r8_x").is_emulator  # on loopback, and real all the same
        with pytest.raises(ConfigurationError, match="not the emulator"):
            resolved(other, None)
    finally:
        server.shutdown()
        server.server_close()


def test_a_worker_set_up_for_another_endpoint_refuses_the_sweep(tuner_env, emulator):
    from core.engine.execution import ChunkRunner, ExecutionContext
    from core.engine.replicate_api import Endpoint
    from core.planning.budget import Caps
    from core.planning.submit import submit_sweep

    runtime = open_runtime(Settings())
    with session_scope(runtime.engine) as session:
        image_id = add_image(session, runtime.store, runtime.settings, png_bytes(),
                             filename="face.png", uploaded_by="tester").id
    submitted = submit_sweep(runtime, SweepRequest(**{**GRID.__dict__, "strength": "0.4",
                                                      "steps": "20", "image_ids": [image_id]}),
                             actor="tester")
    with session_scope(runtime.engine) as session:
        cells = list(session.scalars(select(Generation).where(
            Generation.sweep_id == submitted.sweep_id)))
        assert cells[0].sweep.base_url == emulator.base_url  # fixed at submission
    for elsewhere in (Endpoint(emulator.base_url, "r8_real", is_emulator=False),
                      Endpoint("http://127.0.0.1:9", "r8_x", is_emulator=True)):
        ctx = ExecutionContext(engine=runtime.engine, redis=runtime.redis, store=runtime.store,
                               endpoint=elsewhere, caps=Caps(None, 20, 300),
                               default_inflight_cap=4, create_rate_per_minute=600,
                               poll_interval_s=0.1, lease_s=10, thumbnail_max_px=400,
                               worker_name="elsewhere", deployment=runtime.deployment)
        asyncio.run(ChunkRunner(ctx, [c.id for c in cells]).run())
    with session_scope(runtime.engine) as session:
        refused = list(session.scalars(select(Generation).where(
            Generation.sweep_id == submitted.sweep_id)))
    assert {c.state for c in refused} == {GenerationState.FAILED}
    assert all("Not run: this sweep was submitted to run on emulator" in c.error for c in refused)
    assert emulator_stats(emulator)["creates_total"] == 0


def test_emulated_outputs_are_never_reused_by_a_real_sweep(tuner_env, emulator):
    from core.data.models import Endpoint as EndpointKind
    from core.planning.budget import Caps
    from core.planning.sweeps import create_sweep, plan_sweep

    runtime = open_runtime(Settings())
    emulated = submit(runtime, GRID)
    run_queue(runtime.settings.redis_url)
    with session_scope(runtime.engine) as session:
        image_id = session.scalars(select(Generation.input_image_id).where(
            Generation.sweep_id == emulated)).first()
        request = SweepRequest(**{**GRID.__dict__, "image_ids": [image_id], "budget_usd": 1.0})
        plan = plan_sweep(session, request, max_cells=100, inflight_cap=4,
                          create_rate_per_minute=600, endpoint=EndpointKind.REPLICATE)
        assert plan.to_run == 18  # nothing to reuse from the emulator
        real = create_sweep(session, plan, created_by="tester", endpoint=EndpointKind.REPLICATE,
                            caps=Caps(None, 20, 300)).id
        assert len(pending_cell_ids(session, real)) == 18


def _two_deployments(tmp_path):
    """Our runtime (the test's environment) and another one on its own SQLite database and
    media, on the same Redis database; and the other's environment variables."""
    ours = open_runtime(Settings())
    other_values = {"DATABASE_URL": f"sqlite:///{tmp_path / 'other.db'}",
                    "MEDIA_URL": f"file://{tmp_path / 'other-media'}"}
    other = open_runtime(Settings(database_url=other_values["DATABASE_URL"],
                                  media_url=other_values["MEDIA_URL"]))
    assert ours.deployment != other.deployment
    return ours, other, other_values


def test_two_deployments_sharing_one_redis_never_take_each_others_jobs(tuner_env, emulator,
                                                                      processes, tmp_path):
    """Issue 16 (rough edges): two deployments (two databases) on one Redis database. Each
    queue carries its database's id, so a worker runs only its own deployment's chunks (the
    other's cell ids would name cells of the wrong database), and only its own workers and
    queue length are counted."""
    from core.insight.progress import queue_depth

    ours, other, other_values = _two_deployments(tmp_path)
    six = SweepRequest(**{**GRID.__dict__, "steps": "20"})
    our_sweep, other_sweep = submit(ours, six), submit(other, six)
    assert our_sweep == other_sweep  # the same ids in both databases: only the queue tells
    processes.python(["core", "worker"], tuner_env)
    wait_for(lambda: summarize_one(ours, our_sweep).by_state == {"succeeded": 6}, 60,
             "our sweep to finish")
    assert summarize_one(other, other_sweep).by_state == {"pending": 6}  # not touched
    assert queue_depth(ours.redis, other.deployment) == 1  # its chunk still waits
    assert queue_depth(ours.redis, ours.deployment) == 0
    assert len(live_workers(ours.redis, ours.deployment)) == 1
    assert live_workers(ours.redis, other.deployment) == []
    from core.health import check_workers  # `python -m core check` counts its own only

    assert check_workers(ours.settings).ok and not check_workers(other.settings).ok
    processes.python(["core", "worker"], {**tuner_env, **other_values})
    wait_for(lambda: summarize_one(other, other_sweep).by_state == {"succeeded": 6}, 60,
             "the other deployment's sweep to finish with its own worker")
    assert emulator_stats(emulator)["creates_total"] == 12


def test_canceling_a_sweep_leaves_the_other_deployments_sweep_of_the_same_id_running(
        tuner_env, emulator, processes, tmp_path):
    """Cancel flags, cell leases and slot holders are named after ids that each database
    numbers from 1, so they carry the deployment too: canceling our sweep 1 leaves the other
    deployment's sweep 1 running to the end."""
    configure(emulator, predict_time_s=3)
    ours, other, other_values = _two_deployments(tmp_path)
    six = SweepRequest(**{**GRID.__dict__, "steps": "20"})
    our_sweep, other_sweep = submit(ours, six), submit(other, six)
    assert our_sweep == other_sweep
    processes.python(["core", "worker"], tuner_env)
    processes.python(["core", "worker"], {**tuner_env, **other_values})
    wait_for(lambda: all(summarize_one(rt, our_sweep).by_state == {"submitted": 6}
                         for rt in (ours, other)), 30, "both sweeps' predictions to run")
    with session_scope(ours.engine) as session:
        cancel_sweep(session, ours.redis, our_sweep, actor="tester")
    wait_for(lambda: summarize_one(ours, our_sweep).by_state == {"canceled": 6}, 30,
             "our sweep to end canceled")
    wait_for(lambda: summarize_one(other, other_sweep).by_state == {"succeeded": 6}, 60,
             "the other deployment's sweep to finish")
    assert emulator_stats(emulator)["predictions"]["canceled"] == 6


def test_a_worker_starts_its_next_chunk_while_the_first_ones_cell_is_still_running(
        tuner_env, emulator):
    """Issue 15: one worker process, chunks of one cell, predictions taking 4 s. The first
    chunk's job ends once its prediction is created, so the worker takes the second chunk
    while the first cell is still running on Replicate: both are in flight at once (the old
    worker held the second chunk back until the first cell had ended)."""
    import threading

    configure(emulator, predict_time_s=4.0, queue_delay_s=0)
    runtime = open_runtime(Settings(chunk_size=1))
    sweep_id = submit(runtime, SweepRequest(**{**GRID.__dict__, "strength": "0.4, 0.6",
                                               "steps": "20", "prompts": ["a portrait"]}))
    seen_both = threading.Event()
    stop = threading.Event()

    def watch() -> None:  # RQ's worker wants the main thread, so the watching is here
        while not stop.is_set() and not seen_both.is_set():
            with session_scope(runtime.engine) as session:
                states = session.scalars(select(Generation.state)
                                         .where(Generation.sweep_id == sweep_id)).all()
            if states == [GenerationState.SUBMITTED] * 2:
                seen_both.set()
            stop.wait(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        run_queue(runtime.settings.redis_url)  # returns once both cells have ended
    finally:
        stop.set()
        watcher.join()
    assert seen_both.is_set(), "the second chunk waited for the first chunk's cell to end"
    with session_scope(runtime.engine) as session:
        done = session.scalars(select(Generation).where(Generation.sweep_id == sweep_id)).all()
        assert {c.state for c in done} == {GenerationState.SUCCEEDED}
    assert emulator_stats(emulator)["creates_total"] == 2


def test_storing_runs_on_the_image_threads_after_the_slot_is_given_back(
        tuner_env, db_url, monkeypatch, emulator):
    """The CPU-bound part of storing (decode, thumbnail, metrics) runs on the process's image
    pool, never more than IMAGE_THREADS at once, and the cell's in-flight slot is already
    free for the next cell by then: the prediction has ended on Replicate. The real store
    runs; the wrapper only watches where, how many, and what Redis holds."""
    import threading

    from core.engine import cell_loop
    from core.engine.execution import ChunkRunner

    monkeypatch.setenv("DATABASE_URL", db_url)
    store_sync = ChunkRunner._store_sync
    seen: list[str] = []
    slot_still_held: list[int] = []
    running, most = [0], [0]
    lock = threading.Lock()

    def watched(self, data, task, *args, **kwargs):
        holder = keys.slot_holder(self.ctx.deployment, task.id)
        if self.ctx.redis.zscore(f"tuner:inflight:{task.model_ref}", holder) is not None:
            slot_still_held.append(task.id)
        with lock:
            seen.append(threading.current_thread().name)
            running[0] += 1
            most[0] = max(most[0], running[0])
        try:
            return store_sync(self, data, task, *args, **kwargs)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(ChunkRunner, "_store_sync", watched)
    runtime = open_runtime(Settings())
    sweep_id = submit(runtime, GRID)
    run_queue(runtime.settings.redis_url)
    assert summarize_one(runtime, sweep_id).status == "succeeded"
    assert len(seen) == 18
    assert all(name.startswith("cells-images") for name in seen), set(seen)
    assert 1 <= most[0] <= cell_loop.IMAGE_THREADS
    assert slot_still_held == []

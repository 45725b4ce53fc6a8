"""Faults on the Replicate side: every cell still ends in a final state with a readable
reason, no cell is lost, and each cell's input was created once (a create is repeated only
when it provably never reached Replicate)."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from core.config import Settings
from core.data.db import session_scope
from core.data.models import Generation, GenerationState
from core.engine.replicate_api import build_client
from core.runtime import open_runtime
from core.planning.sweeps import SweepRequest
from tests.services import wait_for
from tests.test_execution import (GRID, age, configure, emulator_stats, inject, run_queue,
                                  submit)

SMALL = SweepRequest(**{**GRID.__dict__, "strength": "0.3, 0.6", "steps": "20",
                        "prompts": ["a portrait"]})  # 2 cells


def cells(runtime, sweep_id: int) -> list[Generation]:
    with session_scope(runtime.engine) as session:
        return list(session.scalars(select(Generation).where(Generation.sweep_id == sweep_id)
                                    .order_by(Generation.cell_index)))


def run_sweep(request: SweepRequest = SMALL) -> tuple[object, list[Generation]]:
    runtime = open_runtime(Settings())
    sweep_id = submit(runtime, request)
    run_queue(runtime.settings.redis_url)
    return runtime, cells(runtime, sweep_id)


def assert_one_create_per_cell(emulator, n_cells: int) -> None:
    stats = emulator_stats(emulator)
    assert stats["creates_total"] == n_cells
    assert sorted(stats["creates_by_input_hash"].values()) == [1] * n_cells


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_create_errors_before_replicate_are_retried(tuner_env, emulator, status):
    inject(emulator, route="create", status=status, count=3, retry_after=1)
    _, result = run_sweep()
    assert {c.state for c in result} == {GenerationState.SUCCEEDED}
    assert_one_create_per_cell(emulator, 2)
    assert sum(c.create_attempts for c in result) >= 3 or status == 429


@pytest.mark.parametrize("fault", [{"status": 500}, {"status": 502}, {"action": "reset"},
                                   {"action": "timeout"}])
def test_a_create_whose_reply_is_lost_is_adopted(tuner_env, emulator, fault):
    configure(emulator, fault_hang_s=1)
    inject(emulator, route="create", after=True, count=1, **fault)
    _, result = run_sweep()
    assert {c.state for c in result} == {GenerationState.SUCCEEDED}
    assert_one_create_per_cell(emulator, 2)


@pytest.mark.parametrize("fault", [{"status": 500}, {"status": 502}, {"status": 503},
                                   {"status": 504}, {"action": "reset"}, {"action": "timeout"}])
def test_poll_errors_are_retried(tuner_env, emulator, fault):
    configure(emulator, fault_hang_s=1)
    inject(emulator, route="get", count=4, **fault)
    _, result = run_sweep()
    assert {c.state for c in result} == {GenerationState.SUCCEEDED}
    assert_one_create_per_cell(emulator, 2)


def test_low_credit_rate_limit_is_waited_out(tuner_env, emulator):
    configure(emulator, rate_limit_per_minute=6, burst=1)  # Replicate's low-credit limit
    httpx.post(f"{emulator.base_url}/_emulator/reset")  # start from a bucket of that size
    _, result = run_sweep()
    assert {c.state for c in result} == {GenerationState.SUCCEEDED}
    assert emulator_stats(emulator)["throttled_total"] >= 1
    assert_one_create_per_cell(emulator, 2)


def test_a_prediction_failed_on_replicate_keeps_its_error(tuner_env, emulator):
    configure(emulator, failure_rate=1.0)
    _, result = run_sweep()
    assert {c.state for c in result} == {GenerationState.FAILED}
    assert all(c.error and "Internal error" not in c.error for c in result)
    assert_one_create_per_cell(emulator, 2)


def test_a_prediction_canceled_elsewhere_says_so(tuner_env, emulator, processes):
    configure(emulator, predict_time_s=30)
    runtime = open_runtime(Settings())
    sweep_id = submit(runtime, SMALL)
    processes.python(["core", "worker"], tuner_env)
    ids = wait_for(lambda: len(ids := [c.prediction_id for c in cells(runtime, sweep_id)
                                       if c.prediction_id]) == 2 and ids, 30,
                   "both predictions to exist")
    client = build_client(runtime.endpoint)
    for prediction_id in ids:
        client.predictions.cancel(prediction_id)
    wait_for(lambda: all(c.state.is_final for c in cells(runtime, sweep_id)), 30,
             "both cells to end")
    result = cells(runtime, sweep_id)
    assert {c.state for c in result} == {GenerationState.CANCELED}
    assert all("not by this dashboard" in c.error for c in result)


def test_an_expired_output_fails_with_data_removed(tuner_env, emulator):
    configure(emulator, retention_s=0)
    _, result = run_sweep()
    assert {c.state for c in result} == {GenerationState.FAILED}
    assert all("data_removed" in c.error or "expired" in c.error for c in result), \
        [c.error for c in result]
    assert all(c.cost_usd > 0 for c in result)  # the prediction ran and was billed


def test_a_truncated_download_is_fetched_again(tuner_env, emulator):
    inject(emulator, route="output", action="truncate", count=2)
    _, result = run_sweep()
    assert {c.state for c in result} == {GenerationState.SUCCEEDED}


@pytest.mark.parametrize("fault", [{"status": 503}, {"action": "truncate"}])
def test_an_output_that_never_downloads_fails_with_the_reason(tuner_env, emulator, fault):
    inject(emulator, route="output", count=50, **fault)
    _, result = run_sweep()
    assert {c.state for c in result} == {GenerationState.FAILED}
    assert all("output" in c.error.lower() for c in result)
    assert_one_create_per_cell(emulator, 2)


def test_a_refused_input_fails_without_retrying(tuner_env, emulator):
    request = SweepRequest(**{**SMALL.__dict__, "fixed": {"scheduler": "K_EULER"}})
    runtime = open_runtime(Settings())
    sweep_id = submit(runtime, request)
    with session_scope(runtime.engine) as session:  # an input the schema check let through
        for cell in session.scalars(select(Generation).where(Generation.sweep_id == sweep_id)):
            cell.model_input = {**cell.model_input, "num_outputs": 9}
    run_queue(runtime.settings.redis_url)
    result = cells(runtime, sweep_id)
    assert {c.state for c in result} == {GenerationState.FAILED}
    assert all("422" in c.error and "num_outputs" in c.error for c in result)
    assert emulator_stats(emulator)["creates_total"] == 0


# -- one create per cell, provably (issue 16, reproductions 1 and 2; issue 14) ---------------
def _as_if_a_dead_worker_created(runtime, sweep_id: int, seconds_ago: float):
    """Every cell of the sweep in `submitting` since ``seconds_ago``, each with a prediction
    created then whose reply its worker never saw (it died)."""
    import base64

    from sqlalchemy import update

    from core.data.models import utcnow

    client = build_client(runtime.endpoint)
    created = {}
    with session_scope(runtime.engine) as session:
        for cell in session.scalars(select(Generation).where(Generation.sweep_id == sweep_id)):
            image = runtime.store.get(cell.input_image.storage_key)
            model_input = {**cell.model_input, "image": "data:image/png;base64,"
                           + base64.b64encode(image).decode()}
            created[cell.id] = client.predictions.create(version=cell.sweep.version_id,
                                                         input=model_input).id
            session.execute(update(Generation).where(Generation.id == cell.id).values(
                state=GenerationState.SUBMITTING, create_attempts=1,
                submitting_at=utcnow() - __import__("datetime").timedelta(seconds=seconds_ago)))
    return client, created


@pytest.mark.parametrize("gone_s", [300, 1800])
def test_a_lost_create_is_found_when_a_worker_comes_back_minutes_later(tuner_env, emulator,
                                                                      gone_s):
    """Reproduction 1: the only worker dies after its creates' replies were lost; a worker
    starting 5 (or 30) minutes later adopts them, however much was created since. The
    emulator's clock hook ages every prediction instead of waiting: the look-up is bounded
    by the cell's own first create, not by how long ago that was."""
    runtime = open_runtime(Settings())
    sweep_id = submit(runtime, SMALL)
    client, created = _as_if_a_dead_worker_created(runtime, sweep_id, gone_s)
    with session_scope(runtime.engine) as session:
        version = session.scalars(select(Generation).where(Generation.sweep_id == sweep_id)
                                  ).first().sweep.version_id
    for seed in range(130):  # the team kept working meanwhile: more than a page of others
        client.predictions.create(version=version, input={"prompt": "other", "seed": seed})
    age(emulator, gone_s)

    run_queue(runtime.settings.redis_url)

    result = cells(runtime, sweep_id)
    assert {c.state for c in result} == {GenerationState.SUCCEEDED}
    assert {c.id: c.prediction_id for c in result} == created
    assert emulator_stats(emulator)["creates_total"] == 2 + 130  # none for these cells


def test_a_lost_create_is_not_adopted_by_a_cell_that_already_holds_another(tuner_env,
                                                                          emulator):
    """Two cells with the same input (a fresh run of the same grid): each adopts its own
    prediction, never the one another cell holds."""
    runtime = open_runtime(Settings())
    one = SweepRequest(**{**SMALL.__dict__, "strength": "0.4"})
    first = submit(runtime, one)
    run_queue(runtime.settings.redis_url)
    second = submit(runtime, SweepRequest(**{**one.__dict__, "fresh_run": True}))
    _, created = _as_if_a_dead_worker_created(runtime, second, 60)
    run_queue(runtime.settings.redis_url)
    [held_before] = cells(runtime, first)
    [adopted] = cells(runtime, second)
    assert adopted.state == GenerationState.SUCCEEDED
    assert adopted.prediction_id == created[adopted.id] != held_before.prediction_id
    assert emulator_stats(emulator)["creates_total"] == 2


def test_a_redis_restart_while_creates_are_throttled_creates_each_cell_once(
        tuner_env, emulator, redis_server):
    """Reproduction 2: creates throttled to a low-credit limit; Redis restarts (queue,
    leases, slots and the rate schedule gone) while a worker's retry loops wait out 429s,
    and the cells are handed to a second worker — here two runners on the same cells, as
    the reaper leaves them. Each cell is created once: the second runner's pick-up moves
    each cell's fence, so the first runner's loops stop before their next create."""
    import asyncio

    configure(emulator, rate_limit_per_minute=30, burst=1, predict_time_s=0.5)
    httpx.post(f"{emulator.base_url}/_emulator/reset")
    runtime = open_runtime(Settings())
    sweep_id = submit(runtime, SweepRequest(**{**SMALL.__dict__, "strength": "0.2, 0.4, 0.6",
                                               "steps": "20, 30"}))  # 6 cells
    ids = [c.id for c in cells(runtime, sweep_id)]

    async def two_runners_one_redis_restart() -> None:
        first = asyncio.create_task(asyncio.to_thread(lambda: asyncio.run(
            _runner(runtime, "first").run_ids(ids))))
        while emulator_stats(emulator)["throttled_total"] < 2:
            await asyncio.sleep(0.05)
        await asyncio.to_thread(redis_server.stop)
        await asyncio.to_thread(redis_server.start)
        second = asyncio.to_thread(lambda: asyncio.run(_runner(runtime, "second").run_ids(ids)))
        await asyncio.gather(first, second)

    asyncio.run(two_runners_one_redis_restart())
    result = cells(runtime, sweep_id)
    assert {c.state for c in result} == {GenerationState.SUCCEEDED}, [c.error for c in result]
    assert_one_create_per_cell(emulator, 6)
    assert all(c.fence == 2 for c in result)  # every cell changed hands


def test_a_worker_that_lost_its_cell_never_cancels_the_prediction_the_new_owner_adopts(
        tuner_env, emulator, monkeypatch):
    """Two runners on one cell (a chunk dispatched twice, or the reaper resuming a slow one):
    the first creates the prediction and finds, recording it, that the second took the cell.
    The second, seeing the cell in `submitting`, adopts that same prediction; the first
    must not cancel it as a "duplicate" while the adoption is under way (seen in CI: the
    cell ended "Canceled on Replicate" with eight SQLite workers)."""
    import asyncio
    import threading

    from core.engine import execution

    configure(emulator, predict_time_s=2.0)
    monkeypatch.setattr(execution, "CREATE_REPLY_BOUND_S", 1.5)  # the adopter looks sooner
    runtime = open_runtime(Settings())
    sweep_id = submit(runtime, SweepRequest(**{**SMALL.__dict__, "strength": "0.5"}))
    [cell] = cells(runtime, sweep_id)
    first = execution.ChunkRunner(_runner(runtime, "first").ctx, [cell.id])
    second_done: list[BaseException | None] = []
    real_create = first._send_create

    def second_runs() -> None:
        try:
            asyncio.run(_runner(runtime, "second").run_ids([cell.id]))
            second_done.append(None)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            second_done.append(exc)

    async def create_then_lose_the_cell(*args, **kwargs):
        prediction = await real_create(*args, **kwargs)
        threading.Thread(target=second_runs, daemon=True).start()
        await asyncio.to_thread(wait_for, lambda: cells(runtime, sweep_id)[0].fence == 2, 30,
                                "the second runner to take the cell")
        return prediction  # the first now records it, and finds the cell is not its own

    first._send_create = create_then_lose_the_cell
    asyncio.run(first.run())
    wait_for(lambda: second_done, 60, "the second runner to finish")
    assert second_done == [None]
    [after] = cells(runtime, sweep_id)
    assert after.state == GenerationState.SUCCEEDED, after.error
    stats = emulator_stats(emulator)
    assert stats["creates_total"] == 1  # adopted, not created again
    assert build_client(runtime.endpoint).predictions.get(after.prediction_id).status \
        == "succeeded"  # never canceled by the runner that lost the cell


class _runner:
    """A ChunkRunner as a worker would build it (short lease, fast polling)."""

    def __init__(self, runtime, name: str) -> None:
        from core.engine.execution import ExecutionContext
        from core.planning.budget import Caps

        self.ctx = ExecutionContext(
            engine=runtime.engine, redis=runtime.redis, store=runtime.store,
            endpoint=runtime.endpoint, caps=Caps(sweep_usd=None, daily_usd=20, monthly_usd=300),
            default_inflight_cap=8, create_rate_per_minute=600, poll_interval_s=0.1,
            lease_s=5, thumbnail_max_px=400, worker_name=name, deployment=runtime.deployment)

    async def run_ids(self, ids: list[int]) -> None:
        from core.engine.execution import ChunkRunner

        await ChunkRunner(self.ctx, ids).run()


def test_a_database_outage_right_after_a_create_never_creates_again(tuner_env, emulator,
                                                                    monkeypatch):
    """Issue 14: the database goes away the moment a create succeeded, for longer than the
    worker's outage tolerance. The created id is held and recorded once the database is
    back; no second create. (The cut is timed by wrapping the runner's create call; the
    create, the database and its outage through a TCP proxy are real.)"""
    import asyncio
    import threading

    from core.engine.execution import ChunkRunner, ExecutionContext
    from tests.services import TcpProxy, fresh_postgres_database

    with fresh_postgres_database() as direct_url:
        proxy = TcpProxy("127.0.0.1", 5432)
        try:
            monkeypatch.setenv("DATABASE_URL", direct_url)
            runtime = open_runtime(Settings())
            sweep_id = submit(runtime, SweepRequest(**{**SMALL.__dict__, "strength": "0.5"}))
            from core.data.db import create_db_engine
            from core.planning.budget import Caps

            proxied = create_db_engine(direct_url.replace("127.0.0.1:5432",
                                                          f"127.0.0.1:{proxy.port}"))
            ctx = ExecutionContext(
                engine=proxied, redis=runtime.redis, store=runtime.store,
                endpoint=runtime.endpoint, caps=Caps(sweep_usd=None, daily_usd=20,
                                                     monthly_usd=300),
                default_inflight_cap=4, create_rate_per_minute=600, poll_interval_s=0.1,
                lease_s=10, thumbnail_max_px=400, worker_name="test",
                deployment=runtime.deployment, outage_tolerance_s=1.0)
            runner = ChunkRunner(ctx, [c.id for c in cells(runtime, sweep_id)])
            real_create = runner._send_create
            cut_once = threading.Event()

            async def create_then_lose_the_database(*args, **kwargs):
                prediction = await real_create(*args, **kwargs)
                if isinstance(prediction, dict) and not cut_once.is_set():
                    cut_once.set()
                    proxy.cut()
                    threading.Timer(4.0, proxy.restore).start()  # 4 s > the 1 s tolerance
                return prediction

            runner._send_create = create_then_lose_the_database
            asyncio.run(runner.run())
            result = cells(runtime, sweep_id)
            assert cut_once.is_set()
            assert {c.state for c in result} == {GenerationState.SUCCEEDED}, [c.error for c in result]
            assert_one_create_per_cell(emulator, 1)
            proxied.dispose()
            runtime.engine.dispose()
        finally:
            proxy.close()


def test_retrying_a_cell_whose_billed_output_was_not_stored_downloads_it_again(tuner_env,
                                                                              emulator):
    """Reproduction 5: "retry" of a cell that failed to store a billed output fetches that
    output again; it never creates (and pays for) a second prediction."""
    from sqlalchemy import update

    from core.engine.reaper import reap
    from core.planning.submit import requeue

    runtime = open_runtime(Settings())
    sweep_id = submit(runtime, SweepRequest(**{**SMALL.__dict__, "strength": "0.5"}))
    run_queue(runtime.settings.redis_url)
    [done] = cells(runtime, sweep_id)
    with session_scope(runtime.engine) as session:  # as the store step leaves it when it gives up
        session.execute(update(Generation).where(Generation.id == done.id).values(
            state=GenerationState.FAILED, output_key=None, thumbnail_key=None,
            error="The output could not be stored (disk full) before Replicate deleted it."))
    assert requeue(runtime, sweep_id, "failed", actor="tester").cells == 1
    with session_scope(runtime.engine) as session:
        reap(session, runtime.redis, chunk_size=16, grace_s=0)
    run_queue(runtime.settings.redis_url)
    [again] = cells(runtime, sweep_id)
    assert again.state == GenerationState.SUCCEEDED and again.output_key
    assert again.prediction_id == done.prediction_id
    assert again.cost_usd == pytest.approx(done.cost_usd)  # counted once
    assert emulator_stats(emulator)["creates_total"] == 1


def test_a_cached_upload_that_has_gone_is_uploaded_again_and_the_cell_retried_once(
        tuner_env, emulator):
    """Reproduction 6: the photo's Files-API copy is gone from Replicate (deleted, expired)
    while its URL is still cached, so the prediction fails fetching its input. The worker
    asks the Files API, drops the cached URL, uploads the photo again and creates the cell
    once more under the same reservation: the failed prediction never ran, so nothing is
    charged twice, and it is kept as a failed attempt (never adopted again)."""
    from core.data import keys
    from core.data.models import FailedAttempt

    runtime = open_runtime(Settings())
    one = SweepRequest(**{**SMALL.__dict__, "strength": "0.5"})
    submit(runtime, one)
    run_queue(runtime.settings.redis_url)
    client = build_client(runtime.endpoint)
    [stale] = client.files.list()
    cache_key = keys.file_url(runtime.endpoint.base_url, stale.metadata["sha256"])
    assert runtime.redis.get(cache_key).decode() == stale.urls["get"]
    client.files.delete(stale.id)  # gone on Replicate, still cached here

    again = submit(runtime, SweepRequest(**{**one.__dict__, "fresh_run": True}))
    run_queue(runtime.settings.redis_url)

    [cell] = cells(runtime, again)
    assert cell.state == GenerationState.SUCCEEDED and cell.error is None, cell.error
    stats = emulator_stats(emulator)
    assert stats["creates_total"] == 3  # the first sweep's; the failed create and its retry
    [fresh] = client.files.list()
    assert fresh.id != stale.id and runtime.redis.get(cache_key).decode() == fresh.urls["get"]
    with session_scope(runtime.engine) as session:
        [attempt] = session.scalars(select(FailedAttempt)
                                    .where(FailedAttempt.generation_id == cell.id)).all()
    assert attempt.prediction_id != cell.prediction_id and stale.id in attempt.error
    assert client.predictions.get(attempt.prediction_id).status == "failed"
    assert cell.cost_usd == pytest.approx(cell.predict_time_s * 0.000725)  # one charge

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
from tests.test_execution import GRID, configure, emulator_stats, inject, run_queue, submit

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

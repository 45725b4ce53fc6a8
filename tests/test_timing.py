"""The one timing model (poll pacing and estimates) and the estimates made from it."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.orm import Session

from core.data.models import Endpoint
from core.planning.estimates import estimate_cells
from core.planning.timing import PredictionTiming, TimingModel
from tests.factories import make_generation, make_model, make_sweep


def test_a_fixed_overhead_is_not_multiplied_by_the_steps():
    # 1 s + 0.1 s a step, seen at 20, 30 and 40 steps: 50 steps take 6 s, not 50 · (3/30).
    history = [PredictionTiming(1 + 0.1 * s, s) for s in (20, 30, 40)]
    assert TimingModel(history).expected_s(50) == pytest.approx(6.0)


def test_the_line_through_the_steps_ignores_a_cold_boot():
    history = [PredictionTiming(1 + 0.1 * s, s) for s in (20, 30, 40, 20, 30, 40)]
    history.append(PredictionTiming(95.0, 30))  # one cold boot
    assert TimingModel(history).expected_s(30) == pytest.approx(4.0)


def test_a_time_that_does_not_grow_with_steps_stays_flat():
    history = [PredictionTiming(4.0, s) for s in (20, 25, 30)]
    assert TimingModel(history).expected_s(50) == pytest.approx(4.0)


def test_samples_of_the_asked_image_size_win_and_others_are_scaled_by_megapixels():
    small = [PredictionTiming(2.0, 25, megapixels=0.5) for _ in range(3)]
    large = [PredictionTiming(8.0, 25, megapixels=2.0) for _ in range(3)]
    model = TimingModel(small + large)
    assert model.expected_s(25, 0.5) == pytest.approx(2.0)
    assert model.expected_s(25, 2.0) == pytest.approx(8.0)
    only_small = TimingModel(small)
    assert only_small.expected_s(25, 1.0) == pytest.approx(4.0)  # twice the pixels


def _history(session: Session, model, n: int, predict_s: float, steps: int) -> None:
    sweep = make_sweep(session, model, endpoint=Endpoint.EMULATOR)
    now = dt.datetime.now(dt.timezone.utc)
    for i in range(n):
        done = now - dt.timedelta(minutes=i + 1)
        make_generation(session, sweep, steps=steps, predict_time_s=predict_s,
                        replicate_queue_s=0.5, completed_at=done,
                        submitting_at=done - dt.timedelta(seconds=predict_s + 0.5 + 1.5),
                        output_width=1024, output_height=1024)


def test_without_history_the_price_table_and_the_prior_estimate(db_session: Session):
    model = make_model(db_session)
    estimate = estimate_cells(db_session, model, [20, 30], endpoint=Endpoint.EMULATOR,
                              inflight_cap=32, create_rate_per_minute=600)
    assert estimate.samples == 0 and "price table" in estimate.basis
    # prior: 3 s and 4 s of predicting at $0.000725 a second
    assert estimate.cost_usd == pytest.approx(7.0 * 0.000725)


def test_with_history_cost_and_duration_follow_what_ran(db_session: Session):
    model = make_model(db_session)
    _history(db_session, model, 10, predict_s=5.0, steps=25)
    estimate = estimate_cells(db_session, model, [25] * 64, [1.048576] * 64,
                              endpoint=Endpoint.EMULATOR, inflight_cap=32,
                              create_rate_per_minute=600)
    assert estimate.samples == 10 and "10 recent predictions" in estimate.basis
    assert estimate.cost_usd == pytest.approx(64 * 5.0 * 0.000725)
    # 2 waves of (5 s predicting + 0.5 s queued + 1.5 s our side) = 14 s; the 64 creates
    # take 6.3 s at 600/min, less than that.
    assert estimate.duration_s == pytest.approx(14.0)
    one_worker = estimate_cells(db_session, model, [25] * 64, endpoint=Endpoint.EMULATOR,
                                inflight_cap=32, create_rate_per_minute=600, workers=1,
                                chunk_size=16)
    assert one_worker.parallel == 16 and one_worker.duration_s == pytest.approx(28.0)
    other_endpoint = estimate_cells(db_session, model, [25], endpoint=Endpoint.REPLICATE,
                                    inflight_cap=32, create_rate_per_minute=600)
    assert other_endpoint.samples == 0  # emulated timings say nothing about Replicate

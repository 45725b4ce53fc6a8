"""Poll pacing: the predict-time estimate and when the next poll is due."""

from __future__ import annotations

import pytest

from core.polling import (MAX_BACKOFF_POLL_S, MAX_POLL_GAP_S, MAX_SAMPLES, PredictTimeEstimate,
                          next_poll_in)


def test_no_history_means_no_estimate():
    assert PredictTimeEstimate().expected_s(25) is None


def test_the_estimate_scales_with_the_steps_of_the_cell():
    estimate = PredictTimeEstimate([(10.0, 25), (8.0, 20), (12.0, 30)])  # 0.4 s a step
    assert estimate.expected_s(25) == pytest.approx(10.0)
    assert estimate.expected_s(50) == pytest.approx(20.0)


def test_a_model_without_steps_is_estimated_per_prediction():
    estimate = PredictTimeEstimate([(3.0, None), (5.0, None), (4.0, None)])
    assert estimate.expected_s(None) == pytest.approx(4.0)


def test_the_median_ignores_an_outlier():
    estimate = PredictTimeEstimate([(4.0, None), (4.2, None), (90.0, None)])
    assert estimate.expected_s(None) == pytest.approx(4.2)


def test_the_chunks_own_predictions_push_out_the_oldest_history():
    estimate = PredictTimeEstimate([(1.0, None)] * MAX_SAMPLES)
    for _ in range(MAX_SAMPLES // 2 + 1):
        estimate.note(9.0, None)
    assert estimate.expected_s(None) == pytest.approx(9.0)


def test_only_the_newest_history_counts():
    newest_first = [(2.0, None)] * MAX_SAMPLES + [(50.0, None)] * (MAX_SAMPLES * 2)
    assert PredictTimeEstimate(newest_first).expected_s(None) == pytest.approx(2.0)


def test_a_prediction_without_a_predict_time_is_not_a_sample():
    estimate = PredictTimeEstimate()
    estimate.note(None, 25)
    estimate.note(0.0, 25)
    assert estimate.expected_s(25) is None


def test_a_processing_prediction_is_polled_just_after_its_expected_finish():
    wait = next_poll_in("processing", waited_s=1.0, expected_s=20.0, poll_interval_s=1.0)
    assert 19.0 < wait <= 19.5


def test_an_expected_finish_sooner_than_the_interval_is_not_overshot():
    wait = next_poll_in("processing", waited_s=1.0, expected_s=1.5, poll_interval_s=1.0)
    assert 0.5 < wait < 1.0


def test_an_overdue_prediction_is_polled_every_interval():
    assert next_poll_in("processing", waited_s=25.0, expected_s=20.0, poll_interval_s=1.0) == 1.0


def test_a_long_estimate_is_checked_within_the_longest_gap():
    assert next_poll_in("processing", 0.0, expected_s=600.0, poll_interval_s=1.0) == MAX_POLL_GAP_S


@pytest.mark.parametrize("status, expected_s", [("processing", None), ("starting", 20.0)])
def test_without_an_estimate_polls_back_off_gently(status: str, expected_s: float | None):
    assert next_poll_in(status, 0.5, expected_s, poll_interval_s=1.0) == 1.0
    assert next_poll_in(status, 4.5, expected_s, poll_interval_s=1.0) == pytest.approx(1.5)
    assert next_poll_in(status, 120.0, expected_s, poll_interval_s=1.0) == MAX_BACKOFF_POLL_S

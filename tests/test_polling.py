"""Poll pacing: the predict-time estimate and when the next poll is due."""

from __future__ import annotations

import pytest

from core.engine.polling import (MAX_BACKOFF_POLL_S, MAX_POLL_GAP_S, MAX_SAMPLES, OWN_SAMPLES_TO_TRUST,
                          PredictionTiming, PredictTimeEstimate, next_poll_in)


def timings(*predict_s: float, steps: int | None = None) -> list[PredictionTiming]:
    return [PredictionTiming(s, steps) for s in predict_s]


def test_no_history_means_no_estimate():
    estimate = PredictTimeEstimate()
    assert estimate.expected_s(25) is None and estimate.expected_queue_s() is None


def test_the_estimate_scales_with_the_steps_of_the_cell():
    history = [PredictionTiming(10.0, 25), PredictionTiming(8.0, 20), PredictionTiming(12.0, 30)]
    estimate = PredictTimeEstimate(history)  # 0.4 s a step
    assert estimate.expected_s(25) == pytest.approx(10.0)
    assert estimate.expected_s(50) == pytest.approx(20.0)


def test_a_model_without_steps_is_estimated_per_prediction():
    assert PredictTimeEstimate(timings(3.0, 5.0, 4.0)).expected_s(None) == pytest.approx(4.0)


def test_the_median_ignores_an_outlier():
    assert PredictTimeEstimate(timings(4.0, 4.2, 90.0)).expected_s(None) == pytest.approx(4.2)


def test_the_queue_time_is_estimated_apart_from_predictions_that_have_one():
    history = [PredictionTiming(4.0, None, 0.5), PredictionTiming(4.0, None, None),
               PredictionTiming(4.0, None, 0.7), PredictionTiming(4.0, None, 120.0)]
    assert PredictTimeEstimate(history).expected_queue_s() == pytest.approx(0.7)


def test_the_chunks_own_predictions_replace_the_history_once_there_are_a_few():
    estimate = PredictTimeEstimate([PredictionTiming(1.0, None, 0.1)] * MAX_SAMPLES)
    for _ in range(OWN_SAMPLES_TO_TRUST):
        assert estimate.expected_s(None) == pytest.approx(1.0)  # one outlier is not enough
        estimate.note(PredictionTiming(9.0, None, 2.0))
    assert estimate.expected_s(None) == pytest.approx(9.0)
    assert estimate.expected_queue_s() == pytest.approx(2.0)


def test_the_chunks_own_predictions_count_with_a_short_history():
    estimate = PredictTimeEstimate(timings(4.0))
    estimate.note(PredictionTiming(6.0, None))
    assert estimate.expected_s(None) == pytest.approx(5.0)


def test_only_the_newest_history_counts():
    newest_first = timings(*[2.0] * MAX_SAMPLES, *[50.0] * (MAX_SAMPLES * 2))
    assert PredictTimeEstimate(newest_first).expected_s(None) == pytest.approx(2.0)


def test_a_prediction_without_a_predict_time_is_not_a_sample():
    estimate = PredictTimeEstimate()
    estimate.note(PredictionTiming(0.0, 25))
    assert estimate.expected_s(25) is None


def test_a_processing_prediction_is_polled_just_after_its_expected_finish():
    wait = next_poll_in("processing", 1.0, poll_interval_s=1.0, expected_s=20.0)
    assert 19.0 < wait <= 19.5


def test_a_just_created_prediction_is_polled_after_its_expected_queue_and_predict_time():
    wait = next_poll_in("starting", 0.0, poll_interval_s=1.0, expected_s=20.0,
                        expected_queue_s=0.5)
    assert 20.5 < wait <= 21.0


def test_a_prediction_queued_past_its_expected_finish_backs_off():
    # a cold boot: still starting when it was expected to be done
    wait = next_poll_in("starting", 24.0, poll_interval_s=1.0, expected_s=20.0,
                        expected_queue_s=0.5)
    assert wait == MAX_BACKOFF_POLL_S


def test_an_expected_finish_sooner_than_the_interval_is_not_overshot():
    wait = next_poll_in("processing", 1.0, poll_interval_s=1.0, expected_s=1.5)
    assert 0.5 < wait < 1.0


def test_an_overdue_prediction_is_polled_every_interval():
    assert next_poll_in("processing", 25.0, poll_interval_s=1.0, expected_s=20.0) == 1.0


def test_a_long_estimate_is_checked_within_the_longest_gap():
    assert next_poll_in("processing", 0.0, poll_interval_s=1.0, expected_s=600.0) \
        == MAX_POLL_GAP_S


@pytest.mark.parametrize("status, expected_s", [("processing", None), ("starting", None),
                                                ("starting", 20.0)])  # no queue estimate
def test_without_an_estimate_polls_back_off_gently(status: str, expected_s: float | None):
    assert next_poll_in(status, 0.5, poll_interval_s=1.0, expected_s=expected_s) == 1.0
    assert next_poll_in(status, 4.5, poll_interval_s=1.0, expected_s=expected_s) \
        == pytest.approx(1.5)
    assert next_poll_in(status, 120.0, poll_interval_s=1.0, expected_s=expected_s) \
        == MAX_BACKOFF_POLL_S


def test_a_started_at_ahead_of_our_clock_delays_the_poll_by_the_skew_only():
    # Replicate's clock 2 s ahead of ours: the prediction seems to have run -2 s
    wait = next_poll_in("processing", -2.0, poll_interval_s=1.0, expected_s=20.0)
    assert 22.0 < wait <= 22.5
    assert next_poll_in("starting", -2.0, poll_interval_s=1.0, expected_s=None) == 1.0

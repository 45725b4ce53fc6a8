"""When to poll a running prediction next.

Every poll costs CPU on our side (~1.5 ms through the official client) and a request on
Replicate's (whose API allows 3,000 a minute besides creates: 128 predictions polled every
second would need 7,680). So a worker aims each poll at the moment a prediction is likely to
be done, from the same model version's recent predictions: the database's history until
this chunk has a few of its own (they share the sweep's parameters, so they win then).
Predict time grows with the number of inference steps, so it is kept per step. One earlier
prediction is enough to aim at: predict time excludes Replicate's queue and boot time, so it
varies little for one version and step count; the queue time (created → started) is
estimated apart, and a prediction still queued past it is polled as before.
"""

from __future__ import annotations

from core.planning.timing import (MAX_SAMPLES, OWN_SAMPLES_TO_TRUST, PredictionTiming,
                                  TimingModel)

__all__ = ["MAX_SAMPLES", "OWN_SAMPLES_TO_TRUST", "PredictionTiming", "PredictTimeEstimate",
           "TimingModel", "next_poll_in"]

FINISH_MARGIN_S = 0.1  # poll this long after the expected finish, so it has happened
MIN_POLL_GAP_S = 0.2
MAX_POLL_GAP_S = 30.0  # never trust an estimate for longer than this in one sleep
MAX_BACKOFF_POLL_S = 2.0  # without an estimate, at most this late

# The expected finish comes from the one timing model, shared with the estimates shown
# before a sweep is submitted.
PredictTimeEstimate = TimingModel


def next_poll_in(status: str, waited_s: float, poll_interval_s: float,
                 expected_s: float | None, expected_queue_s: float | None = None) -> float:
    """Seconds until the next poll of a prediction in ``status`` (starting or processing)
    that has been in that phase ``waited_s`` (processing: since started_at; starting: since
    it was created).

    With an estimate: one poll just after the expected finish (the median, so about half are
    done by then), then every ``poll_interval_s`` once it is overdue. Without one, or once
    queued longer than expected: every ``poll_interval_s``, backing off to
    ``MAX_BACKOFF_POLL_S`` as the wait grows (a cold boot can take minutes)."""
    if expected_s:
        if status == "processing":
            return _until(expected_s - waited_s, poll_interval_s)
        if expected_queue_s is not None and waited_s < expected_queue_s + expected_s:
            return _until(expected_queue_s + expected_s - waited_s, poll_interval_s)
    return max(poll_interval_s, min(waited_s / 3, MAX_BACKOFF_POLL_S))


def _until(remaining_s: float, poll_interval_s: float) -> float:
    if remaining_s <= 0:
        return poll_interval_s
    return min(max(remaining_s + FINISH_MARGIN_S, MIN_POLL_GAP_S), MAX_POLL_GAP_S)

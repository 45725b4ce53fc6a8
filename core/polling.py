"""When to poll a running prediction next.

Every poll costs CPU on our side (~1.5 ms through the official client) and a request on
Replicate's, so a worker polls often only while it has no idea how long a prediction takes.
Predict time on one model version grows with the number of inference steps, so the estimate
is kept per step, from the same version's recent predictions: this chunk's own first, then
the database's history. One earlier prediction is enough to aim at: predict time excludes
Replicate's queue and boot time, so it varies little for one version and step count.
"""

from __future__ import annotations

import collections
import itertools
import statistics
from collections.abc import Iterable

MAX_SAMPLES = 50  # the most recent ones: a model's speed drifts (hardware, load)
FINISH_MARGIN_S = 0.1  # poll this long after the expected finish, so it has happened
MIN_POLL_GAP_S = 0.2
MAX_POLL_GAP_S = 30.0  # never trust an estimate for longer than this in one sleep
MAX_BACKOFF_POLL_S = 2.0  # without an estimate, at most this late


class PredictTimeEstimate:
    """Expected predict time of a cell, from predictions of the same model version."""

    def __init__(self, history: Iterable[tuple[float, int | None]] = ()) -> None:
        """``history``: (predict seconds, steps) of earlier predictions, newest first."""
        # Newest on the left; once full, the oldest falls off the right.
        newest = itertools.islice(history, MAX_SAMPLES)
        self._per_step: collections.deque[float] = collections.deque(
            (_per_step(seconds, steps) for seconds, steps in newest), maxlen=MAX_SAMPLES)
        self._median: float | None = None

    def note(self, predict_time_s: float | None, steps: int | None) -> None:
        """A prediction of this chunk finished after ``predict_time_s`` seconds of predicting."""
        if predict_time_s:
            self._per_step.appendleft(_per_step(float(predict_time_s), steps))
            self._median = None

    def expected_s(self, steps: int | None) -> float | None:
        """Median seconds per step (or per prediction, for models without steps) × steps;
        None before any prediction of this version has finished."""
        if not self._per_step:
            return None
        if self._median is None:
            self._median = statistics.median(self._per_step)
        return self._median * (steps or 1)


def _per_step(seconds: float, steps: int | None) -> float:
    return seconds / steps if steps else seconds


def next_poll_in(status: str, waited_s: float, expected_s: float | None,
                 poll_interval_s: float) -> float:
    """Seconds until the next poll of a prediction in ``status`` (starting or processing)
    that has been in that phase ``waited_s`` (processing: since started_at; starting: since
    it was created).

    Processing with an estimate: one poll just after the expected finish (the median, so
    about half are done by then), then every ``poll_interval_s`` once it is overdue.
    Otherwise every ``poll_interval_s``, backing off to ``MAX_BACKOFF_POLL_S`` as the wait
    grows (a cold boot can take minutes)."""
    if status == "processing" and expected_s:
        remaining = expected_s - waited_s
        if remaining > 0:
            return min(max(remaining + FINISH_MARGIN_S, MIN_POLL_GAP_S), MAX_POLL_GAP_S)
        return poll_interval_s
    return max(poll_interval_s, min(waited_s / 3, MAX_BACKOFF_POLL_S))

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

import collections
import dataclasses
import itertools
import statistics
from collections.abc import Iterable

MAX_SAMPLES = 50  # the most recent ones: a model's speed drifts (hardware, load)
OWN_SAMPLES_TO_TRUST = 3  # this many of the chunk's own predictions outweigh the history
FINISH_MARGIN_S = 0.1  # poll this long after the expected finish, so it has happened
MIN_POLL_GAP_S = 0.2
MAX_POLL_GAP_S = 30.0  # never trust an estimate for longer than this in one sleep
MAX_BACKOFF_POLL_S = 2.0  # without an estimate, at most this late


@dataclasses.dataclass(frozen=True)
class PredictionTiming:
    """How long one finished prediction took: predicting, and queued before it started."""

    predict_s: float
    steps: int | None = None
    queue_s: float | None = None


class _Median:
    """The median of the newest ``MAX_SAMPLES`` values: the history's, until the chunk has
    added ``OWN_SAMPLES_TO_TRUST`` of its own; then only its own."""

    def __init__(self, history_newest_first: Iterable[float] = ()) -> None:
        # Newest on the left; once full, the oldest falls off the right.
        self._values = collections.deque(itertools.islice(history_newest_first, MAX_SAMPLES),
                                         maxlen=MAX_SAMPLES)
        self._own = 0
        self._median: float | None = None

    def add(self, value: float) -> None:
        self._values.appendleft(value)
        self._own = min(self._own + 1, MAX_SAMPLES)
        self._median = None

    def get(self) -> float | None:
        if self._median is None and self._values:
            trusted = self._own if self._own >= OWN_SAMPLES_TO_TRUST else len(self._values)
            self._median = statistics.median(itertools.islice(self._values, trusted))
        return self._median


class PredictTimeEstimate:
    """Expected predict and queue time of a cell, from predictions of one model version."""

    def __init__(self, history: Iterable[PredictionTiming] = ()) -> None:
        """``history``: earlier predictions of the version, newest first."""
        history = list(itertools.islice(history, MAX_SAMPLES))
        self._per_step = _Median(_per_step(t) for t in history)
        self._queue = _Median(t.queue_s for t in history if t.queue_s is not None)

    def note(self, timing: PredictionTiming) -> None:
        """A prediction of this chunk finished."""
        if timing.predict_s > 0:
            self._per_step.add(_per_step(timing))
        if timing.queue_s is not None:
            self._queue.add(timing.queue_s)

    def expected_s(self, steps: int | None) -> float | None:
        """Median seconds per step (or per prediction, for models without steps) × steps;
        None before any prediction of this version has finished."""
        per_step = self._per_step.get()
        return None if per_step is None else per_step * (steps or 1)

    def expected_queue_s(self) -> float | None:
        return self._queue.get()


def _per_step(timing: PredictionTiming) -> float:
    return timing.predict_s / timing.steps if timing.steps else timing.predict_s


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

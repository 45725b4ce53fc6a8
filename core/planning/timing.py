"""How long a prediction takes: the one timing model, shared by poll pacing (a worker aims
each poll at the expected finish) and by the estimates shown before a sweep is submitted.

It learns from the same model version's recent predictions, newest first. Predict time
excludes Replicate's queue and boot time, so it varies little for one version, step count and
image size; the queue time (created → started) is estimated apart. Per step count: with
samples at two or more step counts, a Theil–Sen line (median of pairwise slopes, scipy) of
predict time on steps, so a fixed overhead is not multiplied by the steps and one slow boot
does not tilt it; at a single step count, the median time per step × steps. Per image size:
samples of the asked size are used when there are enough, otherwise all of them, scaled by
megapixels. Until a chunk has ``OWN_SAMPLES_TO_TRUST`` predictions of its own (the same
sweep's parameters), the history counts; then only its own.

Without any history, estimates fall back on ``PRIOR`` (1 s + 0.1 s a step, an A40 running
SDXL); poll pacing does not guess (``expected_s`` is None) and polls as for a new model.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import itertools
import statistics
from collections.abc import Callable, Iterable, Sequence

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.data.models import Endpoint, Generation, GenerationState, Sweep

MAX_SAMPLES = 50  # the most recent ones: a model's speed drifts (hardware, load)
OWN_SAMPLES_TO_TRUST = 3  # this many of the chunk's own predictions outweigh the history
SAME_SIZE_SAMPLES = 3  # this many samples of the asked image size: use only those


@dataclasses.dataclass(frozen=True)
class PredictionTiming:
    """How long one finished prediction took: predicting, and queued before it started;
    ``megapixels`` of its output and ``other_s`` (our side: submit → stored, less the predict
    time) where known."""

    predict_s: float
    steps: int | None = None
    queue_s: float | None = None
    # Context, not timing: two records of the same timings are equal without them.
    megapixels: float | None = dataclasses.field(default=None, compare=False)
    other_s: float | None = dataclasses.field(default=None, compare=False)


@dataclasses.dataclass(frozen=True)
class Prior:
    overhead_s: float = 1.0
    per_step_s: float = 0.1

    def predict_s(self, steps: int | None) -> float:
        return self.overhead_s + self.per_step_s * (steps or 0)


PRIOR = Prior()


class TimingModel:
    """Expected predict and queue time of a prediction of one model version."""

    def __init__(self, history: Iterable[PredictionTiming] = ()) -> None:
        """``history``: earlier predictions of the version, newest first."""
        newest = list(itertools.islice(history, MAX_SAMPLES))
        self._samples: collections.deque[PredictionTiming] = collections.deque(
            (t for t in newest if t.predict_s > 0), maxlen=MAX_SAMPLES)
        self._queue: collections.deque[float] = collections.deque(
            (t.queue_s for t in newest if t.queue_s is not None), maxlen=MAX_SAMPLES)
        self._own = 0
        self._own_queue = 0
        self._cache: dict[tuple[int | None, float | None, bool], float | None] = {}

    @property
    def n_samples(self) -> int:
        return len(self._samples)

    def note(self, timing: PredictionTiming) -> None:
        """A prediction of this chunk finished."""
        if timing.predict_s > 0:
            self._samples.appendleft(timing)
            self._own = min(self._own + 1, MAX_SAMPLES)
            self._cache.clear()
        if timing.queue_s is not None:
            self._queue.appendleft(timing.queue_s)
            self._own_queue = min(self._own_queue + 1, MAX_SAMPLES)

    def expected_s(self, steps: int | None, megapixels: float | None = None, *,
                   mean: bool = False) -> float | None:
        """Expected predict time; None before any prediction of this version finished.

        The median by default (poll pacing: about half are done by then); ``mean=True`` for
        what adds up over many cells (cost, duration), a 10%-trimmed mean so one cold boot
        does not dominate."""
        key = (steps, megapixels, mean)
        if key not in self._cache:
            self._cache[key] = self._fit(steps, megapixels, mean)
        return self._cache[key]

    def slowest_of_s(self, k: int, steps: int | None,
                     megapixels: float | None = None) -> float | None:
        """Expected predict time of the slowest of ``k`` predictions started together (a
        chunk's cells: the next chunk starts when the last one is done): the k/(k+1)
        quantile of the samples' spread around the fit."""
        expected = self.expected_s(steps, megapixels)
        if expected is None or k <= 1:
            return expected
        samples = self._trusted(list(self._samples), self._own)
        ratios = sorted(t.predict_s / max(_predict(samples, t.steps), 1e-9) for t in samples)
        index = min(len(ratios) - 1, round(k / (k + 1) * (len(ratios) - 1)))
        return expected * max(ratios[index], 1.0)

    def expected_queue_s(self) -> float | None:
        trusted = self._trusted(list(self._queue), self._own_queue)
        return statistics.median(trusted) if trusted else None

    def expected_other_s(self) -> float | None:
        """Our side of a cell (submit → stored, less predicting), where history has it."""
        values = [t.other_s for t in self._samples if t.other_s is not None]
        return statistics.median(values) if values else None

    def _trusted(self, values: list, own: int) -> list:
        return values[:own] if own >= OWN_SAMPLES_TO_TRUST else values

    def _fit(self, steps: int | None, megapixels: float | None, mean: bool = False
             ) -> float | None:
        samples = self._trusted(list(self._samples), self._own)
        if not samples:
            return None
        scale = 1.0
        if megapixels is not None:
            sized = [t for t in samples if t.megapixels is not None]
            same = [t for t in sized if abs(t.megapixels - megapixels) <= 0.01 * megapixels]
            if len(same) >= SAME_SIZE_SAMPLES:
                samples = same
            elif sized:
                samples = sized
                scale = megapixels / statistics.median(t.megapixels for t in sized)
        return scale * _predict(samples, steps, _trimmed_mean if mean else statistics.median)


def _trimmed_mean(values: Iterable[float]) -> float:
    from scipy.stats import trim_mean  # imported when first used: scipy.stats alone takes
    # about a second to import, which every page and worker paid at start-up

    return float(trim_mean(list(values), 0.1))


def _predict(samples: Sequence[PredictionTiming], steps: int | None,
             centre: Callable[[Iterable[float]], float] = statistics.median) -> float:
    with_steps = [t for t in samples if t.steps]
    if steps and len({t.steps for t in with_steps}) >= 2:
        from scipy.stats import theilslopes  # see _trimmed_mean

        with np.errstate(invalid="ignore"):  # its confidence bounds need more points; unused
            slope, _, _, _ = theilslopes([t.predict_s for t in with_steps],
                                         [t.steps for t in with_steps])
        slope = max(slope, 0.0)  # noise must not make more steps faster
        intercept = centre(t.predict_s - slope * t.steps for t in with_steps)
        return max(intercept + slope * steps, 0.0) or centre(t.predict_s for t in with_steps)
    per = centre(t.predict_s / t.steps if t.steps else t.predict_s for t in samples)
    return per * (steps or 1)


def recent_timings(session: Session, version_id: str, endpoint: Endpoint | None,
                   since: dt.datetime, limit: int = MAX_SAMPLES) -> list[PredictionTiming]:
    """How long the newest predictions of one model version that succeeded (on one endpoint,
    or either) since ``since`` took, newest first: how long the next one may take."""
    query = (select(Generation.predict_time_s, Generation.steps, Generation.replicate_queue_s,
                    Generation.output_width, Generation.output_height, Generation.submitting_at,
                    Generation.completed_at)
             .join(Sweep, Generation.sweep_id == Sweep.id)
             .where(Generation.state == GenerationState.SUCCEEDED,
                    Generation.completed_at >= since, Generation.reused_from_id.is_(None),
                    Generation.predict_time_s.is_not(None), Sweep.version_id == version_id)
             .order_by(Generation.completed_at.desc()).limit(limit))
    if endpoint is not None:
        query = query.where(Generation.endpoint == endpoint)
    timings = []
    for predict_s, steps, queue_s, width, height, submitting, completed in session.execute(query):
        predict = float(predict_s or 0.0)  # the query keeps only rows that have one
        other = None
        if submitting is not None and completed is not None:
            other = max((completed - submitting).total_seconds() - predict
                        - (queue_s or 0.0), 0.0)
        timings.append(PredictionTiming(
            predict_s=predict, steps=steps, queue_s=queue_s,
            megapixels=width * height / 1e6 if width and height else None, other_s=other))
    return timings

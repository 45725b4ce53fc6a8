"""Cost and duration of a sweep before it is submitted, learned from what ran.

Predict time per cell comes from the one timing model (``core.planning.timing``) fitted on the
model version's recent predictions on the same endpoint, per step count and image size; the
price table's rate turns it into cost. Without history, the prior (1 s + 0.1 s a step) stands
in and ``basis`` says so. Duration adds Replicate's queue and our side of each cell (submit →
stored, less predicting) as measured, and runs the cells at most ``parallel`` at a time: the
model's in-flight cap, or fewer when the workers running cannot hold that many (each worker
process runs one chunk of ``chunk_size`` cells at a time); creates are paced at the create rate.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.data.models import Endpoint, Generation, GenerationState, ModelSpec, Sweep, utcnow
from core.planning.pricing import Pricing, estimate_sweep, expected_cost
from core.planning.timing import MAX_SAMPLES, PRIOR, TimingModel, recent_timings

HISTORY = dt.timedelta(days=30)
PRIOR_OTHER_S = 1.0  # our side of a cell (upload, polls, download, store) without history


@dataclasses.dataclass(frozen=True)
class SweepEstimate:
    cost_usd: float
    duration_s: float
    basis: str  # where the numbers come from, in words
    samples: int  # predictions of this version the timing model learned from
    predict_s: float  # mean expected predict time per cell
    parallel: int  # cells expected in flight at once


def estimate_cells(session: Session, model: ModelSpec, steps: Sequence[int | None],
                   megapixels: Sequence[float | None] | None = None, *,
                   endpoint: Endpoint | None, inflight_cap: int, create_rate_per_minute: int,
                   workers: int | None = None, chunk_size: int | None = None,
                   now: dt.datetime | None = None,
                   model_inputs: Sequence[Mapping[str, Any]] | None = None,
                   input_megapixels: Sequence[float | None] | None = None) -> SweepEstimate:
    """Estimate for cells with these step counts (and output sizes, where known). With
    ``model_inputs`` (one per cell) each cell is priced in the model's billing unit: outputs
    it asks for, their megapixels and the input's (``pricing.expected_cost``)."""
    history = recent_timings(session, model.version_id or "", endpoint,
                             (now or utcnow()) - HISTORY, MAX_SAMPLES)
    timing = TimingModel(history)
    sizes = list(megapixels) if megapixels is not None else [None] * len(steps)
    if timing.n_samples:
        predicts = [timing.expected_s(s, mp, mean=True) or 0.0 for s, mp in zip(steps, sizes)]
        where = f"the {endpoint.value} endpoint" if endpoint else "any endpoint"
        basis = (f"{timing.n_samples} recent predictions of this model version on {where}, "
                 "fitted per step count and image size")
    else:
        predicts = [PRIOR.predict_s(s) for s in steps]
        basis = ("the price table and a prior of 1 s + 0.1 s a step: no recent predictions "
                 "of this model version")
    mean_predict = sum(predicts) / len(predicts) if predicts else 0.0
    overhead = (timing.expected_queue_s() or 0.0) + (timing.expected_other_s() or PRIOR_OTHER_S)
    parallel = inflight_cap
    pricing = Pricing.of(model)  # MissingPrice when it has none yet
    cell_costs = None
    if model_inputs is not None:
        inputs_mp = list(input_megapixels) if input_megapixels is not None else [None] * len(predicts)
        cell_costs = sum(expected_cost(pricing, model_input, expected_predict_time_s=predict,
                                       input_megapixels=mp)
                         for model_input, predict, mp in zip(model_inputs, predicts, inputs_mp))
    estimate = estimate_sweep(pricing, len(predicts), mean_predict, parallel,
                              create_rate_per_minute, per_cell_overhead_s=overhead,
                              cost_usd=cell_costs)
    duration = estimate.duration_s
    if workers and chunk_size and predicts:
        # Each worker runs one chunk at a time, and a chunk lasts as long as its slowest cell.
        parallel = max(1, min(inflight_cap, workers * chunk_size))
        chunks = math.ceil(len(predicts) / chunk_size)
        rounds = math.ceil(chunks / workers)
        k = min(chunk_size, len(predicts))
        typical_steps = max(set(steps), key=list(steps).count)
        slowest = (timing.slowest_of_s(k, typical_steps) if timing.n_samples
                   else PRIOR.predict_s(typical_steps))
        scale = mean_predict / max(timing.expected_s(typical_steps, mean=True) or mean_predict,
                                          1e-9)
        by_chunks = rounds * ((slowest or mean_predict) * scale + overhead)
        duration = max(duration, by_chunks)
    return SweepEstimate(estimate.cost_usd, duration, basis, timing.n_samples, mean_predict,
                         parallel)


def output_megapixels(session: Session, version_id: str, image_ids: Sequence[int]
                      ) -> dict[int, float]:
    """The output size this model version gave each input image before, where it did."""
    if not image_ids:
        return {}
    rows = session.execute(
        select(Generation.input_image_id,
               func.max(Generation.output_width * Generation.output_height))
        .join(Sweep, Sweep.id == Generation.sweep_id)
        .where(Sweep.version_id == version_id, Generation.state == GenerationState.SUCCEEDED,
               Generation.input_image_id.in_(list(image_ids)),
               Generation.output_width.is_not(None))
        .group_by(Generation.input_image_id))
    return {int(image_id): pixels / 1e6 for image_id, pixels in rows
            if image_id is not None and pixels}

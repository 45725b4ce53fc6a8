"""The cell state machine's database side: each transition is one conditional UPDATE, so
two workers holding the same cell (after a lease expired, or Redis lost its queue) can never
both create a prediction for it, nor both finalise it.

    pending → submitting → submitted → succeeded | failed | canceled
    (pending or submitting may also go straight to failed or canceled)
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from core.data.models import (FINAL_STATES, Endpoint, Generation, GenerationState, InputImage,
                         ModelSpec, Sweep, utcnow)
from core.planning import timing
from core.planning.timing import PredictionTiming
from core.timeutil import parse_replicate_time, seconds_between


@dataclasses.dataclass(frozen=True)
class CellTask:
    """What a worker needs to run one cell, read once at pick-up."""

    id: int
    sweep_id: int
    state: GenerationState
    prediction_id: str | None
    submitting_at: dt.datetime | None
    enqueued_at: dt.datetime | None
    model_ref: str
    version_id: str
    strength_input: str
    image_input: str
    model_input: dict[str, Any]
    steps: int | None
    image_key: str | None
    image_sha256: str | None
    inflight_cap: int | None
    pricing: dict[str, Any]
    sweep_canceled: bool
    sweep_budget_usd: float | None
    estimated_cell_usd: float


def claim(session: Session, generation_id: int, now: dt.datetime) -> CellTask | None:
    """Read what the worker needs and count the pick-up, in one transaction; the first
    pick-up ends our queue wait. None when the cell is gone."""
    task = _load_task(session, generation_id)
    if task is not None and not task.state.is_final:
        _mark_claimed(session, generation_id, now, seconds_between(task.enqueued_at, now))
    return task


def _load_task(session: Session, generation_id: int) -> CellTask | None:
    row = session.execute(
        select(Generation, Sweep, ModelSpec, InputImage)
        .join(Sweep, Generation.sweep_id == Sweep.id)
        .join(ModelSpec, Sweep.model_id == ModelSpec.id)
        .outerjoin(InputImage, Generation.input_image_id == InputImage.id)
        .where(Generation.id == generation_id)
    ).first()
    if row is None:
        return None
    gen, sweep, model, image = row
    n_cells = math.prod(len(values) for values in sweep.axes.values()) or 1  # no COUNT per cell
    return CellTask(
        id=gen.id, sweep_id=sweep.id, state=gen.state, prediction_id=gen.prediction_id,
        submitting_at=gen.submitting_at, enqueued_at=gen.enqueued_at,
        model_ref=sweep.model_ref, version_id=sweep.version_id,
        strength_input=model.strength_input, image_input=model.image_input,
        model_input=dict(gen.model_input), steps=gen.steps,
        image_key=image.storage_key if image else None,
        image_sha256=image.sha256 if image else None,
        inflight_cap=model.inflight_cap,
        pricing={"kind": model.pricing_kind, "hardware": model.hardware,
                 "usd_per_second": model.usd_per_second, "usd_per_image": model.usd_per_image},
        sweep_canceled=sweep.cancel_requested_at is not None,
        sweep_budget_usd=sweep.budget_usd,
        estimated_cell_usd=(sweep.estimated_cost_usd or 0.0) / n_cells,
    )


def _transition(session: Session, generation_id: int, from_states: set[GenerationState],
                **values: Any) -> bool:
    result = session.execute(
        update(Generation)
        .where(Generation.id == generation_id, Generation.state.in_(from_states))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def _mark_claimed(session: Session, generation_id: int, now: dt.datetime,
                 queue_s: float | None) -> None:
    """Count a pick-up; the first one ends our queue wait."""
    session.execute(update(Generation).where(Generation.id == generation_id).values(
        claimed_at=func.coalesce(Generation.claimed_at, now),
        queue_s=func.coalesce(Generation.queue_s, queue_s), attempts=Generation.attempts + 1,
    ).execution_options(synchronize_session=False))


def begin_submit(session: Session, generation_id: int, now: dt.datetime) -> bool:
    """pending → submitting. Only the worker that wins this may create the prediction."""
    return _transition(session, generation_id, {GenerationState.PENDING},
                       state=GenerationState.SUBMITTING, submitting_at=now,
                       create_attempts=Generation.create_attempts + 1)


def note_create_retry(session: Session, generation_id: int, now: dt.datetime,
                      error: str) -> None:
    session.execute(update(Generation).where(
        Generation.id == generation_id, Generation.state == GenerationState.SUBMITTING
    ).values(submitting_at=now, create_attempts=Generation.create_attempts + 1, error=error)
        .execution_options(synchronize_session=False))


def record_prediction(session: Session, generation_id: int, prediction: dict[str, Any],
                      now: dt.datetime) -> bool:
    """submitting → submitted, with the prediction id: committed before anything else."""
    return _transition(session, generation_id, {GenerationState.SUBMITTING},
                       state=GenerationState.SUBMITTED, prediction_id=prediction["id"],
                       replicate_status=prediction.get("status"), submitted_at=now,
                       replicate_created_at=parse_replicate_time(prediction.get("created_at")),
                       error=None)


def finish(session: Session, generation_id: int, state: GenerationState,
           **values: Any) -> bool:
    """Any unfinished state → a final one. False when another worker finished it first."""
    assert state in FINAL_STATES
    values.setdefault("completed_at", utcnow())
    if "cost_usd" in values:  # a retried cell keeps what its earlier predictions cost
        values["cost_usd"] = Generation.cost_usd + values["cost_usd"]
    unfinished = {GenerationState.PENDING, GenerationState.SUBMITTING, GenerationState.SUBMITTED}
    return _transition(session, generation_id, unfinished, state=state, **values)


def recent_timings(session: Session, version_id: str, endpoint: Endpoint,
                   since: dt.datetime, limit: int) -> list[PredictionTiming]:
    """The version's newest finished predictions on one endpoint (``core.planning.timing``)."""
    return timing.recent_timings(session, version_id, endpoint, since, limit)


def current_state(session: Session, generation_id: int) -> tuple[GenerationState, str | None]:
    row = session.execute(select(Generation.state, Generation.prediction_id)
                          .where(Generation.id == generation_id)).one()
    return row[0], row[1]

"""The cell state machine's database side: each transition is one conditional UPDATE, so
two workers holding the same cell (after a lease expired, or Redis lost its queue) can never
both create a prediction for it, nor both finalise it.

    pending → submitting → submitted → succeeded | failed | canceled
    (pending or submitting may also go straight to failed or canceled)

Fencing: every pick-up (``claim``) increments the cell's ``fence`` and hands the new value to
that worker. Each later write of the worker (begin submit, a further create attempt, record
the prediction, finish) applies only while the fence still matches, in the same UPDATE; so a
worker that lost the cell to another one — its lease lapsed while it slept on a 429, Redis
restarted — learns it before its next create and stops, and cannot record or finish.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.orm import Session

from core.data.models import (FINAL_STATES, Endpoint, FailedAttempt, Generation,
                              GenerationState, InputImage, ModelSpec, Sweep, utcnow)
from core.planning import timing
from core.planning.timing import PredictionTiming
from core.planning.pricing import MissingPrice, Pricing
from core.planning.schema import input_roles
from core.timeutil import parse_replicate_time, seconds_between


@dataclasses.dataclass(frozen=True)
class CellTask:
    """What a worker needs to run one cell, read once at pick-up."""

    id: int
    fence: int  # this pick-up's fencing token
    sweep_id: int
    state: GenerationState
    prediction_id: str | None
    replicate_status: str | None  # "succeeded" on a submitted cell: billed, output not yet kept
    submitting_at: dt.datetime | None
    create_sent_at: dt.datetime | None
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
    endpoint: Endpoint  # where the sweep was submitted to run
    base_url: str | None  # its API base URL, when recorded at submission
    reserved_usd: float  # cost bound held against the caps (a resumed cell keeps its own)
    # How the create is sent (core.engine.replicate_api.CreateTarget) and its deadline.
    create_via: str = "versioned"
    deployment: str | None = None
    image_is_list: bool = False
    cancel_after_s: int | None = None


def claim(session: Session, generation_id: int, now: dt.datetime) -> CellTask | None:
    """Take the cell: count the pick-up and move its fence on (one UPDATE … RETURNING, so two
    workers taking it at once get different fences), then read what the worker needs, in one
    transaction; the first pick-up ends our queue wait. None when the cell is gone; a
    finished cell is returned as it is (nothing to do)."""
    return claim_many(session, [generation_id], now).get(generation_id)


def claim_many(session: Session, generation_ids: Sequence[int],
               now: dt.datetime) -> dict[int, CellTask]:
    """``claim`` for the cells of a chunk at once, in one transaction: one UPDATE per
    enqueue time (a chunk's cells were queued together, so usually one) and one read. The
    cells start together, and 32 claims each in its own transaction cost 32 commits and, on
    SQLite, 32 turns at the write lock. Cells that are gone are left out."""
    ids = list(dict.fromkeys(generation_ids))
    if not ids:
        return {}
    queued: dict[dt.datetime | None, list[int]] = {}
    for gid, enqueued_at in session.execute(select(Generation.id, Generation.enqueued_at)
                                            .where(Generation.id.in_(ids))):
        queued.setdefault(enqueued_at, []).append(gid)
    fences: dict[int, int] = {}
    for enqueued_at, group in queued.items():
        rows = session.execute(update(Generation).where(
            Generation.id.in_(group), Generation.state.not_in(FINAL_STATES)
        ).values(
            claimed_at=func.coalesce(Generation.claimed_at, now),
            queue_s=func.coalesce(Generation.queue_s, seconds_between(enqueued_at, now)),
            attempts=Generation.attempts + 1, fence=Generation.fence + 1,
        ).returning(Generation.id, Generation.fence)
            .execution_options(synchronize_session=False))
        fences.update({gid: fence for gid, fence in rows})
    return _load_tasks(session, ids, fences)


def _load_tasks(session: Session, generation_ids: list[int],
                fences: dict[int, int]) -> dict[int, CellTask]:
    rows = session.execute(
        select(Generation, Sweep, ModelSpec, InputImage)
        .join(Sweep, Generation.sweep_id == Sweep.id)
        .join(ModelSpec, func.coalesce(Generation.model_id, Sweep.model_id) == ModelSpec.id)
        .outerjoin(InputImage, Generation.input_image_id == InputImage.id)
        .where(Generation.id.in_(generation_ids))
    ).all()
    # What depends on the model or the sweep only, worked out once for the chunk.
    of_model: dict[int, tuple[dict[str, Any], bool]] = {}
    cell_usd: dict[int, float] = {}
    tasks: dict[int, CellTask] = {}
    for gen, sweep, model, image in rows:
        if model.id not in of_model:
            of_model[model.id] = (_pricing_of(model),
                                  input_roles(model.input_schema or {}).image_is_list)
        if sweep.id not in cell_usd:
            n_cells = math.prod(len(values) for values in sweep.axes.values()) or 1
            cell_usd[sweep.id] = (sweep.estimated_cost_usd or 0.0) / n_cells  # no COUNT a cell
        pricing, image_is_list = of_model[model.id]
        tasks[gen.id] = CellTask(
            id=gen.id, fence=fences.get(gen.id, gen.fence), sweep_id=sweep.id,
            state=gen.state, prediction_id=gen.prediction_id,
            replicate_status=gen.replicate_status,
            submitting_at=gen.submitting_at, create_sent_at=gen.create_sent_at,
            enqueued_at=gen.enqueued_at,
            model_ref=model.ref, version_id=model.version_id or sweep.version_id,
            strength_input=model.strength_input, image_input=model.image_input,
            model_input=dict(gen.model_input), steps=gen.steps,
            image_key=image.storage_key if image else None,
            image_sha256=image.sha256 if image else None,
            inflight_cap=model.inflight_cap,
            pricing=dict(pricing),
            sweep_canceled=sweep.cancel_requested_at is not None,
            sweep_budget_usd=sweep.budget_usd,
            estimated_cell_usd=cell_usd[sweep.id],
            endpoint=sweep.endpoint, base_url=sweep.base_url,
            reserved_usd=gen.reserved_usd or 0.0,
            create_via=model.create_via, deployment=model.deployment,
            image_is_list=image_is_list,
            cancel_after_s=sweep.cancel_after_s,
        )
    return tasks


def _pricing_of(model: ModelSpec) -> dict[str, Any]:
    """The model's price as Pricing's fields (empty when it has none: the cell is then
    recorded at no cost rather than failed; planning refuses unpriced models)."""
    try:
        return dataclasses.asdict(Pricing.of(model))
    except MissingPrice:
        return {}


def _transition(session: Session, generation_id: int, fence: int,
                from_states: set[GenerationState], **values: Any) -> bool:
    """One conditional UPDATE: applies only in one of ``from_states`` and while ``fence`` is
    still the cell's (no other worker has picked it up since)."""
    result = cast(CursorResult[Any], session.execute(  # an UPDATE's result has rowcount
        update(Generation)
        .where(Generation.id == generation_id, Generation.state.in_(from_states),
               Generation.fence == fence)
        .values(**values)
        .execution_options(synchronize_session=False)
    ))
    return result.rowcount == 1


def begin_submit(session: Session, generation_id: int, fence: int, now: dt.datetime,
                 reserved_usd: float = 0.0) -> bool:
    """pending → submitting, holding ``reserved_usd`` against the caps. Only the worker that
    wins this may create the prediction. ``submitting_at`` stays the time of the first
    create: a lost create is looked for back to there."""
    return _transition(session, generation_id, fence, {GenerationState.PENDING},
                       state=GenerationState.SUBMITTING, submitting_at=now,
                       create_sent_at=now, reserved_usd=reserved_usd, create_attempts=Generation.create_attempts + 1)


def begin_create_attempt(session: Session, generation_id: int, fence: int, now: dt.datetime,
                         error: str | None = None) -> bool:
    """Before another create of a cell in submitting: count it, and only while this worker
    still owns the cell. False: another worker picked it up, or it ended; do not create."""
    values: dict[str, Any] = {"create_attempts": Generation.create_attempts + 1,
                              "create_sent_at": now}
    if error is not None:
        values["error"] = error
    return _transition(session, generation_id, fence, {GenerationState.SUBMITTING}, **values)


def record_prediction(session: Session, generation_id: int, fence: int,
                      prediction: dict[str, Any], now: dt.datetime) -> bool:
    """submitting → submitted, with the prediction id: committed before anything else.
    False when this worker no longer owns the cell (its fence moved) or it has ended."""
    return _transition(session, generation_id, fence, {GenerationState.SUBMITTING},
                       state=GenerationState.SUBMITTED, prediction_id=prediction["id"],
                       replicate_status=prediction.get("status"), submitted_at=now,
                       replicate_created_at=parse_replicate_time(prediction.get("created_at")),
                       error=None)


def retry_with_fresh_input(session: Session, generation_id: int, fence: int,
                           failed_prediction_id: str, error: str, now: dt.datetime) -> bool:
    """submitted → submitting again, once, after the prediction failed because its input file
    was gone from Replicate's Files API (a stale cached upload): the failed prediction is kept
    as a failed attempt (never adopted again), the cell's cost reservation stands for the new
    create. False when this worker no longer owns the cell."""
    moved = _transition(session, generation_id, fence, {GenerationState.SUBMITTED},
                        state=GenerationState.SUBMITTING, prediction_id=None,
                        replicate_status=None, error=error, create_sent_at=now,
                        create_attempts=Generation.create_attempts + 1)
    if moved:
        cell = session.get(Generation, generation_id)
        assert cell is not None  # just updated under our fence
        session.add(FailedAttempt(generation_id=generation_id, sweep_id=cell.sweep_id,
                                  attempt=cell.attempts, error=error,
                                  prediction_id=failed_prediction_id, endpoint=cell.endpoint,
                                  failed_at=now))
    return moved


def note_waiting(session: Session, generation_id: int, fence: int, error: str) -> bool:
    """A submitted cell waiting on something of ours (storage away): say so on the cell."""
    return _transition(session, generation_id, fence, {GenerationState.SUBMITTED}, error=error)


def finish(session: Session, generation_id: int, fence: int, state: GenerationState,
           **values: Any) -> bool:
    """Any unfinished state → a final one, settling the cell's reservation: its true cost is
    added to ``cost_usd`` and nothing stays reserved. False when another worker owns the
    cell now, or finished it first."""
    assert state in FINAL_STATES
    values.setdefault("completed_at", utcnow())
    if "cost_usd" in values:  # a retried cell keeps what its earlier predictions cost
        values["cost_usd"] = Generation.cost_usd + values["cost_usd"]
    values["reserved_usd"] = 0.0
    unfinished = {GenerationState.PENDING, GenerationState.SUBMITTING, GenerationState.SUBMITTED}
    return _transition(session, generation_id, fence, unfinished, state=state, **values)


def known_prediction_ids(session: Session, prediction_ids: list[str]) -> set[str]:
    """Which of these predictions some cell holds or held in a failed attempt (never adopted
    by another, nor again)."""
    if not prediction_ids:
        return set()
    held = session.scalars(select(Generation.prediction_id)
                           .where(Generation.prediction_id.in_(prediction_ids)))
    failed = session.scalars(select(FailedAttempt.prediction_id)
                             .where(FailedAttempt.prediction_id.in_(prediction_ids)))
    return {p for p in [*held, *failed] if p}


def recent_timings(session: Session, version_id: str, endpoint: Endpoint,
                   since: dt.datetime, limit: int) -> list[PredictionTiming]:
    """The version's newest finished predictions on one endpoint (``core.planning.timing``)."""
    return timing.recent_timings(session, version_id, endpoint, since, limit)


def current_state(session: Session,
                  generation_id: int) -> tuple[GenerationState, str | None] | None:
    """The cell's state and prediction id; None when the cell is gone (its photo deleted)."""
    row = session.execute(select(Generation.state, Generation.prediction_id)
                          .where(Generation.id == generation_id)).one_or_none()
    return (row[0], row[1]) if row is not None else None


def image_exists(session: Session, sha256: str) -> bool:
    return session.scalar(select(InputImage.id).where(InputImage.sha256 == sha256)) is not None

"""Sweeps: plan a grid, store its cells, hand them to the queue, cancel and retry them.

The page and the CLI both go through ``plan_sweep`` → ``create_sweep`` → ``dispatch``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import random
from collections.abc import Sequence
from typing import Any

from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from core.planning import grid

from core.data import keys
from core.data.audit import record
from core.planning.budget import Caps, check_budget_value, check_submission
from core.planning.catalog import ensure_model
from core.errors import BudgetExceeded, InvalidInput, NotFound
from core.data.models import (Endpoint, FailedAttempt, Generation, GenerationState, InputImage,
                              ModelSpec, Scenario, Sweep, utcnow)
from core.insight.progress import CellCounts
from core.planning.estimates import SweepEstimate, estimate_cells, output_megapixels


log = logging.getLogger(__name__)
CANCEL_FLAG_TTL_S = 7 * 24 * 3600


@dataclasses.dataclass(frozen=True)
class SweepRequest:
    """A grid as a person typed it (axis texts) plus what it runs on."""

    model_ref: str
    image_ids: Sequence[int]
    strength: str
    steps: str
    prompts: Sequence[str]
    guidance: str = "7.5"
    seed: str = "-1"
    prompt_sr: str = ""
    negative_prompt: str = ""
    fixed: dict[str, Any] = dataclasses.field(default_factory=dict)
    scenario_id: int | None = None
    budget_usd: float | None = None
    fresh_run: bool = False
    name: str = ""


@dataclasses.dataclass(frozen=True)
class SweepPlan:
    request: SweepRequest
    model: ModelSpec
    cells: list[grid.CellSpec]
    reusable: dict[str, int]  # request hash → the succeeded generation whose output is reused
    estimated_cost_usd: float
    estimated_duration_s: float
    axes: dict[str, list[Any]]
    estimate: SweepEstimate | None = None  # how the estimate was made

    @property
    def to_run(self) -> int:
        return sum(1 for c in self.cells if c.request_hash not in self.reusable)


def plan_sweep(session: Session, request: SweepRequest, *, max_cells: int, inflight_cap: int,
               create_rate_per_minute: int, fetch_schema: Any = None,
               rng: random.Random | None = None, endpoint: Endpoint | None = None,
               workers: int | None = None, chunk_size: int | None = None) -> SweepPlan:
    """Parse and validate every axis, expand the grid and price it; nothing is stored."""
    model = ensure_model(session, request.model_ref, fetch_schema=fetch_schema)
    images = _images(session, request.image_ids)
    variants = _prompt_variants(request)
    spec = grid.GridSpec(
        model_version=f"{model.ref}:{model.version_id}",
        images=tuple(grid.GridImage(str(i.id), i.sha256) for i in images),
        prompts=variants,
        seed=tuple(grid.resolve_seeds(grid.parse_number_axis(request.seed, name="seed",
                                                             integer=True), rng or random.Random())),
        guidance=tuple(grid.parse_number_axis(request.guidance, name="guidance")),
        steps=tuple(grid.parse_number_axis(request.steps, name="steps", integer=True)),
        strength=tuple(grid.parse_number_axis(request.strength, name="strength")),
        negative_prompt=request.negative_prompt, fixed=dict(request.fixed),
    )
    names = grid.InputNames(strength=model.strength_input, image=model.image_input)
    cells = grid.expand_grid(spec, model_input_names=names, max_cells=max_cells,
                             openapi_schema=model.input_schema or {})
    reusable = {} if request.fresh_run else _reusable_outputs(
        session, [c.request_hash for c in cells], endpoint)
    running = [c for c in cells if c.request_hash not in reusable]
    sizes = output_megapixels(session, model.version_id or "", [i.id for i in images])
    estimate = estimate_cells(session, model, [c.steps for c in running],
                              [sizes.get(int(c.image_id)) for c in running], endpoint=endpoint,
                              inflight_cap=model.inflight_cap or inflight_cap,
                              create_rate_per_minute=create_rate_per_minute, workers=workers,
                              chunk_size=chunk_size)
    axes = {"image": [i.id for i in images], "prompt": [v.label for v in variants],
            "seed": list(spec.seed), "guidance": list(spec.guidance), "steps": list(spec.steps),
            "strength": list(spec.strength)}
    return SweepPlan(request, model, cells, reusable, estimate.cost_usd, estimate.duration_s, axes,
                     estimate)


def _prompt_variants(request: SweepRequest) -> tuple[grid.PromptVariant, ...]:
    prompts = [p for p in (p.strip() for p in request.prompts) if p]
    if not prompts:
        raise InvalidInput("Type at least one prompt.")
    variants: list[grid.PromptVariant] = []
    for prompt in prompts:
        variants.extend(grid.prompt_variants(prompt, request.prompt_sr))
    if len(prompts) > 1:  # labels must stay unique across several base prompts
        variants = [dataclasses.replace(v, label=f"P{i + 1}") if v.label in
                    {w.label for w in variants[:i]} else v for i, v in enumerate(variants)]
    return tuple(variants)


def _images(session: Session, image_ids: Sequence[int]) -> list[InputImage]:
    if not image_ids:
        raise InvalidInput("Choose at least one input image: upload one or pick from the library.")
    images = list(session.scalars(select(InputImage).where(InputImage.id.in_(list(image_ids)))))
    missing = set(image_ids) - {i.id for i in images}
    if missing:
        raise InvalidInput(f"Input image(s) {sorted(missing)} no longer exist: choose others.")
    order = {image_id: n for n, image_id in enumerate(image_ids)}
    return sorted(images, key=lambda i: order[i.id])


def _reusable_outputs(session: Session, hashes: list[str],
                      endpoint: Endpoint | None) -> dict[str, int]:
    """Outputs to reuse: same request, made on the same endpoint (the reuse key includes it)."""
    found: dict[str, int] = {}
    for start in range(0, len(hashes), 500):
        rows = session.execute(
            select(Generation.request_hash, func.min(Generation.id))
            .where(Generation.request_hash.in_(hashes[start:start + 500]),
                   Generation.state == GenerationState.SUCCEEDED,
                   Generation.output_key.is_not(None),
                   *([Generation.endpoint == endpoint] if endpoint is not None else []))
            .group_by(Generation.request_hash))
        found.update({h: gid for h, gid in rows})
    return found


def create_sweep(session: Session, plan: SweepPlan, *, created_by: str, endpoint: Endpoint,
                 caps: Caps, base_url: str | None = None) -> Sweep:
    """Store the sweep and its cells; reused cells are complete at once and cost nothing.
    ``base_url``: the API the sweep must run against (a worker set up for another refuses
    it). Only outputs made on the same endpoint are reused: emulated pictures never stand in
    for a real sweep's."""
    request = plan.request
    # Every sweep has a cap: its own budget, else the default (SWEEP_BUDGET_USD / Settings).
    budget = check_budget_value(request.budget_usd, "sweep budget")
    if budget is None:
        budget = check_budget_value(caps.sweep_usd, "default sweep budget")
    caps = dataclasses.replace(caps, sweep_usd=budget)
    now = utcnow()
    check_submission(session, caps, plan.estimated_cost_usd,
                     is_real=endpoint == Endpoint.REPLICATE, now=now)
    if request.scenario_id is not None and session.get(Scenario, request.scenario_id) is None:
        raise InvalidInput(f"Scenario {request.scenario_id} does not exist.")
    sweep = Sweep(
        name=request.name or _default_name(plan), scenario_id=request.scenario_id,
        model_id=plan.model.id, model_ref=plan.model.ref, version_id=plan.model.version_id or "",
        axes=plan.axes, fixed_params={"negative_prompt": request.negative_prompt, **request.fixed},
        endpoint=endpoint, created_by=created_by, budget_usd=budget, base_url=base_url,
        estimated_cost_usd=plan.estimated_cost_usd, fresh_run=request.fresh_run,
        estimated_duration_s=plan.estimated_duration_s,
    )
    session.add(sweep)
    session.flush()
    reused = _reused_rows(session, set(plan.reusable.values()))
    rows = []
    for cell in plan.cells:
        values = dict(
            sweep_id=sweep.id, cell_index=cell.index, input_image_id=int(cell.image_id),
            strength=cell.strength, steps=cell.steps, guidance=cell.guidance, seed=cell.seed,
            prompt=cell.prompt, prompt_label=cell.prompt_label,
            negative_prompt=cell.negative_prompt, model_input=cell.model_input,
            request_hash=cell.request_hash, endpoint=endpoint, created_at=now,
            state=GenerationState.PENDING, attempts=0, create_attempts=0, cost_usd=0.0,
        )
        source = reused.get(plan.reusable.get(cell.request_hash, -1))
        if source is not None and source.endpoint == endpoint:
            values.update(state=GenerationState.SUCCEEDED, reused_from_id=source.id,
                          output_key=source.output_key, thumbnail_key=source.thumbnail_key,
                          output_width=source.output_width, output_height=source.output_height,
                          predict_time_s=source.predict_time_s, prediction_id=None,
                          completed_at=now, latency_s=0.0, endpoint=source.endpoint)
        rows.append(values)
    session.execute(Generation.__table__.insert(), rows)
    record(session, created_by, "create_sweep", "sweep", sweep.id,
           {"cells": len(rows), "reused": sum(1 for r in rows if r.get("reused_from_id")),
            "estimated_cost_usd": plan.estimated_cost_usd, "model": plan.model.ref})
    return sweep


def _reused_rows(session: Session, ids: set[int]) -> dict[int, Generation]:
    if not ids:
        return {}
    return {g.id: g for g in session.scalars(select(Generation).where(Generation.id.in_(ids)))}


def _default_name(plan: SweepPlan) -> str:
    sizes = " × ".join(str(len(v)) for k, v in plan.axes.items() if len(v) > 1) or "1"
    return f"{plan.model.ref} {sizes}"


# -- dispatch ------------------------------------------------------------------------------------
def dispatch(session: Session, redis: Redis, generation_ids: Sequence[int], *,
             chunk_size: int) -> list[str]:
    """Enqueue cells in chunks (one RQ job each) and record the job on each cell.

    Raises redis.ConnectionError when Redis is down: the cells stay pending with no job,
    and ``dispatch_undispatched`` sends them once Redis answers again."""
    from rq import Queue

    queue = Queue(keys.QUEUE_NAME, connection=redis)
    ids = list(generation_ids)
    chunks = [ids[i:i + chunk_size] for i in range(0, len(ids), chunk_size)]
    job_datas = [Queue.prepare_data("core.engine.tasks.run_chunk", args=(chunk,), timeout=6 * 3600,
                                    result_ttl=3600, failure_ttl=7 * 24 * 3600,
                                    description=f"cells {chunk[0]}…{chunk[-1]}")
                 for chunk in chunks]
    jobs = queue.enqueue_many(job_datas)
    now = utcnow()
    for chunk, job in zip(chunks, jobs):
        session.execute(update(Generation).where(Generation.id.in_(chunk))
                        .values(job_id=job.id, enqueued_at=func.coalesce(Generation.enqueued_at, now))
                        .execution_options(synchronize_session=False))
    return [job.id for job in jobs]


def pending_cell_ids(session: Session, sweep_id: int) -> list[int]:
    return list(session.scalars(select(Generation.id).where(
        Generation.sweep_id == sweep_id, Generation.state == GenerationState.PENDING)
        .order_by(Generation.cell_index)))


@dataclasses.dataclass(frozen=True)
class CancelOutcome:
    """What a cancel did: queued cells that will never start, in-flight cells their workers
    stop, or nothing at all because every cell had already ended."""

    sweep_id: int
    queued_canceled: int
    in_flight: int
    already_finished: bool
    workers_told: bool

    def message(self) -> str:
        if self.already_finished:
            return (f"Sweep {self.sweep_id} had already finished: nothing to cancel, "
                    "nothing changed.")
        text = f"Sweep {self.sweep_id} canceled: {self.queued_canceled} queued cell(s) will not start"
        if self.in_flight:
            text += (f"; {self.in_flight} in-flight prediction(s) are being canceled" if
                     self.workers_told else f"; Redis is down, so {self.in_flight} in-flight "
                     "prediction(s) are canceled when it is back")
        return text + "."


def cancel_sweep(session: Session, redis: Redis | None, sweep_id: int, *,
                 actor: str) -> CancelOutcome:
    """Queued cells never start; in-flight predictions are cancelled by their workers.
    A sweep whose cells have all ended is left exactly as it is."""
    sweep = _sweep(session, sweep_id)
    counts = cell_counts(session, sweep_id)
    if counts.finished:
        return CancelOutcome(sweep_id, 0, 0, already_finished=True, workers_told=False)
    sweep.cancel_requested_at = sweep.cancel_requested_at or utcnow()
    told = False
    if redis is not None:
        try:  # the fast path to running cells; the reaper re-raises the flag if this fails
            redis.set(keys.sweep_cancel(sweep_id), actor, ex=CANCEL_FLAG_TTL_S)
            told = True
        except (RedisConnectionError, RedisTimeoutError):
            log.warning("Redis unavailable: sweep %s canceled in the database only", sweep_id)
    result = session.execute(update(Generation).where(
        Generation.sweep_id == sweep_id, Generation.state == GenerationState.PENDING
    ).values(state=GenerationState.CANCELED, completed_at=utcnow(),
             error=f"Canceled by {actor} before it started.")
        .execution_options(synchronize_session=False))
    record(session, actor, "cancel_sweep", "sweep", sweep_id,
           {"queued_cells_canceled": result.rowcount, "in_flight": counts.in_flight})
    return CancelOutcome(sweep_id, result.rowcount, counts.in_flight, already_finished=False,
                         workers_told=told)


_RESET = dict(state=GenerationState.PENDING, prediction_id=None, replicate_status=None,
              error=None, job_id=None, enqueued_at=None, claimed_at=None, submitting_at=None,
              submitted_at=None, started_at=None, completed_at=None, replicate_created_at=None,
              replicate_completed_at=None, predict_time_s=None, queue_s=None,
              replicate_queue_s=None, overhead_s=None, latency_s=None)


def retry_failed(session: Session, redis: Redis | None, sweep_id: int, *, actor: str,
                 caps: Caps | None = None) -> list[int]:
    """Put the failed cells (only those) back to pending; returns their ids to dispatch.
    Each failed attempt is kept in ``failed_attempt`` first, so failure rates still count it.
    Raises InvalidInput saying why when there is nothing to retry or it cannot run now."""
    sweep = _sweep(session, sweep_id)
    ids = _cells_in(session, sweep_id, GenerationState.FAILED)
    if not ids:
        raise InvalidInput(f"Sweep {sweep_id} has no failed cells to retry"
                           + _other_hint(session, sweep_id))
    _ready_to_requeue(session, redis, sweep, len(ids), caps)
    keep_failed_attempts(session, ids)
    session.execute(update(Generation).where(Generation.id.in_(ids)).values(**_RESET)
                    .execution_options(synchronize_session=False))
    record(session, actor, "retry_failed", "sweep", sweep_id, {"cells": len(ids)})
    return ids


def resume_canceled(session: Session, redis: Redis | None, sweep_id: int, *, actor: str,
                    caps: Caps | None = None, budget_usd: float | None = None) -> list[int]:
    """Put the canceled cells (canceled by a person or halted by a budget) back to pending;
    returns their ids to dispatch. ``budget_usd`` replaces the sweep's own cap first."""
    sweep = _sweep(session, sweep_id)
    ids = _cells_in(session, sweep_id, GenerationState.CANCELED)
    if not ids:
        raise InvalidInput(f"Sweep {sweep_id} has no canceled cells to resume"
                           + _other_hint(session, sweep_id))
    if budget_usd is not None:
        sweep.budget_usd = check_budget_value(budget_usd, "sweep budget")
    _ready_to_requeue(session, redis, sweep, len(ids), caps)
    sweep.halted_reason = None
    session.execute(update(Generation).where(Generation.id.in_(ids)).values(**_RESET)
                    .execution_options(synchronize_session=False))
    record(session, actor, "resume_canceled", "sweep", sweep_id,
           {"cells": len(ids), "budget_usd": sweep.budget_usd})
    return ids


def _cells_in(session: Session, sweep_id: int, state: GenerationState) -> list[int]:
    return list(session.scalars(select(Generation.id).where(
        Generation.sweep_id == sweep_id, Generation.state == state)
        .order_by(Generation.cell_index)))


def _other_hint(session: Session, sweep_id: int) -> str:
    counts = cell_counts(session, sweep_id)
    if counts.canceled:
        return f" ({counts.canceled} canceled: resume them with `sweep resume {sweep_id}`)."
    if counts.failed:
        return f" ({counts.failed} failed: retry them with `sweep retry {sweep_id}`)."
    return f" ({counts.describe()})."


def _ready_to_requeue(session: Session, redis: Redis | None, sweep: Sweep, n_cells: int,
                      caps: Caps | None) -> None:
    """Refuse, saying why, what would be canceled again at once; else lift the sweep's cancel
    (in the database and on Redis) so the cells put back really run."""
    counts = cell_counts(session, sweep.id)
    if sweep.cancel_requested_at is not None and counts.pending:
        raise InvalidInput(f"Sweep {sweep.id} is still canceling ({counts.in_flight} cell(s) "
                           "being stopped): try again once they have ended.")
    per_cell = (sweep.estimated_cost_usd or 0.0) / max(counts.total, 1)
    if caps is not None:
        from core.planning.budget import sweep_spend

        if sweep.budget_usd is not None:
            spent = sweep_spend(session, sweep.id)
            if spent + n_cells * per_cell > sweep.budget_usd:
                from core.planning.pricing import format_usd

                raise BudgetExceeded(
                    f"Sweep {sweep.id} has spent {format_usd(spent)} of its budget "
                    f"{format_usd(sweep.budget_usd)}; {n_cells} more cell(s) need about "
                    f"{format_usd(n_cells * per_cell)}: raise the sweep's budget "
                    "(`sweep resume ID --budget USD`, or the budget box on Runs).")
        check_submission(session, dataclasses.replace(caps, sweep_usd=None), n_cells * per_cell,
                         is_real=sweep.endpoint == Endpoint.REPLICATE, now=utcnow())
    if sweep.cancel_requested_at is not None:
        sweep.cancel_requested_at = None
        if redis is not None:  # else the reaper lowers the flag once Redis answers
            with contextlib.suppress(RedisConnectionError, RedisTimeoutError):
                redis.delete(keys.sweep_cancel(sweep.id))


def keep_failed_attempts(session: Session, generation_ids: Sequence[int]) -> int:
    """Copy the failed attempts of these cells into ``failed_attempt`` before they are run
    again, so failure rates and reasons still count them."""
    if not generation_ids:
        return 0
    rows = session.execute(select(
        Generation.id, Generation.sweep_id, Generation.error, Generation.prediction_id,
        Generation.completed_at, Generation.endpoint, Generation.attempts)
        .where(Generation.id.in_(list(generation_ids)),
               Generation.state == GenerationState.FAILED)).all()
    if rows:
        session.execute(FailedAttempt.__table__.insert(), [
            dict(generation_id=gid, sweep_id=sid, error=error or "", prediction_id=pred,
                 failed_at=completed or utcnow(), endpoint=endpoint, attempt=attempts)
            for gid, sid, error, pred, completed, endpoint, attempts in rows])
    return len(rows)


def dispatch_pending(session: Session, redis: Redis, sweep_id: int, *, chunk_size: int) -> int:
    """Queue every pending cell of a sweep that no job holds yet; the number queued.
    Raises redis.ConnectionError when Redis is down (the reaper sends them later)."""
    ids = list(session.scalars(select(Generation.id).where(
        Generation.sweep_id == sweep_id, Generation.state == GenerationState.PENDING,
        Generation.job_id.is_(None)).order_by(Generation.cell_index)))
    if ids:
        dispatch(session, redis, ids, chunk_size=chunk_size)
    return len(ids)


def succeeded_generation(session: Session, generation_id: int, purpose: str) -> Generation:
    """A generation that has an image, or NotFound / InvalidInput saying why not."""
    generation = session.get(Generation, generation_id)
    if generation is None:
        raise NotFound(f"Generation {generation_id} does not exist.")
    if generation.state != GenerationState.SUCCEEDED:
        raise InvalidInput(f"Generation {generation_id} is {generation.state.value}; only a "
                           f"succeeded generation can be {purpose}.")
    return generation


def _sweep(session: Session, sweep_id: int) -> Sweep:
    sweep = session.get(Sweep, sweep_id)
    if sweep is None:
        raise NotFound(f"Sweep {sweep_id} does not exist.")
    return sweep


# -- reading -------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class SweepSummary:
    id: int
    name: str
    model_ref: str
    endpoint: str
    created_by: str
    created_at: Any
    total: int
    by_state: dict[str, int]
    cost_usd: float
    estimated_cost_usd: float
    canceled: bool
    halted_reason: str | None
    reused: int = 0  # succeeded cells served from an earlier output (nothing ran)
    failed_attempts: int = 0  # failed now + failures kept when failed cells were retried

    @property
    def counts(self) -> CellCounts:
        return CellCounts.from_states(self.by_state)

    @property
    def done(self) -> int:
        """Cells that ran to an end (succeeded or failed); canceled cells are not done."""
        return self.counts.done

    @property
    def status(self) -> str:
        """The one rule (``CellCounts.status``), as its lowercase value."""
        return self.counts.status(cancel_requested=self.canceled).value

    @property
    def finished(self) -> bool:
        return self.counts.finished


def cell_counts(session: Session, sweep_id: int) -> CellCounts:
    rows = session.execute(select(Generation.state, func.count())
                           .where(Generation.sweep_id == sweep_id).group_by(Generation.state))
    return CellCounts.from_states({GenerationState(state).value: n for state, n in rows})


def summarize(session: Session, sweep_ids: Sequence[int] | None = None,
              limit: int = 50) -> list[SweepSummary]:
    """Sweeps newest first with cell counts by state and cost, in two queries."""
    query = select(Sweep).order_by(Sweep.id.desc())
    query = query.where(Sweep.id.in_(list(sweep_ids))) if sweep_ids is not None else query.limit(limit)
    sweeps = list(session.scalars(query))
    if not sweeps:
        return []
    counts: dict[int, dict[str, int]] = {s.id: {} for s in sweeps}
    costs: dict[int, float] = {}
    rows = session.execute(
        select(Generation.sweep_id, Generation.state, func.count(), func.sum(Generation.cost_usd))
        .where(Generation.sweep_id.in_(list(counts))).group_by(Generation.sweep_id, Generation.state))
    for sweep_id, state, n, cost in rows:
        counts[sweep_id][GenerationState(state).value] = n
        costs[sweep_id] = costs.get(sweep_id, 0.0) + float(cost or 0.0)
    ids = list(counts)
    reused = dict(session.execute(
        select(Generation.sweep_id, func.count()).where(
            Generation.sweep_id.in_(ids), Generation.reused_from_id.is_not(None))
        .group_by(Generation.sweep_id)).all())
    kept = dict(session.execute(
        select(FailedAttempt.sweep_id, func.count()).where(FailedAttempt.sweep_id.in_(ids))
        .group_by(FailedAttempt.sweep_id)).all())
    return [SweepSummary(
        id=s.id, name=s.name, model_ref=s.model_ref, endpoint=s.endpoint.value,
        created_by=s.created_by, created_at=s.created_at, total=sum(counts[s.id].values()),
        by_state=counts[s.id], cost_usd=costs.get(s.id, 0.0),
        estimated_cost_usd=s.estimated_cost_usd, canceled=s.cancel_requested_at is not None,
        halted_reason=s.halted_reason, reused=int(reused.get(s.id, 0)),
        failed_attempts=counts[s.id].get("failed", 0) + int(kept.get(s.id, 0)))
        for s in sweeps]


def cells_of(session: Session, sweep_id: int) -> list[Generation]:
    _sweep(session, sweep_id)
    return list(session.scalars(select(Generation).where(Generation.sweep_id == sweep_id)
                                .order_by(Generation.cell_index)))


def cell_record(gen: Generation) -> dict[str, Any]:
    """One cell as the CLI's JSON and the exports write it."""
    return {
        "id": gen.id, "status": gen.state.value, "strength": gen.strength, "steps": gen.steps,
        "guidance": gen.guidance, "seed": gen.seed, "prompt": gen.prompt,
        "prompt_label": gen.prompt_label, "input_image_id": gen.input_image_id,
        "prediction_id": gen.prediction_id, "predict_time_s": gen.predict_time_s,
        "queue_s": gen.queue_s, "replicate_queue_s": gen.replicate_queue_s,
        "overhead_s": gen.overhead_s, "latency_s": gen.latency_s, "cost_usd": gen.cost_usd,
        "output": gen.output_key, "thumbnail": gen.thumbnail_key, "error": gen.error,
        "attempts": gen.attempts, "endpoint": gen.endpoint.value,
        "reused_from": gen.reused_from_id,
    }


def sweep_version(session: Session, sweep_id: int) -> tuple:
    """What changes whenever any cell of the sweep does: (state, cells, last finish) per state.
    A cache keyed by it holds a sweep's cells until one moves (one indexed GROUP BY)."""
    rows = session.execute(
        select(Generation.state, func.count(), func.max(Generation.completed_at),
               func.max(Generation.id), func.sum(Generation.attempts))
        .where(Generation.sweep_id == sweep_id).group_by(Generation.state))
    return tuple(sorted((state.value, n, str(last), top, attempts)
                        for state, n, last, top, attempts in rows))

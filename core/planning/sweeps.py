"""Sweeps: plan a grid, store its cells, hand them to the queue, cancel and retry them.

The page and the CLI both go through ``plan_sweep`` → ``create_sweep`` → ``dispatch``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import random
from collections.abc import Mapping, Sequence
from typing import Any, cast

from redis import Redis
from sqlalchemy import CursorResult, Table, func, select, update
from sqlalchemy.orm import Session

from core.planning import grid

from core.data import keys, redisio
from core.data.audit import record
from core.data.settings_store import deployment_id
from core.planning.budget import Caps, check_budget_value, check_submission
from core.planning.catalog import ensure_model
from core.errors import BudgetExceeded, InvalidInput, NotFound, RedisUnavailable
from core.data.models import (Base, Endpoint, FailedAttempt, Generation, GenerationState, InputImage,
                              ModelSpec, Scenario, Sweep, utcnow)
from core.insight.progress import CellCounts
from core.planning import schema
from core.planning.pricing import Pricing
from core.planning.estimates import SweepEstimate, estimate_cells, output_megapixels


log = logging.getLogger(__name__)
CANCEL_FLAG_TTL_S = 7 * 24 * 3600


DEFAULT_CANCEL_AFTER_S = 300  # a prediction not started in 5 minutes ends aborted, unbilled
MIN_CANCEL_AFTER_S = 5  # Replicate's smallest Cancel-After
SHORTHANDS = ("strength", "steps", "guidance", "seed")  # each model's own name is used
NOT_APPLIED_KEY = "@not_applied"  # in Sweep.fixed_params: model → inputs it does not have
PER_MODEL_KEY = "@per_model"  # in Sweep.fixed_params: model → its own fixed values


@dataclasses.dataclass(frozen=True)
class SweepRequest:
    """A grid as a person typed it (axis texts) plus what it runs on.

    ``strength``, ``steps``, ``guidance`` and ``seed`` are shorthands: each model gets them
    under its own input name (prompt_strength or strength, …) and only where it has one;
    None leaves the model's default. ``axes`` sweeps any other input by its name (axis
    syntax text); ``fixed`` sets inputs every model that has them gets (typed values, or text
    parsed against the schema); ``per_model_fixed`` sets a value for one model only."""

    model_ref: str
    image_ids: Sequence[int]
    strength: str | None = None
    steps: str | None = None
    prompts: Sequence[str] = ()
    guidance: str | None = None
    seed: str | None = "-1"
    prompt_sr: str = ""
    negative_prompt: str = ""
    fixed: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    scenario_id: int | None = None
    budget_usd: float | None = None
    fresh_run: bool = False
    name: str = ""
    extra_models: Sequence[str] = ()  # the model axis: further models run on the same grid
    axes: Mapping[str, str] = dataclasses.field(default_factory=dict)
    per_model_fixed: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    cancel_after_s: int = DEFAULT_CANCEL_AFTER_S

    @property
    def model_refs(self) -> list[str]:
        return list(dict.fromkeys(r.strip() for r in (self.model_ref, *self.extra_models)
                                  if r and r.strip()))

    def axis_texts(self) -> dict[str, str]:
        """Every swept input by its grid name: the shorthands the person set, then the rest."""
        texts = {name: text for name in reversed(SHORTHANDS)
                 if (text := getattr(self, name)) is not None and str(text).strip()}
        for name, text in self.axes.items():
            if name in texts:
                raise InvalidInput(f"{name} is given twice: once as --{name} and once as an axis")
            texts[name] = text
        return texts


@dataclasses.dataclass(frozen=True)
class SweepPlan:
    request: SweepRequest
    model: ModelSpec  # the first model (the sweep's); ``models`` has them all
    cells: list[grid.CellSpec]  # cell.model says whose it is
    reusable: dict[str, int]  # request hash → the succeeded generation whose output is reused
    estimated_cost_usd: float
    estimated_duration_s: float
    axes: dict[str, list[Any]]
    estimate: SweepEstimate | None = None  # how the estimate was made
    models: list[ModelSpec] = dataclasses.field(default_factory=list)
    not_applied: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    fixed: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def to_run(self) -> int:
        return sum(1 for c in self.cells if c.request_hash not in self.reusable)


def _model_version(model: ModelSpec) -> str:
    """What the request hash (and reuse) is keyed on: the pinned version, or for an
    official model its name (Replicate keeps its version hidden)."""
    if model.create_via == "versioned" and model.version_id:
        return f"{model.ref}:{model.version_id}"
    return model.ref


def _input_name(axis: str, roles: schema.InputRoles, props: Mapping[str, Any]) -> str | None:
    """The model's input for a grid axis name: a shorthand's own name, or the input itself."""
    if axis in SHORTHANDS:
        return roles.name_for(axis)
    if axis in schema.ROLE_NAMES or axis == "image":
        raise InvalidInput(f"{axis} is set by the sweep itself (images and prompts), not as an "
                           "axis")
    return axis if axis in props else None


def _typed_fixed(name: str, value: Any, prop: Mapping[str, Any]) -> Any:
    if isinstance(value, str) and (prop.get("type") != "string" or "enum" in prop):
        return grid.parse_value(name, value, prop)
    return value


@dataclasses.dataclass
class _ModelGrid:
    """One model's share of a sweep: its axes and fixed values, and what it lacks."""

    axes: list[grid.AxisSpec]
    fixed: dict[str, Any]
    missing: list[str]
    used: set[str]


# Role axes in their usual order (strength varies fastest); other inputs come before them.
_AXIS_ORDER = {name: n for n, name in enumerate(reversed(SHORTHANDS), start=1)}


def _model_grid(model: ModelSpec, request: SweepRequest, texts: Mapping[str, str],
                seeds: list[int]) -> _ModelGrid:
    props = schema.input_properties(model.input_schema or {})
    roles = schema.input_roles(model.input_schema or {})
    out = _ModelGrid([], {}, [], set())
    for name, text in texts.items():
        input_name = _input_name(name, roles, props)
        if input_name is None:
            if name != "seed" or request.seed != "-1":  # the default seed is not a choice
                out.missing.append(name)
            continue
        out.used.add(name)
        values = seeds if name == "seed" else grid.parse_axis(name, text, props[input_name])
        out.axes.append(grid.AxisSpec(name, tuple(values), input_name))
    own = request.per_model_fixed.get(model.ref, {})
    for name, value in {**request.fixed, **own}.items():
        if name in props:
            out.used.add(name)
            out.fixed[name] = _typed_fixed(name, value, props[name])
        elif name in own:
            raise InvalidInput(f"{name} is not an input of {model.ref}; its inputs: "
                               f"{', '.join(props)}")
        else:
            out.missing.append(name)
    if request.negative_prompt.strip():
        (out.used.add("negative_prompt") if roles.negative_prompt
         else out.missing.append("negative_prompt"))
    out.axes.sort(key=lambda axis: _AXIS_ORDER.get(axis.name, 0))
    return out


def _check_models(models: list[ModelSpec], request: SweepRequest, refs: list[str]) -> None:
    if len({m.ref for m in models}) != len(models):
        raise InvalidInput("A model is listed twice: give each model once.")
    if not (MIN_CANCEL_AFTER_S <= request.cancel_after_s <= 24 * 3600):
        raise InvalidInput(f"Cancel-After {request.cancel_after_s} s is not allowed: give "
                           f"{MIN_CANCEL_AFTER_S} s to 24 h.")
    unknown = set(request.per_model_fixed) - {m.ref for m in models} - set(refs)
    if unknown:
        raise InvalidInput(f"Fixed values are given for {', '.join(sorted(unknown))}, which is "
                           "not a model of this sweep.")


def _refuse_missing(model: ModelSpec, missing: list[str]) -> None:
    listed = ", ".join(repr(m) for m in missing)
    one = len(missing) == 1
    props = schema.input_properties(model.input_schema or {})
    raise InvalidInput(f"{listed} {'is not an input' if one else 'are not inputs'} of "
                       f"{model.ref}: remove {'it' if one else 'them'}. Its inputs: "
                       f"{', '.join(props)}")


def plan_sweep(session: Session, request: SweepRequest, *, max_cells: int, inflight_cap: int,
               create_rate_per_minute: int, fetch_schema: Any = None,
               rng: random.Random | None = None, endpoint: Endpoint | None = None,
               workers: int | None = None, chunk_size: int | None = None) -> SweepPlan:
    """Parse and validate every axis against each model's own schema, expand the grid (one
    block of cells per model) and price it; nothing is stored.

    Common axes and fixed values apply to each model that has the input; an input no chosen
    model has is refused, and with one model every axis must be one of its inputs."""
    _refuse_nul(request)
    refs = request.model_refs
    if not refs:
        raise InvalidInput("Choose a model: owner/name, e.g. stability-ai/sdxl.")
    models = [ensure_model(session, ref, fetch_schema=fetch_schema) for ref in refs]
    _check_models(models, request, refs)
    for model in models:  # refused here, before anything else, when a model has no price
        Pricing.of(model)
    images = _images(session, request.image_ids)
    variants = _prompt_variants(request)
    texts = request.axis_texts()
    seeds = grid.resolve_seeds(grid.parse_number_axis(texts["seed"], name="seed", integer=True),
                               rng or random.Random()) if "seed" in texts else []
    grid_images = tuple(grid.GridImage(str(i.id), i.sha256, i.width * i.height / 1e6)
                        for i in images)
    megapixels = {image.image_id: image.megapixels for image in grid_images}
    cells: list[grid.CellSpec] = []
    per_model = {m.ref: _model_grid(m, request, texts, seeds) for m in models}
    for model in models:
        part = per_model[model.ref]
        if part.missing and len(models) == 1:
            _refuse_missing(model, part.missing)
        spec = grid.GridSpec(model_version=_model_version(model), images=grid_images,
                             prompts=variants, axes=tuple(part.axes), fixed=part.fixed,
                             negative_prompt=request.negative_prompt.strip())
        for cell in grid.expand_grid(spec, roles=schema.input_roles(model.input_schema or {}),
                                     max_cells=max_cells, openapi_schema=model.input_schema or {}):
            cells.append(dataclasses.replace(cell, index=len(cells), model=model.ref))
    used = set().union(*(p.used for p in per_model.values()))
    unused = sorted(n for n in {*texts, *request.fixed}
                    | ({"negative_prompt"} if request.negative_prompt.strip() else set())
                    if n not in used and not (n == "seed" and request.seed == "-1"))
    if unused:
        raise InvalidInput(f"{', '.join(unused)}: no model of this sweep has such an input; "
                           "remove it or add a model that has it.")
    if len(cells) > max_cells:
        raise InvalidInput(f"This sweep has {len(cells):,} cells over {len(models)} models; the "
                           f"limit is {max_cells:,}. Remove values or models.")
    reusable = {} if request.fresh_run else _reusable_outputs(
        session, [c.request_hash for c in cells], endpoint)
    running = [c for c in cells if c.request_hash not in reusable]
    estimate = None
    cost = duration = 0.0
    for model in models:  # each model runs under its own in-flight cap, side by side
        mine = [c for c in running if c.model == model.ref]
        sizes = output_megapixels(session, model.version_id or "", [i.id for i in images])
        estimate = estimate_cells(
            session, model, [c.steps for c in mine], [sizes.get(int(c.image_id)) for c in mine],
            endpoint=endpoint, inflight_cap=model.inflight_cap or inflight_cap,
            create_rate_per_minute=create_rate_per_minute, workers=workers,
            chunk_size=chunk_size, model_inputs=[c.model_input for c in mine],
            input_megapixels=[megapixels[c.image_id] for c in mine])
        cost += estimate.cost_usd
        duration = max(duration, estimate.duration_s)
    not_applied = {ref: p.missing for ref, p in per_model.items() if p.missing}
    axes_out = _axes_of(models, images, variants, per_model)
    return SweepPlan(request, models[0], cells, reusable, cost, duration, axes_out,
                     estimate if len(models) == 1 else None, models=models,
                     not_applied=not_applied, fixed=per_model[models[0].ref].fixed)


def _axes_of(models: list[ModelSpec], images: list[InputImage],
             variants: tuple[grid.PromptVariant, ...],
             per_model: dict[str, _ModelGrid]) -> dict[str, list[Any]]:
    """The sweep's axes as stored: the model (when several), images, prompts, then every
    swept input with the values any model got."""
    axes: dict[str, list[Any]] = {"model": [m.ref for m in models]} if len(models) > 1 else {}
    axes |= {"image": [i.id for i in images], "prompt": [v.label for v in variants]}
    for part in per_model.values():
        for axis in part.axes:
            known = axes.setdefault(axis.name, [])
            known += [v for v in axis.values if v not in known]
    return axes


def _refuse_nul(request: SweepRequest) -> None:
    """A NUL character cannot be stored (PostgreSQL refuses it with a bare DataError): say
    which field holds one."""
    fields: list[tuple[str, Any]] = [("name", request.name), ("negative prompt",
                                     request.negative_prompt), ("Prompt S/R", request.prompt_sr)]
    fields += [(f"prompt {n + 1}", p) for n, p in enumerate(request.prompts)]
    fields += [(f"{axis} axis", request.__dict__.get(axis)) for axis in SHORTHANDS]
    for label, value in fields:
        if isinstance(value, str) and "\x00" in value:
            raise InvalidInput(f"The {label} contains a NUL character (\\0), which cannot be "
                               "stored: remove it.")


def _prompt_variants(request: SweepRequest) -> tuple[grid.PromptVariant, ...]:
    prompts = [p for p in (p.strip() for p in request.prompts) if p]
    if not prompts:
        raise InvalidInput("Type at least one prompt.")
    variants: list[grid.PromptVariant] = []
    for prompt in prompts:
        variants.extend(grid.prompt_variants(prompt, request.prompt_sr))
    if len(prompts) > 1:  # labels must stay unique across several base prompts
        seen: set[str] = set()  # the labels before this one (one pass: 50,000 lines took 36 s)
        relabelled = []
        for i, v in enumerate(variants):
            relabelled.append(dataclasses.replace(v, label=f"P{i + 1}") if v.label in seen else v)
            seen.add(v.label)
        variants = relabelled
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
        axes=plan.axes, fixed_params=_fixed_params(plan),
        endpoint=endpoint, created_by=created_by, budget_usd=budget, base_url=base_url,
        estimated_cost_usd=plan.estimated_cost_usd, fresh_run=request.fresh_run,
        estimated_duration_s=plan.estimated_duration_s,
        cancel_after_s=request.cancel_after_s,
    )
    session.add(sweep)
    session.flush()
    reused = _reused_rows(session, set(plan.reusable.values()))
    rows = []
    model_ids = {m.ref: m.id for m in plan.models or [plan.model]}
    several = len(model_ids) > 1
    for cell in plan.cells:
        values = dict(
            sweep_id=sweep.id, cell_index=cell.index, input_image_id=int(cell.image_id),
            model_id=model_ids.get(cell.model) if several else None,
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
    session.execute(_table(Generation).insert(), rows)
    record(session, created_by, "create_sweep", "sweep", sweep.id,
           {"cells": len(rows), "reused": sum(1 for r in rows if r.get("reused_from_id")),
            "estimated_cost_usd": plan.estimated_cost_usd,
            "model": plan.model.ref if not several else list(model_ids)})
    return sweep


def _fixed_params(plan: SweepPlan) -> dict[str, Any]:
    """What the sweep set besides its axes: the negative prompt, the fixed inputs common
    to its models, each model's own, and the inputs a model does not have."""
    request = plan.request
    params: dict[str, Any] = {"negative_prompt": request.negative_prompt, **plan.fixed}
    if request.per_model_fixed:
        params[PER_MODEL_KEY] = {ref: dict(v) for ref, v in request.per_model_fixed.items()}
    if plan.not_applied:
        params[NOT_APPLIED_KEY] = plan.not_applied
    return params


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

    queue = Queue(keys.queue_name(deployment_id(session)), connection=redis)
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
            redisio.call(redis.set, keys.sweep_cancel(deployment_id(session), sweep_id), actor,
                         ex=CANCEL_FLAG_TTL_S)
            told = True
        except RedisUnavailable:
            log.warning("Redis unavailable: sweep %s canceled in the database only", sweep_id)
    result = cast(CursorResult[Any], session.execute(update(Generation).where(
        Generation.sweep_id == sweep_id, Generation.state == GenerationState.PENDING
    ).values(state=GenerationState.CANCELED, completed_at=utcnow(),
             error=f"Canceled by {actor} before it started.")
        .execution_options(synchronize_session=False)))  # an UPDATE's result has rowcount
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
    # A prediction Replicate finished and billed whose output we failed to store is fetched
    # again, never created again: the cell goes back to submitted with its prediction, and
    # the reaper hands it to a worker (it has no job).
    billed = list(session.scalars(select(Generation.id).where(
        Generation.id.in_(ids), Generation.prediction_id.is_not(None),
        Generation.replicate_status == "succeeded", Generation.output_key.is_(None))))
    if billed:
        session.execute(update(Generation).where(Generation.id.in_(billed)).values(
            state=GenerationState.SUBMITTED, error=None, job_id=None, completed_at=None)
            .execution_options(synchronize_session=False))
    stored_again = set(billed)
    rest = [gid for gid in ids if gid not in stored_again]
    session.execute(update(Generation).where(Generation.id.in_(rest)).values(**_RESET)
                    .execution_options(synchronize_session=False))
    record(session, actor, "retry_failed", "sweep", sweep_id,
           {"cells": len(ids), "stored_again": len(billed)})
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
            with contextlib.suppress(RedisUnavailable), redisio.redis_errors():
                redis.delete(keys.sweep_cancel(deployment_id(session), sweep.id))


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
        session.execute(_table(FailedAttempt).insert(), [
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


def _table(model: type[Base]) -> Table:
    """A mapped class's table, for a Core bulk INSERT of plain rows (SQLAlchemy types
    ``__table__`` as a FromClause; a declarative class's is always a Table)."""
    return cast(Table, model.__table__)


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
        "reused_from": gen.reused_from_id, "model_input": gen.model_input,
        "model_id": gen.model_id, "replicate_status": gen.replicate_status,
        "extra_outputs": [o["output_key"] for o in gen.extra_outputs or []],
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

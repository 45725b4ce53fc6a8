"""The production gate: a candidate version of a scenario against its production version, on one
version of a test set, with the same seeds, judged blind in pairs before approval.

A gate run is two ordinary sweeps, one per version, each under that version's own model,
prompt and parameters, over the test set's photos × the gate's seeds (one cell per photo and
seed: every other axis has one value). They run, are priced, capped and reused exactly as any
sweep (``core.planning.sweeps``): a production output made by an earlier gate on the same photo
and seed is an identical request and is reused at no cost. The cells with the same photo and
seed make a ``GatePair``.

Seeds are drawn from a generator seeded by the test set's id, so they are the same for every
gate on that set (asking for more seeds keeps the first ones): production's outputs from the
last gate are reused by the next one.

Blind review: a reviewer sees the photo and the pair's two outputs as "A" (left) and "B"
(right). Which side the candidate is on is drawn per pair *and reviewer* from the run's secret
salt, never sent to the page; the page sends back the pair id it showed with "left", "right"
or "same", and ``judge`` maps the side to a version itself. A choice therefore lands on the pair
that was on screen, however late it arrives. Verdict and statistics: ``core.scenarios.verdict``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
import secrets
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.data.audit import record
from core.data.models import (Endpoint, GateJudgment, GatePair, GateRun, Generation,
                              GenerationState, InputImage, Scenario, ScenarioStatus,
                              ScenarioVersion, Sweep, utcnow)
from core.errors import BudgetExceeded, InvalidInput, NotFound
from core.planning.budget import Caps
from core.planning.catalog import SDXL_REF
from core.planning.sweeps import SweepPlan, SweepRequest, create_sweep, plan_sweep
from core.scenarios import testsets, versions

MAX_SEEDS = 20
MAX_REVIEWERS = 10
PICKS = ("left", "right", "same")
CHOICES = ("candidate", "production", "same")
_SWEEP_PARAMS = ("strength", "num_inference_steps", "guidance_scale", "seed")


# -- versions ------------------------------------------------------------------------------------
def scenario_row(session: Session, scenario: int | str) -> Scenario:
    if isinstance(scenario, int) and not isinstance(scenario, bool):
        found = session.get(Scenario, scenario)
    else:
        found = session.scalar(select(Scenario).where(Scenario.name == str(scenario).strip()))
    if found is None:
        raise NotFound(f"Scenario {scenario!r} does not exist.")
    return found


def version_snapshot(session: Session, scenario: Scenario, version: int) -> dict[str, Any]:
    return dict(versions.version_row(session, scenario, version).snapshot)


def production_version(session: Session, scenario: Scenario) -> int | None:
    """The version production runs: the scenario's own record of it where it keeps one,
    else the newest version that moved it into production (later edits are not approved)."""
    recorded = getattr(scenario, "production_version", None)
    if isinstance(recorded, int):
        return recorded
    if ScenarioStatus(scenario.status) != ScenarioStatus.PRODUCTION:
        return None
    for row in session.scalars(select(ScenarioVersion).where(
            ScenarioVersion.scenario_id == scenario.id).order_by(ScenarioVersion.version.desc())):
        status_change = (row.diff or {}).get("status")
        if status_change and status_change[-1] == ScenarioStatus.PRODUCTION.value:
            return row.version
    return None


# -- planning and starting a gate run -----------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class GateRequest:
    scenario: int | str
    candidate_version: int
    test_set: int | str
    seeds: int = 2
    reviewers_per_pair: int = 1
    budget_usd: float | None = None
    fresh_run: bool = False
    production_version: int | None = None  # None: the scenario's production version


@dataclasses.dataclass(frozen=True)
class GatePlan:
    request: GateRequest
    scenario_id: int
    scenario_name: str
    candidate_version: int
    production_version: int
    test_set_id: int
    test_set_version: int
    photos: list[dict[str, Any]]
    seeds: list[int]
    candidate: SweepPlan
    production: SweepPlan

    @property
    def estimated_cost_usd(self) -> float:
        return self.candidate.estimated_cost_usd + self.production.estimated_cost_usd

    @property
    def cells(self) -> int:
        return len(self.candidate.cells) + len(self.production.cells)

    @property
    def reused(self) -> int:
        return self.cells - self.candidate.to_run - self.production.to_run


def gate_seeds(test_set_id: int, n: int) -> list[int]:
    """The first ``n`` seeds of the test set's own sequence (the same for every gate on it)."""
    if not 1 <= n <= MAX_SEEDS:
        raise InvalidInput(f"Seeds per photo must be between 1 and {MAX_SEEDS}; got {n}.")
    rng = random.Random(f"gate-seeds:{test_set_id}")
    seeds: list[int] = []
    while len(seeds) < n:
        seed = rng.randrange(1, 2**32 - 1)
        if seed not in seeds:
            seeds.append(seed)
    return seeds


def sweep_request(snapshot: dict[str, Any], *, label: str, image_ids: Sequence[int],
                  seeds: Sequence[int], scenario_id: int, fresh_run: bool,
                  budget_usd: float | None) -> SweepRequest:
    """One version's settings as a one-value-per-axis grid over photos × seeds."""
    params = dict(snapshot.get("params") or {})
    missing = [k for k in ("strength", "num_inference_steps") if params.get(k) is None]
    if missing:
        raise InvalidInput(f"The {label} version has no {' or '.join(missing)}: set "
                           f"{'them' if len(missing) > 1 else 'it'} on the scenario before a gate.")
    prompt = (snapshot.get("prompt_template") or "").strip()
    if not prompt:
        raise InvalidInput(f"The {label} version has no prompt: set one before a gate.")
    fixed = {k: v for k, v in params.items() if k not in _SWEEP_PARAMS}
    return SweepRequest(
        model_ref=snapshot.get("model_ref") or SDXL_REF, image_ids=list(image_ids),
        strength=str(params["strength"]), steps=str(params["num_inference_steps"]),
        guidance=str(params.get("guidance_scale", 7.5)), seed=", ".join(map(str, seeds)),
        prompts=[prompt], negative_prompt=snapshot.get("negative_prompt") or "", fixed=fixed,
        scenario_id=scenario_id, budget_usd=budget_usd, fresh_run=fresh_run,
        name=f"gate: {snapshot.get('name', '')} {label}")


def plan_gate(session: Session, request: GateRequest, *, limits: Any,
              fetch_schema: Any = None) -> GatePlan:
    """Both sweeps planned and priced; nothing is stored. ``limits`` carries
    ``max_cells_per_sweep``, ``inflight_cap`` and ``create_rate_per_minute`` (the effective
    settings)."""
    scenario = scenario_row(session, request.scenario)
    production = request.production_version or production_version(session, scenario)
    if production is None:
        raise InvalidInput(f"Scenario {scenario.name!r} has no production version to check "
                           "against: approve a first version without a gate.")
    if production == request.candidate_version:
        raise InvalidInput(f"Version {production} is the production version itself: pick a "
                           "candidate version to check against it.")
    if not 1 <= request.reviewers_per_pair <= MAX_REVIEWERS:
        raise InvalidInput(f"Reviewers per pair must be between 1 and {MAX_REVIEWERS}; got "
                           f"{request.reviewers_per_pair}.")
    if request.budget_usd is not None and request.budget_usd < 0:
        raise InvalidInput("The gate's budget cannot be negative.")
    candidate_snapshot = version_snapshot(session, scenario, request.candidate_version)
    production_snapshot = version_snapshot(session, scenario, production)
    test_set = testsets.get_test_set(session, request.test_set)
    if test_set.scenario_id not in (None, scenario.id):
        raise InvalidInput(f"Test set {test_set.name!r} belongs to scenario "
                           f"{test_set.scenario_name!r}: pick one of {scenario.name!r}'s or a "
                           "shared set.")
    photos = testsets.photos_at(session, test_set.id, test_set.version)
    if not photos:
        raise InvalidInput(f"Test set {test_set.name!r} has no photos left: add some first.")
    seeds = gate_seeds(test_set.id, request.seeds)
    image_ids = [int(p["image_id"]) for p in photos]
    plans = {}
    for label, snapshot in (("candidate", candidate_snapshot), ("production", production_snapshot)):
        sweep_req = sweep_request(snapshot, label=label, image_ids=image_ids, seeds=seeds,
                                  scenario_id=scenario.id, fresh_run=request.fresh_run,
                                  budget_usd=None)
        plans[label] = plan_sweep(session, sweep_req, max_cells=limits.max_cells_per_sweep,
                                  inflight_cap=limits.inflight_cap,
                                  create_rate_per_minute=limits.create_rate_per_minute,
                                  fetch_schema=fetch_schema)
    return GatePlan(request, scenario.id, scenario.name, request.candidate_version, production,
                    test_set.id, test_set.version, photos, seeds, plans["candidate"],
                    plans["production"])


def create_gate(session: Session, plan: GatePlan, *, actor: str, endpoint: Endpoint,
                caps: Caps) -> GateRun:
    """Check the cap, then store both sweeps, the gate run and its pairs (dispatching the
    sweeps' pending cells is the caller's, after commit). The gate's budget is split between
    the two sweeps in proportion to their estimates, so neither can spend past it."""
    if not (actor or "").strip():
        raise InvalidInput("Starting a gate needs the name of who starts it.")
    budget = plan.request.budget_usd if plan.request.budget_usd is not None else caps.sweep_usd
    total = plan.estimated_cost_usd
    if budget is not None and total > budget + 1e-12:
        raise BudgetExceeded(
            f"This gate is estimated at ${total:.4f} ({plan.cells} cells, {plan.reused} reused) "
            f"and its cap is ${budget:.4f}: use fewer seeds or photos, or raise the cap.")
    sweeps: dict[str, Sweep] = {}
    for label, sweep_plan in (("candidate", plan.candidate), ("production", plan.production)):
        share = (sweep_plan.estimated_cost_usd / total if total > 0 else 0.5)
        sweep_budget = None if budget is None else round(budget * share, 6)
        request = dataclasses.replace(sweep_plan.request, budget_usd=sweep_budget)
        sweeps[label] = create_sweep(session, dataclasses.replace(sweep_plan, request=request),
                                     created_by=actor, endpoint=endpoint,
                                     caps=dataclasses.replace(caps, sweep_usd=sweep_budget))
    run = GateRun(
        scenario_id=plan.scenario_id, candidate_version=plan.candidate_version,
        production_version=plan.production_version, test_set_id=plan.test_set_id,
        test_set_version=plan.test_set_version, seeds=list(plan.seeds),
        candidate_sweep_id=sweeps["candidate"].id, production_sweep_id=sweeps["production"].id,
        reviewers_per_pair=plan.request.reviewers_per_pair, budget_usd=budget,
        estimated_cost_usd=total, order_salt=secrets.token_hex(16), created_by=actor)
    session.add(run)
    session.flush()
    cells = {label: {(g.input_image_id, g.seed): g.id for g in session.scalars(
        select(Generation).where(Generation.sweep_id == sweep.id))
        if g.input_image_id is not None}  # always: each gate cell runs on a test-set photo
        for label, sweep in sweeps.items()}
    notes = {int(p["image_id"]): p.get("note", "") for p in plan.photos}
    for image_id, seed in cells["candidate"]:
        session.add(GatePair(gate_run_id=run.id, input_image_id=image_id, seed=seed,
                             note=notes.get(image_id, ""),
                             candidate_generation_id=cells["candidate"][(image_id, seed)],
                             production_generation_id=cells["production"][(image_id, seed)]))
    record(session, actor, "start_gate", "gate_run", run.id,
           {"scenario": plan.scenario_name, "candidate_version": plan.candidate_version,
            "production_version": plan.production_version, "test_set_id": plan.test_set_id,
            "test_set_version": plan.test_set_version, "seeds": plan.seeds,
            "estimated_cost_usd": total, "budget_usd": budget,
            "sweeps": [sweeps["candidate"].id, sweeps["production"].id]})
    session.flush()
    return run


@dataclasses.dataclass(frozen=True)
class StartedGate:
    gate_run_id: int
    cells: int
    reused: int
    estimated_cost_usd: float
    dispatched: bool  # False: Redis is away; the workers' reaper sends the cells when it is back


def estimate_gate(runtime: Any, request: GateRequest, *, fetch_schema: Any = None) -> GatePlan:
    """The gate planned and priced under the effective settings; nothing is stored."""
    from core.data.db import session_scope
    from core.data.settings_store import effective_settings
    from core.planning.submit import schema_fetcher

    with session_scope(runtime.engine) as session:
        return plan_gate(session, request, limits=effective_settings(session, runtime.settings),
                         fetch_schema=fetch_schema or schema_fetcher(runtime))


def start_gate(runtime: Any, request: GateRequest, *, actor: str,
               fetch_schema: Any = None) -> StartedGate:
    """Plan, cap-check and store a gate in one transaction, then queue its cells through the
    one submit path's ``queue_pending``: the one way the page and the CLI start a gate.
    ``runtime`` is a ``core.runtime.Runtime``."""
    from core.data.db import session_scope
    from core.data.settings_store import effective_settings
    from core.planning.submit import queue_pending, schema_fetcher

    endpoint = runtime.endpoint_kind  # raises ConfigurationError before anything is stored
    with session_scope(runtime.engine) as session:
        current = effective_settings(session, runtime.settings)
        plan = plan_gate(session, request, limits=current,
                         fetch_schema=fetch_schema or schema_fetcher(runtime))
        run = create_gate(session, plan, actor=actor, endpoint=endpoint,
                          caps=runtime.caps(session))
        run_id, chunk_size = run.id, current.chunk_size
        # both just set: a gate's sweep id is None only after that sweep was deleted
        sweep_ids = [s for s in (run.candidate_sweep_id, run.production_sweep_id) if s is not None]
    queued = [queue_pending(runtime, sweep_id, chunk_size=chunk_size) for sweep_id in sweep_ids]
    return StartedGate(run_id, plan.cells, plan.reused, plan.estimated_cost_usd, all(queued))


def gate_run(session: Session, gate_run_id: int) -> GateRun:
    run = session.get(GateRun, gate_run_id)
    if run is None:
        raise NotFound(f"Gate run {gate_run_id} does not exist.")
    return run


def list_gate_runs(session: Session, scenario_id: int | None = None,
                   limit: int = 50) -> list[GateRun]:
    query = select(GateRun).order_by(GateRun.id.desc()).limit(limit)
    if scenario_id is not None:
        query = query.where(GateRun.scenario_id == scenario_id)
    return list(session.scalars(query))


# -- blind pairwise review ----------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class PairView:
    """What a reviewer is shown: no version, model or parameter, only A (left) and B (right)."""

    pair_id: int
    gate_run_id: int
    input_key: str | None
    left_key: str | None
    right_key: str | None
    note: str
    your_pick: str | None  # left | right | same, when this reviewer judged it before


def candidate_side(run: GateRun, pair_id: int, reviewer: str) -> str:
    digest = hashlib.sha256(f"{run.order_salt}:{pair_id}:{reviewer}".encode()).digest()
    return "left" if digest[0] & 1 else "right"


def _reviewable(run_id: int):  # noqa: ANN202 - a select of reviewable pair ids
    cand = Generation.__table__.alias("cand")
    prod = Generation.__table__.alias("prod")
    return (select(GatePair.id)
            .join(cand, cand.c.id == GatePair.candidate_generation_id)
            .join(prod, prod.c.id == GatePair.production_generation_id)
            .where(GatePair.gate_run_id == run_id,
                   cand.c.state == GenerationState.SUCCEEDED.value,
                   prod.c.state == GenerationState.SUCCEEDED.value,
                   cand.c.output_key.is_not(None), prod.c.output_key.is_not(None)))


def upcoming_pairs(session: Session, gate_run_id: int, reviewer: str, limit: int = 5) -> list[int]:
    """The next pairs this reviewer has not judged that still lack reviewers: fewest
    judgments first, then oldest."""
    run = gate_run(session, gate_run_id)
    counts = (select(GateJudgment.pair_id, func.count().label("n"))
              .group_by(GateJudgment.pair_id).subquery())
    mine = select(GateJudgment.pair_id).where(GateJudgment.reviewer == reviewer)
    return list(session.scalars(
        select(GatePair.id).outerjoin(counts, counts.c.pair_id == GatePair.id)
        .where(GatePair.id.in_(_reviewable(run.id)), GatePair.id.not_in(mine),
               func.coalesce(counts.c.n, 0) < run.reviewers_per_pair)
        .order_by(func.coalesce(counts.c.n, 0), GatePair.id).limit(limit)))


def next_pair(session: Session, gate_run_id: int, reviewer: str) -> int | None:
    found = upcoming_pairs(session, gate_run_id, reviewer, limit=1)
    return found[0] if found else None


def pair_view(session: Session, pair_id: int, reviewer: str) -> PairView:
    pair = session.get(GatePair, pair_id)
    if pair is None:
        raise NotFound(f"Pair {pair_id} does not exist (its photo may have been deleted).")
    run = pair.gate_run
    cand = session.get(Generation, pair.candidate_generation_id)
    prod = session.get(Generation, pair.production_generation_id)
    image = session.get(InputImage, pair.input_image_id)
    side = candidate_side(run, pair.id, reviewer)
    left, right = (cand, prod) if side == "left" else (prod, cand)
    mine = session.scalar(select(GateJudgment).where(GateJudgment.pair_id == pair.id,
                                                     GateJudgment.reviewer == reviewer))
    return PairView(pair.id, run.id, image.storage_key if image else None,
                    left.output_key if left else None, right.output_key if right else None,
                    pair.note, _pick_of(mine) if mine else None)


def _pick_of(judgment: GateJudgment) -> str:
    if judgment.choice == "same":
        return "same"
    if judgment.choice == "candidate":
        return judgment.candidate_side
    return "right" if judgment.candidate_side == "left" else "left"


@dataclasses.dataclass(frozen=True)
class JudgmentRecord:
    pair_id: int
    reviewer: str
    pick: str
    choice: str
    replaced: bool


def judge(session: Session, pair_id: int, reviewer: str, pick: str, *,
          seconds_spent: float | None = None) -> JudgmentRecord:
    """Store ``reviewer``'s pick ("left", "right" or "same") on the pair they were shown.
    A second pick by the same reviewer replaces the first."""
    if pick not in PICKS:
        raise InvalidInput(f"A pick is one of {', '.join(PICKS)}; got {pick!r}.")
    if not (reviewer or "").strip():
        raise InvalidInput("A judgment needs the reviewer's name.")
    if seconds_spent is not None and seconds_spent < 0:
        raise InvalidInput("Time spent cannot be negative.")
    pair = session.get(GatePair, pair_id)
    if pair is None:
        raise NotFound(f"Pair {pair_id} does not exist (its photo may have been deleted); "
                       "nothing was saved.")
    run = pair.gate_run
    if pair.id not in set(session.scalars(_reviewable(run.id).where(GatePair.id == pair.id))):
        raise InvalidInput(f"Pair {pair_id} cannot be judged yet: both outputs must have "
                           "succeeded.")
    side = candidate_side(run, pair.id, reviewer)
    choice = "same" if pick == "same" else ("candidate" if pick == side else "production")
    existing = session.scalar(select(GateJudgment).where(GateJudgment.pair_id == pair.id,
                                                         GateJudgment.reviewer == reviewer))
    if existing is None:
        session.add(GateJudgment(pair_id=pair.id, reviewer=reviewer, choice=choice,
                                 candidate_side=side, seconds_spent=seconds_spent))
    else:
        existing.choice, existing.candidate_side = choice, side
        existing.seconds_spent, existing.updated_at = seconds_spent, utcnow()
    session.flush()
    return JudgmentRecord(pair.id, reviewer, pick, choice, existing is not None)


@dataclasses.dataclass(frozen=True)
class ReviewProgress:
    pairs: int
    reviewable: int
    judged_by_you: int
    complete: int  # pairs with every reviewer they need
    needed_judgments: int
    judgments: int


def review_progress(session: Session, gate_run_id: int, reviewer: str) -> ReviewProgress:
    run = gate_run(session, gate_run_id)
    pairs = session.scalar(select(func.count()).select_from(GatePair)
                           .where(GatePair.gate_run_id == run.id)) or 0
    reviewable = list(session.scalars(_reviewable(run.id)))
    counts = dict(session.execute(
        select(GateJudgment.pair_id, func.count()).where(GateJudgment.pair_id.in_(reviewable))
        .group_by(GateJudgment.pair_id)).all()) if reviewable else {}
    mine = session.scalar(select(func.count()).select_from(GateJudgment).where(
        GateJudgment.reviewer == reviewer, GateJudgment.pair_id.in_(reviewable))) or 0
    need = run.reviewers_per_pair
    return ReviewProgress(pairs, len(reviewable), mine,
                          sum(1 for p in reviewable if counts.get(p, 0) >= need),
                          need * len(reviewable),
                          sum(min(counts.get(p, 0), need) for p in reviewable))

"""The one way to submit a sweep, and to put its cells back to work: each takes a request
(or a sweep id) and an actor, resolves the effective settings (the Settings page's stored
values over the environment), does its work in one transaction, then queues the cells.

The dashboard's actions, the CLI, the tests and the benchmarks all call these; when Redis
does not answer the work is saved and the outcome says it is queued when Redis is back
(a worker's reaper sends cells no job holds)."""

from __future__ import annotations

import dataclasses
import random
from typing import TYPE_CHECKING, Any, Literal

from core.data import redisio
from core.data.db import session_scope
from core.data.settings_store import deployment_id, effective_settings
from core.errors import RedisUnavailable
from core.planning.sweeps import (CancelOutcome, SweepPlan, SweepRequest, cancel_sweep,
                                  create_sweep, dispatch_pending, plan_sweep, resume_canceled,
                                  retry_failed)

if TYPE_CHECKING:
    from core.runtime import Runtime

@dataclasses.dataclass(frozen=True)
class Submitted:
    """A stored sweep: how many cells, how many reuse a stored output, and whether its cells
    are on the queue now (False: Redis is down, they are sent when it is back)."""

    sweep_id: int
    cells: int
    reused: int
    estimated_cost_usd: float
    queued: bool
    models: tuple[str, ...] = ()  # the model axis, in order
    not_applied: dict[str, list[str]] = dataclasses.field(default_factory=dict)  # model → inputs it lacks

    def message(self) -> str:
        text = (f"Sweep {self.sweep_id} saved: {self.cells} cell(s)"
                + (f", {self.reused} reusing a stored output" if self.reused else "")
                + f", estimated {self.estimated_cost_usd:.4f} USD")
        return text + ("; queued." if self.queued else
                       "; Redis does not answer, so it is queued when Redis is back.")

    def as_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "message": self.message()}


def plan(runtime: Runtime, request: SweepRequest, *, rng: random.Random | None = None,
         fetch_schema: Any = None) -> SweepPlan:
    """The grid priced and checked against the effective limits; nothing is stored."""
    with session_scope(runtime.engine) as session:
        return _plan(session, runtime, request, rng=rng, fetch_schema=fetch_schema)


def _plan(session: Any, runtime: Runtime, request: SweepRequest, *, rng: random.Random | None,
          fetch_schema: Any) -> SweepPlan:
    current = effective_settings(session, runtime.settings)
    return plan_sweep(session, request, max_cells=current.max_cells_per_sweep,
                      inflight_cap=current.inflight_cap,
                      create_rate_per_minute=current.create_rate_per_minute,
                      fetch_schema=fetch_schema if fetch_schema is not None
                      else schema_fetcher(runtime), rng=rng,
                      # Estimates learn from this endpoint's history and the workers running.
                      endpoint=_endpoint_or_none(runtime),
                      workers=_workers_running(runtime, deployment_id(session)),
                      chunk_size=current.chunk_size)


def _endpoint_or_none(runtime: Runtime) -> Any:
    """The endpoint sweeps run on (an Endpoint kind); None when it is not configured."""
    from core.errors import TunerError

    try:
        return runtime.endpoint_kind
    except TunerError:
        return None


def _workers_running(runtime: Runtime, deployment: str) -> int | None:
    """The deployment's queue workers alive now, for the duration estimate; None when Redis
    cannot say."""
    from core.engine.worker import live_workers

    try:
        return len(redisio.call(live_workers, runtime.redis, deployment)) or None
    except RedisUnavailable:
        return None


def schema_fetcher(runtime: Runtime) -> Any:
    """Asks Replicate (or the emulator) for a schema only when a model is unknown here."""
    def fetch(model_name: str, version_id: str | None) -> Any:
        from core.engine.replicate_api import build_client
        from core.planning.catalog import replicate_schema_fetcher

        return replicate_schema_fetcher(build_client(runtime.endpoint))(model_name, version_id)

    return fetch


def submit_sweep(runtime: Runtime, request: SweepRequest, *, actor: str,
                 rng: random.Random | None = None, fetch_schema: Any = None) -> Submitted:
    """Plan, store and queue a sweep under the effective settings. Bad input or a cap raises
    (TunerError) before anything is stored; Redis being down does not lose the sweep."""
    endpoint = runtime.endpoint_kind  # raises ConfigurationError before anything is stored
    with session_scope(runtime.engine) as session:
        sweep_plan = _plan(session, runtime, request, rng=rng, fetch_schema=fetch_schema)
        current = effective_settings(session, runtime.settings)
        sweep = create_sweep(session, sweep_plan, created_by=actor, endpoint=endpoint,
                             caps=runtime.caps(session), base_url=runtime.endpoint.base_url)
        sweep_id, chunk_size = sweep.id, current.chunk_size
    queued = queue_pending(runtime, sweep_id, chunk_size=chunk_size)
    return Submitted(sweep_id, len(sweep_plan.cells), len(sweep_plan.cells) - sweep_plan.to_run,
                     sweep_plan.estimated_cost_usd, queued,
                     tuple(m.ref for m in sweep_plan.models), dict(sweep_plan.not_applied))


def queue_pending(runtime: Runtime, sweep_id: int, *, chunk_size: int | None = None) -> bool:
    """Queue the sweep's pending cells no job holds; False when Redis does not answer."""
    try:
        with redisio.redis_errors(), session_scope(runtime.engine) as session:
            size = chunk_size or effective_settings(session, runtime.settings).chunk_size
            dispatch_pending(session, runtime.redis, sweep_id, chunk_size=size)
        return True
    except RedisUnavailable:
        return False


@dataclasses.dataclass(frozen=True)
class Requeued:
    sweep_id: int
    kind: Literal["failed", "canceled"]
    cells: int
    queued: bool

    def message(self) -> str:
        verb = "retried" if self.kind == "failed" else "resumed"
        text = f"Sweep {self.sweep_id}: {self.cells} {self.kind} cell(s) {verb}"
        return text + ("; queued." if self.queued else
                       "; Redis does not answer, so they are queued when Redis is back.")

    def as_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "message": self.message()}


def requeue(runtime: Runtime, sweep_id: int, kind: Literal["failed", "canceled"], *,
            actor: str, budget_usd: float | None = None) -> Requeued:
    """``failed``: retry the failed cells only; ``canceled``: resume the canceled ones.
    Raises InvalidInput / BudgetExceeded saying why when they cannot run now."""
    redis = _redis_or_none(runtime)
    with session_scope(runtime.engine) as session:
        caps = runtime.caps(session)
        if kind == "failed":
            ids = retry_failed(session, redis, sweep_id, actor=actor, caps=caps)
        else:
            ids = resume_canceled(session, redis, sweep_id, actor=actor, caps=caps,
                                  budget_usd=budget_usd)
    return Requeued(sweep_id, kind, len(ids), queue_pending(runtime, sweep_id))


def cancel(runtime: Runtime, sweep_id: int, *, actor: str) -> CancelOutcome:
    """Cancel a sweep; with Redis down, in the database only (the reaper raises the flag)."""
    redis = _redis_or_none(runtime)
    with session_scope(runtime.engine) as session:
        return cancel_sweep(session, redis, sweep_id, actor=actor)


def _redis_or_none(runtime: Runtime) -> Any:
    try:
        redisio.call(runtime.redis.ping)
        return runtime.redis
    except RedisUnavailable:
        return None

"""What the user asked for, done through core in one transaction each: upload, plan, submit,
cancel, retry, promote. Pages call these inside ``shown_errors``."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterable

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from core.planning.catalog import replicate_schema_fetcher
from core.data.db import session_scope
from core.errors import InvalidInput, TunerError
from core.data.library import add_image
from core.scenarios.versions import promote_generation
from core.data.settings_store import effective_settings
from core.planning.sweeps import (SweepPlan, SweepRequest, cancel_sweep, create_sweep, dispatch,
                         pending_cell_ids, plan_sweep, retry_failed)
from dashboard import queries
from dashboard.resources import runtime

REDIS_AWAY = (RedisConnectionError, RedisTimeoutError)


@dataclasses.dataclass(frozen=True)
class UploadOutcome:
    filename: str
    image_id: int | None
    error: str | None = None


def store_uploads(files: Iterable[tuple[str, bytes]], *, user: str) -> list[UploadOutcome]:
    """Each file through ``add_image`` in its own transaction, so one bad file names itself
    and does not stop the others."""
    rt = runtime()
    outcomes = []
    for filename, data in files:
        try:
            with session_scope(rt.engine) as session:
                image = add_image(session, rt.store, rt.settings, data, filename=filename,
                                  uploaded_by=user)
                outcomes.append(UploadOutcome(filename, image.id))
        except TunerError as exc:
            outcomes.append(UploadOutcome(filename, None, str(exc)))
    queries.library.clear()
    return outcomes


def _fetcher():  # noqa: ANN202 - the schema fetcher, built only when a model is unknown here
    def fetch(model_name: str, version_id: str | None):  # noqa: ANN202
        from core.engine.replicate_api import build_client

        return replicate_schema_fetcher(build_client(runtime().endpoint))(model_name, version_id)

    return fetch


def plan(request: SweepRequest, *, seed_salt: int) -> SweepPlan:
    """The grid priced and checked; random seeds are drawn from ``seed_salt`` so the
    preview and the submission agree."""
    rt = runtime()
    with session_scope(rt.engine) as session:
        current = effective_settings(session, rt.settings)
        return plan_sweep(session, request, max_cells=current.max_cells_per_sweep,
                          inflight_cap=current.inflight_cap,
                          create_rate_per_minute=current.create_rate_per_minute,
                          fetch_schema=_fetcher(), rng=random.Random(seed_salt))


@dataclasses.dataclass(frozen=True)
class Submitted:
    sweep_id: int
    cells: int
    reused: int
    dispatched: bool


def submit(request: SweepRequest, *, user: str, seed_salt: int) -> Submitted:
    """Create the sweep and queue its cells. When Redis is down the sweep is still saved;
    the workers' reaper sends its cells once Redis answers."""
    rt = runtime()
    endpoint = rt.endpoint_kind  # raises ConfigurationError before anything is stored
    with session_scope(rt.engine) as session:
        current = effective_settings(session, rt.settings)
        sweep_plan = plan_sweep(session, request, max_cells=current.max_cells_per_sweep,
                                inflight_cap=current.inflight_cap,
                                create_rate_per_minute=current.create_rate_per_minute,
                                fetch_schema=_fetcher(), rng=random.Random(seed_salt))
        sweep = create_sweep(session, sweep_plan, created_by=user, endpoint=endpoint,
                             caps=rt.caps(session))
        sweep_id, chunk_size = sweep.id, current.chunk_size
    dispatched = _dispatch_pending(sweep_id, chunk_size)
    _sweeps_changed()
    return Submitted(sweep_id, len(sweep_plan.cells), len(sweep_plan.cells) - sweep_plan.to_run,
                     dispatched)


def _dispatch_pending(sweep_id: int, chunk_size: int | None = None) -> bool:
    rt = runtime()
    try:
        with session_scope(rt.engine) as session:
            size = chunk_size or effective_settings(session, rt.settings).chunk_size
            ids = pending_cell_ids(session, sweep_id)
            if ids:
                dispatch(session, rt.redis, ids, chunk_size=size)
        return True
    except REDIS_AWAY:
        return False


def cancel(sweep_id: int, *, user: str) -> tuple[int, bool]:
    """(queued cells canceled, whether workers were told to cancel in-flight predictions)."""
    rt = runtime()
    try:
        with session_scope(rt.engine) as session:
            n = cancel_sweep(session, rt.redis, sweep_id, actor=user)
        told = True
    except REDIS_AWAY:
        with session_scope(rt.engine) as session:
            n = cancel_sweep(session, None, sweep_id, actor=user)
        told = False
    _sweeps_changed()
    return n, told


def retry(sweep_id: int, *, user: str) -> tuple[int, bool]:
    """(cells put back, whether they were queued now)."""
    rt = runtime()
    with session_scope(rt.engine) as session:
        ids = retry_failed(session, sweep_id, actor=user)
    if not ids:
        raise InvalidInput("No failed or canceled cells to retry in this sweep.")
    dispatched = _dispatch_pending(sweep_id)
    _sweeps_changed()
    return len(ids), dispatched


def promote(generation_id: int, scenario_name: str, *, user: str) -> str:
    """Copy a cell's settings into a scenario, as a new version of it."""
    from dashboard.scenario_widgets import scenarios as cached_scenarios

    name = scenario_name.strip()
    if not name:
        raise InvalidInput("Type the name of the scenario to promote these settings into.")
    with session_scope(runtime().engine) as session:
        promote_generation(session, generation_id, name, actor=user)
    _sweeps_changed()
    cached_scenarios.clear()  # the Scenarios page shows it at once
    return name


def _sweeps_changed() -> None:
    queries.sweep_summaries.clear()
    queries.sweep_cells.clear()

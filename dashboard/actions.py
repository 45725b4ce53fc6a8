"""What the user asked for, done through core in one transaction each: upload, plan, submit,
cancel, retry, promote. Pages call these inside ``shown_errors``."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterable

import streamlit as st

from core.planning.catalog import ModelView
from core.planning.catalog import model_views as model_views_core
from core.data.db import session_scope
from core.errors import InvalidInput, TunerError
from core.data.library import add_image
from core.planning import submit as submission
from core.planning.submit import Requeued, Submitted
from core.planning.sweeps import CancelOutcome, SweepPlan, SweepRequest
from core.scenarios.versions import promote_generation
from dashboard import queries
from dashboard.resources import runtime


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


def schema_fetcher():  # noqa: ANN201 - core.planning.submit's fetcher for this runtime
    """Asks Replicate (or the emulator) for a model's schema when it is unknown here."""
    return submission.schema_fetcher(runtime())


@st.cache_data(ttl=30, show_spinner=False)
def model_views(refs: list[str]) -> list[ModelView]:
    """The chosen models' inputs, roles and prices (read from Replicate the first time)."""
    rt = runtime()
    with session_scope(rt.engine) as session:
        return model_views_core(session, refs, fetch_schema=schema_fetcher())


def plan(request: SweepRequest, *, seed_salt: int) -> SweepPlan:
    """The grid priced and checked; random seeds are drawn from ``seed_salt`` so the
    preview and the submission agree."""
    return submission.plan(runtime(), request, rng=random.Random(seed_salt),
                           fetch_schema=schema_fetcher())


def submit(request: SweepRequest, *, user: str, seed_salt: int) -> Submitted:
    """Create the sweep and queue its cells (core.planning.submit, as the CLI does)."""
    outcome = submission.submit_sweep(runtime(), request, actor=user,
                                      rng=random.Random(seed_salt), fetch_schema=schema_fetcher())
    _sweeps_changed()
    return outcome


def cancel(sweep_id: int, *, user: str) -> CancelOutcome:
    outcome = submission.cancel(runtime(), sweep_id, actor=user)
    _sweeps_changed()
    return outcome


def retry(sweep_id: int, *, user: str) -> Requeued:
    """Failed cells only; raises InvalidInput saying why when there are none."""
    outcome = submission.requeue(runtime(), sweep_id, "failed", actor=user)
    _sweeps_changed()
    return outcome


def resume(sweep_id: int, *, user: str, budget_usd: float | None = None) -> Requeued:
    """Canceled cells (by a person or a budget) run after all."""
    outcome = submission.requeue(runtime(), sweep_id, "canceled", actor=user,
                                 budget_usd=budget_usd)
    _sweeps_changed()
    return outcome


def promote(generation_id: int, scenario_name: str, *, user: str, new_scenario: bool = False,
            pin_seed: bool = True, pin_model_version: bool = True, note: str = "") -> str:
    """Copy a cell's settings into an existing scenario (or, said explicitly, a new one) as a
    new version; a scenario in production gets a candidate. Returns what happened."""
    from dashboard.scenario_widgets import scenarios as cached_scenarios

    name = scenario_name.strip()
    if not name:
        raise InvalidInput("Pick the scenario to promote these settings into, or name a new one.")
    with session_scope(runtime().engine) as session:
        info = promote_generation(session, generation_id, name, actor=user,
                                  new_scenario=new_scenario, pin_seed=pin_seed,
                                  pin_model_version=pin_model_version, note=note)
    _sweeps_changed()
    cached_scenarios.clear()  # the Scenarios page shows it at once
    if info.candidate is not None:
        return (f"Settings promoted into {info.name} as candidate version {info.version}; "
                f"production still reads version {info.production_version}.")
    return f"Settings promoted into {info.name} (version {info.version})."


def promote_recommendation(generation_id: int, scenario_name: str, evidence: str, *,
                           user: str, **options: bool) -> str:
    """Make the recommended setting (through the cell that stands for it) a new version of a
    scenario, its evidence in the version's note (``promote``'s choices apply)."""
    return promote(generation_id, scenario_name, user=user,
                   note=f"Recommended setting: {evidence}", **options)


def _sweeps_changed() -> None:
    queries.sweep_summaries.clear()
    queries.clear_sweep_cells()

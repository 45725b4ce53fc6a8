"""Small builders for database rows, with explicit values for what a test asserts on.

Each takes the Session, adds and flushes (so ids are set) and returns the row; anything not
passed gets a plain default. Timestamps must be aware UTC; ``at(...)`` makes one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.data.models import (Endpoint, Generation, GenerationState, InputImage, ModelSpec, Scenario,
                         Sweep)

_counter = itertools.count(1)


def at(year: int, month: int, day: int, hour: int = 12, minute: int = 0,
       second: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=dt.timezone.utc)


def make_model(session: Session, ref: str = "stability-ai/sdxl", **fields: Any) -> ModelSpec:
    from core.planning.known_models import KNOWN_MODELS, SDXL_REF, SDXL_VERSION
    from core.planning.schema import load_bundled_version

    sdxl_price = KNOWN_MODELS[SDXL_REF].price
    values: dict[str, Any] = dict(ref=ref, version_id=SDXL_VERSION,
                                  input_schema=load_bundled_version(ref)["openapi_schema"]
                                  if ref == "stability-ai/sdxl" else None,
                                  strength_input="prompt_strength", pricing_kind="per_second",
                                  hardware=sdxl_price.hardware, usd_per_second=sdxl_price.usd,
                                  price_as_of=sdxl_price.as_of)
    values.update(fields)
    model = ModelSpec(**values)
    session.add(model)
    session.flush()
    return model


def make_image(session: Session, **fields: Any) -> InputImage:
    n = next(_counter)
    digest = hashlib.sha256(f"image-{n}".encode()).hexdigest()
    values: dict[str, Any] = dict(sha256=digest, storage_key=f"inputs/{digest}.png",
                                  thumbnail_key=f"thumbs/{digest}.jpg", content_type="image/png",
                                  width=1024, height=1024, size_bytes=1000, label=f"image {n}",
                                  uploaded_by="alice")
    values.update(fields)
    image = InputImage(**values)
    session.add(image)
    session.flush()
    return image


def make_scenario(session: Session, name: str = "projection-level-1", **fields: Any) -> Scenario:
    """A bare Scenario row (no versions); use core.scenarios.versions to test versioning."""
    scenario = Scenario(name=name, **fields)
    session.add(scenario)
    session.flush()
    return scenario


def make_sweep(session: Session, model: ModelSpec | None = None, *, created_by: str = "alice",
               endpoint: Endpoint | str = Endpoint.REPLICATE, scenario: Scenario | None = None,
               created_at: dt.datetime | None = None, **fields: Any) -> Sweep:
    if model is None:
        model = (session.scalar(select(ModelSpec).where(ModelSpec.ref == "stability-ai/sdxl"))
                 or make_model(session))
    values: dict[str, Any] = dict(
        name=f"sweep {next(_counter)}", scenario_id=scenario.id if scenario else None,
        model_id=model.id, model_ref=model.ref, version_id=model.version_id or "",
        axes={"strength": [0.3, 0.5], "steps": [25]}, fixed_params={"negative_prompt": ""},
        endpoint=Endpoint(endpoint), created_by=created_by, estimated_cost_usd=0.0)
    if created_at is not None:
        values["created_at"] = created_at
    values.update(fields)
    sweep = Sweep(**values)
    session.add(sweep)
    session.flush()
    return sweep


def make_generation(session: Session, sweep: Sweep, *,
                    state: GenerationState | str = GenerationState.SUCCEEDED,
                    completed_at: dt.datetime | None = None, cost_usd: float = 0.0,
                    endpoint: Endpoint | str | None = None, **fields: Any) -> Generation:
    """A cell of ``sweep``. A finished state without ``completed_at`` gets 2026-01-15 12:00;
    a succeeded one gets an output key; the endpoint defaults to the sweep's."""
    n = next(_counter)
    state = GenerationState(state)
    if completed_at is None and state.is_final:
        completed_at = at(2026, 1, 15)
    values: dict[str, Any] = dict(
        sweep_id=sweep.id, cell_index=n, strength=0.35, steps=25, guidance=7.5, seed=1234,
        prompt="a person, photo", prompt_label="P1", negative_prompt="blurry",
        model_input={"prompt": "a person, photo"}, request_hash=f"{n:064x}",
        endpoint=Endpoint(endpoint) if endpoint else sweep.endpoint, state=state,
        completed_at=completed_at, cost_usd=cost_usd,
        created_at=completed_at - dt.timedelta(minutes=1) if completed_at else at(2026, 1, 15),
        prediction_id=f"pred{n}" if state != GenerationState.PENDING else None,
        output_key=f"outputs/{n:064x}.png" if state == GenerationState.SUCCEEDED else None,
    )
    values.update(fields)
    generation = Generation(**values)
    session.add(generation)
    session.flush()
    return generation


def make_production_scenario(session: Session, name: str = "projection-level-1", *,
                             strength: float = 0.35, candidate_strength: float = 0.9,
                             steps: int = 25) -> int:
    """The production gate's starting point, through core.scenarios.versions: v1 created by
    alice, v2 calibrated, v3 approved (in production), v4 bob's edit of the strength (the
    candidate). Returns the scenario id."""
    from core.scenarios import versions

    created = versions.create_scenario(
        session, name, actor="alice", prompt_template="a person, photo",
        params={"strength": strength, "num_inference_steps": steps})
    versions.set_status(session, created.id, "calibrated", actor="alice")
    versions.edit_scenario(session, created.id, {"description": "ready"}, actor="alice")
    versions.approve(session, created.id, 3, "alice", "first release")
    versions.edit_scenario(session, created.id, {"params": {
        "strength": candidate_strength, "num_inference_steps": steps}}, actor="bob",
        note="stronger")
    return created.id

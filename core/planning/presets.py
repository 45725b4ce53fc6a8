"""What a new sweep can start from: each scenario's model, prompt and every parameter.

The usual four (strength, steps, guidance, seed) become axis texts, under whatever name the
scenario used for them; every other parameter (scheduler, width, aspect_ratio …) becomes a
fixed value of the sweep, so the calibrated settings are the ones production will run."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.data.models import Scenario

# The names a scenario's params may use for each axis (ours, then Replicate input names).
_AXIS_KEYS = {
    "strength": ("strength", "prompt_strength"),
    "steps": ("steps", "num_inference_steps"),
    "guidance": ("guidance", "guidance_scale"),
    "seed": ("seed",),
}


@dataclasses.dataclass(frozen=True)
class Preset:
    scenario_id: int
    name: str
    status: str
    model_ref: str | None
    prompt: str
    negative_prompt: str
    axes: dict[str, str]  # axis name → text for the axis field, only those the scenario sets
    fixed: dict[str, Any] = dataclasses.field(default_factory=dict)  # every other parameter


def axis_text(value: Any) -> str:
    """A stored value (one number or a list of them) as a person would type it."""
    if isinstance(value, (list, tuple)):
        return ", ".join(axis_text(v) for v in value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value)) if abs(value) >= 1 else str(value)
    return str(value)


def axis_values(params: Mapping[str, Any]) -> dict[str, Any]:
    """The usual axes (strength, steps, guidance, seed) that ``params`` set, under our names,
    whichever name the scenario used for each."""
    values = {}
    for axis, names in _AXIS_KEYS.items():
        name = next((n for n in names if params.get(n) is not None), None)
        if name is not None:
            values[axis] = params[name]
    return values


def preset_of(scenario: Scenario) -> Preset:
    params: Mapping[str, Any] = scenario.params or {}
    values = axis_values(params)
    axes = {axis: axis_text(value) for axis, value in values.items()}
    used = {name for axis in values for name in _AXIS_KEYS[axis]}
    fixed = {k: v for k, v in params.items()
             if k not in used and k not in ("prompt", "negative_prompt") and v is not None}
    return Preset(scenario.id, scenario.name, scenario.status.value, scenario.model_ref,
                  scenario.prompt_template or str(params.get("prompt", "")),
                  scenario.negative_prompt or str(params.get("negative_prompt", "")), axes, fixed)


def list_presets(session: Session) -> list[Preset]:
    return [preset_of(s) for s in session.scalars(select(Scenario).order_by(Scenario.name))]

"""What a new sweep can start from: each scenario's prompt and parameters as axis texts."""

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


def axis_text(value: Any) -> str:
    """A stored value (one number or a list of them) as a person would type it."""
    if isinstance(value, (list, tuple)):
        return ", ".join(axis_text(v) for v in value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value)) if abs(value) >= 1 else str(value)
    return str(value)


def preset_of(scenario: Scenario) -> Preset:
    params: Mapping[str, Any] = scenario.params or {}
    axes = {}
    for axis, names in _AXIS_KEYS.items():
        found = next((params[n] for n in names if params.get(n) is not None), None)
        if found is not None:
            axes[axis] = axis_text(found)
    return Preset(scenario.id, scenario.name, scenario.status.value, scenario.model_ref,
                  scenario.prompt_template or str(params.get("prompt", "")),
                  scenario.negative_prompt or str(params.get("negative_prompt", "")), axes)


def list_presets(session: Session) -> list[Preset]:
    return [preset_of(s) for s in session.scalars(select(Scenario).order_by(Scenario.name))]

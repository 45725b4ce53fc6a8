"""What a scenario may hold: its name, parameters and model reference, checked with messages
that name the bad value and say what is allowed (used by ``core.scenarios.versions``)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from core.errors import InvalidInput
from core.data.models import ScenarioStatus

NAME_PATTERN = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
MAX_NAME_CHARS = 120
MODEL_REF_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]*/[a-z0-9][a-z0-9._-]*(?::[a-z0-9]+)?")
PARAM_KEY_PATTERN = re.compile(r"[a-z_][a-z0-9_]*")
# The production service's names for the usual parameters, in the order exports list them.
# Their allowed values come from the scenario's model schema (core.scenarios.versions checks
# them there): no range is repeated here.
PARAM_ORDER = ("strength", "num_inference_steps", "guidance_scale", "seed")
# keys of an exported scenario that are not parameters; a parameter may not take these names
RESERVED_KEYS = ("description", "prompt", "negative_prompt", "model", "endpoint")


def validate_name(name: str) -> str:
    name = (name or "").strip()
    if not NAME_PATTERN.fullmatch(name) or len(name) > MAX_NAME_CHARS:
        raise InvalidInput(f"Scenario name {name!r} is not allowed: use lowercase letters, digits "
                           f"and single dashes (up to {MAX_NAME_CHARS}), like projection-level-1.")
    return name


def _clean_params(params: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(params, Mapping):
        raise InvalidInput(f"Parameters must be a mapping of name to value, not {params!r}.")
    clean: dict[str, Any] = {}
    for key, value in params.items():
        if not isinstance(key, str) or not PARAM_KEY_PATTERN.fullmatch(key) or key in RESERVED_KEYS:
            raise InvalidInput(f"Parameter name {key!r} is not allowed: use a model input name "
                               f"such as {', '.join(PARAM_ORDER)}.")
        if value is None:
            continue  # unset
        if isinstance(value, (bool, str, int)):
            clean[key] = value
        elif isinstance(value, float) and not math.isfinite(value):
            raise InvalidInput(f"Parameter {key} = {value!r} is not a finite number.")
        elif isinstance(value, float):
            clean[key] = value
        else:
            raise InvalidInput(f"Parameter {key} = {value!r} must be text, a number or a boolean.")
    return clean


def clean_field(field: str, value: Any) -> Any:
    if field == "name":
        return validate_name(value)
    if field == "params":
        return _clean_params(value or {})
    if field == "model_ref":
        ref = (value or "").strip().lower() or None
        if ref is not None and not MODEL_REF_PATTERN.fullmatch(ref):
            raise InvalidInput(f"Model {value!r} is not a Replicate model reference: "
                               f"write owner/name or owner/name:version.")
        return ref
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be text, not {value!r}.")
    return value.strip()


def parse_status(value: Any) -> ScenarioStatus:
    try:
        return ScenarioStatus(value)
    except ValueError:
        allowed = ", ".join(s.value for s in ScenarioStatus)
        raise InvalidInput(f"Status {value!r} is not one of {allowed}.") from None

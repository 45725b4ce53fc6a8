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
# known parameter → (integer?, lowest, highest), as the sdxl input schema allows
PARAM_RULES: dict[str, tuple[bool, float, float]] = {
    "strength": (False, 0.0, 1.0), "num_inference_steps": (True, 1, 500),
    "guidance_scale": (False, 1.0, 50.0), "seed": (True, 0, 2**32 - 1)}
# keys of an exported scenario that are not parameters; a parameter may not take these names
RESERVED_KEYS = ("description", "prompt", "negative_prompt", "model")


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
                               f"such as {', '.join(PARAM_RULES)}.")
        if value is None:
            continue  # unset
        if key in PARAM_RULES:
            clean[key] = _check_number(key, value, *PARAM_RULES[key])
        elif isinstance(value, float) and not math.isfinite(value):
            raise InvalidInput(f"Parameter {key} = {value!r} is not a finite number.")
        elif isinstance(value, (str, int, float, bool)):
            clean[key] = value
        else:
            raise InvalidInput(f"Parameter {key} = {value!r} must be text, a number or a boolean.")
    return clean


def _check_number(key: str, value: Any, integer: bool, low: float, high: float) -> int | float:
    number_types = (int,) if integer else (int, float)
    ok = isinstance(value, number_types) and not isinstance(value, bool)
    if ok and isinstance(value, float):
        ok = math.isfinite(value)
    if not ok or not low <= value <= high:
        kind = "a whole number" if integer else "a number"
        raise InvalidInput(f"{key} = {value!r} is not allowed: give {kind} from {low:g} "
                           f"to {high:g}.")
    return int(value) if integer else float(value)


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

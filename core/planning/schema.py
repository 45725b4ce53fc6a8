"""Model input schemas: the bundled sdxl version, and checking an input dict against a schema.

A Replicate model version carries an ``openapi_schema`` whose ``components.schemas.Input``
lists the inputs. Enum inputs point at a sibling schema through ``allOf: [{"$ref": ...}]``;
``input_properties`` resolves those so every property is one flat dict. ``validate_input``
follows JSON Schema number rules (``30.0`` is an integer, ``true`` is not a number) and returns
every problem as a sentence for the person who typed the value.
"""

from __future__ import annotations

import copy
import functools
import json
import math
import re
from collections.abc import Collection, Mapping
from pathlib import Path
from dataclasses import dataclass
from typing import Any

SDXL_MODEL = "stability-ai/sdxl"
# Both versions share one input schema; the bundled object is the first one.
SDXL_VERSION_IDS = frozenset(
    {
        "7762fd07cf82c948538e41f63f77d685e02b063e37e496e96eefd46c929f9bdc",
        "39ed52f2a78e934b3ba6e2a89f5b1c712de7dfea535525255b1aa35c5565e08b",
    }
)
_BUNDLED_SDXL = Path(__file__).parent / "sdxl_version.json"
_VERSION_ID = re.compile(r"[0-9a-f]{64}")
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")


def parse_model_ref(ref: str) -> tuple[str | None, str | None]:
    """``owner/name:version`` → ``("owner/name", "version")``; either part may be None.

    A bare 64-hex string is a version id; anything else without a colon is a model name.
    Names are lowercased, as Replicate treats them case-insensitively.
    """
    ref = ref.strip().lower()
    if ":" in ref:
        model, version = ref.split(":", 1)
        return model or None, version or None
    if _VERSION_ID.fullmatch(ref):
        return None, ref
    return ref or None, None


@functools.cache
def _bundled_sdxl() -> dict[str, Any]:
    return json.loads(_BUNDLED_SDXL.read_text(encoding="utf-8"))


def load_bundled_version(ref: str) -> dict[str, Any] | None:
    """The bundled version object for ``ref``, or None when none is bundled for it.

    ``stability-ai/sdxl``, either sdxl version id, or ``stability-ai/sdxl:<either id>`` all
    give the recorded sdxl version (its ``id`` stays the recorded one: use the object for its
    ``openapi_schema``). Returns a copy, so callers may change it freely.
    """
    model, version = parse_model_ref(ref)
    if model not in (None, SDXL_MODEL):
        return None
    if version is None and model is None:
        return None
    if version is not None and version not in SDXL_VERSION_IDS:
        return None
    return copy.deepcopy(_bundled_sdxl())


def _resolve_ref(ref: str, schemas: Mapping[str, Any]) -> dict[str, Any]:
    prefix = "#/components/schemas/"
    if ref.startswith(prefix) and isinstance(schemas.get(ref[len(prefix) :]), Mapping):
        return dict(schemas[ref[len(prefix) :]])
    return {}  # an unknown reference constrains nothing rather than breaking every check


def _flatten(prop: Mapping[str, Any], schemas: Mapping[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for part in prop.get("allOf", []):
        merged.update(_resolve_ref(part.get("$ref", ""), schemas) if "$ref" in part else part)
    if "$ref" in prop:
        merged.update(_resolve_ref(prop["$ref"], schemas))
    # The property's own keys (default, description) win over the referenced enum's.
    merged.update({k: v for k, v in prop.items() if k not in ("allOf", "$ref")})
    return merged


def _input_schema(openapi_schema: Mapping[str, Any]) -> tuple[Mapping[str, Any], Mapping]:
    schemas = openapi_schema.get("components", {}).get("schemas", {})
    return schemas.get("Input", {}), schemas


def input_properties(openapi_schema: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Input name → flat property dict (enums resolved), in the model's ``x-order``."""
    input_schema, schemas = _input_schema(openapi_schema)
    props = input_schema.get("properties", {})
    ordered = sorted(props.items(), key=lambda kv: kv[1].get("x-order", math.inf))
    return {name: _flatten(prop, schemas) for name, prop in ordered}


def describe_value(value: Any) -> str:
    """A value as a person reads it in a message: ``1.3``, ``2``, ``'abc'``, ``true``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return str(int(value))
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return repr(value if len(value) <= 60 else value[:57] + "...")
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _allowed_range(prop: Mapping[str, Any]) -> str:
    lo, hi = prop.get("minimum"), prop.get("maximum")
    if lo is not None and hi is not None:
        return f"allowed {describe_value(lo)} to {describe_value(hi)}"
    if lo is not None:
        return f"allowed {describe_value(lo)} or more"
    return f"allowed at most {describe_value(hi)}"


def _check_range(name: str, value: float, prop: Mapping[str, Any]) -> str | None:
    lo, hi = prop.get("minimum"), prop.get("maximum")
    if hi is not None and value > hi:
        bound = f"above the model's maximum {describe_value(hi)}"
    elif lo is not None and value < lo:
        bound = f"below the model's minimum {describe_value(lo)}"
    else:
        return None
    return f"{name} {describe_value(value)} is {bound} ({_allowed_range(prop)})"


def _check_string(name: str, value: Any, prop: Mapping[str, Any]) -> str | None:
    if not isinstance(value, str):
        return f"{name} {describe_value(value)} is not text"
    if prop.get("format") == "uri" and not _URI.match(value):
        return f"{name} {describe_value(value)} is not a URL (give an https:// or data: URI)"
    if "maxLength" in prop and len(value) > prop["maxLength"]:
        limit = prop["maxLength"]
        return f"{name} has {len(value):,} characters; the model allows at most {limit:,}"
    if "minLength" in prop and len(value) < prop["minLength"]:
        limit = prop["minLength"]
        return f"{name} has {len(value)} characters; the model needs at least {limit}"
    return None


def _check_value(name: str, value: Any, prop: Mapping[str, Any]) -> str | None:
    if value is None:
        if "default" in prop:
            default = describe_value(prop["default"])
            return f"{name} is null; leave it out to use the model's default {default}"
        return None  # an optional input (no default) may be given as null
    if "enum" in prop and value not in prop["enum"]:
        choices = ", ".join(str(choice) for choice in prop["enum"])
        return f"{name} {describe_value(value)} is not one of the model's choices: {choices}"
    check = _TYPE_CHECKS.get(prop.get("type", ""))
    return check(name, value, prop) if check else None


def _check_integer(name: str, value: Any, prop: Mapping[str, Any]) -> str | None:
    if not _is_number(value) or not (math.isfinite(value) and float(value).is_integer()):
        return f"{name} {describe_value(value)} is not a whole number"
    return _check_range(name, value, prop)


def _check_number(name: str, value: Any, prop: Mapping[str, Any]) -> str | None:
    if not _is_number(value) or not math.isfinite(value):
        return f"{name} {describe_value(value)} is not a number"
    return _check_range(name, value, prop)


def _check_boolean(name: str, value: Any, prop: Mapping[str, Any]) -> str | None:
    return None if isinstance(value, bool) else f"{name} {describe_value(value)} is not true or false"


def _check_array(name: str, value: Any, prop: Mapping[str, Any]) -> str | None:
    if not isinstance(value, list):
        return f"{name} {describe_value(value)} is not a list"
    if "maxItems" in prop and len(value) > prop["maxItems"]:
        return f"{name} has {len(value)} items; the model allows at most {prop['maxItems']}"
    items = prop.get("items") or {}
    for item in value:
        if problem := _check_value(name, item, items):
            return problem
    return None


_TYPE_CHECKS = {"integer": _check_integer, "number": _check_number, "boolean": _check_boolean,
                "string": _check_string, "array": _check_array}


def validate_input(
    openapi_schema: Mapping[str, Any],
    values: Mapping[str, Any],
    *,
    supplied_later: Collection[str] = (),
) -> list[str]:
    """Every problem with ``values`` as an input to the model, as readable sentences.

    An empty list means the model accepts them. ``supplied_later`` names required inputs the
    caller adds afterwards (the input image, for a grid cell) so their absence is not a problem.
    A schema without an ``Input`` (not fetched yet) has nothing to check against: no problems.
    """
    props = input_properties(openapi_schema)
    if not props:
        return []
    problems: list[str] = []
    unknown = [name for name in values if name not in props]
    if unknown:
        listed = ", ".join(repr(name) for name in unknown)
        verb = "is not an input" if len(unknown) == 1 else "are not inputs"
        problems.append(f"{listed} {verb} of this model; valid names: {', '.join(props)}")
    for name, value in values.items():
        if name in props and (problem := _check_value(name, value, props[name])):
            problems.append(problem)
    input_schema, _ = _input_schema(openapi_schema)
    for name in input_schema.get("required", []):
        if name not in values and name not in supplied_later:
            problems.append(f"{name} is required by this model")
    return problems


# -- what each input is for ----------------------------------------------------------------------
# The names models use for the parameters a sweep treats specially, most common first. A model
# has a role only when its schema has one of these inputs: Kontext has no strength or steps.
ROLE_NAMES = {
    "prompt": ("prompt",),
    "negative_prompt": ("negative_prompt",),
    "strength": ("prompt_strength", "strength"),
    "steps": ("num_inference_steps", "steps"),
    "guidance": ("guidance_scale", "guidance"),
    "seed": ("seed",),
}
IMAGE_NAMES = ("image", "input_image", "image_input", "input_images", "images", "image_url")


@dataclass(frozen=True)
class InputRoles:
    """Which of a model's inputs plays each part of a sweep (None: the model has none)."""

    prompt: str | None = None
    negative_prompt: str | None = None
    strength: str | None = None
    steps: str | None = None
    guidance: str | None = None
    seed: str | None = None
    image: str | None = None
    image_is_list: bool = False

    def name_for(self, role: str) -> str | None:
        return getattr(self, role) if role in ROLE_NAMES else None

    @property
    def mapped(self) -> dict[str, str]:
        """role → input name, for the roles this model has."""
        return {role: name for role in ROLE_NAMES if (name := getattr(self, role))}


def _is_image(prop: Mapping[str, Any]) -> bool:
    if prop.get("type") == "array":
        return (prop.get("items") or {}).get("format") == "uri"
    return prop.get("format") == "uri"


def input_roles(openapi_schema: Mapping[str, Any]) -> InputRoles:
    """The model's own names for prompt, strength, steps, guidance, seed and its image input
    (single URI, or a list of URIs such as seedream's ``image_input``)."""
    props = input_properties(openapi_schema)
    found: dict[str, Any] = {}
    for role, names in ROLE_NAMES.items():
        found[role] = next((n for n in names if n in props), None)
    image = next((n for n in IMAGE_NAMES if n in props and _is_image(props[n])), None)
    if image is None:  # any other URI input describing an image
        image = next((n for n, p in props.items() if _is_image(p)
                      and "image" in (n + str(p.get("description", ""))).lower()), None)
    found["image"] = image
    found["image_is_list"] = image is not None and props[image].get("type") == "array"
    return InputRoles(**found)


def input_kind(prop: Mapping[str, Any]) -> str:
    """How a person gives a value for this input: enum, integer, number, boolean, image,
    string or other (an object or a list that is not images)."""
    if "enum" in prop:
        return "enum"
    if _is_image(prop):
        return "image"
    kind = prop.get("type")
    return kind if kind in ("integer", "number", "boolean", "string") else "other"

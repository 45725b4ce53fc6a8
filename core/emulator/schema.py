"""The models the emulator knows, and input validation against their Cog schema."""

from __future__ import annotations

import copy
import functools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SDXL_VERSION_FILE = Path(__file__).resolve().parent.parent / "planning" / "sdxl_version.json"
SDXL_LATEST = "7762fd07cf82c948538e41f63f77d685e02b063e37e496e96eefd46c929f9bdc"
SDXL_2023 = "39ed52f2a78e934b3ba6e2a89f5b1c712de7dfea535525255b1aa35c5565e08b"
VERSION_ID = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class InvalidField:
    type: str
    field: str
    description: str

    def as_json(self) -> dict[str, str]:
        return {"type": self.type, "field": self.field, "description": self.description}


@dataclass
class ModelInfo:
    owner: str
    name: str
    versions: dict[str, dict[str, Any]] = field(default_factory=dict)
    latest_version_id: str = ""
    description: str = ""
    strength_input: str = "strength"
    # Official models are created only through /v1/models/{owner}/{name}/predictions and
    # report "version": "hidden"; their versions cannot be addressed by id.
    official: bool = False
    image_input: str = "image"
    output_is_list: bool = True

    @property
    def ref(self) -> str:
        return f"{self.owner}/{self.name}"

    def as_json(self) -> dict[str, Any]:
        """The model object as ``GET /v1/models/{owner}/{name}`` returns it."""
        return {
            "cover_image_url": None,
            "created_at": "2023-07-26T17:53:09.882651Z",
            "default_example": None,
            "description": self.description,
            "github_url": "https://github.com/replicate/cog-sdxl",
            "latest_version": self.versions[self.latest_version_id],
            "license_url": None,
            "name": self.name,
            "owner": self.owner,
            "paper_url": None,
            "run_count": 0,
            "url": f"https://replicate.com/{self.ref}",
            "visibility": "public",
            "weights_url": None,
        }


@functools.cache
def _sdxl() -> ModelInfo:
    latest = json.loads(SDXL_VERSION_FILE.read_text())
    older = copy.deepcopy(latest)
    older.update(id=SDXL_2023, created_at="2023-08-11T17:00:23.916379Z", cog_version="0.8.5")
    return ModelInfo(
        owner="stability-ai",
        name="sdxl",
        versions={SDXL_LATEST: latest, SDXL_2023: older},
        latest_version_id=SDXL_LATEST,
        description="A text-to-image generative AI model that creates beautiful images",
        strength_input="prompt_strength",
    )


def _official(ref: str, description: str, *, output_is_list: bool) -> ModelInfo:
    """An official model from its public schema (core.planning.known_models cites each)."""
    from core.planning.known_models import known_model
    from core.planning.schema import input_roles

    known = known_model(ref)
    assert known is not None
    owner, name = ref.split("/")
    version = {"id": known.version_id, "created_at": "2025-01-01T00:00:00.000000Z",
               "cog_version": "0.14.0", "openapi_schema": known.openapi_schema}
    roles = input_roles(known.openapi_schema)
    return ModelInfo(owner=owner, name=name, versions={known.version_id: version},
                     latest_version_id=known.version_id, description=description,
                     strength_input=roles.strength or "", official=True,
                     image_input=roles.image or "", output_is_list=output_is_list)


def default_models() -> list[ModelInfo]:
    """SDXL (versioned, per second), flux-dev (official img2img, several outputs),
    flux-kontext-pro (official editor, ``input_image``, one output as a string) and
    seedream-4 (official, a list of input images, several outputs)."""
    from core.planning.known_models import FLUX_DEV_REF, FLUX_KONTEXT_PRO_REF, SEEDREAM_4_REF

    return [
        _sdxl(),
        _official(FLUX_DEV_REF, "A 12 billion parameter rectified flow transformer capable of "
                  "generating images from text descriptions", output_is_list=True),
        _official(FLUX_KONTEXT_PRO_REF, "A state-of-the-art text-based image editing model",
                  output_is_list=False),
        _official(SEEDREAM_4_REF, "Unified text-to-image generation and precise single-sentence "
                  "editing at up to 4K resolution", output_is_list=True),
    ]


class Catalog:
    """Lookup of models by ``owner/name``, of versions by id, and of deployments."""

    def __init__(self, models: list[ModelInfo] | None = None,
                 deployments: dict[str, str] | None = None) -> None:
        self.models = {m.ref: m for m in (models if models is not None else default_models())}
        self._by_version = {vid: m for m in self.models.values() for vid in m.versions
                            if not m.official}
        self.deployments = dict(deployments or {})  # owner/name of a deployment → model ref

    def deployment(self, owner: str, name: str) -> ModelInfo | None:
        return self.models.get(self.deployments.get(f"{owner}/{name}", ""))

    def model(self, owner: str, name: str) -> ModelInfo | None:
        return self.models.get(f"{owner}/{name}")

    def resolve_version(self, ref: str) -> tuple[ModelInfo, str] | None:
        """``<64-hex>`` or ``owner/name:<64-hex>`` → (model, version id)."""
        model_ref, _, version_id = ref.rpartition(":")
        model = self._by_version.get(version_id)
        if model is None or (model_ref and model_ref != model.ref):
            return None
        return model, version_id


def _input_schema(version: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    schemas = version["openapi_schema"]["components"]["schemas"]
    return schemas["Input"], schemas


def _resolve(prop: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    """Inline Cog's ``allOf: [{$ref: ...}]`` enum references."""
    for part in prop.get("allOf", []):
        ref = part.get("$ref", "")
        if ref.startswith("#/components/schemas/"):
            prop = {**schemas[ref.rsplit("/", 1)[1]], **{k: v for k, v in prop.items() if k != "allOf"}}
    return prop


_JSON_TYPE_NAMES = {bool: "boolean", int: "integer", float: "number", str: "string",
                    list: "array", dict: "object", type(None): "null"}


def _type_ok(expected: str, value: Any) -> bool:
    if expected == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer())
    if expected == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected == "string":
        return isinstance(value, str)
    if expected == "boolean":
        return isinstance(value, bool)
    if expected == "array":
        return isinstance(value, list)
    return True


def _check(name: str, value: Any, prop: dict[str, Any]) -> InvalidField | None:
    where = f"input.{name}"
    expected = prop.get("type")
    if expected and not _type_ok(expected, value):
        given = _JSON_TYPE_NAMES.get(type(value), "unknown")
        return InvalidField("invalid_type", where, f"Invalid type. Expected: {expected}, given: {given}")
    if "enum" in prop and value not in prop["enum"]:
        allowed = ", ".join(json.dumps(v) for v in prop["enum"])
        return InvalidField("enum", where, f"{where} must be one of the following: {allowed}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in prop and value < prop["minimum"]:
            return InvalidField("number_gte", where, f"Must be greater than or equal to {prop['minimum']}")
        if "maximum" in prop and value > prop["maximum"]:
            return InvalidField("number_lte", where, f"Must be less than or equal to {prop['maximum']}")
    if prop.get("format") == "uri" and isinstance(value, str) and not re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", value):
        return InvalidField("format", where, "Does not match format 'uri'")
    if isinstance(value, list):
        return _check_items(name, value, prop)
    return None


def _check_items(name: str, value: list[Any], prop: dict[str, Any]) -> InvalidField | None:
    if "maxItems" in prop and len(value) > prop["maxItems"]:
        return InvalidField("array_max_items", f"input.{name}",
                            f"Array must have at most {prop['maxItems']} items")
    for item in value:
        if problem := _check(name, item, prop.get("items") or {}):
            return problem
    return None


def validate_input(version: dict[str, Any], values: Any) -> list[InvalidField]:
    """Check prediction input like Replicate does; unknown keys are ignored, as Cog does."""
    if not isinstance(values, dict):
        given = _JSON_TYPE_NAMES.get(type(values), "unknown")
        return [InvalidField("invalid_type", "input", f"Invalid type. Expected: object, given: {given}")]
    schema, schemas = _input_schema(version)
    problems = [InvalidField("required", f"input.{name}", f"{name} is required")
                for name in schema.get("required", []) if name not in values]
    for name, value in values.items():
        prop = schema.get("properties", {}).get(name)
        if prop is not None:
            problem = _check(name, value, _resolve(prop, schemas))
            if problem:
                problems.append(problem)
    return problems


def with_defaults(version: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """The input the model would see: schema defaults filled in for missing keys."""
    schema, _ = _input_schema(version)
    filled = {k: p["default"] for k, p in schema.get("properties", {}).items() if "default" in p}
    filled.update(values)
    return filled

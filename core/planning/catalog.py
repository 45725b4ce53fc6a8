"""Models the dashboard can sweep, their input names, schemas and prices."""

from __future__ import annotations

import dataclasses
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import InvalidInput
from core.planning.grid import InputNames
from core.data.models import ModelSpec, utcnow
from core.planning.schema import load_bundled_version, parse_model_ref

SDXL_REF = "stability-ai/sdxl"
SDXL_VERSION = "7762fd07cf82c948538e41f63f77d685e02b063e37e496e96eefd46c929f9bdc"


@dataclasses.dataclass(frozen=True)
class KnownModel:
    ref: str
    version_id: str
    pricing_kind: str
    hardware: str | None
    usd_per_second: float | None
    usd_per_image: float | None


KNOWN_MODELS = {
    SDXL_REF: KnownModel(SDXL_REF, SDXL_VERSION, "per_second", "Nvidia A40 (Large) GPU",
                         0.000725, None),
}


def list_models(session: Session) -> list[ModelSpec]:
    return list(session.scalars(select(ModelSpec).order_by(ModelSpec.ref)))


def ensure_model(session: Session, ref: str, *, fetch_schema: Any = None) -> ModelSpec:
    """The ModelSpec for ``owner/name`` or ``owner/name:version``, creating it on first use.

    The input schema comes from the bundled copy when it is a known version, else from
    ``fetch_schema(model, version) -> (version_id, openapi_schema)`` (the Replicate API)."""
    model_name, version = parse_model_ref(ref.strip())
    if not model_name or "/" not in model_name:
        raise InvalidInput(
            f"Model {ref!r} is not a model reference: write it as owner/name or "
            f"owner/name:version, e.g. {SDXL_REF}")
    spec = session.scalar(select(ModelSpec).where(ModelSpec.ref == model_name))
    if spec is None:
        known = KNOWN_MODELS.get(model_name)
        spec = ModelSpec(
            ref=model_name, version_id=known.version_id if known else None,
            strength_input=InputNames.for_model(model_name).strength, image_input="image",
            pricing_kind=known.pricing_kind if known else "per_second",
            hardware=known.hardware if known else None,
            usd_per_second=known.usd_per_second if known else 0.000725,
            usd_per_image=known.usd_per_image if known else None,
        )
        session.add(spec)
    if version and version != spec.version_id:
        spec.version_id = version
        spec.input_schema = None
    if spec.input_schema is None:
        bundled = load_bundled_version(f"{model_name}:{spec.version_id}") if spec.version_id else None
        if bundled is not None:
            spec.input_schema = bundled["openapi_schema"]
        elif fetch_schema is not None:
            spec.version_id, spec.input_schema = fetch_schema(model_name, spec.version_id)
        else:
            raise InvalidInput(
                f"Model {model_name} is unknown here and its input schema cannot be fetched "
                "now: check the name, or configure Replicate access and try again.")
        spec.schema_fetched_at = utcnow()
    session.flush()
    return spec


def replicate_schema_fetcher(client: Any):  # noqa: ANN201 - returns a callable
    """Fetch a version's openapi_schema through the official client (real or emulator)."""
    from replicate.exceptions import ReplicateError

    def fetch(model_name: str, version_id: str | None) -> tuple[str, dict[str, Any]]:
        try:
            model = client.models.get(model_name)
            version = (model.versions.get(version_id) if version_id else model.latest_version)
        except ReplicateError as exc:
            raise InvalidInput(f"Replicate has no model {model_name!r} ({exc.detail or exc.status}):"
                               " check the owner/name spelling.") from exc
        if version is None:
            raise InvalidInput(f"Model {model_name} has no published version to run.")
        return version.id, version.openapi_schema

    return fetch

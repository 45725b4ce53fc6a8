"""Models the dashboard can sweep: how each is created, its input schema and its price.

The ``model_spec`` table is the price table: one row per model with its billing unit, rate
and the date the rate was read. Known models (``core.planning.known_models``) come with
their public schema and price; any other model's schema is fetched from Replicate and it
has no price until someone sets one (planning refuses it until then).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.data.audit import record
from core.data.models import ModelSpec, utcnow
from core.errors import InvalidInput, NotFound
from core.planning.known_models import SDXL_REF, SDXL_VERSION, known_model
from core.planning.pricing import Pricing, price_text
from core.planning.schema import InputRoles, input_properties, input_roles, parse_model_ref

__all__ = ["SDXL_REF", "SDXL_VERSION", "CREATE_VIA", "ensure_model", "list_models",
           "set_price", "set_create_via", "replicate_schema_fetcher", "find_model",
           "ModelView", "model_views"]

# How a prediction of the model is created (the endpoint the export names, too).
CREATE_VIA = {
    "versioned": "POST /v1/predictions with the version",
    "official": "POST /v1/models/{owner}/{name}/predictions",
    "deployment": "POST /v1/deployments/{owner}/{name}/predictions",
}


def list_models(session: Session) -> list[ModelSpec]:
    return list(session.scalars(select(ModelSpec).order_by(ModelSpec.ref)))


def _model_name(ref: str) -> tuple[str, str | None]:
    model_name, version = parse_model_ref(ref.strip())
    if not model_name or "/" not in model_name or model_name.count("/") != 1:
        raise InvalidInput(
            f"Model {ref!r} is not a model reference: write it as owner/name or "
            f"owner/name:version, e.g. {SDXL_REF}")
    return model_name, version


def find_model(session: Session, ref: str) -> ModelSpec:
    """The stored row for ``ref``, or NotFound saying how to add it."""
    model_name, _ = _model_name(ref)
    spec = session.scalar(select(ModelSpec).where(ModelSpec.ref == model_name))
    if spec is None:
        raise NotFound(f"Model {model_name} is not in the price table yet: plan a sweep with "
                       "it, or set its price, to add it.")
    return spec


def ensure_model(session: Session, ref: str, *, fetch_schema: Any = None) -> ModelSpec:
    """The ModelSpec for ``owner/name`` or ``owner/name:version``, creating it on first use.

    Known models come with their schema, create path and dated price. Others get their input
    schema from ``fetch_schema(model, version) -> (version_id, openapi_schema)`` (the
    Replicate API) and no price: ``Pricing.of`` refuses them until one is set."""
    model_name, version = _model_name(ref)
    spec = session.scalar(select(ModelSpec).where(ModelSpec.ref == model_name))
    known = known_model(model_name)
    if spec is None:
        spec = ModelSpec(ref=model_name, version_id=known.version_id if known else None,
                         create_via=known.create_via if known else "versioned")
        if known:
            price = known.price
            columns = Pricing.for_kind(
                price.kind, price.usd, hardware=price.hardware, as_of=price.as_of,
                usd_per_input_megapixel=price.usd_per_input_megapixel).as_columns()
            for column, value in columns.items():
                setattr(spec, column, value)
        session.add(spec)
    if version and version != spec.version_id:
        spec.version_id = version
        spec.input_schema = None
        if spec.create_via == "official":  # a pinned version is created by version
            spec.create_via = "versioned"
    if spec.input_schema is None:
        if known is not None and spec.version_id == known.version_id:
            spec.input_schema = known.openapi_schema
        elif fetch_schema is not None:
            spec.version_id, spec.input_schema = fetch_schema(model_name, spec.version_id)
        else:
            raise InvalidInput(
                f"Model {model_name} is unknown here and its input schema cannot be fetched "
                "now: check the name, or configure Replicate access and try again.")
        spec.schema_fetched_at = utcnow()
    roles = input_roles(spec.input_schema or {})
    spec.strength_input = roles.strength or ""
    spec.image_input = roles.image or ""
    session.flush()
    return spec


def set_price(session: Session, ref: str, pricing: Pricing, *, actor: str,
              fetch_schema: Any = None, inflight_cap: Any = ...,
              ) -> tuple[ModelSpec, dict[str, list[Any]]]:
    """Set a model's price (adding the model when new), and its in-flight cap when given;
    returns the row and {column: [old, new]} of what changed, audited once."""
    try:
        spec = find_model(session, ref)
    except NotFound:
        spec = ensure_model(session, ref, fetch_schema=fetch_schema)
    new = pricing.as_columns()
    if new["price_as_of"] is None:
        new["price_as_of"] = utcnow().date().isoformat()
    if inflight_cap is not ...:
        new["inflight_cap"] = inflight_cap
    diff = {column: [getattr(spec, column), value] for column, value in new.items()
            if getattr(spec, column) != value}
    for column, (_, value) in diff.items():
        setattr(spec, column, value)
    if diff:
        record(session, actor, "edit_model_pricing", "model_spec", spec.id,
               {"ref": spec.ref, "diff": diff})
    session.flush()
    return spec, diff


def set_create_via(session: Session, ref: str, create_via: str, *, actor: str,
                   deployment: str | None = None) -> ModelSpec:
    """Create this model's predictions by version, through the models endpoint, or through
    a deployment (``owner/name`` of the deployment)."""
    if create_via not in CREATE_VIA:
        raise InvalidInput(f"{create_via!r} is not one of {', '.join(CREATE_VIA)}.")
    if create_via == "deployment" and (not deployment or deployment.count("/") != 1
                                       or " " in deployment):
        raise InvalidInput("A deployment is named owner/name, e.g. acme/sdxl-prod.")
    spec = find_model(session, ref)
    if create_via == "versioned" and not spec.version_id:
        raise InvalidInput(f"{spec.ref} has no version to create by: give owner/name:version.")
    record(session, actor, "edit_model_create_via", "model_spec", spec.id,
           {"ref": spec.ref, "from": [spec.create_via, spec.deployment],
            "to": [create_via, deployment if create_via == "deployment" else None]})
    spec.create_via = create_via
    spec.deployment = deployment if create_via == "deployment" else None
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


@dataclasses.dataclass(frozen=True)
class ModelView:
    """What the sweep form needs to know of one model: its inputs (flat, in the model's
    order), which input plays which role, how it is created and its price (None: none yet)."""

    ref: str
    create_via: str
    properties: dict[str, dict[str, Any]]
    roles: InputRoles
    price: str | None


def model_views(session: Session, refs: list[str], *, fetch_schema: Any = None) -> list[ModelView]:
    views = []
    for ref in refs:
        spec = ensure_model(session, ref, fetch_schema=fetch_schema)
        views.append(ModelView(spec.ref, spec.create_via, input_properties(spec.input_schema or {}),
                               input_roles(spec.input_schema or {}), price_text(spec)))
    return views

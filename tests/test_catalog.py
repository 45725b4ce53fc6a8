"""Models: sdxl works offline from the bundled schema; a bad or unknown model is refused
with a message that says what to fix, before anything is stored or queued."""

from __future__ import annotations

import pytest

from core.planning.catalog import (SDXL_VERSION, ensure_model, replicate_schema_fetcher,
                                   set_create_via, set_price)
from core.planning.pricing import MissingPrice, Pricing
from core.errors import InvalidInput
from core.engine.replicate_api import EMULATOR_TOKEN, Endpoint, build_client


def test_sdxl_comes_with_its_schema_and_price(db_session):
    model = ensure_model(db_session, "stability-ai/sdxl")
    assert model.version_id == SDXL_VERSION
    assert model.strength_input == "prompt_strength"
    assert "prompt_strength" in model.input_schema["components"]["schemas"]["Input"]["properties"]
    assert (model.pricing_kind, model.usd_per_second, model.price_as_of) == (
        "per_second", 0.000725, "2026-11-24")
    assert model.create_via == "versioned"
    assert ensure_model(db_session, f"stability-ai/sdxl:{SDXL_VERSION}").id == model.id


@pytest.mark.parametrize(("ref", "image", "strength", "usd_per_image"), [
    ("black-forest-labs/flux-dev", "image", "prompt_strength", 0.025),
    ("black-forest-labs/flux-kontext-pro", "input_image", "", 0.04),
    ("bytedance/seedream-4", "image_input", "", 0.03),
])
def test_official_models_come_with_their_public_schema_and_per_image_price(
        db_session, ref, image, strength, usd_per_image):
    model = ensure_model(db_session, ref)
    assert (model.create_via, model.image_input, model.strength_input) == ("official", image, strength)
    assert (model.pricing_kind, model.usd_per_image) == ("per_image", usd_per_image)
    assert model.price_as_of


def test_a_fetched_model_has_no_price_until_one_is_set(db_session, emulator):
    fetch = lambda name, version: ("v" * 64, {"components": {"schemas": {"Input": {  # noqa: E731
        "properties": {"prompt": {"type": "string"}}}}}})
    model = ensure_model(db_session, "someone/new-model", fetch_schema=fetch)
    assert model.pricing_kind is None
    with pytest.raises(MissingPrice, match="has no price yet"):
        Pricing.of(model)
    spec, diff = set_price(db_session, "someone/new-model", Pricing.per_run(0.05), actor="ana")
    assert (spec.pricing_kind, spec.usd_per_run) == ("per_run", 0.05)
    assert diff["usd_per_run"] == [None, 0.05] and spec.price_as_of


def test_a_deployment_is_configured_by_owner_and_name(db_session):
    ensure_model(db_session, "stability-ai/sdxl")
    spec = set_create_via(db_session, "stability-ai/sdxl", "deployment", actor="ana",
                          deployment="acme/sdxl-prod")
    assert (spec.create_via, spec.deployment) == ("deployment", "acme/sdxl-prod")
    with pytest.raises(InvalidInput, match="owner/name"):
        set_create_via(db_session, "stability-ai/sdxl", "deployment", actor="ana", deployment="x")


@pytest.mark.parametrize("ref", ["sdxl", "", "   ", "stability-ai"])
def test_a_malformed_reference_is_refused(db_session, ref):
    with pytest.raises(InvalidInput, match="owner/name"):
        ensure_model(db_session, ref)


def test_an_unknown_model_is_refused_by_name(db_session, emulator):
    fetch = replicate_schema_fetcher(build_client(Endpoint(emulator.base_url, EMULATOR_TOKEN, True)))
    with pytest.raises(InvalidInput, match="no model 'nobody/nothing'"):
        ensure_model(db_session, "nobody/nothing", fetch_schema=fetch)
    with pytest.raises(InvalidInput, match="cannot be fetched"):
        ensure_model(db_session, "nobody/nothing")

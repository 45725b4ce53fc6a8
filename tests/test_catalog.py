"""Models: sdxl works offline from the bundled schema; a bad or unknown model is refused
with a message that says what to fix, before anything is stored or queued."""

from __future__ import annotations

import pytest

from core.planning.catalog import SDXL_VERSION, ensure_model, replicate_schema_fetcher
from core.errors import InvalidInput
from core.engine.replicate_api import EMULATOR_TOKEN, Endpoint, build_client


def test_sdxl_comes_with_its_schema_and_price(db_session):
    model = ensure_model(db_session, "stability-ai/sdxl")
    assert model.version_id == SDXL_VERSION
    assert model.strength_input == "prompt_strength"
    assert "prompt_strength" in model.input_schema["components"]["schemas"]["Input"]["properties"]
    assert (model.pricing_kind, model.usd_per_second) == ("per_second", 0.000725)
    assert ensure_model(db_session, f"stability-ai/sdxl:{SDXL_VERSION}").id == model.id


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

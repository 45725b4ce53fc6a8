"""Any model, any input, every billing unit: sweeps planned from each model's own schema and
run end to end against the emulator over HTTP (real Redis, RQ workers, SQLite)."""

from __future__ import annotations

import httpx
import pytest

from core.config import Settings
from core.data.db import session_scope
from core.data.library import add_image
from core.data.models import Generation, GenerationState, Sweep
from core.errors import InvalidInput
from core.planning.catalog import set_price
from core.planning.pricing import MissingPrice, Pricing
from core.planning.sweeps import NOT_APPLIED_KEY, SweepRequest, plan_sweep
from core.runtime import open_runtime
from tests.factories import make_model
from tests.test_faults import cells as cells_of
from tests.test_execution import configure, emulator_stats, png_bytes, run_queue, submit

FLUX_DEV = "black-forest-labs/flux-dev"
KONTEXT = "black-forest-labs/flux-kontext-pro"
SEEDREAM = "bytedance/seedream-4"
SDXL = "stability-ai/sdxl"


def run(runtime, request: SweepRequest) -> list[Generation]:
    sweep_id = submit(runtime, request)
    run_queue(runtime.settings.redis_url)
    return cells_of(runtime, sweep_id)


def plan(runtime, request: SweepRequest):
    settings = runtime.settings
    with session_scope(runtime.engine) as session:
        image_id = add_image(session, runtime.store, settings, png_bytes(), filename="a.png",
                             uploaded_by="tester").id
        request = SweepRequest(**{**request.__dict__, "image_ids": [image_id]})
        return plan_sweep(session, request, max_cells=100, inflight_cap=8,
                          create_rate_per_minute=600)


@pytest.fixture
def runtime(tuner_env):
    return open_runtime(Settings())


def test_flux_dev_img2img_is_created_through_the_models_endpoint(runtime, emulator):
    cells = run(runtime, SweepRequest(FLUX_DEV, [], strength="0.4, 0.8", steps="20",
                                      prompts=["a portrait"], seed="7"))
    assert [c.state for c in cells] == [GenerationState.SUCCEEDED] * 2
    assert cells[0].model_input == {"prompt": "a portrait", "seed": 7,
                                    "num_inference_steps": 20, "prompt_strength": 0.4}
    assert (cells[0].strength, cells[0].steps, cells[0].guidance) == (0.4, 20, 3)  # 3: default
    assert all(c.cost_usd == pytest.approx(0.025) for c in cells)  # per output image
    assert emulator_stats(emulator)["creates_by_endpoint"] == {f"official {FLUX_DEV}": 2}


def test_kontext_takes_input_image_and_has_no_steps_or_strength(runtime, emulator):
    cells = run(runtime, SweepRequest(KONTEXT, [], prompts=["make it a pencil drawing"],
                                      axes={"aspect_ratio": "match_input_image, 1:1"}))
    assert [c.state for c in cells] == [GenerationState.SUCCEEDED] * 2
    assert [c.model_input["aspect_ratio"] for c in cells] == ["match_input_image", "1:1"]
    assert (cells[0].strength, cells[0].steps) == (None, None)
    assert "negative_prompt" not in cells[0].model_input  # nothing the user did not set
    assert runtime.store.exists(cells[0].output_key)  # a single string output is stored
    assert cells[0].cost_usd == pytest.approx(0.04)
    assert emulator_stats(emulator)["creates_by_endpoint"] == {f"official {KONTEXT}": 2}


def test_seedream_gets_a_list_of_images_and_every_output_is_stored(runtime):
    cells = run(runtime, SweepRequest(SEEDREAM, [], prompts=["three views"], fixed={
        "sequential_image_generation": "auto", "max_images": "3", "size": "1K"}))
    (cell,) = cells
    assert cell.state == GenerationState.SUCCEEDED, cell.error
    assert cell.model_input["max_images"] == 3  # typed from the schema
    assert len(cell.extra_outputs) == 2
    assert all(runtime.store.exists(o["output_key"]) for o in cell.extra_outputs)
    assert cell.cost_usd == pytest.approx(3 * 0.03)


@pytest.mark.parametrize(("pricing", "expected"), [
    (Pricing.per_megapixel(0.015, usd_per_input_megapixel=0.01), 2 * 0.015 + 1 * 0.01),
    (Pricing.per_run(0.05), 0.05),
    (Pricing.per_image(0.02), 2 * 0.02),
])
def test_each_billing_unit_prices_the_cell(runtime, pricing, expected):
    with session_scope(runtime.engine) as session:
        set_price(session, FLUX_DEV, pricing, actor="tester")
    planned = plan(runtime, SweepRequest(FLUX_DEV, [], prompts=["a"], seed="1",
                                         fixed={"num_outputs": 2, "megapixels": "1"}))
    assert planned.estimated_cost_usd == pytest.approx(expected)
    (cell,) = run(runtime, SweepRequest(FLUX_DEV, [], prompts=["a"], seed="1",
                                        fixed={"num_outputs": 2, "megapixels": "1"}))
    assert cell.state == GenerationState.SUCCEEDED
    if pricing.kind != "per_megapixel":  # per megapixel bills the real output size
        assert cell.cost_usd == pytest.approx(expected)
    else:
        assert cell.cost_usd > 0


def test_two_models_share_the_common_axes_where_they_have_the_input(runtime):
    request = SweepRequest(SDXL, [], extra_models=[KONTEXT], strength="0.3, 0.6",
                           prompts=["a portrait"], seed="5",
                           per_model_fixed={KONTEXT: {"aspect_ratio": "1:1"}})
    sweep_id = submit(runtime, request)
    run_queue(runtime.settings.redis_url)
    cells = cells_of(runtime, sweep_id)
    by_model = {}
    for cell in cells:
        by_model.setdefault(cell.model_id, []).append(cell)
    assert sorted(len(v) for v in by_model.values()) == [1, 2]
    assert {c.state for c in cells} == {GenerationState.SUCCEEDED}
    kontext = next(v[0] for v in by_model.values() if len(v) == 1)
    assert kontext.model_input == {"prompt": "a portrait", "seed": 5, "aspect_ratio": "1:1"}
    with session_scope(runtime.engine) as session:
        sweep = session.get(Sweep, sweep_id)
        assert sweep.axes["model"] == [SDXL, KONTEXT]
        assert sweep.fixed_params[NOT_APPLIED_KEY] == {KONTEXT: ["strength"]}


def test_a_prediction_past_cancel_after_before_starting_ends_aborted_unbilled(
        runtime, emulator):
    configure(emulator, queue_delay_s=30)
    (cell,) = run(runtime, SweepRequest(SDXL, [], strength="0.5", prompts=["a"], seed="1",
                                        cancel_after_s=5))
    assert (cell.state, cell.replicate_status, cell.cost_usd) == (
        GenerationState.FAILED, "aborted", 0.0)  # an end state with its reason, retryable
    assert "Cancel-After deadline 5 s passed before the prediction started" in cell.error


def test_an_axis_the_model_lacks_is_refused(runtime):
    with pytest.raises(InvalidInput, match="'strength' is not an input of "
                                           "black-forest-labs/flux-kontext-pro: remove it"):
        plan(runtime, SweepRequest(KONTEXT, [], strength="0.5", prompts=["a"]))


def test_an_axis_no_model_of_the_sweep_has_is_refused(runtime):
    with pytest.raises(InvalidInput, match="scheduler: no model of this sweep has such an input"):
        plan(runtime, SweepRequest(KONTEXT, [], extra_models=[SEEDREAM], prompts=["a"],
                                   axes={"scheduler": "K_EULER"}))


def test_a_value_outside_the_schema_is_refused_with_the_choices(runtime):
    with pytest.raises(InvalidInput, match="aspect_ratio '7:3' is not one of the model's choices"):
        plan(runtime, SweepRequest(KONTEXT, [], prompts=["a"], axes={"aspect_ratio": "7:3"}))
    with pytest.raises(InvalidInput, match="safety_tolerance 9 is above the model's maximum 6"):
        plan(runtime, SweepRequest(KONTEXT, [], prompts=["a"], fixed={"safety_tolerance": 9}))


def test_a_model_without_a_price_is_refused_before_planning(runtime):
    with session_scope(runtime.engine) as session:
        make_model(session, "someone/unpriced", pricing_kind=None, usd_per_second=None,
                   input_schema={"components": {"schemas": {"Input": {"properties": {
                       "prompt": {"type": "string"}}}}}})
    with pytest.raises(MissingPrice, match="someone/unpriced has no price yet: set one"):
        plan(runtime, SweepRequest("someone/unpriced", [], prompts=["a"]))


def test_cancel_after_is_sent_and_a_bad_one_refused_by_the_emulator(emulator):
    headers = {"Authorization": "Bearer x"}
    with httpx.Client(base_url=emulator.base_url, headers=headers) as http:
        configure(emulator, queue_delay_s=30)
        created = http.post(f"/v1/models/{KONTEXT}/predictions", json={"input": {"prompt": "a"}},
                            headers={"Cancel-After": "5s"}).json()
        assert (created["status"], created["version"]) == ("starting", "hidden")
        bad = http.post(f"/v1/models/{KONTEXT}/predictions", json={"input": {"prompt": "a"}},
                        headers={"Cancel-After": "2s"})
        assert bad.status_code == 400 and "at least 5 seconds" in bad.json()["detail"]
        # an official model's version is not addressable through /v1/predictions
        from core.planning.known_models import FLUX_KONTEXT_PRO_VERSION
        missing = http.post("/v1/predictions", json={"version": FLUX_KONTEXT_PRO_VERSION,
                                                      "input": {"prompt": "a"}})
        assert missing.status_code == 404


def test_a_scenario_keeps_every_input_from_promote_to_prefill_to_export(runtime):
    from core.data.models import Scenario
    from core.planning.presets import preset_of
    from core.scenarios import versions as scenarios

    (cell,) = run(runtime, SweepRequest(SDXL, [], strength="0.35", steps="28", prompts=["a"],
                                        seed="9", fixed={"scheduler": "K_EULER", "width": "768"}))
    with session_scope(runtime.engine) as session:
        promoted = scenarios.promote_generation(session, cell.id, "level-1", actor="ana",
                                                new_scenario=True)
        assert promoted.params == {"strength": 0.35, "num_inference_steps": 28,
                                   "guidance_scale": 7.5, "seed": 9, "scheduler": "K_EULER",
                                   "width": 768}
        preset = preset_of(session.get(Scenario, promoted.id))
        config = scenarios.production_config(session, statuses=("draft",))["level-1"]
    assert preset.fixed == {"scheduler": "K_EULER", "width": 768}
    assert config["endpoint"].startswith("POST /v1/predictions (version ")
    again = plan(runtime, SweepRequest(preset.model_ref or SDXL, [], prompts=[preset.prompt],
                                       fixed=preset.fixed, **preset.axes))
    assert again.cells[0].model_input == {
        "prompt": "a", "seed": 9, "guidance_scale": 7.5, "num_inference_steps": 28,
        "prompt_strength": 0.35, "scheduler": "K_EULER", "width": 768}


def test_a_deployment_is_created_by_its_owner_and_name():
    import asyncio

    from core.emulator import EmulatorConfig, EmulatorServer
    from core.engine.replicate_api import (EMULATOR_TOKEN, CreateTarget, Endpoint,
                                           build_async_client, create_prediction)

    config = EmulatorConfig.fast(deployments={"acme/sdxl-prod": SDXL})
    with EmulatorServer(config) as server:
        async def scenario() -> tuple[dict, str]:
            client = build_async_client(Endpoint(server.base_url, EMULATOR_TOKEN, True))
            target = CreateTarget("deployment", SDXL, deployment="acme/sdxl-prod")
            created = await create_prediction(client, target, {"prompt": "a"}, cancel_after_s=60)
            missing = CreateTarget("deployment", SDXL, deployment="acme/nothing")
            try:
                await create_prediction(client, missing, {"prompt": "a"}, cancel_after_s=60)
            except Exception as exc:  # noqa: BLE001 - the message is what is checked
                return created, str(exc)
            return created, ""

        created, refused = asyncio.run(scenario())
        assert created["model"] == SDXL and created["status"] in ("starting", "processing")
        assert "deployment does not exist" in refused
        stats = httpx.get(f"{server.base_url}/_emulator/stats").json()
        assert stats["creates_by_endpoint"] == {f"deployment {SDXL}": 1}

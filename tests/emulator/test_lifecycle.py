"""Prediction lifecycle driven by the official replicate client over real HTTP."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
import replicate
from replicate.exceptions import ModelError, ReplicateError

from core.emulator import EmulatorConfig
from core.emulator.schema import SDXL_LATEST as SDXL

INPUT = {"prompt": "a corgi", "width": 64, "height": 64, "seed": 7, "num_inference_steps": 20}


def test_create_reload_wait(client: replicate.Client) -> None:
    prediction = client.predictions.create(version=SDXL, input=INPUT)
    assert prediction.status == "starting" and prediction.started_at is None
    prediction.wait()
    assert prediction.status == "succeeded"
    assert prediction.started_at and prediction.completed_at
    assert prediction.metrics["predict_time"] == pytest.approx(0.1, abs=1e-6)
    assert prediction.output[0].endswith(f"/_emulator/outputs/{prediction.id}/out-0.png")
    image = httpx.get(prediction.output[0])
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert image.content.startswith(b"\x89PNG")
    assert prediction.progress is not None and prediction.progress.percentage == 1.0


def test_status_walks_starting_processing_succeeded(client: replicate.Client, poll: Any) -> None:
    prediction = client.predictions.create(version=SDXL, input=INPUT)
    seen = [prediction.status]

    def finished() -> bool:
        prediction.reload()
        if prediction.status != seen[-1]:
            seen.append(prediction.status)
        return prediction.status == "succeeded"

    poll(finished)
    assert seen[0] == "starting" and seen[-1] == "succeeded"
    assert set(seen) <= {"starting", "processing", "succeeded"}


@pytest.mark.parametrize("config", [EmulatorConfig.fast(queue_delay_s=5.0)])
def test_cancel(client: replicate.Client) -> None:
    prediction = client.predictions.create(version=SDXL, input=INPUT)
    prediction.cancel()
    prediction.reload()
    assert prediction.status == "canceled" and prediction.output is None


def test_cancel_after_completion_changes_nothing(client: replicate.Client) -> None:
    prediction = client.predictions.create(version=SDXL, input=INPUT)
    prediction.wait()
    canceled = client.predictions.cancel(prediction.id)
    assert canceled.status == "succeeded" and canceled.output == prediction.output


@pytest.mark.parametrize("config", [EmulatorConfig.fast(failure_rate=1.0, random_seed=3)])
def test_failed_prediction_carries_model_error(client: replicate.Client) -> None:
    prediction = client.predictions.create(version=SDXL, input=INPUT)
    prediction.wait()
    assert prediction.status == "failed" and prediction.output is None
    assert "CUDA out of memory" in prediction.error or "NSFW content detected" in prediction.error
    assert prediction.error in prediction.logs
    with pytest.raises(ModelError):
        client.run(f"stability-ai/sdxl:{SDXL}", input=INPUT)


def test_run_returns_output_urls(client: replicate.Client) -> None:
    output = client.run(f"stability-ai/sdxl:{SDXL}", input=INPUT)
    assert isinstance(output, list) and len(output) == 1
    assert httpx.get(output[0]).content.startswith(b"\x89PNG")


def test_official_model_route_uses_latest_version(client: replicate.Client) -> None:
    prediction = client.models.predictions.create(model="stability-ai/sdxl", input=INPUT)
    assert prediction.version == SDXL and prediction.model == "stability-ai/sdxl"


def test_num_outputs(client: replicate.Client) -> None:
    prediction = client.predictions.create(version=SDXL, input={**INPUT, "num_outputs": 3})
    prediction.wait()
    assert [url.rsplit("/", 1)[1] for url in prediction.output] == ["out-0.png", "out-1.png", "out-2.png"]
    first, second = (httpx.get(url).content for url in prediction.output[:2])
    assert first != second


def test_list_is_newest_first_with_inputs_and_cursor(client: replicate.Client, server: Any) -> None:
    server.app.emulator.config.page_size = 2
    created = [client.predictions.create(version=SDXL, input={**INPUT, "seed": i}).id for i in range(5)]
    page = client.predictions.list()
    assert [p.id for p in page.results] == created[::-1][:2]
    assert page.results[0].input == {**INPUT, "seed": 4}
    ids = [p.id for p in page.results]
    while page.next:
        page = client.predictions.list(page.next)
        ids += [p.id for p in page.results]
    assert ids == created[::-1]
    assert page.previous is not None


def test_models_and_versions(client: replicate.Client) -> None:
    model = client.models.get("stability-ai/sdxl")
    assert model.owner == "stability-ai" and model.latest_version.id == SDXL
    version = model.versions.get(SDXL)
    assert "prompt_strength" in version.openapi_schema["components"]["schemas"]["Input"]["properties"]


def test_prefer_wait_returns_final_prediction(client: replicate.Client, server: Any) -> None:
    response = httpx.post(f"{server.base_url}/v1/predictions", json={"version": SDXL, "input": INPUT},
                          headers={"Authorization": "Bearer x", "Prefer": "wait=5"}, timeout=10)
    assert response.status_code == 201 and response.headers["preference-applied"] == "wait=5"
    assert response.json()["status"] == "succeeded" and response.json()["output"]
    prediction = client.predictions.create(version=SDXL, input=INPUT, wait=True)
    assert prediction.status == "succeeded"


@pytest.mark.parametrize("config", [EmulatorConfig.fast(queue_delay_s=5.0)])
def test_prefer_wait_times_out_as_starting(server: Any) -> None:
    started = time.monotonic()
    response = httpx.post(f"{server.base_url}/v1/predictions", json={"version": SDXL, "input": INPUT},
                          headers={"Authorization": "Bearer x", "Prefer": "wait=1"}, timeout=10)
    assert 0.9 < time.monotonic() - started < 3
    body = response.json()
    assert response.status_code == 201 and response.headers["preference-applied"] == "wait=1"
    assert body["status"] == "starting" and "output" not in body


@pytest.mark.parametrize("config", [EmulatorConfig.fast(queue_delay_s=5.0)])
def test_cancel_ends_a_waiting_create(server: Any, client: replicate.Client, poll: Any) -> None:
    async def scenario() -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10,
                                     headers={"Authorization": "Bearer x"}) as http:
            waiting = asyncio.create_task(http.post(
                "/v1/predictions", json={"version": SDXL, "input": INPUT}, headers={"Prefer": "wait"}))
            page = await asyncio.to_thread(poll, lambda: client.predictions.list().results)
            await http.post(f"/v1/predictions/{page[0].id}/cancel")
            return (await asyncio.wait_for(waiting, 3)).json()

    assert asyncio.run(scenario())["status"] == "canceled"


@pytest.mark.parametrize("config", [EmulatorConfig.fast(retention_s=0.3)])
def test_outputs_are_removed_after_retention(client: replicate.Client, server: Any, poll: Any) -> None:
    prediction = client.predictions.create(version=SDXL, input=INPUT)
    prediction.wait()
    url = prediction.output[0]
    assert httpx.get(url).status_code == 200
    body = poll(lambda: (b := httpx.get(prediction.urls["get"], headers={"Authorization": "Bearer x"})
                         .json())["data_removed"] and b)
    assert body["output"] is None and body["status"] == "succeeded"
    assert httpx.get(url).status_code == 404


def test_async_create_and_wait(client: replicate.Client) -> None:
    async def scenario() -> list[Any]:
        try:
            predictions = await asyncio.gather(*[
                client.predictions.async_create(version=SDXL, input={**INPUT, "seed": s}) for s in range(5)])
            await asyncio.gather(*[p.async_wait() for p in predictions])
            return predictions
        finally:
            await client._async_client.aclose()

    predictions = asyncio.run(scenario())
    assert {p.status for p in predictions} == {"succeeded"}
    assert len({p.id for p in predictions}) == 5


def test_invalid_input_raises_replicate_error(client: replicate.Client) -> None:
    with pytest.raises(ReplicateError) as caught:
        client.predictions.create(version=SDXL, input={"scheduler": "FAST"})
    assert caught.value.status == 422 and caught.value.title == "Input validation failed"

"""Bodies, headers and errors compared with the real api.replicate.com recordings."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.emulator import EmulatorConfig
from core.emulator.schema import SDXL_2023
from core.emulator.schema import SDXL_LATEST as SDXL

CASSETTES = Path(__file__).resolve().parents[2].parent / "shared" / "replicate-cassettes"
if not CASSETTES.is_dir():
    CASSETTES = Path("/work/shared/replicate-cassettes")
ID = re.compile(r"^[0-9a-z]{26}$")
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{1,9}Z$")
INPUT = {"prompt": "a studio photo of a rainbow colored corgi", "width": 64, "height": 64, "seed": 42069}


def recorded(name: str, index: int) -> dict[str, Any]:
    return json.loads((CASSETTES / name).read_text())["interactions"][index]["response"]


def assert_same_shape(ours: Any, theirs: Any, path: str = "body") -> None:
    """Same keys at every level and the same JSON types (null matches null only)."""
    if isinstance(theirs, dict):
        assert isinstance(ours, dict), path
        assert set(ours) == set(theirs), f"{path}: {sorted(set(ours) ^ set(theirs))}"
        for key in theirs:
            if key not in ("input", "output"):
                assert_same_shape(ours[key], theirs[key], f"{path}.{key}")
    else:
        assert type(ours) is type(theirs), f"{path}: {ours!r} vs {theirs!r}"


def create(http: httpx.Client, **extra: Any) -> httpx.Response:
    return http.post("/v1/predictions", json={"version": SDXL, "input": INPUT, **extra})


@pytest.fixture
def config() -> EmulatorConfig:
    return EmulatorConfig.fast(queue_delay_s=0.3, predict_time_s=0.3, random_seed=1)


def test_create_matches_recorded_starting_body(http: httpx.Client, server: Any) -> None:
    response = create(http)
    real = recorded("sdxl_cancel_2024-04-22.json", 0)
    assert response.status_code == real["status"] == 201
    body = response.json()
    assert list(body) == list(real["body"])
    assert_same_shape(body, real["body"])
    assert ID.match(body["id"]) and TIMESTAMP.match(body["created_at"])
    assert body["input"] == INPUT and body["status"] == "starting" and body["logs"] == ""
    assert body["urls"]["get"] == f"{server.base_url}/v1/predictions/{body['id']}"
    assert body["urls"]["cancel"] == f"{server.base_url}/v1/predictions/{body['id']}/cancel"
    assert {"ratelimit-remaining", "ratelimit-reset"} <= set(response.headers)
    assert response.headers["content-type"].startswith("application/json")


def test_processing_and_succeeded_match_recorded_polls(http: httpx.Client, server: Any, poll: Any) -> None:
    prediction_id = create(http).json()["id"]
    processing = poll(lambda: (b := http.get(f"/v1/predictions/{prediction_id}").json())["status"]
                      == "processing" and b)
    assert_same_shape(processing, recorded("sdxl_run_lifecycle_2023-11-16.json", 3)["body"])
    assert TIMESTAMP.match(processing["started_at"])
    done = poll(lambda: (b := http.get(f"/v1/predictions/{prediction_id}").json())["status"]
                == "succeeded" and b)
    real = recorded("sdxl_get_succeeded_2023-08-16.json", 0)["body"]
    # Like the 2024 recordings, terminal bodies also carry data_removed and metrics.total_time.
    extra = {"data_removed"}
    assert set(done) - set(real) == extra
    assert_same_shape({k: v for k, v in done.items() if k not in extra | {"metrics"}},
                      {k: v for k, v in real.items() if k != "metrics"})
    assert set(done["metrics"]) == {"predict_time", "total_time"}
    assert isinstance(done["metrics"]["predict_time"], float)
    assert done["data_removed"] is False
    assert done["output"] == [f"{server.base_url}/_emulator/outputs/{prediction_id}/out-0.png"]
    assert done["logs"].startswith("Using seed: 42069\nPrompt: a studio photo")
    assert "50/50" in done["logs"]


def test_cancel_matches_recorded_canceled_body(http: httpx.Client) -> None:
    prediction_id = create(http).json()["id"]
    response = http.post(f"/v1/predictions/{prediction_id}/cancel")
    real = recorded("sdxl_cancel_2024-04-22.json", 1)
    assert response.status_code == real["status"] == 200
    body = response.json()
    assert list(body) == list(real["body"])
    assert body["status"] == "canceled" and body["logs"] is None and body["output"] is None
    assert set(body["metrics"]) == {"predict_time", "total_time"}
    assert http.get(f"/v1/predictions/{prediction_id}").json() == body


def test_missing_token_is_401_problem(server: Any) -> None:
    real = recorded("errors_2023.json", 0)
    response = httpx.post(f"{server.base_url}/v1/predictions", json={"version": SDXL, "input": {}})
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == real["body"]
    bad_scheme = httpx.get(f"{server.base_url}/v1/predictions", headers={"Authorization": "Basic x"})
    assert bad_scheme.status_code == 401


def test_token_scheme_is_accepted_too(server: Any, token: str) -> None:
    response = httpx.get(f"{server.base_url}/v1/predictions", headers={"Authorization": f"Token {token}"})
    assert response.status_code == 200


def test_unknown_version_is_404_problem(http: httpx.Client) -> None:
    response = http.post("/v1/predictions", json={"version": "0" * 64, "input": {}})
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert_same_shape(response.json(), recorded("errors_2023.json", 1)["body"])
    assert http.get("/v1/predictions/doesnotexist000000000000000").status_code == 404
    assert http.get("/v1/models/nobody/nothing").status_code == 404
    assert http.post("/v1/models/nobody/nothing/predictions", json={"input": {}}).status_code == 404


def test_invalid_input_is_422_with_invalid_fields(http: httpx.Client) -> None:
    response = create(http, input={"prompt": "x", "num_inference_steps": 0})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert set(body) == {"title", "detail", "status", "invalid_fields"}
    assert body["title"] == "Input validation failed" and body["status"] == 422
    assert body["invalid_fields"] == [{"type": "number_gte", "field": "input.num_inference_steps",
                                       "description": "Must be greater than or equal to 1"}]
    assert "input.num_inference_steps" in body["detail"]


def test_invalid_json_is_400(http: httpx.Client) -> None:
    response = http.post("/v1/predictions", content=b"{not json",
                         headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["status"] == 400


def test_old_version_id_and_owner_name_ref_are_accepted(http: httpx.Client) -> None:
    old = http.post("/v1/predictions", json={"version": SDXL_2023, "input": INPUT})
    assert old.status_code == 201 and old.json()["version"] == SDXL_2023
    ref = http.post("/v1/predictions", json={"version": f"stability-ai/sdxl:{SDXL}", "input": INPUT})
    assert ref.status_code == 201 and ref.json()["version"] == SDXL
    wrong_model = http.post("/v1/predictions", json={"version": f"other/model:{SDXL}", "input": {}})
    assert wrong_model.status_code == 404


def test_model_and_version_objects(http: httpx.Client) -> None:
    model = http.get("/v1/models/stability-ai/sdxl").json()
    real = recorded("sdxl_get_succeeded_2023-08-16.json", 1)["body"]
    assert set(model) == set(real)
    assert model["latest_version"]["id"] == SDXL
    assert "Input" in model["latest_version"]["openapi_schema"]["components"]["schemas"]
    version = http.get(f"/v1/models/stability-ai/sdxl/versions/{SDXL}").json()
    assert set(version) == {"id", "created_at", "cog_version", "openapi_schema"}
    assert http.get(f"/v1/models/stability-ai/sdxl/versions/{'1' * 64}").status_code == 404


def test_token_never_appears_in_bodies(http: httpx.Client, token: str,
                                      capfd: pytest.CaptureFixture[str]) -> None:
    created = create(http)
    texts = [created.text, http.get(created.json()["urls"]["get"]).text,
             http.get("/v1/predictions").text, http.get("/_emulator/stats").text,
             create(http, input={"seed": "x"}).text]
    captured = capfd.readouterr()
    for text in texts + [captured.out, captured.err]:
        assert token not in text and token[4:] not in text

"""Runtime fault injection and counters over the /_emulator/ admin routes."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import httpx
import pytest
import replicate

from core.emulator import EmulatorConfig
from core.emulator.schema import SDXL_LATEST as SDXL

INPUT = {"prompt": "x", "width": 64, "height": 64, "seed": 3}
BODY = {"version": SDXL, "input": INPUT}


@pytest.fixture
def config() -> EmulatorConfig:
    return EmulatorConfig.fast(fault_hang_s=5.0)


def inject(http: httpx.Client, **spec: Any) -> None:
    response = http.post("/_emulator/faults", json=spec)
    assert response.status_code == 201, response.text


def test_status_fault_fires_count_times(http: httpx.Client) -> None:
    inject(http, route="create", status=503, count=2)
    codes = [http.post("/v1/predictions", json=BODY).status_code for _ in range(3)]
    assert codes == [503, 503, 201]
    assert http.get("/_emulator/faults").json() == {"faults": []}
    stats = http.get("/_emulator/stats").json()
    assert stats["creates_total"] == 1 and stats["faults_injected_total"] == 2


def test_429_fault_carries_retry_after(http: httpx.Client) -> None:
    inject(http, route="create", status=429, retry_after=2)
    response = http.post("/v1/predictions", json=BODY)
    assert response.status_code == 429 and response.headers["retry-after"] == "2"
    assert response.json()["retry_after"] == 2


def test_client_retries_get_through_503(client: replicate.Client, http: httpx.Client) -> None:
    prediction = client.predictions.create(**BODY)
    inject(http, route="get", status=503, count=2)
    assert client.predictions.get(prediction.id).id == prediction.id  # GETs retry on 503
    assert http.get("/_emulator/stats").json()["faults_injected_total"] == 2


def test_reset_drops_the_connection(http: httpx.Client, server: Any) -> None:
    inject(http, route="get", action="reset")
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError, httpx.ConnectError)):
        httpx.get(f"{server.base_url}/v1/predictions/abc", headers={"Authorization": "Bearer x"})
    assert http.get("/v1/predictions").status_code == 200


def test_timeout_hangs_past_the_client_timeout(http: httpx.Client, server: Any) -> None:
    inject(http, route="cancel", action="timeout")
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{server.base_url}/v1/predictions/abc/cancel",
                   headers={"Authorization": "Bearer x"}, timeout=0.3)


def test_truncate_cuts_the_output_body(client: replicate.Client, http: httpx.Client) -> None:
    prediction = client.predictions.create(**BODY)
    prediction.wait()
    inject(http, route="output", action="truncate")
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        httpx.get(prediction.output[0])
    assert httpx.get(prediction.output[0]).content.startswith(b"\x89PNG")


def test_after_fault_loses_the_reply_but_the_create_happens(http: httpx.Client, server: Any) -> None:
    inject(http, route="create", action="reset", after=True)
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        httpx.post(f"{server.base_url}/v1/predictions", json=BODY, headers={"Authorization": "Bearer x"})
    stats = http.get("/_emulator/stats").json()
    assert stats["creates_total"] == 1
    listed = http.get("/v1/predictions").json()["results"]
    assert [p["input"] for p in listed] == [INPUT]  # found again by matching inputs


def test_stats_count_creates_per_input_hash(http: httpx.Client) -> None:
    for _ in range(2):
        http.post("/v1/predictions", json=BODY)
    http.post("/v1/predictions", json={"version": SDXL, "input": {**INPUT, "seed": 4}})
    http.get("/v1/predictions")
    stats = http.get("/_emulator/stats").json()
    canonical = json.dumps({"version": SDXL, "input": INPUT}, sort_keys=True, separators=(",", ":"))
    assert stats["creates_by_input_hash"][hashlib.sha256(canonical.encode()).hexdigest()] == 2
    assert stats["creates_total"] == 3 and stats["requests_total"] == 4
    assert sum(stats["predictions"].values()) == 3


def test_reset_route_clears_everything(http: httpx.Client) -> None:
    http.post("/v1/predictions", json=BODY)
    inject(http, route="get", status=500, count=5)
    assert http.post("/_emulator/reset").json() == {"ok": True}
    stats = http.get("/_emulator/stats").json()
    assert stats["creates_total"] == 0 and stats["requests_total"] == 0
    assert http.get("/v1/predictions").json()["results"] == []  # and the fault is gone


def test_delete_faults(http: httpx.Client) -> None:
    inject(http, route="*", status=502, count=10)
    assert http.delete("/_emulator/faults").json() == {"faults": []}
    assert http.get("/v1/predictions").status_code == 200


@pytest.mark.parametrize("spec", [{"route": "nowhere", "status": 500}, {"route": "get"},
                                  {"route": "get", "status": 418}, {"route": "get", "action": "explode"},
                                  {"route": "get", "status": 500, "count": 0}, {"route": "get", "x": 1}])
def test_bad_fault_specs_are_refused(http: httpx.Client, spec: dict[str, Any]) -> None:
    assert http.post("/_emulator/faults", json=spec).status_code == 400


@pytest.mark.parametrize("config", [EmulatorConfig.fast(server_error_rate=1.0)])
def test_random_server_errors(http: httpx.Client) -> None:
    assert {http.get("/v1/predictions").status_code for _ in range(5)} <= {500, 502, 503}
    assert http.get("/_emulator/health").status_code == 200  # admin routes are never faulted


def test_runtime_config_change(http: httpx.Client, client: replicate.Client) -> None:
    assert http.post("/_emulator/config", json={"failure_rate": 1.0}).json()["failure_rate"] == 1.0
    prediction = client.predictions.create(**BODY)
    prediction.wait()
    assert prediction.status == "failed"
    assert http.post("/_emulator/config", json={"valid_tokens": ["x"]}).status_code == 400

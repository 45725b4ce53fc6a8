"""Create throttling: 429 problem bodies with retry_after, and the low-credit preset."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
import replicate
from replicate.exceptions import ReplicateError

from core.emulator import EmulatorConfig
from core.emulator.config import EmulatorConfig as Config
from core.emulator.schema import SDXL_LATEST as SDXL
from core.emulator.throttle import CreateThrottle

BODY = {"version": SDXL, "input": {"prompt": "x", "width": 64, "height": 64}}


@pytest.fixture
def config() -> EmulatorConfig:
    return EmulatorConfig.fast(rate_limit_per_minute=60, burst=2)


def test_burst_then_429_problem(http: httpx.Client) -> None:
    first, second, third = (http.post("/v1/predictions", json=BODY) for _ in range(3))
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.headers["ratelimit-remaining"] == "1" and second.headers["ratelimit-remaining"] == "0"
    assert third.status_code == 429
    assert third.headers["content-type"] == "application/problem+json"
    assert third.headers["retry-after"] == "1"
    assert third.json() == {"title": "Request was throttled",
                            "detail": "Request was throttled. Your rate limit resets in ~1s.",
                            "status": 429, "retry_after": 1}
    stats = http.get("/_emulator/stats").json()
    assert stats["creates_total"] == 2 and stats["throttled_total"] == 1


def test_other_routes_are_not_throttled(http: httpx.Client) -> None:
    for _ in range(3):
        http.post("/v1/predictions", json=BODY)
    assert all(http.get("/v1/predictions").status_code == 200 for _ in range(5))


def test_client_sees_429_as_replicate_error(client: replicate.Client) -> None:
    client.predictions.create(**BODY)
    client.predictions.create(**BODY)
    with pytest.raises(ReplicateError) as caught:
        client.predictions.create(**BODY)  # the client never retries a POST
    assert caught.value.status == 429 and caught.value.title == "Request was throttled"


def test_bucket_refills_at_the_rate() -> None:
    throttle = CreateThrottle(Config(rate_limit_per_minute=60, burst=1))
    now = time.time()
    assert throttle.try_acquire(now) is None
    assert throttle.try_acquire(now) == 1
    assert throttle.try_acquire(now + 1.01) is None


def test_low_credit_preset_allows_one_then_waits_ten_seconds() -> None:
    config = EmulatorConfig.low_credit()
    assert (config.rate_limit_per_minute, config.burst) == (6, 1)
    throttle = CreateThrottle(config)
    assert throttle.try_acquire(100.0) is None
    assert throttle.try_acquire(100.0) == 10


def test_disabled_throttle_never_refuses() -> None:
    throttle = CreateThrottle(Config(rate_limit_per_minute=None))
    assert all(throttle.try_acquire(0.0) is None for _ in range(10_000))


@pytest.mark.parametrize("config", [EmulatorConfig.fast(rate_limit_per_minute=600, burst=1)])
def test_retry_after_lets_the_next_create_through(http: httpx.Client, poll: Any) -> None:
    assert http.post("/v1/predictions", json=BODY).status_code == 201
    refused = http.post("/v1/predictions", json=BODY)
    assert refused.status_code == 429
    poll(lambda: http.post("/v1/predictions", json=BODY).status_code == 201,
         timeout=refused.json()["retry_after"] + 1, interval=0.05)

"""Fixtures: a fast emulator on a free loopback port, the official client, raw HTTP."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import replicate

from core.emulator import EmulatorConfig, EmulatorServer
from tests.services import wait_for

TOKEN = "r8_test_emulator_secret_token"


@pytest.fixture
def config() -> EmulatorConfig:
    """Override in a test module (or parametrize) to change the server's behaviour."""
    return EmulatorConfig.fast(random_seed=1)


@pytest.fixture
def server(config: EmulatorConfig) -> Iterator[EmulatorServer]:
    with EmulatorServer(config) as running:
        yield running


@pytest.fixture
def client(server: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[replicate.Client]:
    """The official client. Async tests close ``client._async_client`` on their own loop."""
    monkeypatch.setenv("REPLICATE_POLL_INTERVAL", "0.02")  # read by Client.__init__
    official = replicate.Client(api_token=TOKEN, base_url=server.base_url)
    yield official
    official._client.close()  # the client has no close(); its pool would leak sockets


@pytest.fixture
def http(server: EmulatorServer) -> Iterator[httpx.Client]:
    """Plain HTTP with the token set, for checking bodies and headers byte for byte."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=10) as session:
        yield session


def poll(check: Callable[[], Any], timeout: float = 5.0, interval: float = 0.01) -> Any:
    """Call ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    return wait_for(check, timeout, "the emulator condition", interval=interval)


@pytest.fixture(name="poll")
def poll_fixture() -> Callable[..., Any]:
    """``poll(check, timeout=5)``: wait for a condition with a deadline instead of sleeping."""
    return poll


@pytest.fixture
def token() -> str:
    return TOKEN

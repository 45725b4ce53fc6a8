"""Running the emulator: thread server, subprocess (killable), CLI flags, throughput."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from core.emulator import EmulatorConfig, EmulatorServer, add_cli_arguments, config_from_args
from core.emulator.schema import SDXL_LATEST as SDXL
from tests.services import free_port

ROOT = Path(__file__).resolve().parents[2]


def start_subprocess(port: int, *flags: str) -> subprocess.Popen[str]:
    process = subprocess.Popen([sys.executable, "-m", "core.emulator", "--port", str(port), *flags],
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.startswith("Replicate emulator listening on http://127.0.0.1:"), line
    return process


def health(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/_emulator/health", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(5)
        for stream in (process.stdout, process.stderr):
            if stream:
                stream.close()


def test_thread_server_picks_a_free_port_and_stops() -> None:
    with EmulatorServer(EmulatorConfig.fast()) as server:
        assert server.base_url == f"http://127.0.0.1:{server.port}" and server.port > 0
        assert httpx.get(f"{server.base_url}/_emulator/health").json() == {"ok": True}
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.base_url}/_emulator/health")


def test_subprocess_can_be_killed_and_restarted(port: int, processes: list[subprocess.Popen[str]],
                                                poll: object) -> None:
    processes.append(start_subprocess(port, "--preset", "fast"))
    base = f"http://127.0.0.1:{port}"
    auth = {"Authorization": "Bearer r8_x"}
    created = httpx.post(f"{base}/v1/predictions", headers=auth, json={"version": SDXL, "input": {}})
    assert created.status_code == 201
    os.kill(processes[0].pid, signal.SIGKILL)
    processes[0].wait(5)
    assert not health(port)
    processes.append(start_subprocess(port, "--preset", "fast"))
    assert httpx.get(created.json()["urls"]["get"], headers=auth).status_code == 404  # state is memory


def test_subprocess_with_port_zero_reports_its_port(processes: list[subprocess.Popen[str]]) -> None:
    process = subprocess.Popen([sys.executable, "-m", "core.emulator", "--port", "0"], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    processes.append(process)
    assert process.stdout is not None
    port = int(process.stdout.readline().rsplit(":", 1)[1])
    assert health(port)
    process.terminate()
    process.wait(5)
    assert not health(port)


def test_cli_flags_build_the_config() -> None:
    parser = argparse.ArgumentParser()
    add_cli_arguments(parser)
    args = parser.parse_args(["--port", "9000", "--preset", "low-credit", "--token", "a", "--token", "b",
                              "--queue-delay", "0.2", "--predict-time", "lognormal",
                              "--predict-seconds", "3", "--predict-range", "1", "9",
                              "--failure-rate", "0.1", "--retention", "60", "--seed", "5"])
    config = config_from_args(args)
    assert args.port == 9000 and config.valid_tokens == {"a", "b"}
    assert (config.rate_limit_per_minute, config.burst) == (6, 1)
    assert (config.queue_delay_s, config.predict_time_dist, config.predict_time_s) == (0.2, "lognormal", 3)
    assert config.predict_time_range_s == (1.0, 9.0) and config.failure_rate == 0.1
    assert (config.retention_s, config.random_seed) == (60, 5)
    latency = config_from_args(parser.parse_args(["--latency", "2"]))
    assert (latency.predict_time_dist, latency.predict_time_s, latency.queue_delay_s) == ("fixed", 2, 0)
    unlimited = config_from_args(parser.parse_args(["--rate-limit", "0"]))
    assert unlimited.rate_limit_per_minute is None and unlimited == EmulatorConfig(rate_limit_per_minute=None)


def test_valid_tokens_restrict_access() -> None:
    with EmulatorServer(EmulatorConfig.fast(valid_tokens={"r8_good"})) as server:
        url = f"{server.base_url}/v1/predictions"
        assert httpx.get(url, headers={"Authorization": "Bearer r8_good"}).status_code == 200
        assert httpx.get(url, headers={"Authorization": "Bearer r8_bad"}).status_code == 401

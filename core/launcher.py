"""``python -m core up``: the whole product on embedded defaults.

Uses REDIS_URL when it answers, else starts ``redis-server`` on a free loopback port; starts
the emulator when no REPLICATE_API_TOKEN is set; migrates; runs workers and Streamlit.
Ctrl-C or SIGTERM stops everything it started, process groups included.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import cast

import httpx
from redis import Redis

from core.config import PROJECT_ROOT, VAR_DIR, Settings, is_loopback
from core.data.db import upgrade
from core.errors import ConfigurationError, ServiceUnavailable

log = logging.getLogger("core.up")
# Where `up` tells other commands (CLI, extra workers) which Redis and emulator it started.
SERVICES_FILE = Path(os.environ.get("TUNER_RUN_DIR", VAR_DIR / "run")) / "services.json"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout: float, what: str) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise ServiceUnavailable(f"{what} did not come up within {timeout:.0f} s")


def redis_answers(url: str) -> bool:
    try:
        client = Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # noqa: BLE001
        return False


def http_answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code < 500
    except httpx.HTTPError:
        return False


def auth_configured(settings: Settings) -> bool:
    from core.auth import auth_mode

    return auth_mode(settings) != "none"


class Launcher:
    def __init__(self, settings: Settings, *, workers: int, address: str, port: int) -> None:
        self.settings = settings
        self.workers = workers
        self.address = address
        self.port = port
        self.children: list[tuple[str, subprocess.Popen]] = []
        self.env = dict(os.environ)
        self._stopping = False

    def start(self) -> None:
        if not is_loopback(self.address) and not auth_configured(self.settings):
            raise ConfigurationError(
                f"Refusing to serve on {self.address}: anyone on that network could see these "
                "photos. Configure sign-in first (OIDC in .streamlit/secrets.toml [auth], or "
                "AUTH_USERS_FILE with hashed passwords: `python -m core users add NAME`), or "
                "bind to 127.0.0.1.")
        self._ensure_redis()
        if self.settings.uses_emulator and not self.settings.replicate_base_url:
            self._start_emulator()
        upgrade(self.settings.database_url)
        self._write_services_file()
        for n in range(self.workers):
            self._spawn(f"worker-{n + 1}", [sys.executable, "-m", "core", "worker"])
        # dashboard.serve: Streamlit with the pages' modules imported before the port opens.
        self._spawn("dashboard", [
            sys.executable, "-m", "dashboard.serve",
            "--server.address", self.address, "--server.port", str(self.port),
            "--server.headless", "true", "--browser.gatherUsageStats", "false"])
        wait_until(lambda: http_answers(f"http://{self._host()}:{self.port}/_stcore/health"),
                   60, "The dashboard")
        print(f"Scenario Tuner is up: http://{self._host()}:{self.port}  (Ctrl-C stops it)",
              flush=True)

    def _host(self) -> str:
        return "127.0.0.1" if self.address.strip() in ("0.0.0.0", "::", "", "*") else self.address

    def _ensure_redis(self) -> None:
        if redis_answers(self.settings.redis_url):
            self.env["REDIS_URL"] = self.settings.redis_url
            return
        binary = shutil.which("redis-server")
        if binary is None:
            raise ServiceUnavailable(
                f"Redis does not answer at {self.settings.redis_url} and redis-server is not "
                "installed: install it (apt-get install redis-server) or set REDIS_URL.")
        port = free_port()
        data_dir = VAR_DIR / "redis"
        data_dir.mkdir(parents=True, exist_ok=True)
        # Persist to disk so a restart of `up` keeps the queue; loopback only, no password.
        self._spawn("redis", [binary, "--port", str(port), "--bind", "127.0.0.1",
                              "--dir", str(data_dir), "--appendonly", "yes", "--save", ""])
        url = f"redis://127.0.0.1:{port}/0"
        wait_until(lambda: redis_answers(url), 20, "redis-server")
        self.env["REDIS_URL"] = url
        self.settings = self.settings.model_copy(update={"redis_url": url})

    def _start_emulator(self) -> None:
        port = free_port()
        self._spawn("emulator", [sys.executable, "-m", "core", "emulator", "--port", str(port)])
        base_url = f"http://127.0.0.1:{port}"
        wait_until(lambda: http_answers(f"{base_url}/_emulator/stats"), 30, "The emulator")
        self.env["REPLICATE_BASE_URL"] = base_url
        self.settings = self.settings.model_copy(update={"replicate_base_url": base_url})

    def _spawn(self, name: str, args: list[str]) -> None:
        self.children.append((name, self._popen(name, args)))

    def _popen(self, name: str, args: list[str]) -> subprocess.Popen:
        # On one machine the dashboard comes first: workers and the emulator (which stands in
        # for a remote service) run at a lower CPU priority, so a page a person waits for is
        # not queued behind a sweep's thumbnails and metrics; idle CPU still goes to them.
        lower = name.startswith("worker-") or name == "emulator"
        return subprocess.Popen(args, env=self.env, cwd=PROJECT_ROOT, start_new_session=True,
                                preexec_fn=_lower_priority if lower else None)

    def _write_services_file(self) -> None:
        SERVICES_FILE.parent.mkdir(parents=True, exist_ok=True)
        SERVICES_FILE.write_text(json.dumps({
            "pid": os.getpid(), "redis_url": self.env.get("REDIS_URL"),
            "replicate_base_url": self.env.get("REPLICATE_BASE_URL"),
            "dashboard": f"http://{self._host()}:{self.port}"}))

    def supervise(self) -> int:
        """Wait; a worker that dies is restarted, anything else stopping ends the product."""
        while not self._stopping:
            for i, (name, child) in enumerate(self.children):
                code = child.poll()
                if code is None:
                    continue
                if name.startswith("worker-"):
                    log.warning("%s exited with %s; starting another", name, code)
                    # the list of strings _popen was given
                    self.children[i] = (name, self._popen(name, cast(list[str], child.args)))
                else:
                    print(f"{name} exited with code {code}; stopping.", file=sys.stderr)
                    return 1
            time.sleep(0.5)  # supervision cadence, not a wait for work
        return 0

    def stop(self) -> None:
        self._stopping = True
        for _, child in reversed(self.children):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for _, child in reversed(self.children):
            try:
                child.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.pid, signal.SIGKILL)
                child.wait()
        with contextlib.suppress(FileNotFoundError):
            SERVICES_FILE.unlink()


BACKGROUND_NICENESS = 10


def _lower_priority() -> None:
    """In the child before it runs: what it and its own children run at."""
    os.nice(BACKGROUND_NICENESS)


def run_up(settings: Settings, *, workers: int, address: str, port: int) -> int:
    launcher = Launcher(settings, workers=workers, address=address, port=port)

    def on_signal(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        launcher.start()
        return launcher.supervise()
    except KeyboardInterrupt:
        return 0
    finally:
        launcher.stop()


def discover_local_services(settings: Settings) -> Settings:
    """A CLI run beside `up` uses the Redis and emulator that `up` started, unless the
    environment names others."""
    try:
        info = json.loads(Path(SERVICES_FILE).read_text())
        os.kill(int(info["pid"]), 0)
    except (OSError, ValueError, KeyError):
        return settings
    update = {}
    if "REDIS_URL" not in os.environ and info.get("redis_url"):
        update["redis_url"] = info["redis_url"]
    if ("REPLICATE_BASE_URL" not in os.environ and settings.uses_emulator
            and info.get("replicate_base_url")):
        update["replicate_base_url"] = info["replicate_base_url"]
    return settings.model_copy(update=update) if update else settings

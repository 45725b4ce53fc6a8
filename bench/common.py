"""Shared parts of the benchmarks: private services, child processes, sampling, results.

Every process a benchmark starts runs in its own session and is stopped by the code that
started it; every wait has a deadline. Nothing here talks to any address but 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import platform
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

PROJECT_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = PROJECT_ROOT / "bench" / "results"
LOOPBACK = "127.0.0.1"

if str(PROJECT_ROOT) not in sys.path:  # `python3 bench/x.py` puts bench/, not the root, first
    sys.path.insert(0, str(PROJECT_ROOT))


# One implementation of these for tests and benchmarks alike.
from tests.services import RedisServer, free_port  # noqa: E402, F401 - used by the benchmarks
from tests.services import wait_for as wait_until  # noqa: E402


# -- child processes ----------------------------------------------------------------------------
def start_process(args: list[str], env: dict[str, str] | None = None,
                  log: Path | None = None) -> subprocess.Popen:
    """A child in its own session (so its own children can be stopped with it)."""
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - the child holds it
    try:
        return subprocess.Popen(args, env=env, cwd=PROJECT_ROOT, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    finally:
        if log:
            out.close()


def start_python(module_args: list[str], env: dict[str, str] | None = None,
                 log: Path | None = None) -> subprocess.Popen:
    return start_process([sys.executable, "-m", *module_args], env, log)


def stop_process(process: subprocess.Popen, timeout: float = 10.0) -> None:
    """SIGTERM the process group we started, then SIGKILL it if it lingers."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)


def process_tree(pid: int) -> list[psutil.Process]:
    """The process and all its descendants that are still alive."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


class CpuMeter:
    """User + system CPU seconds of process trees, remembering the last value of each pid
    (a child that exits between samples keeps what it had used when last seen)."""

    def __init__(self, root_pids: Callable[[], list[int]]) -> None:
        self._roots = root_pids
        self._seen: dict[tuple[int, float], tuple[float, float]] = {}  # (user, system)
        self._lock = threading.Lock()

    def sample(self) -> float:
        """User + system seconds so far."""
        user, system = self.sample_split()
        return user + system

    def sample_split(self) -> tuple[float, float]:
        """(user, system) seconds so far: the system part is the kernel's work for the
        processes (sockets, page faults of fresh memory, futexes of thread hand-offs)."""
        with self._lock:
            for root in self._roots():
                for proc in process_tree(root):
                    with contextlib.suppress(psutil.Error):
                        times = proc.cpu_times()
                        # (pid, create_time) so a recycled pid is a different process
                        self._seen[(proc.pid, proc.create_time())] = (times.user, times.system)
            return (sum(u for u, _ in self._seen.values()),
                    sum(s for _, s in self._seen.values()))


def tree_rss(root_pids: list[int]) -> int:
    total = 0
    for root in root_pids:
        for proc in process_tree(root):
            with contextlib.suppress(psutil.Error):
                total += proc.memory_info().rss
    return total


class Sampler:
    """Runs ``probe()`` every ``interval`` seconds in a thread and keeps each probe's peak."""

    def __init__(self, probes: dict[str, Callable[[], float]], interval: float = 0.1) -> None:
        self._probes = probes
        self._interval = interval
        self.peaks: dict[str, float] = {name: 0.0 for name in probes}
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            for name, probe in self._probes.items():
                try:
                    value = probe()
                except Exception:  # noqa: BLE001 - a probe racing a process exit: skip one sample
                    continue
                self.peaks[name] = max(self.peaks[name], value)
            self.samples += 1
            self._stop.wait(max(0.0, self._interval - (time.monotonic() - started)))

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


# -- services -----------------------------------------------------------------------------------
def http_ready(url: str) -> Callable[[], bool]:
    import httpx

    def probe() -> bool:
        try:
            return httpx.get(url, timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    return probe


class EmulatorProcess:
    """``python -m core emulator`` on a free loopback port, in a child process."""

    def __init__(self, args: list[str], log: Path | None = None) -> None:
        self.port = free_port()
        self.base_url = f"http://{LOOPBACK}:{self.port}"
        self.process = start_python(["core", "emulator", "--host", LOOPBACK,
                                     "--port", str(self.port), *args], _clean_env(), log)
        try:
            wait_until(http_ready(f"{self.base_url}/_emulator/health"), 30,
                       "the emulator to answer")
        except AssertionError:  # wait_until timed out
            self.stop()
            raise

    def stats(self) -> dict[str, Any]:
        import httpx

        return httpx.get(f"{self.base_url}/_emulator/stats", timeout=5).json()

    def stop(self) -> None:
        stop_process(self.process)


def _clean_env() -> dict[str, str]:
    """This environment without a Replicate token, so nothing can reach the real service."""
    env = {k: v for k, v in os.environ.items() if k != "REPLICATE_API_TOKEN"}
    env["PYTHONPATH"] = str(PROJECT_ROOT)
    return env


def clean_env(**overrides: str) -> dict[str, str]:
    return {**_clean_env(), **overrides}


# -- reporting ----------------------------------------------------------------------------------
def machine_info() -> dict[str, Any]:
    memory = psutil.virtual_memory()
    cpu_model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    return {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model,
        "memory_gb": round(memory.total / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def write_results(name: str, data: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}-{dt.date.today().isoformat()}.json"
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    return path


def table(rows: list[dict[str, Any]], columns: list[tuple[str, str]]) -> str:
    """A Markdown table: ``columns`` are (key, heading); values are printed as given."""
    cells = [["" if row.get(key) is None else str(row[key]) for key, _ in columns] for row in rows]
    headings = [heading for _, heading in columns]
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h)
              for i, h in enumerate(headings)]
    line = lambda values: "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths)) + " |"  # noqa: E731
    out = [line(headings), "| " + " | ".join("-" * w for w in widths) + " |"]
    out += [line(c) for c in cells]
    return "\n".join(out)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"

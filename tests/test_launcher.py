"""`python -m core up` on embedded defaults: it starts Redis, the emulator, workers and the
dashboard, a CLI sweep runs through them, and SIGTERM stops every process it started: none
is left whose environment carries this run's TUNER_RUN_DIR, and its ports are closed."""

from __future__ import annotations

import ast
import json
import os
import signal
import subprocess
import sys

import httpx
import psutil

from core.launcher import redis_answers
from tests.services import PROJECT_ROOT, free_port, wait_for
from tests.test_execution import png_bytes


def test_up_runs_the_product_and_stops_everything_it_started(tmp_path, processes):
    port = free_port()
    env = {key: value for key, value in os.environ.items()
           if key not in ("REPLICATE_API_TOKEN", "REPLICATE_BASE_URL")}
    env.update({
        "DATABASE_URL": f"sqlite:///{tmp_path / 'tuner.db'}",
        "MEDIA_URL": f"file://{tmp_path / 'media'}",
        "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",  # nothing answers: up starts one
        "TUNER_RUN_DIR": str(tmp_path / "run"),
        "POLL_INTERVAL_S": "0.2",
    })
    launcher = processes.python(["core", "up", "--port", str(port), "--workers", "1"], env,
                                tmp_path / "up.log")
    wait_for(lambda: _answers(f"http://127.0.0.1:{port}/_stcore/health"), 90,
             "the dashboard to answer")
    services = json.loads((tmp_path / "run" / "services.json").read_text())
    assert services["redis_url"] != env["REDIS_URL"]
    assert services["replicate_base_url"].startswith("http://127.0.0.1:")

    image = tmp_path / "face.png"
    image.write_bytes(png_bytes())
    cli_env = {k: v for k, v in env.items() if k != "REDIS_URL"}  # found via services.json
    result = subprocess.run(
        [sys.executable, "-m", "core", "sweep", "run", "--image", str(image), "--strength",
         "0.3, 0.5, 0.7", "--steps", "20, 25, 30", "--prompt", "a portrait", "--prompt",
         "a painting", "--seed", "7", "--wait", "--json"],
        env=cli_env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert len(report["cells"]) == 18
    assert {cell["status"] for cell in report["cells"]} == {"succeeded"}
    assert all(cell["output"] and cell["cost_usd"] > 0 and cell["latency_s"] > 0
               for cell in report["cells"])
    assert report["total_cost_usd"] > 0

    # redis-server rewrites the memory its environment was in: it is found as a child
    children = psutil.Process(launcher.pid).children(recursive=True)
    names = {" ".join(p.cmdline()) for p in [*children, *_started_by(env["TUNER_RUN_DIR"])]}
    for part in ("redis-server", "core emulator", "core worker", "dashboard.serve"):
        assert any(part in name for name in names), (part, names)
    # The dashboard keeps this machine's CPU first; workers and the emulator run below it.
    niceness = {" ".join(p.cmdline()): p.nice() for p in children if _alive(p)}
    ours = os.nice(0)
    for cmdline, nice in niceness.items():
        if "core worker" in cmdline or "core emulator" in cmdline:
            assert nice == min(ours + 10, 19), cmdline
        elif "dashboard.serve" in cmdline:
            assert nice == ours, cmdline
    launcher.send_signal(signal.SIGTERM)
    launcher.wait(30)
    wait_for(lambda: not _started_by(env["TUNER_RUN_DIR"]) and not any(map(_alive, children)),
             20, "every started process to exit")
    assert not (tmp_path / "run" / "services.json").exists()
    assert not _answers(f"http://127.0.0.1:{port}/_stcore/health")
    assert not redis_answers(services["redis_url"])


def _started_by(run_dir: str) -> list[psutil.Process]:
    """Every live process whose environment has this TUNER_RUN_DIR: what `up` started, and
    what those started in turn, however deep and whenever."""
    found = []
    for process in psutil.process_iter():
        try:
            if (process.status() != psutil.STATUS_ZOMBIE
                    and process.environ().get("TUNER_RUN_DIR") == run_dir
                    and process.pid != os.getpid()):
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def _alive(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_the_dashboard_process_has_every_module_a_page_imports_before_it_serves() -> None:
    """dashboard.serve imports, before Streamlit opens its port, every module the pages, the
    entry script and the dashboard package import, at the top or inside a function: the first
    visitor of a fresh server would otherwise wait for them (2.5–3 s on 2 CPUs)."""
    wanted: set[str] = set()
    sources = [PROJECT_ROOT / "streamlit_app.py", *sorted((PROJECT_ROOT / "pages").glob("*.py")),
               *sorted((PROJECT_ROOT / "dashboard").glob("*.py"))]
    for source in sources:
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                wanted.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                wanted.add(node.module)
    wanted.discard("__future__")
    assert {"pandas", "streamlit", "core.insight.contact_sheet"} <= wanted  # the scan works
    script = ("import json, sys\nimport dashboard.serve as serve\nserve.preload()\n"
              "print(json.dumps(sorted(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", script], cwd=PROJECT_ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    loaded = set(json.loads(result.stdout.splitlines()[-1]))
    assert sorted(wanted - loaded) == []
    assert "No runtime found" not in result.stderr  # the caches' warnings are kept quiet

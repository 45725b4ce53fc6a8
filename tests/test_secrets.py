"""The Replicate token never appears in logs, the database, pages, error texts or exports:
a sweep runs with a recognisable token and every place is searched for it."""

from __future__ import annotations

import json
import subprocess
import sys

from streamlit.testing.v1 import AppTest

from core.config import Settings, get_settings
from tests.pages.conftest import APP, clear_caches
from tests.services import PROJECT_ROOT
from tests.test_execution import inject, png_bytes

CANARY = "r8_CANARYtok3nNeverShowMe0123456789abcdef"
PAGES = ["pages/overview.py", "pages/new_sweep.py", "pages/runs.py", "pages/gallery.py",
         "pages/review.py", "pages/monitoring.py", "pages/scenarios.py", "pages/settings.py"]


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "core", *args], env=env, cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=180)


def test_the_token_appears_nowhere(tuner_env, emulator, tmp_path, monkeypatch):
    env = {**tuner_env, "REPLICATE_API_TOKEN": CANARY, "PYTHONWARNINGS": "ignore"}
    monkeypatch.setenv("REPLICATE_API_TOKEN", CANARY)
    image = tmp_path / "face.png"
    image.write_bytes(png_bytes())
    inject(emulator, route="create", status=500, count=1)  # an error text gets stored too
    inject(emulator, route="get", action="reset", count=1)
    swept = run(["sweep", "run", "--image", str(image), "--strength", "0.3, 0.6", "--steps", "20",
                 "--prompt", "a portrait", "--seed", "3", "--wait", "--json"], env)
    assert swept.returncode == 0, swept.stderr
    sweep_id = json.loads(swept.stdout)["sweep_id"]
    checked = run(["check"], env)
    assert "r8_C…" in checked.stdout  # shown masked, so a person can tell tokens apart
    exported = tmp_path / "sweep.json"
    csv_out = tmp_path / "sweep.csv"
    run(["export", str(sweep_id), "--format", "json", "--out", str(exported)], env)
    run(["export", str(sweep_id), "--format", "csv", "--out", str(csv_out)], env)
    status = run(["sweep", "status", str(sweep_id), "--json"], env)

    places = {
        "sweep run output": swept.stdout + swept.stderr,
        "check output": checked.stdout + checked.stderr,
        "status output": status.stdout + status.stderr,
        "JSON export": exported.read_text(),
        "CSV export": csv_out.read_text(),
        "database file": _database_text(tmp_path),
        "settings repr": repr(Settings()) + str(Settings().model_dump()),
    }
    places.update(_page_texts())
    assert "EMULATOR" in places["pages/runs.py"]  # the search sees what the pages render
    leaks = [where for where, text in places.items() if CANARY in text or CANARY[3:] in text]
    assert leaks == []


def _database_text(tmp_path) -> str:
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("tuner.db*"))
    assert b"a portrait" in raw  # the search looks where the rows are
    return raw.decode("latin-1")


def _page_texts() -> dict[str, str]:
    clear_caches()
    get_settings()
    texts = {}
    for page in PAGES:
        app = AppTest.from_file(APP, default_timeout=60).run()
        if page != PAGES[0]:
            app.switch_page(page).run()
        assert not app.exception, (page, app.exception)
        texts[page] = _all_text(app)
    clear_caches()
    return texts


def _all_text(app: AppTest) -> str:
    """Every element of the page and its sidebar, as its protobuf (text, values, data)."""
    return "\n".join(_element_texts(app.main)) + "\n".join(_element_texts(app.sidebar))


def _element_texts(node) -> list[str]:
    children = getattr(node, "children", None)
    if isinstance(children, dict):
        return [text for child in children.values() for text in _element_texts(child)]
    return [str(getattr(node, "proto", ""))]

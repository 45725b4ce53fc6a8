"""Page tests: the real app file under AppTest, on a real SQLite file under tmp_path, a
private Redis, media on disk and the in-thread emulator (``tuner_env`` in tests/conftest.py).

Settings, the cached runtime and cached reads are process-wide, so each test clears them."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import streamlit as st
from PIL import Image, ImageDraw
from streamlit.runtime.pages_manager import PagesManager
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1 import app_test as app_test_module

from core.config import get_settings
from core.data.db import session_scope
from core.data.library import add_image
from core.runtime import Runtime, open_runtime
from core.planning.submit import submit_sweep
from core.planning.sweeps import SweepRequest

APP = str(Path(__file__).resolve().parents[2] / "streamlit_app.py")


def clear_caches() -> None:
    get_settings.cache_clear()
    st.cache_resource.clear()
    st.cache_data.clear()


def png_bytes(color: tuple[int, int, int] = (200, 150, 120), size: int = 128) -> bytes:
    image = Image.new("RGB", (size, size), color)
    ImageDraw.Draw(image).ellipse((size // 4, size // 4, 3 * size // 4, 3 * size // 4),
                                  fill=(240, 210, 180))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


class ServerLikePagesManager(PagesManager):
    """A server decides once per process that an app calling st.navigation is not a
    pages/-folder app. AppTest resets that decision before every run, so each run would
    start as a pages/-folder run, which frame.page_setup() turns into a rerun — and a rerun
    drops the click being tested. Decide it as the server does (test_app_frame covers the
    undecided first run)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        PagesManager.uses_pages_directory = False


@pytest.fixture(autouse=True)
def _pages_manager_like_the_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(app_test_module, "PagesManager", ServerLikePagesManager)


@pytest.fixture
def page_env(tuner_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    monkeypatch.delenv("AUTH_USERS_FILE", raising=False)
    clear_caches()
    yield tuner_env
    clear_caches()


@pytest.fixture
def runtime(page_env: dict[str, str]) -> Runtime:
    return open_runtime(get_settings())


@pytest.fixture
def open_page(page_env: dict[str, str]) -> Callable[[str | None], AppTest]:
    """``open_page("pages/runs.py")``: the app run once, then switched to that page;
    ``query`` opens it as a link with those query parameters would."""
    def open_(path: str | None = None, query: dict[str, str] | None = None) -> AppTest:
        app = AppTest.from_file(APP, default_timeout=30)
        app.query_params.update(query or {})
        app.run()
        if path:
            app.switch_page(path).run()
        return app

    return open_


def choose_tab(app: AppTest, key: str, label: str) -> AppTest:
    """Choose a lazy tab (``st.tabs(..., key=key)``: only the chosen one runs), as a click
    would, and run the page."""
    app.session_state[key] = label
    return app.run()


def store_image(runtime: Runtime, color: tuple[int, int, int] = (200, 150, 120),
                name: str = "face.png") -> int:
    with session_scope(runtime.engine) as session:
        return add_image(session, runtime.store, runtime.settings, png_bytes(color),
                         filename=name, uploaded_by="tester").id


def start_sweep(runtime: Runtime, *, strength: str = "0.3, 0.6", steps: str = "20, 30",
                prompts: tuple[str, ...] = ("a portrait",), seed: str = "42") -> int:
    """A sweep created and dispatched the way the page does it (no worker runs it yet)."""
    image_id = store_image(runtime)
    request = SweepRequest(model_ref="stability-ai/sdxl", image_ids=[image_id],
                           strength=strength, steps=steps, prompts=list(prompts), seed=seed)
    return submit_sweep(runtime, request, actor="tester").sweep_id


def run_workers(runtime: Runtime) -> None:
    """Drain the queue in this process, as a burst worker would."""
    from core.engine.worker import work

    work(runtime.redis, runtime.deployment, burst=True)


@pytest.fixture
def finished_sweep(runtime: Runtime) -> int:
    sweep_id = start_sweep(runtime)
    run_workers(runtime)
    return sweep_id


# -- the Gallery's grid (the gallery_grid component: AppTest sees the data it is sent) ----------
def grids(app: AppTest) -> list[dict[str, Any]]:
    """The data of each grid on the page (one per slice tab), as the browser receives it."""
    import json

    return [json.loads(element.proto.json) for element in app.get("bidi_component")
            if element.proto.component_name == "scenario_tuner.gallery_grid"]


def grid_cells(app: AppTest) -> list[dict[str, Any]]:
    """Every cell drawn, row by row: ``{id, caption, src, error}``; places without a cell
    (``{note}``) left out."""
    return [place for grid in grids(app) for row in grid["rows"] for place in row["cells"]
            if "id" in place]


def grid_captions(app: AppTest) -> list[str]:
    return [cell["caption"] for cell in grid_cells(app)]


def open_cell(app: AppTest, generation_id: int) -> AppTest:
    """Open a cell as its link does (``?cell=ID``): AppTest cannot click inside a component;
    tests/browser clicks the grid itself."""
    app.query_params["cell"] = str(generation_id)
    return app.run()

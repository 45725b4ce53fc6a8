"""Real-browser fixtures: the product started with `python -m core up` on 127.0.0.1, and
Playwright driving Debian's /usr/bin/chromium. A failing test leaves a screenshot in
test-artifacts/."""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

from tests.services import PROJECT_ROOT, ProcessGroup, free_port, wait_for

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = PROJECT_ROOT / "test-artifacts"
# True when the Gallery's grid (assets/gallery_grid.js, in its component's shadow root) shows
# exactly ``n`` thumbnails, every one loaded.
# The script run is over: no "Running" status, no element left stale from the run before.
RUN_OVER_JS = """() => {
  const status = document.querySelector('[data-testid="stStatusWidget"]');
  if (status && /running/i.test(status.innerText)) return false;
  return !document.querySelector('[data-stale="true"]');
}"""
GRID_LOADED_JS = """(n) => {
  const images = [...document.querySelectorAll('[data-testid="stBidiComponentIsolated"]')]
    .flatMap((host) => [...host.shadowRoot.querySelectorAll('.gg-cell img')]);
  return images.length === n && images.every((img) => img.complete && img.naturalWidth > 0);
}"""
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def is_script_finished(payload: object) -> bool:
    """Whether a websocket frame Playwright received (``framereceived``) is Streamlit's
    message that a script run (or a fragment's) has finished."""
    if isinstance(payload, str):
        return False
    message = ForwardMsg()
    try:
        message.ParseFromString(payload)  # type: ignore[arg-type]
    except Exception:  # noqa: BLE001 - a frame that is not a ForwardMsg
        return False
    return message.WhichOneof("type") == "script_finished"


@dataclasses.dataclass(frozen=True)
class Product:
    """A running product: its URL and the environment it runs with (for the CLI and the
    database a test checks)."""

    url: str
    env: dict[str, str]


@contextlib.contextmanager
def running_product(tmp: Path, redis_url: str) -> Iterator[Product]:
    """The whole product on embedded defaults (private Redis, emulator, one worker)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if k not in ("REPLICATE_API_TOKEN", "REPLICATE_BASE_URL", "AUTH_USERS_FILE")}
    env.update({"DATABASE_URL": f"sqlite:///{tmp / 'tuner.db'}", "MEDIA_URL": f"file://{tmp / 'media'}",
                "REDIS_URL": redis_url, "TUNER_RUN_DIR": str(tmp / "run"),
                "POLL_INTERVAL_S": "0.2"})
    group = ProcessGroup()
    group.python(["core", "up", "--port", str(port), "--workers", "1"], env, tmp / "up.log")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _answers(f"{url}/_stcore/health"), 90, "the dashboard to answer")
        yield Product(url, env)
    finally:
        group.stop_all()


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory, redis_server) -> Iterator[Product]:
    with running_product(tmp_path_factory.mktemp("product"), redis_server.url) as product:
        yield product


@pytest.fixture(scope="module")
def product(running: Product) -> str:
    """The running product's URL."""
    return running.url


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (.ci/install --test does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, request: pytest.FixtureRequest) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)

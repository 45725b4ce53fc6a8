"""The Gallery's grid (assets/gallery_grid.js) in Chromium while a sweep runs: it fills in by
itself, and a refresh redraws only the cells that changed (a thumbnail once shown is never
fetched and drawn again, so the grid does not flicker every 2 s)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.browser.conftest import GRID_LOADED_JS
from tests.services import PROJECT_ROOT
from tests.test_execution import configure, png_bytes

pytestmark = pytest.mark.browser

# Counts, in the grid's shadow root, the <img> elements added and removed from now on.
WATCH_JS = """() => {
  const host = [...document.querySelectorAll('[data-testid="stBidiComponentIsolated"]')]
    .find((node) => node.shadowRoot?.querySelector('[data-testid="gallery-grid"]'));
  const root = host.shadowRoot;
  const images = (node) => node.nodeType !== 1 ? 0
    : (node.matches('img') ? 1 : node.querySelectorAll('img').length);
  window.gridWatch = {initial: root.querySelectorAll('img').length, added: 0, removed: 0,
                      steps: 0};
  new MutationObserver((records) => {
    const before = window.gridWatch.added;
    for (const record of records) {
      for (const node of record.addedNodes) window.gridWatch.added += images(node);
      for (const node of record.removedNodes) window.gridWatch.removed += images(node);
    }
    if (window.gridWatch.added > before) window.gridWatch.steps += 1;  // one refresh's images
  }).observe(root, {childList: true, subtree: true});
  return window.gridWatch.initial;
}"""

def product_emulator(running) -> SimpleNamespace:
    """The emulator `core up` started for the product, as `configure` takes it."""
    services = json.loads((Path(running.env["TUNER_RUN_DIR"]) / "services.json").read_text())
    return SimpleNamespace(base_url=services["replicate_base_url"])


def test_the_grid_fills_in_and_redraws_only_what_changed(running, page, tmp_path):
    # 24 cells, created at most 10 a second, each waiting 6 s in Replicate's queue and then
    # predicted in 2-6 s (uniform, the emulator's default): none can finish before the page is
    # open (a sweep that started at once finished its first cells before a loaded CI machine
    # had drawn the page), and they finish across several of the grid's 2 s refreshes.
    photo = tmp_path / "face.png"
    photo.write_bytes(png_bytes(size=256))
    emulator = product_emulator(running)
    before = configure(emulator)["queue_delay_s"]
    configure(emulator, queue_delay_s=6.0)
    try:
        subprocess.run([sys.executable, "-m", "core", "sweep", "run", "--image", str(photo),
                        "--strength", "0.2, 0.4, 0.6, 0.8", "--steps", "10-60 [6]", "--prompt",
                        "a portrait", "--seed", "3", "--budget", "5"],
                       env=running.env, cwd=PROJECT_ROOT, check=True, capture_output=True,
                       timeout=120)
        page.goto(f"{running.url}/gallery")
        page.locator('[data-testid="gallery-grid"]').wait_for()
        initial = page.evaluate(WATCH_JS)
        page.get_by_text("24 of 24 images ready").first.wait_for(timeout=90_000)
    finally:
        configure(emulator, queue_delay_s=before)
    page.wait_for_function(GRID_LOADED_JS, arg=24, timeout=30_000)

    watch = page.evaluate("() => window.gridWatch")
    assert initial < 24, "the sweep finished before the page showed it: nothing filled in live"
    assert watch["steps"] >= 2, "every image came in one refresh: nothing was kept across one"
    assert watch["added"] == 24 - initial  # each thumbnail drawn once, as its cell finished
    assert watch["removed"] == 0  # and none drawn again by a later refresh
    captions = page.locator('[data-testid="gallery-grid"] .gg-caption').all_inner_texts()
    assert len(captions) == 24 and all(re.search(r"strength 0\.[2468] · steps [1-6]0$", c)
                                       for c in captions)

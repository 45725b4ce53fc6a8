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
from tests.services import PROJECT_ROOT, wait_for
from tests.test_execution import age, configure, emulator_stats, png_bytes

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


# Seconds the two groups of predictions wait in Replicate's queue: both well inside the
# sweep's 300 s Cancel-After, and far apart, so the test decides when each group finishes.
FIRST_WAIT_S, SECOND_WAIT_S = 60.0, 240.0
PREDICT_MAX_S = 6.0  # the emulator's default predict times are uniform in 2-6 s


def test_the_grid_fills_in_and_redraws_only_what_changed(running, page, tmp_path):
    # 24 cells in two groups the test releases one after the other: the first cells created
    # wait FIRST_WAIT_S in Replicate's queue, the rest SECOND_WAIT_S. The page is open, with no
    # image yet, before either group finishes (waiting for the clock instead left a loaded CI
    # machine to open the page after most had finished, and the rest came in one refresh).
    photo = tmp_path / "face.png"
    photo.write_bytes(png_bytes(size=256))
    emulator = product_emulator(running)
    before = configure(emulator)["queue_delay_s"]
    created_before = emulator_stats(emulator)["creates_total"]
    configure(emulator, queue_delay_s=FIRST_WAIT_S)
    try:
        cli = subprocess.Popen(
            [sys.executable, "-m", "core", "sweep", "run", "--image", str(photo),
             "--strength", "0.2, 0.4, 0.6, 0.8", "--steps", "10-60 [6]", "--prompt",
             "a portrait", "--seed", "3", "--budget", "5"],
            env=running.env, cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE)
        try:
            # Creates are paced at 10 a second after a burst of 10: once the first is in,
            # the later ones wait longer.
            wait_for(lambda: emulator_stats(emulator)["creates_total"] > created_before, 60,
                     "the sweep's first prediction")
            configure(emulator, queue_delay_s=SECOND_WAIT_S)
            assert cli.wait(timeout=120) == 0, cli.stderr.read().decode()
        finally:
            if cli.poll() is None:
                cli.kill()
                cli.wait()
        wait_for(lambda: emulator_stats(emulator)["creates_total"] == created_before + 24, 60,
                 "all 24 predictions created")
    finally:
        configure(emulator, queue_delay_s=before)
    page.goto(f"{running.url}/gallery")
    page.locator('[data-testid="gallery-grid"]').wait_for()
    page.get_by_text("0 of 24 images ready").first.wait_for()
    initial = page.evaluate(WATCH_JS)

    age(emulator, FIRST_WAIT_S + PREDICT_MAX_S + 1)  # the first group finishes now
    first = emulator_stats(emulator)["predictions"]
    assert 0 < first["succeeded"] < 24 and first["starting"] == 24 - first["succeeded"], first
    page.get_by_text(f"{first['succeeded']} of 24 images ready").first.wait_for(timeout=60_000)
    page.wait_for_function(GRID_LOADED_JS, arg=first["succeeded"], timeout=30_000)

    age(emulator, SECOND_WAIT_S - FIRST_WAIT_S)  # and now the second
    page.get_by_text("24 of 24 images ready").first.wait_for(timeout=60_000)
    page.wait_for_function(GRID_LOADED_JS, arg=24, timeout=30_000)

    watch = page.evaluate("() => window.gridWatch")
    assert initial == 0
    assert watch["steps"] >= 2, "every image came in one refresh: nothing was kept across one"
    assert watch["added"] == 24  # each thumbnail drawn once, as its cell finished
    assert watch["removed"] == 0  # and none drawn again by a later refresh
    captions = page.locator('[data-testid="gallery-grid"] .gg-caption').all_inner_texts()
    assert len(captions) == 24 and all(re.search(r"strength 0\.[2468] · steps [1-6]0$", c)
                                       for c in captions)

"""A new user's journey in a real browser: upload a photo, submit a small sweep, watch the
gallery fill in without reloading, open a cell and promote it, export the grid PNG, rate in
Review, see the spend on Monitoring, and export the production config."""

from __future__ import annotations

import csv
import io
import re

import pytest
from PIL import Image

from tests.browser.conftest import GRID_LOADED_JS, RUN_OVER_JS
from tests.test_execution import png_bytes

pytestmark = pytest.mark.browser


def wait_text(page, text: str | re.Pattern, timeout: float = 60_000) -> None:
    page.get_by_text(text).first.wait_for(timeout=timeout)


def downloaded(page, button_name: str) -> bytes:
    with page.expect_download() as info:
        page.get_by_role("button", name=button_name).first.click()
    return open(info.value.path(), "rb").read()


def test_a_new_user_tunes_a_scenario_end_to_end(product, page, tmp_path):
    photo = tmp_path / "face.png"
    photo.write_bytes(png_bytes(size=320))

    # New sweep: upload, type the axes, see the preview, submit.
    page.goto(f"{product}/new_sweep")
    page.locator("input[type=file]").set_input_files(str(photo))
    # Stored in the library and chosen, and that run over: "face.png · 320×320" alone can be
    # an earlier test's upload of the same photo (keys typed while the upload's run finishes
    # are kept: tests/browser/test_new_sweep_typing.py).
    wait_text(page, "1 uploaded image(s) stored in the library and chosen below.")
    page.wait_for_function(RUN_OVER_JS, polling="raf")
    for label, value in (("Strength", "0.3, 0.6"), ("Steps", "20, 30")):
        field = page.get_by_role("textbox", name=label, exact=True)
        field.fill(value)
        field.press("Enter")
        wait_text(page, f"→ 2 values: {value}")  # the live parsing feedback
    prompts = page.get_by_label("Prompt variants (one per line)")
    prompts.fill("a portrait, studio light")
    prompts.press("Control+Enter")
    page.get_by_role("button", name="Submit sweep").click()
    wait_text(page, re.compile(r"Sweep \d+ saved: 4 cell\(s\)"))

    # Gallery: the grid fills in by itself, no reload.
    page.get_by_role("link", name="Gallery").first.click()
    page.get_by_role("heading", name="Gallery").wait_for()
    wait_text(page, "4 of 4 images ready", timeout=90_000)
    assert page.get_by_text("strength 0.6").count() >= 1

    # Export the labelled grid as one PNG.
    grid_png = downloaded(page, "Grid as PNG")
    assert Image.open(io.BytesIO(grid_png)).format == "PNG"

    # Every thumbnail of the grid has loaded (drawn by the gallery_grid component).
    page.wait_for_function(GRID_LOADED_JS, arg=4, timeout=30_000)

    # Open a cell full size: the one clicked, then at once another, as a person scanning
    # the grid does; each time the dialog shows the cell that was clicked.
    def open_cell(strength: str, steps: str) -> None:
        page.get_by_role("button", name=f"Open ✅ strength {strength} · steps {steps}").click()
        page.get_by_role("dialog").get_by_text(f"strength {strength} · steps {steps}").wait_for()

    open_cell("0.6", "30")
    page.keyboard.press("Escape")
    open_cell("0.3", "20")
    dialog = page.get_by_role("dialog")
    dialog.get_by_text(re.compile("prediction", re.I)).first.wait_for()
    # Then promote its settings to a scenario, in the dialog's Promote tab.
    dialog.get_by_role("tab", name="Promote").click()
    # No scenario exists yet, so "New scenario" is the only choice: say its name.
    dialog.get_by_label("New scenario name").fill("projection-level-1")
    dialog.get_by_label("New scenario name").press("Enter")
    wait_text(page, "Pin the seed")  # what promoting will pin is stated before the button
    dialog.get_by_role("button", name="Promote these settings").click()
    wait_text(page, "Settings promoted into projection-level-1 (version 1).")

    # Review: rate with the keyboard (4 stars), progress moves.
    page.goto(f"{product}/review")
    wait_text(page, "0 / 4")
    page.locator("[data-testid=review-panel][data-shown-id]").wait_for()
    page.keyboard.press("4")
    wait_text(page, "1 / 4")

    # Monitoring: the emulated spend of this sweep is there, as data.
    page.goto(f"{product}/monitoring")
    page.get_by_role("tab", name="Emulated (not real money)").click()
    rows = list(csv.DictReader(io.StringIO(
        downloaded(page, "CSV of emulated cost per day by scenario").decode())))
    assert rows and sum(float(r["cost_usd"]) for r in rows) > 0
    # One section at a time; another tab runs its own charts, and the URL names it.
    page.get_by_role("tab", name="Latency").click()
    rows = list(csv.DictReader(io.StringIO(
        downloaded(page, "CSV of latency p50 p95 per day").decode())))
    assert rows and "mon_section=Latency" in page.url

    # Scenarios: move the promoted scenario to production and export the config.
    page.goto(f"{product}/scenarios")
    wait_text(page, "projection-level-1 · v1")  # the only scenario opens by itself
    page.get_by_role("button", name="Mark calibrated").click()
    # Production changes only through an approval, with a reason; no gate ran for this
    # first version, so the approval needs an override reason too.
    page.get_by_label("Why this version (recorded with your name)").fill("first calibration")
    page.get_by_label("Override reason (only if its gate did not pass)").fill("no gate yet")
    page.get_by_role("button", name="Approve for production").click()
    wait_text(page, "production")
    config = downloaded(page, "Download scenario_config.py").decode()
    assert "scenario_config = {" in config and '"projection-level-1"' in config
    assert re.search(r'"strength": 0\.[36]', config)
    approved = re.search(r"projection-level-1: version (\d+), approved by root", config)
    assert approved and f'"version": {approved.group(1)}' in config  # the approved one, by number

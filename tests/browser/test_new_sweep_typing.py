"""New sweep at a person's pace: a photo uploaded, or the models changed, and the Strength
field typed into the moment the page looks ready, while that run may still be finishing. The
typed value must survive that run (it used to come back as the default in most tries after
an upload: the upload's message moved every field below it to a new place in the page, and
Streamlit's frontend drew the field anew from the script's value; a model without a price
moves them the same way, with its message and its price form)."""

from __future__ import annotations

import contextlib

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from sqlalchemy import update

from core.data.db import create_db_engine
from core.data.models import ModelSpec
from core.planning.known_models import FLUX_DEV_REF, SDXL_REF
from tests.browser.conftest import RUN_OVER_JS
from tests.test_execution import png_bytes

pytestmark = pytest.mark.browser

TRIES = 6


def test_a_value_typed_as_an_upload_finishes_is_kept(product, page, tmp_path):
    photo = tmp_path / "portrait.png"
    photo.write_bytes(png_bytes(size=288))
    # The photo in the library first, so its caption is on the page before the upload's run
    # has finished, as for anyone uploading a photo the library already has.
    page.goto(f"{product}/new_sweep")
    page.locator("input[type=file]").set_input_files(str(photo))
    page.get_by_text("1 uploaded image(s) stored in the library and chosen below.").wait_for()

    kept = []
    for n in range(TRIES):
        page.goto(f"{product}/new_sweep")  # a new session: nothing typed, nothing uploaded
        page.get_by_text("portrait.png · 288×288").first.wait_for()
        page.locator("input[type=file]").set_input_files(str(photo))
        page.wait_for_function(RUN_OVER_JS, polling="raf")  # the page looks ready: type
        kept.append(_type_strength(page, n, after="1 uploaded image(s) stored in the library "
                                                   "and chosen below."))
    assert all(typed == shown for typed, shown in kept), kept


def test_a_value_typed_as_the_models_change_is_kept(running, page):
    # flux-dev known to the product, then its price taken away (as for any model Replicate
    # has and the price table has not): adding it shows its price form above every field.
    page.goto(f"{running.url}/new_sweep")
    models = page.get_by_role("textbox", name="Models", exact=True)
    models.fill(FLUX_DEV_REF)
    models.press("Enter")
    page.get_by_text(f"{FLUX_DEV_REF}: ").first.wait_for()  # its image input, named
    engine = create_db_engine(running.env["DATABASE_URL"])
    try:
        with engine.begin() as connection:
            connection.execute(update(ModelSpec).where(ModelSpec.ref == FLUX_DEV_REF).values(
                pricing_kind=None, usd_per_second=None, usd_per_image=None,
                usd_per_megapixel=None, usd_per_input_megapixel=None, usd_per_run=None))
    finally:
        engine.dispose()

    kept = []
    for n in range(TRIES):
        page.goto(f"{running.url}/new_sweep")  # a new session: SDXL alone, nothing typed
        page.wait_for_function(RUN_OVER_JS, polling="raf")
        models = page.get_by_role("textbox", name="Models", exact=True)
        models.fill(f"{SDXL_REF}, {FLUX_DEV_REF}")
        models.press("Enter")  # its run starts: the price form will appear above the fields
        kept.append(_type_strength(page, n, after=f"{FLUX_DEV_REF} has no price yet"))
    assert all(typed == shown for typed, shown in kept), kept


def _type_strength(page, n: int, *, after: str) -> tuple[str, str]:
    """Type try ``n``'s strengths at once and press Enter; once ``after`` shows and every run
    is over, (what was typed, what the field shows)."""
    value = f"0.{n + 2}, 0.{n + 3}"
    field = page.get_by_role("textbox", name="Strength", exact=True)
    field.fill(value)
    field.press("Enter")
    page.get_by_text(after).first.wait_for()
    with contextlib.suppress(PlaywrightTimeout):  # counted by the caller, with what is shown
        page.get_by_text(f"→ 2 values: {value}").first.wait_for(timeout=15_000)  # parsed
    page.wait_for_function(RUN_OVER_JS, polling="raf")
    return value, field.input_value()

"""Review in a real browser: every key press lands on the generation that was on screen when
it was pressed, at a person's fast pace and faster, none lost; a tag, then a star, then
Ctrl+Enter saves both."""

from __future__ import annotations

import subprocess
import sys

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from core.data.models import Review
from tests.browser.conftest import Product
from tests.services import PROJECT_ROOT, wait_for
from tests.test_execution import png_bytes

pytestmark = pytest.mark.browser

# Records, in the page itself, which generation the panel showed at each key press: a
# capture listener on the document, registered before the panel's own.
RECORD_KEYS = """
window.__keys = [];
document.addEventListener("keydown", (event) => {
  const panel = [...document.querySelectorAll("*")].map((n) => n.shadowRoot)
    .filter(Boolean).map((r) => r.querySelector("[data-testid=review-panel]")).find(Boolean);
  window.__keys.push({key: event.key, gid: panel ? panel.dataset.generationId : null});
}, true);
"""


def make_sweep(product: Product, tmp_path_factory: pytest.TempPathFactory, cells: str) -> None:
    """A finished sweep made through the CLI against the running product."""
    photo = tmp_path_factory.mktemp("photo") / "face.png"
    photo.write_bytes(png_bytes(size=256))
    subprocess.run([sys.executable, "-m", "core", "sweep", "run", "--image", str(photo),
                    "--strength", cells, "--steps", "20, 30", "--prompt", "a portrait",
                    "--prompt", "a portrait, studio light", "--wait"],
                   env=product.env, cwd=PROJECT_ROOT, check=True, timeout=240,
                   capture_output=True)


@pytest.fixture(scope="module")
def reviewable(running: Product, tmp_path_factory: pytest.TempPathFactory) -> Product:
    make_sweep(running, tmp_path_factory, "0.2, 0.3, 0.4, 0.5, 0.6, 0.7")  # 24 generations
    return running


def reviews(product: Product) -> list[Review]:
    engine = create_engine(product.env["DATABASE_URL"])
    try:
        with Session(engine) as session:
            rows = list(session.scalars(select(Review).order_by(Review.id)))
            session.expunge_all()
            return rows
    finally:
        engine.dispose()


def open_review(page, product: Product):
    page.add_init_script(RECORD_KEYS)
    page.goto(f"{product.url}/review")
    panel = page.locator("[data-testid=review-panel]")
    page.wait_for_function(
        "() => [...document.querySelectorAll('*')].some((n) => n.shadowRoot && "
        "n.shadowRoot.querySelector('[data-testid=review-panel][data-shown-id]'))",
        timeout=60_000)
    return panel


@pytest.mark.parametrize("pace_ms", [300, 80])
def test_each_rating_key_lands_on_the_generation_on_screen(reviewable, page, pace_ms):
    before = {r.generation_id for r in reviews(reviewable)}
    panel = open_review(page, reviewable)
    pressed, refused = [], 0
    while len(pressed) < 10:
        shown = panel.get_attribute("data-generation-id")
        stars = len(pressed) % 5 + 1
        page.keyboard.press(str(stars))
        if shown:
            pressed.append((int(shown), stars))
        else:  # faster than the queue refills: refused on the page, never kept or moved
            refused += 1
            page.get_by_text("Nothing is on screen to review yet").wait_for()
            assert refused < 20, "the panel stayed empty"
        page.wait_for_timeout(pace_ms)  # the person's rhythm between keys, not a wait for work
    at_press = [(int(k["gid"]), int(k["key"])) for k in page.evaluate("window.__keys")
                if k["gid"]]
    assert at_press == pressed
    assert len({gid for gid, _ in pressed}) == 10 and not before & {g for g, _ in pressed}
    if pace_ms >= 300:
        assert refused == 0  # at a person's fast pace the next image is always there

    def stored():
        rows = [r for r in reviews(reviewable) if r.generation_id not in before]
        return rows if len(rows) >= 10 else None

    rows = wait_for(stored, 30, "ten reviews in the database")
    assert sorted((r.generation_id, r.rating) for r in rows) == sorted(pressed)
    assert all(r.seconds_spent is not None and r.seconds_spent >= 0 for r in rows)
    page.get_by_text("Saved your review of generation").first.wait_for()
    assert not page.locator("[data-testid=stAlertContentError]").count()


def test_a_tag_then_a_star_then_ctrl_enter_saves_both(reviewable, page):
    panel = open_review(page, reviewable)
    shown = int(panel.get_attribute("data-generation-id"))
    panel.locator("button[data-tag='too strong']").click()
    panel.locator("button[data-stars='4']").click()
    page.keyboard.press("Control+Enter")
    wait_for(lambda: panel.get_attribute("data-generation-id") != str(shown), 5,
             "the panel to move on")

    def saved():
        return next((r for r in reviews(reviewable) if r.generation_id == shown), None)

    review = wait_for(saved, 30, f"the review of generation {shown}")
    assert (review.rating, review.tags) == (4, ["too strong"])
    page.get_by_text(f"Saved your review of generation {shown} (4 ★).").wait_for()

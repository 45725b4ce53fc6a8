"""Blind pairwise review in a real browser (Playwright + /usr/bin/chromium) against the whole
product (`python -m core up`): keys pressed fast, each choice lands on the pair that was on
screen at its key press, none lost, none doubled; mouse choices too; nothing on screen says
which version made which output."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import expect
from sqlalchemy import select

from core.auth import local_user
from core.data.db import create_db_engine, session_scope, upgrade
from core.data.models import GateJudgment
from core.data.storage import open_media_store
from core.config import Settings
from core.data.library import add_image
from core.scenarios import gate, testsets
from tests.browser.conftest import _answers
from tests.factories import make_production_scenario
from tests.services import ProcessGroup, free_port, wait_for

pytestmark = pytest.mark.browser
PHOTOS, SEEDS = 2, 5  # 10 pairs, 20 cells on the emulator


def photo(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:160, 0:160] / 160.0
    pixels = np.stack([x, y, 1 - x], axis=-1) * 220 + rng.normal(0, 10, (160, 160, 3))
    out = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype("uint8")).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def gate_product(tmp_path_factory: pytest.TempPathFactory, redis_server) -> Iterator[dict]:
    """The product running, with a scenario (production v3, candidate v4), a test set and a
    gate run started through the CLI whose cells the product's worker runs on its emulator."""
    tmp = tmp_path_factory.mktemp("gate-product")
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if k not in ("REPLICATE_API_TOKEN", "REPLICATE_BASE_URL", "AUTH_USERS_FILE")}
    env.update({"DATABASE_URL": f"sqlite:///{tmp / 'tuner.db'}",
                "MEDIA_URL": f"file://{tmp / 'media'}", "REDIS_URL": redis_server.url,
                "TUNER_RUN_DIR": str(tmp / "run"), "POLL_INTERVAL_S": "0.2"})
    upgrade(env["DATABASE_URL"])
    engine = create_db_engine(env["DATABASE_URL"])
    settings = Settings(database_url=env["DATABASE_URL"], media_url=env["MEDIA_URL"])
    with session_scope(engine) as session:
        store = open_media_store(settings)
        ids = [add_image(session, store, settings, photo(n), filename=f"p{n}.png",
                         uploaded_by="alice").id for n in range(PHOTOS)]
        make_production_scenario(session, strength=0.3, candidate_strength=0.7, steps=20)
        testsets.create_test_set(session, "browser-set", ids, actor="alice")
    group = ProcessGroup()
    group.python(["core", "up", "--port", str(port), "--workers", "1"], env, tmp / "up.log")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _answers(f"{url}/_stcore/health"), 90, "the dashboard to answer")
        ran = subprocess.run([sys.executable, "-m", "core", "gate", "run", "projection-level-1",
                              "--candidate", "4", "--set", "browser-set", "--seeds", str(SEEDS),
                              "--json"], env=env, capture_output=True, text=True, timeout=120,
                             cwd=Path(__file__).resolve().parents[2])
        assert ran.returncode == 0, ran.stderr
        run_id = json.loads(ran.stdout)["gate_run_id"]

        def all_reviewable() -> bool:
            with session_scope(engine) as session:
                return gate.review_progress(session, run_id, "x").reviewable == PHOTOS * SEEDS

        wait_for(all_reviewable, 300, "every pair's two outputs")
        yield {"url": url, "engine": engine, "run_id": run_id}
    finally:
        group.stop_all()
        engine.dispose()


def shown_pair(page) -> int:
    """The pair on screen, waiting (with a deadline) until one is."""
    panel = page.get_by_test_id("gate-pair-panel")  # inside the component's shadow root
    expect(panel).to_have_attribute("data-pair-id", re.compile(r"^\d+$"), timeout=30_000)
    return int(panel.get_attribute("data-pair-id"))


def expected_choice(run, pair_id: int, reviewer: str, pick: str) -> str:
    if pick == "same":
        return "same"
    return "candidate" if gate.candidate_side(run, pair_id, reviewer) == pick else "production"


def test_fast_keys_and_clicks_each_land_on_the_pair_shown(gate_product, page) -> None:
    engine, run_id, reviewer = gate_product["engine"], gate_product["run_id"], local_user()
    page.goto(f"{gate_product['url']}/gate")
    page.get_by_text("Blind review", exact=True).click()
    panel = page.get_by_test_id("gate-pair-panel")
    panel.wait_for()
    expect(panel).to_have_attribute("data-shown-id", re.compile(r"^\d+$"), timeout=30_000)
    text = panel.inner_text().lower()
    assert "candidate" not in text and "production" not in text and "v4" not in text

    made: list[tuple[int, str]] = []
    keys = {"a": "left", "b": "right", "s": "same", "1": "left", "2": "right",
            "ArrowLeft": "left", "ArrowRight": "right", "ArrowDown": "same"}
    sequence = ["a", "b", "s", "1", "2", "ArrowLeft", "ArrowRight", "ArrowDown"]
    for key in sequence:  # a key every 0.12 s, without waiting for the server
        made.append((shown_pair(page), keys[key]))
        page.keyboard.press(key)
        page.wait_for_timeout(120)  # the reviewer's pace, not a wait for work
    # the mouse: click image B of one pair, "About the same" on the next
    made.append((shown_pair(page), "right"))
    panel.locator(".gp-pick").nth(1).click()
    made.append((shown_pair(page), "same"))
    panel.get_by_role("button", name="About the same").click()

    assert len({pair for pair, _ in made}) == len(made) == PHOTOS * SEEDS  # a new pair each time

    def stored() -> list[GateJudgment]:
        with session_scope(engine) as session:
            rows = list(session.scalars(select(GateJudgment).where(
                GateJudgment.reviewer == reviewer)))
            session.expunge_all()
            return rows

    wait_for(lambda: len(stored()) >= len(made), 60, "every choice to be stored")
    with session_scope(engine) as session:
        run = gate.gate_run(session, run_id)
        expected = {pair: expected_choice(run, pair, reviewer, pick) for pair, pick in made}
        sides = {pair: gate.candidate_side(run, pair, reviewer) for pair, _ in made}
    judgments = stored()
    assert len(judgments) == len(made)  # none lost, none doubled
    assert {j.pair_id: j.choice for j in judgments} == expected
    assert {j.pair_id: j.candidate_side for j in judgments} == sides
    assert all(j.seconds_spent is not None and j.seconds_spent >= 0 for j in judgments)
    page.get_by_text("you judged every pair that still needs a reviewer").wait_for()

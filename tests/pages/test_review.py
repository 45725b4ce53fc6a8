"""Review: empty states, the pair with its controls, save-and-advance with progress and the
stored row, quick keys, next/previous, errors as messages, the summary, promote."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core.auth import local_user
from core.data.db import session_scope
from core.errors import InvalidInput
from core.data.models import Generation, Review, Scenario
from tests.pages.conftest import clear_caches, start_sweep
from tests.services import free_port

PAGE = "pages/review.py"


def _button(app, label: str):
    return next(b for b in app.button if b.label == label)


def _progress(app) -> str:
    return next(p.proto.text for p in app.get("progress") if "reviewed by you" in p.proto.text)


def _reviews(runtime) -> list[Review]:
    with session_scope(runtime.engine) as session:
        rows = list(session.scalars(select(Review).order_by(Review.id)))
        session.expunge_all()
        return rows


def _shown(app) -> int:
    return app.session_state["rv_current"]


def test_empty_state_points_to_new_sweep(open_page) -> None:
    app = open_page(PAGE)
    assert not app.exception
    assert "No sweeps yet" in app.info[0].value


def test_a_sweep_with_nothing_finished_says_so(open_page, runtime) -> None:
    start_sweep(runtime)  # queued, no worker
    app = open_page(PAGE)
    assert not app.exception
    assert "No finished images to review in this scope yet" in app.info[0].value


def test_pair_and_controls(open_page, finished_sweep) -> None:
    app = open_page(PAGE)
    assert not app.exception
    assert _progress(app) == "**0 / 4** reviewed by you"
    captions = [c for image in app.image for c in image.captions]
    assert captions[0].startswith("Input image #") and captions[1].startswith("Output")
    assert "strength **0." in " ".join(m.value for m in app.markdown)
    assert len(app.feedback) == 2
    assert {b.label for b in app.button} >= {"Previous", "Save and next", "Next",
                                             "1", "5"}


def test_save_and_next_stores_the_review_and_moves_on(open_page, runtime, finished_sweep) -> None:
    app = open_page(PAGE)
    first = _shown(app)
    app.feedback[0].set_value(3)  # the fourth star
    app.feedback[1].set_value(0)  # thumbs down
    app.multiselect[0].set_value(["too strong", "Halo  Effect"])
    app.text_area[0].input("Face drifts at the edges")
    _button(app, "Save and next").click().run()
    assert not app.exception
    assert f"Saved your review of generation {first}." in app.success[0].value
    assert _progress(app) == "**1 / 4** reviewed by you"
    assert _shown(app) != first
    [review] = _reviews(runtime)
    assert (review.generation_id, review.reviewer, review.rating, review.thumbs) == (
        first, local_user(), 4, -1)
    assert review.tags == ["too strong", "halo effect"] and review.note == "Face drifts at the edges"
    assert review.seconds_spent is not None and review.seconds_spent >= 0
    summary = app.dataframe[-1].value
    assert summary[summary["parameter"] == "strength"]["mean_rating"].tolist() == [4.0]


def test_number_keys_rate_and_advance_to_the_end(open_page, runtime, finished_sweep) -> None:
    app = open_page(PAGE)
    for stars in (5, 4, 2, 1):
        _button(app, str(stars)).click().run()
        assert not app.exception
    assert [r.rating for r in _reviews(runtime)] == [5, 4, 2, 1]
    assert "You have reviewed all 4 generations in this scope." in app.success[-1].value
    _button(app, "Go through them again from the oldest").click().run()
    assert "You reviewed this on" in " ".join(c.value for c in app.caption)
    assert app.feedback[0].value == 4  # the earlier five stars, prefilled


def test_next_and_previous(open_page, finished_sweep) -> None:
    app = open_page(PAGE)
    first = _shown(app)
    _button(app, "Previous").click().run()
    assert "That is the first generation in this scope." in app.info[0].value
    _button(app, "Next").click().run()
    second = _shown(app)
    assert second != first
    _button(app, "Previous").click().run()
    assert _shown(app) == first


def test_scope_of_one_sweep_and_all_generations(open_page, runtime, finished_sweep) -> None:
    app = open_page(PAGE)
    app.toggle(key="rv_first").set_value(False).run()
    assert _progress(app) == "**0 / 4** reviewed by you"
    app.selectbox(key="rv_sweep").set_value(finished_sweep).run()
    assert not app.exception and _progress(app) == "**0 / 4** reviewed by you"


def test_nothing_to_save_is_a_message(open_page, runtime, finished_sweep) -> None:
    app = open_page(PAGE)
    first = _shown(app)
    _button(app, "Save and next").click().run()
    assert not app.exception
    assert "Nothing to save: give a rating, a thumb, a tag or a note." in app.error[0].value
    assert _shown(app) == first and not _reviews(runtime)


def test_out_of_range_rating_is_refused_by_the_handler(page_env, runtime, finished_sweep) -> None:
    from dashboard import review_widgets as rw

    gid = rw.next_to_review(None, "tester", rw.Scope(None, 100))
    with pytest.raises(InvalidInput, match="Rating 7 is not allowed: give 1 to 5 stars"):
        rw.save(gid, "tester", rating=7, thumbs=None, tags=[], note="", seconds_spent=1.0)
    assert not _reviews(runtime)


def test_promote_the_shown_settings(open_page, runtime, finished_sweep) -> None:
    app = open_page(PAGE)
    gid = _shown(app)
    app.text_input(key=f"rv_promote_name_{gid}").input("projection-level-1")
    _button(app, "Promote to scenario").click().run()
    assert not app.exception
    assert "promoted into scenario projection-level-1" in app.success[0].value
    with session_scope(runtime.engine) as session:
        scenario = session.scalar(select(Scenario))
        shown = session.get(Generation, gid)
        assert scenario.name == "projection-level-1"
        assert scenario.params["strength"] == shown.strength
        assert scenario.params["num_inference_steps"] == shown.steps


def test_bad_scenario_name_on_promote_is_a_message(open_page, finished_sweep) -> None:
    app = open_page(PAGE)
    gid = _shown(app)
    app.text_input(key=f"rv_promote_name_{gid}").input("Projection Level 1!")
    _button(app, "Promote to scenario").click().run()
    assert not app.exception
    assert "is not allowed: use lowercase letters" in app.error[0].value


def test_redis_down_does_not_stop_reviewing(open_page, runtime, finished_sweep, monkeypatch) -> None:
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    clear_caches()
    app = open_page(PAGE)
    _button(app, "3").click().run()
    assert not app.exception
    assert [r.rating for r in _reviews(runtime)] == [3]

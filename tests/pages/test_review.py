"""Review: empty states; what the panel is sent (the pair, what comes next, why, progress);
actions applied to the generation they name, once each, refusals as messages; next/previous;
several reviewers and their agreement; promote. The panel itself (keys, preloading) runs in
a browser: tests/browser/test_review_keys.py."""

from __future__ import annotations

import json

from sqlalchemy import select

from core.auth import local_user
from core.data.db import session_scope
from core.data.models import Generation, Review, Scenario, Sweep
from core.insight.review import save_review
from tests.pages.conftest import clear_caches, start_sweep
from tests.services import free_port

PAGE = "pages/review.py"


def _button(app, label: str):
    return next(b for b in app.button if b.label == label)


def _panel(app) -> dict:
    [element] = app.get("bidi_component")
    return json.loads(element.proto.json)


def _reviews(runtime) -> list[Review]:
    with session_scope(runtime.engine) as session:
        rows = list(session.scalars(select(Review).order_by(Review.id)))
        session.expunge_all()
        return rows


def _ids(runtime, sweep_id: int) -> list[int]:
    """The sweep's generations, oldest finished first (the queue's order)."""
    with session_scope(runtime.engine) as session:
        return list(session.scalars(select(Generation.id).where(Generation.sweep_id == sweep_id)
                                    .order_by(Generation.completed_at, Generation.id)))


def _save(gid: int, seq: int, **fields):
    from dashboard.review_widgets import PanelAction

    return PanelAction(seq=seq, kind="save", generation_id=gid, **fields)


def test_empty_state_points_to_new_sweep(open_page) -> None:
    app = open_page(PAGE)
    assert not app.exception
    assert "No sweeps yet" in app.info[0].value


def test_a_sweep_with_nothing_finished_says_so(open_page, runtime) -> None:
    start_sweep(runtime)  # queued, no worker
    app = open_page(PAGE)
    assert not app.exception
    assert "No finished images to review in this scope yet" in app.info[0].value


def test_the_panel_gets_the_pair_what_comes_next_and_why(open_page, runtime, finished_sweep) -> None:
    app = open_page(PAGE)
    assert not app.exception
    data = _panel(app)
    ids = _ids(runtime, finished_sweep)
    assert [item["id"] for item in data["items"]] == ids
    first = data["items"][0]
    assert first["input_label"] == "face.png" and first["sweep_id"] == finished_sweep
    assert first["input_url"].endswith(".png") and first["output_url"].endswith(".png")
    assert first["input_url"] != first["output_url"]
    assert first["why"].startswith("Next because it is the oldest generation in this scope "
                                   "that still lacks your review")
    assert "strength 0." in first["meta"] and first["review"] is None
    assert data["progress"] == "0 / 4 reviewed by you" and "too strong" in data["tags"]


def test_actions_land_on_the_generation_they_name_once_each(page_env, runtime, finished_sweep) -> None:
    from dashboard import review_widgets as rw

    ids = _ids(runtime, finished_sweep)
    scope, applied = rw.Scope(None, 100), {}
    # taken on ids[2] then ids[0]: each lands where it was taken, whatever the server shows
    actions = [_save(ids[2], 1, rating=4, tags=["Too strong"], note="halo", seconds=1.5),
               _save(ids[0], 2, rating=2, thumbs=-1)]
    outcomes, focus, _ = rw.apply_actions("tab-a", actions, applied, "tester", scope)
    assert [o.kind for o in outcomes] == ["success", "success"] and focus is None
    assert applied == {"tab-a": 2}
    # the panel sends unacknowledged actions again: applied once only
    again, _, _ = rw.apply_actions("tab-a", [*actions, _save(ids[1], 3, rating=5)], applied,
                                   "tester", scope)
    assert [o.text for o in again] == [f"Saved your review of generation {ids[1]} (5 ★)."]
    stored = {(r.generation_id, r.rating, tuple(r.tags), r.note, r.seconds_spent)
              for r in _reviews(runtime)}
    assert stored == {(ids[2], 4, ("too strong",), "halo", 1.5), (ids[0], 2, (), "", None),
                      (ids[1], 5, (), "", None)}


def test_refused_actions_say_why_and_change_nothing(page_env, runtime, finished_sweep) -> None:
    from dashboard import review_widgets as rw

    ids = _ids(runtime, finished_sweep)
    rw.save(ids[0], "tester", rating=3, thumbs=None, tags=["artifact"], note="", seconds_spent=2)
    outcomes, _, _ = rw.apply_actions("tab", [
        _save(ids[0], 1, rating=7),
        _save(ids[0], 2, rating=2, note="x" * 5001),
        _save(999_999, 3, rating=4),
        _save(None, 4, rating=4)], {}, "tester", rw.Scope(None, 100))
    texts = [o.text for o in outcomes]
    assert all(o.kind == "error" for o in outcomes)
    assert texts[0] == (f"Your review of generation {ids[0]} was not saved: Rating 7 is not "
                        "allowed: give 1 to 5 stars, or none.")
    assert "shorten it to 5000 or fewer" in texts[1]
    assert "Generation 999999 does not exist (it may have been deleted" in texts[2]
    assert "without the generation it was given on" in texts[3]
    [kept] = _reviews(runtime)
    assert (kept.generation_id, kept.rating, kept.tags) == (ids[0], 3, ["artifact"])


def test_refusals_are_shown_on_the_page(open_page, runtime, finished_sweep) -> None:
    app = open_page(PAGE)
    app.session_state["rv_refused"] = ["Your review of generation 1 was not saved: because."]
    app.run()
    assert "Your review of generation 1 was not saved: because." in app.error[0].value


def test_next_and_previous_move_the_focus(page_env, runtime, finished_sweep) -> None:
    from dashboard import review_widgets as rw
    from dashboard.review_widgets import PanelAction

    ids = _ids(runtime, finished_sweep)
    scope = rw.Scope(None, 100)
    outcomes, focus, why = rw.apply_actions(
        "t", [PanelAction(1, "next", ids[0]), PanelAction(2, "next", ids[1])], {}, "tester", scope)
    assert (focus, why, outcomes) == (ids[2], "You moved on to it with Next.", [])
    outcomes, focus, _ = rw.apply_actions("t", [PanelAction(1, "prev", ids[0])], {}, "tester",
                                          scope)
    assert focus is None and outcomes[0].text == "That is the first generation in this scope."


def test_a_focused_generation_is_shown_first(open_page, runtime, finished_sweep) -> None:
    ids = _ids(runtime, finished_sweep)
    app = open_page(PAGE)
    view = _panel(app)["view"]
    app.session_state["rv_focus"] = ids[3]
    app.session_state["rv_focus_why"] = "You went back to it with Previous."
    app.session_state["rv_view"] = view + 1
    app.run()
    data = _panel(app)
    assert data["items"][0]["id"] == ids[3] and data["view"] == view + 1
    assert data["items"][0]["why"] == "You went back to it with Previous."


def test_several_reviewers_and_their_agreement(open_page, runtime, finished_sweep) -> None:
    ids = _ids(runtime, finished_sweep)
    with session_scope(runtime.engine) as session:
        for gid, a, b in zip(ids, (1, 5, 1, 5), (5, 1, 5, 1)):  # opposite on every image
            save_review(session, gid, "ann", rating=a, seconds_spent=4.0)
            save_review(session, gid, "ben", rating=b, seconds_spent=6.0)
    app = open_page(PAGE)
    app.selectbox(key="rv_sweep").set_value(finished_sweep).run()
    assert not app.exception
    assert not app.metric and not app.dataframe  # closed: nothing below the panel runs
    app.session_state["rv_team_open"] = True  # opened, as a click would
    app.run()
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Generations rated by 2+"] == "4" and metrics["Exact agreement"] == "0%"
    assert float(metrics["Krippendorff's α (ordinal)"]) < 0.4
    assert "reviewers disagree: read the notes before trusting the means" in app.warning[0].value
    people = app.dataframe[0].value
    assert list(people["reviewer"]) == ["ann", "ben"] and list(people["reviewed"]) == [4, 4]
    log = app.dataframe[1].value  # I have rated none: their stars stay hidden
    assert set(log["rating"]) == {"hidden until you review it"}
    assert set(log["seconds on page"]) == {4.0, 6.0}
    assert not app.get("vega_lite_chart")  # ratings by parameter: still closed
    app.session_state["rv_ratings_open"] = True
    app.run()
    assert "CSV of ratings by parameter" in [d.label for d in app.get("download_button")]
    assert app.get("vega_lite_chart")  # the mean rating per strength, at least
    # two reviews wanted per generation: all four have them, so nothing is left for me
    app.selectbox(key=f"rv_min_{finished_sweep}").set_value(2).run()
    with session_scope(runtime.engine) as session:
        assert session.get(Sweep, finished_sweep).min_ratings == 2
    clear_caches()
    app.run()
    data = _panel(app)
    assert data["items"] == [] and "4 / 4 generations have the 2 reviews wanted" in data["progress"]
    assert data["end"].startswith("Nothing left for you here")


def test_promote_the_shown_settings(open_page, runtime, finished_sweep) -> None:
    app = open_page(PAGE)
    gid = _ids(runtime, finished_sweep)[1]
    app.session_state["rv_shown"] = gid  # what the panel says is on screen
    app.run()
    assert app.selectbox(key=f"rv_promote_{gid}_target").value == "➕ New scenario"
    app.text_input(key=f"rv_promote_{gid}_new_name").input("projection-level-1").run()
    assert any("new scenario 'projection-level-1' (draft); pins seed" in c.value
               for c in app.caption)  # what it pins, said before
    _button(app, "Promote these settings").click().run()
    assert not app.exception
    assert "Settings promoted into projection-level-1 (version 1)" in app.success[0].value
    with session_scope(runtime.engine) as session:
        scenario = session.scalar(select(Scenario))
        shown = session.get(Generation, gid)
        assert scenario.name == "projection-level-1"
        assert scenario.params["strength"] == shown.strength
        assert scenario.params["num_inference_steps"] == shown.steps


def test_bad_scenario_name_on_promote_is_a_message(open_page, runtime, finished_sweep) -> None:
    app = open_page(PAGE)
    gid = _ids(runtime, finished_sweep)[1]
    app.session_state["rv_shown"] = gid  # what the panel says is on screen
    app.run()
    app.text_input(key=f"rv_promote_{gid}_new_name").input("Projection Level 1!").run()
    _button(app, "Promote these settings").click().run()
    assert not app.exception
    assert "is not allowed: use lowercase letters" in app.error[0].value


def test_redis_down_does_not_stop_reviewing(page_env, runtime, finished_sweep, monkeypatch) -> None:
    from dashboard import review_widgets as rw

    gid = _ids(runtime, finished_sweep)[0]
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    clear_caches()
    outcomes, _, _ = rw.apply_actions("t", [_save(gid, 1, rating=3)], {}, local_user(),
                                      rw.Scope(None, 100))
    assert outcomes[0].kind == "success"
    assert [r.rating for r in _reviews(runtime)] == [3]

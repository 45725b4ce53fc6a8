"""Decide, Compare and the Gallery's metric filters, through AppTest over a real sweep run on
the emulator (metrics measured by the store step, ratings saved through core.insight.review)."""

from __future__ import annotations

from sqlalchemy import select

from core.data.db import session_scope
from core.data.models import Generation, Scenario
from core.insight.review import save_review
from tests.pages.conftest import grid_captions, grid_cells, open_cell, run_workers, start_sweep


def rate(runtime, sweep_id: int, stars: dict[float, list[int]]) -> None:
    """Give each cell of a strength the listed ratings, one reviewer per rating."""
    with session_scope(runtime.engine) as session:
        cells = session.scalars(select(Generation).where(Generation.sweep_id == sweep_id)).all()
        for cell in cells:
            for n, value in enumerate(stars.get(cell.strength, [])):
                save_review(session, cell.id, f"reviewer{n}", rating=value)


def test_decide_recommends_with_evidence_and_promotes(open_page, runtime) -> None:
    sweep_id = start_sweep(runtime, steps="25")
    run_workers(runtime)
    rate(runtime, sweep_id, {0.3: [5, 4, 5], 0.6: [2, 2, 3]})
    app = open_page("pages/decide.py")
    assert not app.exception
    text = " ".join(m.value for m in app.markdown)
    assert "Recommended: strength **0.3**" in text and "Runner-up: strength **0.6**" in text
    assert "mean 4.67 over n = 3" in text

    assert app.selectbox(key="d_promote_target").value == "➕ New scenario"  # said, not typed
    app.text_input(key="d_promote_new_name").input("projection-level-1").run()
    next(b for b in app.button if b.label == "Promote these settings").click().run()
    assert not app.exception
    assert "Settings promoted into projection-level-1 (version 1)" in app.success[-1].value
    with session_scope(runtime.engine) as session:
        scenario = session.scalar(select(Scenario).where(Scenario.name == "projection-level-1"))
        assert scenario.params["strength"] == 0.3
        assert "Recommended setting: strength=0.3" in scenario.versions[-1].note


def test_decide_names_constraints_no_setting_meets(open_page, runtime) -> None:
    sweep_id = start_sweep(runtime, steps="25")
    run_workers(runtime)
    rate(runtime, sweep_id, {0.3: [4, 4, 4], 0.6: [3, 3, 3]})
    app = open_page("pages/decide.py")
    app.checkbox(key="d_min_similarity_on").check().run()
    app.number_input(key="d_min_similarity").set_value(0.99).run()
    assert not app.exception
    assert any(w.value.startswith("No setting has similarity ≥ 0.99") for w in app.warning)


def test_decide_without_ratings_says_how_many_more(open_page, runtime) -> None:
    start_sweep(runtime, steps="25")
    run_workers(runtime)
    app = open_page("pages/decide.py")
    assert not app.exception
    assert any("Too few ratings to recommend: 0 rating(s) so far; rate 6 more" in w.value
               for w in app.warning)
    app.selectbox(key="d_objective").select("similarity").run()
    assert "Recommended: strength **0.3**" in " ".join(m.value for m in app.markdown)


def test_gallery_shows_metrics_sorts_and_filters_by_them(open_page, runtime) -> None:
    start_sweep(runtime)
    run_workers(runtime)
    app = open_page("pages/gallery.py")
    app.selectbox(key="g_sort").select("similarity").run()
    assert not app.exception
    values = [float(c.split()[1]) for c in grid_captions(app)]
    assert len(values) == 4 and values == sorted(values, reverse=True)
    app.slider(key="g_min_sim").set_value(values[1]).run()
    assert len(grid_captions(app)) == 2
    open_cell(app, grid_cells(app)[0]["id"])
    assert "similarity **" in " ".join(m.value for m in app.markdown)


def test_compare_pairs_two_sweeps_of_one_photo(open_page, runtime) -> None:
    first = start_sweep(runtime, steps="20")
    second = start_sweep(runtime, steps="30")
    run_workers(runtime)
    rate(runtime, first, {0.3: [4], 0.6: [2]})
    rate(runtime, second, {0.3: [5], 0.6: [3]})
    app = open_page("pages/compare.py")
    assert not app.exception
    app.selectbox(key="c_a").select(first).run()
    app.selectbox(key="c_b").select(second).run()
    assert not app.exception
    message = " ".join(c.value for c in app.caption)
    assert "2 pairs over 1 input image(s)" in message and "compared across steps" in message
    rating = next(m for m in app.metric if m.label == "Δ mean rating (B − A)")
    assert rating.value == "+1.000"

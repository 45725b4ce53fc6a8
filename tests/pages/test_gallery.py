"""Gallery: empty state, a labelled grid, axis choice and tabs, the cell dialog and promote,
pagination, the grid PNG."""

from __future__ import annotations

import pytest

import io

from PIL import Image
from sqlalchemy import select

from core.data.db import session_scope
from core.errors import NotFound
from core.data.models import Scenario
from dashboard.grid_view import CELL_SECTION
from tests.pages.conftest import (grid_captions, grid_cells, grids, open_cell, run_workers,
                                  start_sweep, store_image)

PAGE = "pages/gallery.py"


def _captions(app) -> list[str]:
    return [c.value for c in app.caption]


def _headings(app) -> list[dict]:
    """The grid's column headings, then its row headings: ``{text, help}``."""
    [grid] = grids(app)
    return grid["columns"] + [row["heading"] for row in grid["rows"] if row["heading"]]


def test_empty_state_points_to_new_sweep(open_page) -> None:
    app = open_page(PAGE)
    assert not app.exception
    assert "No sweeps yet" in app.info[0].value


def test_grid_has_strength_across_and_steps_down(open_page, finished_sweep) -> None:
    app = open_page(PAGE)
    assert not app.exception
    assert app.selectbox(key="g_x").value == "strength"
    assert app.selectbox(key="g_y").value == "steps"
    assert [h["text"] for h in _headings(app)] == ["strength 0.3", "strength 0.6", "steps 20",
                                                   "steps 30"]
    assert "4 of 4 images ready" in _captions(app)
    assert grid_captions(app) == ["✅ strength 0.3 · steps 20", "✅ strength 0.6 · steps 20",
                                  "✅ strength 0.3 · steps 30", "✅ strength 0.6 · steps 30"]
    # Each cell is a thumbnail the browser loads from Streamlit's media files, sized for a
    # two-column grid (the stored 256 px thumbnail is narrower, so it is sent as it is).
    sources = [cell["src"] for cell in grid_cells(app)]
    assert all("/media/" in src and src.endswith(".jpg") for src in sources)  # AppTest: /mock/media
    assert len(set(sources)) == 4


def test_other_axes_split_into_tabs(open_page, runtime) -> None:
    start_sweep(runtime, prompts=("a portrait", "a painting"))
    run_workers(runtime)
    app = open_page(PAGE)
    assert [t.label for t in app.tabs] == ["P1: a portrait", "P2: a painting"]  # the text, not a bare P1
    app.selectbox(key="g_x").select("prompt").run()
    assert [t.label for t in app.tabs] == ["strength 0.3", "strength 0.6"]


def test_slice_tabs_name_each_prompt_by_its_shortened_text_as_text(open_page, runtime) -> None:
    start_sweep(runtime, prompts=("a portrait in a sunlit studio with soft shadows",
                                  "![x](http://h/p.png)"))
    app = open_page(PAGE)
    assert [t.label for t in app.tabs] == ["P1: a portrait in a sunlit…",
                                           "P2: !\\[x\\](http://h/p.png)"]


def test_a_cell_opens_with_its_parameters_and_can_be_promoted(open_page, runtime,
                                                                finished_sweep) -> None:
    app = open_page(PAGE)
    open_cell(app, grid_cells(app)[0]["id"])
    assert not app.exception
    text = " ".join(m.value for m in app.markdown) + " ".join(_captions(app))
    assert "strength **0.3**" in text and "Prediction id" in text
    # The input and the output as stored (PNG), not re-encoded as JPEG on every run.
    assert [image.proto.imgs[0].url.rsplit(".", 1)[1] for image in app.image] == ["png", "png"]
    # Cost and timings in one line, saying what the cost is; the Rate tab open, and only it.
    assert any(c.startswith("Cost $") and "an estimate from the price table" in c
               and "predict time" in c and "1 attempt" in c for c in _captions(app))
    assert [t.label for t in app.tabs][-3:] == ["Rate", "Promote", "Model input"]
    assert app.button(key=f"g_save_{grid_cells(app)[0]['id']}")
    assert not [b for b in app.button if b.label == "Promote these settings"] and not app.json
    # The other tabs, chosen before the cell opens (AppTest reruns the whole script, where
    # a dialog stays open only on the run that opened it).
    for tab, shown in (("Promote", lambda a: [b for b in a.button
                                              if b.label == "Promote these settings"]),
                       ("Model input", lambda a: [j for j in a.json
                                                  if j.value and "strength" in j.value])):
        app = open_page(PAGE)
        app.session_state[CELL_SECTION] = tab
        open_cell(app, grid_cells(app)[0]["id"])
        assert not app.exception and shown(app), tab
    # A click inside a dialog reruns only the dialog in a browser; AppTest reruns the whole
    # script, where the dialog is closed, so the promote handler is called directly here.
    from dashboard import actions, queries

    first = queries.sweep_cells(finished_sweep)[0]
    with pytest.raises(NotFound, match="pick an existing scenario from the list"):
        actions.promote(first["id"], "projection-levle-1", user="tester")  # a typo: nothing made
    assert actions.promote(first["id"], " projection-level-1 ", user="tester",
                           new_scenario=True) == "Settings promoted into projection-level-1 (version 1)."
    with session_scope(runtime.engine) as session:
        scenario = session.scalar(select(Scenario))
    assert scenario.name == "projection-level-1" and scenario.params["strength"] == 0.3


def test_large_sweeps_paginate_and_unfinished_cells_show_their_state(open_page, runtime) -> None:
    start_sweep(runtime, strength="0.1-0.9 [11]", steps="10-30 [11]")  # 121 cells, none run
    app = open_page(PAGE)
    assert not app.exception
    page = next(s for s in app.selectbox if s.label.startswith("Page"))
    assert page.options == ["1", "2"]
    [grid] = grids(app)
    assert len(grid["rows"]) == 9 and len(grid["columns"]) == 11  # 100 // 11 rows
    assert {cell["caption"][0] for cell in grid_cells(app)} == {"⏳"}  # queued, no image yet
    assert {cell["src"] for cell in grid_cells(app)} == {None}
    assert "0 of 121 images ready — filling in as the sweep runs" in _captions(app)


def test_state_filter_hides_cells(open_page, finished_sweep) -> None:
    app = open_page(PAGE)
    app.get("button_group")[0].set_value(["failed"]).run()
    assert "No cells match the chosen states, rating and tags." in app.info[0].value


def test_rating_and_tag_filters_keep_only_matching_cells(open_page, runtime,
                                                         finished_sweep) -> None:
    from core.insight.review import save_review
    from dashboard import queries

    first, second = queries.sweep_cells(finished_sweep)[:2]
    with session_scope(runtime.engine) as session:
        save_review(session, first.id, "ann", rating=5, tags=["too subtle"])
        save_review(session, second.id, "ann", rating=2, tags=["artifact"])
    # read above, before the reviews existed: the cells follow the reviews without a clear
    app = open_page(PAGE)
    app.select_slider(key="g_min_rating").set_value(4).run()
    assert grid_captions(app) == ["✅ strength 0.3 · steps 20 · ★ 5.0 · n 1"]
    app.select_slider(key="g_min_rating").set_value(0).run()
    app.multiselect(key="g_tags").select("artifact").run()
    assert grid_captions(app) == ["✅ strength 0.6 · steps 20 · ★ 2.0 · n 1"]


def test_grid_png_has_a_cell_per_value(page_env, runtime, finished_sweep) -> None:
    from dashboard import queries

    cells = queries.sweep_cells(finished_sweep)
    png = queries.grid_png([("", cells)], "strength", "steps", "Sweep 1")
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.width > 2 * 256 and image.height > 2 * 256


def test_cells_show_their_ratings_and_can_be_rated_in_the_dialog(open_page, runtime,
                                                                 finished_sweep) -> None:
    from core.auth import local_user
    from core.data.models import Review
    from core.insight.review import save_review
    from dashboard import queries

    first, second = queries.sweep_cells(finished_sweep)[:2]
    with session_scope(runtime.engine) as session:
        save_review(session, first["id"], "ann", rating=5)
        save_review(session, first["id"], local_user(), rating=2)
    app = open_page(PAGE)
    # In the image's caption beside its place in the grid; an unrated cell shows no stars.
    assert grid_captions(app)[:2] == ["✅ strength 0.3 · steps 20 · ★ 3.5 · n 2 · yours 2",
                                      "✅ strength 0.6 · steps 20"]
    cells = {c["id"]: c for c in queries.sweep_cells(finished_sweep)}
    open_cell(app, grid_cells(app)[1]["id"])
    assert not app.exception
    assert any(m.value == "**Ratings** not rated yet" for m in app.markdown)
    assert app.button(key=f"g_save_{second['id']}")
    # A click inside a dialog reruns only the dialog in a browser; AppTest closes it on the
    # next run, so the dialog's rating part is drawn and used on its own here.
    from streamlit.testing.v1 import AppTest

    def dialog_part(cell: dict, user: str) -> None:
        from dashboard import review_widgets as rw

        rw.init_state()
        rw.rate_cell(cell, user)

    part = AppTest.from_function(dialog_part, args=(cells[second["id"]], local_user())).run()
    part.feedback(key=f"g_stars_{second['id']}").set_value(3).run()
    part.multiselect(key=f"g_tags_{second['id']}").select("artifact").run()
    part.button(key=f"g_save_{second['id']}").click().run()
    assert not part.exception
    assert part.success[0].value == f"Saved your review of generation {second['id']}."
    with session_scope(runtime.engine) as session:
        saved = session.scalar(select(Review).where(Review.generation_id == second["id"]))
        assert (saved.reviewer, saved.rating, saved.tags) == (local_user(), 4, ["artifact"])


def test_a_pasted_link_opens_the_same_sweep_axes_and_cell(open_page, runtime,
                                                           finished_sweep) -> None:
    other = start_sweep(runtime, strength="0.4", steps="20", prompts=("a portrait", "a dog"))
    from dashboard import queries

    cell = queries.sweep_cells(finished_sweep)[1]
    app = open_page(PAGE, query={"sweep": str(finished_sweep), "x": "steps", "y": "strength",
                                 "cell": str(cell["id"])})
    assert not app.exception
    assert app.selectbox(key="g_x").value == "steps"
    assert app.selectbox(key="g_y").value == "strength"
    assert app.query_params["sweep"] == str(finished_sweep) != str(other)
    text = " ".join(m.value for m in app.markdown)
    assert f"strength **{cell['strength']}** · steps **{cell['steps']}**" in text  # dialog open
    assert app.query_params["cell"] == str(cell["id"])


def test_changing_the_sweep_resets_axes_it_does_not_have(open_page, runtime,
                                                         finished_sweep) -> None:
    other = start_sweep(runtime, strength="0.4", steps="20", prompts=("a portrait", "a dog"))
    app = open_page(PAGE, query={"sweep": str(finished_sweep), "x": "steps", "y": "strength"})
    assert app.selectbox(key="g_x").value == "steps"
    next(s for s in app.selectbox if s.label == "Sweep").set_value(other).run()
    assert not app.exception
    assert app.selectbox(key="g_x").value == "prompt"  # steps is not swept there
    assert app.query_params["sweep"] == str(other) and app.query_params["x"] == "prompt"


def test_prompt_headings_show_the_prompt_text(open_page, runtime) -> None:
    start_sweep(runtime, strength="0.4", steps="20",
                prompts=("a portrait in a sunlit studio with soft shadows", "a dog"))
    app = open_page(PAGE)
    headings = {h["text"]: h["help"] for h in _headings(app)}
    assert headings["P1: a portrait in a sunlit…"] == (
        "a portrait in a sunlit studio with soft shadows")
    assert headings["P2: a dog"] == "a dog"


def test_the_model_axis_goes_down_and_a_model_without_the_input_says_so(open_page, runtime) -> None:
    from core.planning.submit import submit_sweep
    from core.planning.sweeps import SweepRequest

    request = SweepRequest(model_ref="stability-ai/sdxl", image_ids=[store_image(runtime)],
                           extra_models=["black-forest-labs/flux-kontext-pro"],
                           strength="0.3, 0.6", prompts=["a portrait"], seed="42")
    submit_sweep(runtime, request, actor="tester")
    run_workers(runtime)
    app = open_page(PAGE)
    assert not app.exception
    assert app.selectbox(key="g_x").value == "strength"
    assert app.selectbox(key="g_y").value == "model"
    [grid] = grids(app)
    flux = next(row["cells"] for row in grid["rows"]
                if row["heading"]["text"] == "model black-forest-labs/flux-kontext-pro")
    assert flux[0]["caption"] == "✅ no strength · model black-forest-labs/flux-kontext-pro"
    assert flux[1] == {"note": "black-forest-labs/flux-kontext-pro has no strength"}
    assert "✅ strength 0.3 · model stability-ai/sdxl" in grid_captions(app)


def test_a_slice_named_by_user_text_keys_its_grid_safely(open_page, runtime) -> None:
    """Streamlit refuses "__" in a component's id, and a slice is labelled by its prompt."""
    start_sweep(runtime, prompts=("a__b portrait", "a dog"))  # strength across, steps down
    run_workers(runtime)
    app = open_page(PAGE)
    assert not app.exception
    [first, second] = [element.proto.id for element in app.get("bidi_component")]
    assert "__" not in first and "__" not in second and first != second
    assert [t.label for t in app.tabs] == ["P1: a\\_\\_b portrait", "P2: a dog"]


def test_a_thumbnail_missing_from_storage_says_so_and_the_grid_goes_on(open_page, runtime,
                                                                       finished_sweep) -> None:
    from dashboard import queries

    gone = queries.sweep_cells(finished_sweep)[0]
    runtime.store.delete(gone["thumbnail"])
    app = open_page(PAGE)
    assert not app.exception
    cells = {cell["id"]: cell for cell in grid_cells(app)}
    assert cells[gone["id"]]["caption"] == "✅ strength 0.3 · steps 20 (image missing)"
    assert cells[gone["id"]]["src"] is None
    assert sum(cell["src"] is not None for cell in cells.values()) == 3

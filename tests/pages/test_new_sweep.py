"""New sweep: live axis feedback, uploads, library, presets, reuse, submit → dispatched cells."""

from __future__ import annotations

from rq import Queue
from sqlalchemy import func, select

from core.data import keys
from core.data.db import session_scope
from core.data.models import Generation, InputImage, Scenario, Sweep
from dashboard.sweep_form import take_uploads
from tests.pages.conftest import clear_caches, png_bytes, store_image
from tests.services import free_port

PAGE = "pages/new_sweep.py"


def _captions(app) -> list[str]:
    return [c.value for c in app.caption]


def test_empty_database_asks_for_an_image(open_page) -> None:
    app = open_page(PAGE)
    assert not app.exception
    assert "Choose at least one input image" in app.info[0].value
    assert "No images in the library yet" in " ".join(_captions(app))
    assert next(b for b in app.button if b.label == "Submit sweep").disabled


def test_typing_an_axis_shows_the_parsed_values(open_page) -> None:
    app = open_page(PAGE)
    app.text_input(key="f_strength").input("0.2-0.8 [4]").run()
    assert "→ 4 values: 0.2, 0.4, 0.6, 0.8" in _captions(app)
    app.text_input(key="f_steps").input("20-40 (+10)").run()
    assert "→ 3 values: 20, 30, 40" in _captions(app)


def test_a_bad_axis_shows_the_error_naming_the_value(open_page) -> None:
    app = open_page(PAGE)
    app.text_input(key="f_strength").input("0.3, abc").run()
    assert any("'abc'" in e.value and "strength" in e.value for e in app.error)
    app.text_input(key="f_steps").input("25.5").run()
    assert any("25.5 is not a whole number" in e.value for e in app.error)


def test_uploads_are_stored_and_a_bad_file_is_named(open_page, runtime) -> None:
    app = open_page(PAGE)
    app.file_uploader(key="uploader").set_value([
        ("face.png", png_bytes(), "image/png"), ("notes.png", b"not an image", "image/png")]).run()
    assert any(e.value.startswith("notes.png:") for e in app.error)
    with session_scope(runtime.engine) as session:
        images = list(session.scalars(select(InputImage)))
    assert [i.label for i in images] == ["face.png"]
    assert _pick(app, images[0].id).value is True  # chosen at once


def test_take_uploads_stores_each_file_once() -> None:
    class Upload:
        def __init__(self, file_id: str, name: str) -> None:
            self.file_id, self.name = file_id, name

        def getvalue(self) -> bytes:
            return b"data"

    class Outcome:
        def __init__(self, image_id: int | None, error: str | None = None) -> None:
            self.image_id, self.error = image_id, error

    calls = []

    def store(batch):
        calls.append([name for name, _ in batch])
        return [Outcome(7) if name == "a.png" else Outcome(None, "not an image") for name, _ in batch]

    seen: dict = {}
    files = [Upload("1", "a.png"), Upload("2", "b.png")]
    first = take_uploads(files, seen, store)
    again = take_uploads(files, seen, store)
    assert calls == [["a.png", "b.png"]]
    assert first == again == [{"name": "a.png", "image_id": 7, "error": None},
                              {"name": "b.png", "image_id": None, "error": "not an image"}]


def _pick(app, image_id: int):
    return next(c for c in app.checkbox if c.key.startswith(f"pick_{image_id}_"))


def _fill(app, image_id: int, prompts: str = "a portrait") -> None:
    _pick(app, image_id).check()
    app.text_input(key="f_strength").input("0.3, 0.6")
    app.text_input(key="f_steps").input("20, 30")
    app.text_input(key="f_seed").input("42")
    app.text_area(key="f_prompts").input(prompts)
    app.run()


def _metric(app, label: str) -> str:
    return next(m.value for m in app.metric if m.label == label)


def test_submit_creates_the_sweep_and_queues_its_cells(open_page, runtime) -> None:
    image_id = store_image(runtime)
    app = open_page(PAGE)
    _fill(app, image_id, "a portrait\na painting")
    assert not app.exception
    assert _metric(app, "Cells") == "8"
    assert _metric(app, "Reuse earlier outputs") == "0"
    submit = next(b for b in app.button if b.label == "Submit sweep")
    assert not submit.disabled
    submit.click().run()

    assert not app.exception
    assert app.title[0].value == "Runs"  # switched to the run
    assert "Sweep 1 saved: 8 cell(s), estimated" in app.success[0].value
    with session_scope(runtime.engine) as session:
        sweep = session.scalar(select(Sweep))
        cells = list(session.scalars(select(Generation).where(Generation.sweep_id == sweep.id)))
    assert sweep.created_by and len(cells) == 8
    assert {c.seed for c in cells} == {42} and all(c.job_id for c in cells)
    assert Queue(keys.queue_name(runtime.deployment), connection=runtime.redis).count >= 1
    assert app.session_state.sweep_id == sweep.id


def test_preview_counts_outputs_it_will_reuse(open_page, runtime, finished_sweep) -> None:
    with session_scope(runtime.engine) as session:
        image_id = session.scalar(select(InputImage.id))
    app = open_page(PAGE)
    _fill(app, image_id)  # the same grid as the finished sweep, same seed
    assert _metric(app, "Reuse earlier outputs") == "4"
    app.checkbox(key="f_fresh").check().run()
    assert _metric(app, "Reuse earlier outputs") == "0"


def test_over_budget_is_refused_before_submit(open_page, runtime) -> None:
    image_id = store_image(runtime)
    app = open_page(PAGE)
    _fill(app, image_id)
    app.number_input(key="f_budget").set_value(0.0001).run()
    assert any("over this sweep's budget" in e.value for e in app.error)
    assert next(b for b in app.button if b.label == "Submit sweep").disabled


def test_a_scenario_prefills_prompt_and_parameters(open_page, runtime) -> None:
    with session_scope(runtime.engine) as session:
        session.add(Scenario(name="projection-level-1", prompt_template="a projection portrait",
                             negative_prompt="blurry",
                             params={"strength": 0.35, "num_inference_steps": 28}))
    app = open_page(PAGE)
    app.selectbox(key="f_scenario").select_index(1).run()
    assert app.text_area(key="f_prompts").value == "a projection portrait"
    assert app.text_area(key="f_negative").value == "blurry"
    assert app.text_input(key="f_strength").value == "0.35"
    assert app.text_input(key="f_steps").value == "28"


def test_submit_with_redis_down_saves_the_sweep(open_page, runtime, monkeypatch) -> None:
    image_id = store_image(runtime)
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    clear_caches()
    app = open_page(PAGE)
    _fill(app, image_id)
    next(b for b in app.button if b.label == "Submit sweep").click().run()
    assert not app.exception
    assert "queued when Redis is back" in app.warning[0].value
    with session_scope(runtime.engine) as session:
        assert session.scalar(select(func.count()).select_from(Generation)) == 4
        assert session.scalar(select(func.count()).select_from(Generation)
                              .where(Generation.job_id.is_not(None))) == 0


def test_the_library_choice_follows_clicks_and_survives_reruns(open_page, runtime) -> None:
    image_id = store_image(runtime)
    app = open_page(PAGE)
    _pick(app, image_id).check().run()
    app.text_input(key="f_seed").input("7").run()
    assert app.session_state.chosen_images == [image_id] and _pick(app, image_id).value
    _pick(app, image_id).uncheck().run()
    assert app.session_state.chosen_images == [] and not _pick(app, image_id).value


def _defaults_table(app) -> str:
    return next(m.value for m in app.markdown if m.value.startswith("| input | default |"))


def test_other_inputs_list_their_defaults_and_a_picked_one_is_fixed_or_swept(open_page,
                                                                              runtime) -> None:
    image_id = store_image(runtime)
    app = open_page(PAGE)
    _fill(app, image_id)
    assert _metric(app, "Cells") == "4"
    assert app.expander[-1].label.startswith("Other model inputs (0 set of ")
    table = _defaults_table(app)
    assert "| scheduler | 'K_EULER' | scheduler |" in table
    assert "| lora_scale | 0.6 | LoRA additive scale." in table
    assert not [s for s in app.selectbox if s.key.startswith("f_mode_")]  # no row until picked

    app.multiselect(key="f_other_inputs").select("scheduler").run()
    assert app.selectbox(key="f_mode_scheduler").value == "fixed"
    assert "| scheduler |" not in _defaults_table(app)
    app.selectbox(key="f_fixed_scheduler").select("DDIM").run()

    app.multiselect(key="f_other_inputs").select("lora_scale").run()
    app.selectbox(key="f_mode_lora_scale").select("swept").run()
    app.text_input(key="f_axis_lora_scale").input("0.4, x").run()
    assert any("'x'" in e.value and "lora_scale" in e.value for e in app.error)
    assert next(b for b in app.button if b.label == "Submit sweep").disabled
    app.text_input(key="f_axis_lora_scale").input("0.4, 0.8").run()
    assert _metric(app, "Cells") == "8"
    assert app.expander[-1].label.startswith("Other model inputs (2 set of ")

    next(b for b in app.button if b.label == "Submit sweep").click().run()
    assert not app.exception
    with session_scope(runtime.engine) as session:
        inputs = [g.model_input for g in session.scalars(select(Generation))]
    assert len(inputs) == 8 and {i["scheduler"] for i in inputs} == {"DDIM"}
    assert sorted({i["lora_scale"] for i in inputs}) == [0.4, 0.8]


def test_an_unpicked_input_is_not_sent(open_page, runtime) -> None:
    image_id = store_image(runtime)
    app = open_page(PAGE)
    _fill(app, image_id)
    app.multiselect(key="f_other_inputs").select("lora_scale").run()
    app.selectbox(key="f_mode_lora_scale").select("swept").run()
    app.text_input(key="f_axis_lora_scale").input("0.4, 0.8").run()
    assert _metric(app, "Cells") == "8"
    app.multiselect(key="f_other_inputs").unselect("lora_scale").run()
    assert _metric(app, "Cells") == "4"
    assert "| lora_scale | 0.6 |" in _defaults_table(app)


def test_a_scenarios_other_inputs_come_picked_and_set(open_page, runtime) -> None:
    with session_scope(runtime.engine) as session:
        session.add(Scenario(name="projection-level-2", prompt_template="a projection portrait",
                             params={"strength": 0.35, "scheduler": "DDIM"}))
    app = open_page(PAGE)
    app.selectbox(key="f_scenario").select_index(1).run()
    assert app.multiselect(key="f_other_inputs").value == ["scheduler"]
    assert app.selectbox(key="f_fixed_scheduler").value == "DDIM"
    assert app.expander[-1].label.startswith("Other model inputs (1 set of ")
    app.selectbox(key="f_scenario").select_index(0).run()  # back to a blank sweep
    assert app.multiselect(key="f_other_inputs").value == []

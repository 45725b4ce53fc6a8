"""Settings: model pricing edits with an audit entry, budgets stored and used, the system
check on a button, the image library with a confirmed delete, errors as messages."""

from __future__ import annotations

from sqlalchemy import select

from core.auth import local_user
from core.data.db import session_scope
from core.data.models import AppSetting, AuditEntry, Generation, InputImage, ModelSpec
from core.data.settings_store import DEPLOYMENT_KEY
from tests.pages.conftest import choose_tab, clear_caches, store_image
from tests.services import free_port

PAGE = "pages/settings.py"


def _button(app, label: str):
    return next(b for b in app.button if b.label == label)


def _number(app, label: str):
    return next(n for n in app.number_input if n.label == label)


def _section(app, name: str):
    return choose_tab(app, "st_section", name)


def test_empty_state(open_page) -> None:
    app = open_page(PAGE)
    assert not app.exception
    assert "No models yet" in " ".join(i.value for i in app.info)
    assert "Press Run system check" in " ".join(i.value for i in _section(app, "System check").info)
    assert "No images yet" in " ".join(i.value for i in _section(app, "Image library").info)


def test_one_section_runs_at_a_time_and_a_link_opens_it(open_page, runtime) -> None:
    store_image(runtime)
    app = open_page(PAGE)
    # Models and pricing, the first: none of the others' widgets or images.
    assert any(b.label == "Add stability-ai/sdxl" for b in app.button)
    assert not app.number_input and not app.image
    assert not any(b.label == "Run system check" for b in app.button)
    _section(app, "Image library")
    assert len(app.image) == 1 and not any(b.label == "Add stability-ai/sdxl" for b in app.button)
    linked = open_page(PAGE, query={"st_section": "Budgets and caps"})
    assert _number(linked, "Daily budget (USD)").value == 20.0 and not linked.image


def test_add_the_default_model_and_edit_its_pricing(open_page, runtime) -> None:
    app = open_page(PAGE)
    _button(app, "Add stability-ai/sdxl").click().run()
    assert "stability-ai/sdxl added." in app.success[0].value
    app.run()
    assert _number(app, "USD per second").value == 0.000725
    _number(app, "USD per second").set_value(0.0014)
    _number(app, "In-flight cap").set_value(4)
    _button(app, "Save pricing").click().run()
    assert not app.exception
    assert "Pricing of stability-ai/sdxl saved: usd_per_second 0.000725 → 0.0014" in app.success[0].value
    with session_scope(runtime.engine) as session:
        model = session.scalar(select(ModelSpec))
        assert (model.usd_per_second, model.inflight_cap) == (0.0014, 4)
        entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "edit_model_pricing"))
        assert entry.actor == local_user() and entry.detail["diff"]["inflight_cap"] == [None, 4]


def test_per_image_pricing_needs_a_price(open_page, runtime) -> None:
    from tests.factories import make_model

    with session_scope(runtime.engine) as session:
        make_model(session)
    app = open_page(PAGE)
    app.selectbox[0].set_value("per_image")
    _button(app, "Save pricing").click().run()
    assert not app.exception
    assert "A model priced per output image needs usd_per_image." in app.error[0].value


def test_budgets_are_stored_and_used(open_page, runtime) -> None:
    app = _section(open_page(PAGE), "Budgets and caps")
    assert _number(app, "Daily budget (USD)").value == 20.0
    _number(app, "Daily budget (USD)").set_value(7.5)
    _number(app, "Cells per queued job").set_value(8)
    _button(app, "Save budgets and caps").click().run()
    assert not app.exception
    assert "Saved: Daily budget (USD) 7.5, Cells per queued job 8" in app.success[0].value
    with session_scope(runtime.engine) as session:
        stored = {row.key: row.value["value"] for row in session.scalars(select(AppSetting))
                  if row.key != DEPLOYMENT_KEY}  # written by the migrations, not the page
    assert stored == {"daily_budget_usd": 7.5, "chunk_size": 8}
    assert _number(app, "Daily budget (USD)").value == 7.5
    assert "of $7.50" in " ".join(m.value for m in app.sidebar.markdown)  # the frame uses it
    _button(app, "Save budgets and caps").click().run()
    assert any(i.value == "Nothing changed." for i in app.info)


def test_system_check_runs_on_the_button(open_page) -> None:
    app = _section(open_page(PAGE), "System check")
    assert not any("Configuration" in s.value for s in app.success)
    _button(app, "Run system check").click().run()
    assert not app.exception
    ok = " ".join(s.value for s in app.success)
    assert "**Configuration**" in ok and "**Redis**" in ok and "**Replicate**" in ok
    [workers] = [e.value for e in app.error if "**Workers**" in e.value]
    assert "**Fix:** Start workers: `python -m core worker`" in workers


def test_delete_an_image_and_what_it_made(open_page, runtime, finished_sweep) -> None:
    other = store_image(runtime, color=(10, 200, 30), name="other.png")
    app = _section(open_page(PAGE), "Image library")
    assert len(app.image) == 2
    app.selectbox(key="st_delete_pick").set_value(1).run()
    assert _button(app, "Delete image").disabled
    app.checkbox(key="st_delete_sure_1").check().run()
    _button(app, "Delete image").click().run()
    assert not app.exception
    assert "Image #1 deleted with 4 generation(s) made from it." in app.success[0].value
    with session_scope(runtime.engine) as session:
        assert [i.id for i in session.scalars(select(InputImage))] == [other]
        assert not list(session.scalars(select(Generation)))
    assert len(app.image) == 1


def test_redis_down_is_a_failed_check_with_its_fix(open_page, monkeypatch) -> None:
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    clear_caches()
    app = _section(open_page(PAGE), "System check")
    _button(app, "Run system check").click().run()
    assert not app.exception
    [redis] = [e.value for e in app.error if "**Redis**" in e.value]
    assert "**Fix:** Start Redis (redis-server)" in redis

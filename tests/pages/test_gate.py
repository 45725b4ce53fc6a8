"""Gate page: empty states, a test set made on the page, the estimate and start of a gate, the
verdict with its rules and approval state, pass rules saved and audited."""

from __future__ import annotations

from sqlalchemy import select

from core.auth import local_user
from core.data.db import session_scope
from core.data.library import add_image
from core.data.models import AuditEntry, GateRun, TestSet
from core.scenarios import testsets
from core.scenarios import versions as scenarios
from tests.factories import make_production_scenario
from tests.pages.conftest import png_bytes

PAGE = "pages/gate.py"


def seed(runtime, *, with_set: bool = True) -> list[int]:
    with session_scope(runtime.engine) as session:
        ids = [add_image(session, runtime.store, runtime.settings, png_bytes(color),
                         filename=f"p{n}.png", uploaded_by="alice").id
               for n, color in enumerate([(200, 100, 90), (60, 50, 40)])]
        make_production_scenario(session, candidate_strength=0.6)
        if with_set:
            testsets.create_test_set(session, "pair", ids, actor="alice",
                                     notes={ids[1]: "dark skin, low light"})
    return ids


def section(app, name: str):
    app.segmented_control(key="gate_section").set_value(name).run()
    assert not app.exception, app.exception
    return app


def test_empty_page_says_what_to_do(open_page) -> None:
    app = open_page(PAGE)
    assert not app.exception
    assert "No scenarios yet" in app.info[0].value
    assert "No gate runs yet" in section(app, "Verdict").info[0].value


def test_start_a_gate_with_its_estimate_then_read_the_verdict(open_page, runtime) -> None:
    seed(runtime)
    app = open_page(PAGE)
    assert not app.exception, app.exception
    assert app.selectbox(key="gate_candidate").value == 4
    assert any("Production version:** v3" in m.value for m in app.markdown)
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Photos × seeds"] == "2 × 2" and metrics["Cells"] == "8"
    app.button(key="gate_start").click().run()
    assert not app.exception, app.exception
    assert "Gate run 1 started: 8 cells (0 reused)" in app.success[0].value
    with session_scope(runtime.engine) as session:
        run = session.scalar(select(GateRun))
        assert (run.candidate_version, run.production_version, run.created_by) == (
            4, 3, local_user())

    section(app, "Verdict")
    assert any("INCOMPLETE" in m.value for m in app.markdown)
    recent = app.dataframe[0].value
    assert recent["status"].tolist() == ["incomplete"] and recent["run"].tolist() == [1]
    rules = next(d.value for d in app.dataframe if "rule" in d.value.columns)
    assert set(rules["rule"]) >= {"win_rate", "failure_rate"}
    assert any("did not pass (incomplete)" in w.value and "override" in w.value
               for w in app.warning)
    assert app.get("download_button")  # the HTML report


def test_a_test_set_made_on_the_page_is_versioned(open_page, runtime) -> None:
    ids = seed(runtime, with_set=False)
    app = section(open_page(PAGE), "Test sets")
    app.text_input[0].input("hard-light")
    app.multiselect[0].set_value(ids)
    app.button[0].click().run()  # the form's submit
    assert not app.exception, app.exception
    assert "Test set hard-light saved as version 1 (2 photos)" in app.success[0].value
    with session_scope(runtime.engine) as session:
        saved = session.scalar(select(TestSet))
        assert saved.name == "hard-light" and saved.created_by == local_user()


def test_pass_rules_are_saved_and_audited(open_page, runtime) -> None:
    seed(runtime)
    app = section(open_page(PAGE), "Pass rules")
    app.number_input[0].set_value(0.4)
    app.button[0].click().run()
    assert not app.exception, app.exception
    assert "Pass rules of projection-level-1 saved." in app.success[0].value
    with session_scope(runtime.engine) as session:
        entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "set_gate_rules"))
        assert entry.detail["after"]["min_win_rate_low"] == 0.4


def test_approval_on_scenarios_shows_the_gate_and_asks_for_an_override(open_page, runtime) -> None:
    seed(runtime)
    app = open_page("pages/scenarios.py")
    assert not app.exception, app.exception
    assert any("Gate for v4: Version 4 has no gate run" in w.value for w in app.warning)
    assert "no gate run" in app.selectbox(key="sc_approve_version_1").format_func(4)
    app.text_input(key="sc_approve_reason_1").input("stronger look wanted")
    app.button[[b.label for b in app.button].index("Approve for production")].click().run()
    assert any("reason for the override" in e.value for e in app.error)
    with session_scope(runtime.engine) as session:
        assert scenarios.get_scenario(session, "projection-level-1").production_version == 3
    app.text_input(key="sc_approve_reason_1").input("stronger look wanted")
    app.text_input(key="sc_approve_override_1").input("launch today, gate after, Dana agreed")
    app.button[[b.label for b in app.button].index("Approve for production")].click().run()
    assert not app.exception, app.exception
    assert any("version 4 is now the production version" in s.value for s in app.success)
    with session_scope(runtime.engine) as session:
        entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "gate_override"))
        assert entry.actor == local_user() and entry.detail["reason"].startswith("launch today")

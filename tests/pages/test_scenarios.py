"""Scenarios: empty state, create, edit as a new version with its diff, status steps, the
production config export, bad names and bad inputs as messages."""

from __future__ import annotations

import ast
import json

from sqlalchemy import select

from core.auth import local_user
from core.data.db import session_scope
from core.data.models import ScenarioVersion
from core.scenarios.versions import create_scenario, set_status
from dashboard.scenario_widgets import EXPORT_KEY, TAB_KEY

PAGE = "pages/scenarios.py"


def _submit(app, label: str):
    return next(b for b in app.button if b.label == label)


def _fill(app, **values: str) -> None:
    for label, value in values.items():
        widget = next(w for w in [*app.text_input, *app.text_area] if w.label == label)
        widget.input(value)


def _seed(runtime, status: str = "draft") -> None:
    with session_scope(runtime.engine) as session:
        create_scenario(session, "projection-level-1", actor="alice", description="Subtle",
                        prompt_template="a person, photo", params={"strength": 0.35,
                                                                   "num_inference_steps": 28})
    if status != "draft":
        with session_scope(runtime.engine) as session:
            set_status(session, "projection-level-1", "calibrated", actor="alice")


def test_empty_state_offers_to_create(open_page) -> None:
    app = open_page(PAGE)
    assert not app.exception
    assert "No scenarios yet" in app.info[0].value
    assert app.selectbox(key="sc_pick").value == "➕ New scenario"
    assert any("No scenario is production yet" in i.value for i in app.info)


def test_create_a_scenario(open_page, runtime) -> None:
    app = open_page(PAGE)
    _fill(app, **{"Name": "projection-level-2", "Description": "Stronger",
                  "Prompt template": "a person, 3d render"})
    app.number_input[0].set_value(0.55)
    app.number_input[1].set_value(30)
    _submit(app, "Create scenario").click().run()
    assert not app.exception
    assert "Scenario projection-level-2 created as a draft (version 1)." in app.success[0].value
    assert app.selectbox(key="sc_pick").value == "projection-level-2"
    assert app.dataframe[0].value["name"].tolist() == ["projection-level-2"]
    with session_scope(runtime.engine) as session:
        [version] = session.scalars(select(ScenarioVersion))
        assert version.changed_by == local_user()
        assert version.snapshot["params"] == {"strength": 0.55, "num_inference_steps": 30}


def test_edit_makes_a_version_with_author_and_diff(open_page, runtime) -> None:
    _seed(runtime)
    app = open_page(PAGE)
    assert app.selectbox(key="sc_pick").value == "projection-level-1"
    strength = next(n for n in app.number_input if n.label == "strength")
    strength.set_value(0.4)
    _fill(app, **{"What changed and why": "less drift"})
    _submit(app, "Save as a new version").click().run()
    assert not app.exception
    assert "projection-level-1 saved as version 2." in app.success[0].value
    assert [t.label for t in app.tabs][:2] == ["Edit", "History (2 versions)"]
    assert not app.expander  # the history runs only while its tab is open
    app.session_state[TAB_KEY] = "History (2 versions)"
    app.run()
    expanders = [e.label for e in app.expander]
    assert expanders[0].startswith(f"v2 · {local_user()} · ") and expanders[0].endswith("less drift")
    diff = app.dataframe[1].value
    assert diff.to_dict("records") == [{"field": "params.strength", "before": "0.35",
                                        "after": "0.4"}]


def test_saving_unchanged_makes_no_version(open_page, runtime) -> None:
    _seed(runtime)
    app = open_page(PAGE)
    _submit(app, "Save as a new version").click().run()
    assert "Nothing changed, so no new version was made." in app.info[0].value


def test_status_steps_and_export(open_page, runtime) -> None:
    _seed(runtime)
    app = open_page(PAGE)
    _submit(app, "Mark calibrated").click().run()
    assert "projection-level-1 is now calibrated (version 2)." in app.success[0].value
    assert not any(b.label == "Move to production" for b in app.button)  # approval only
    app.text_input(key="sc_approve_reason_1").input("calibrated on 40 photos")
    _submit(app, "Approve for production").click().run()
    assert not app.exception
    assert "version 2 is now the production version" in app.success[0].value
    [python_code] = [c.value for c in app.code]  # the one export format chosen
    assert {d.label for d in app.get("download_button")} == {"Download scenario_config.py"}
    app.session_state[EXPORT_KEY] = "JSON"
    app.run()
    [json_code] = [c.value for c in app.code]
    assert "# projection-level-1: version 2, approved by " in python_code
    namespace: dict = {}
    exec(python_code, namespace)  # noqa: S102 - our own export, read as production would
    expected = {"projection-level-1": {"description": "Subtle", "version": 2, "strength": 0.35,
                                       "num_inference_steps": 28, "prompt": "a person, photo"}}
    assert namespace["scenario_config"] == expected
    assert json.loads(json_code) == expected
    assert ast.literal_eval(python_code.split("= ", 1)[1]) == expected
    assert {d.label for d in app.get("download_button")} == {"Download scenario_config.json"}


def test_editing_production_makes_a_candidate_and_the_export_stays(open_page, runtime) -> None:
    _seed(runtime, status="calibrated")
    with session_scope(runtime.engine) as session:
        from core.scenarios.versions import approve

        approve(session, "projection-level-1", 2, "alice", "first release")
    app = open_page(PAGE)
    before = [c.value for c in app.code]
    _fill(app, **{"What changed and why": "stronger"})
    next(n for n in app.number_input if n.label == "strength").set_value(0.6)
    _submit(app, "Save as a new version").click().run()
    assert not app.exception
    assert ("saved as version 3, a candidate: production still reads version 2"
            in app.success[0].value)
    assert [c.value for c in app.code] == before  # the production export did not move
    text = " ".join(m.value for m in app.markdown)
    assert "Production reads **version 2**" in text and "version 3 is a **candidate**" in text
    app.session_state[TAB_KEY] = "History (3 versions)"
    app.run()
    _submit(app, "Restore v1 as a new version").click().run()
    assert not app.exception
    assert "version 1 restored as version 4 (a candidate" in app.success[0].value


def test_export_can_include_calibrated(open_page, runtime) -> None:
    _seed(runtime, status="calibrated")
    app = open_page(PAGE)
    assert not app.code
    app.multiselect(key="sc_export_statuses").set_value(["calibrated", "production"]).run()
    assert "projection-level-1" in app.code[0].value


def test_bad_name_is_a_message(open_page, runtime) -> None:
    app = open_page(PAGE)
    _fill(app, Name="Projection Level 1")
    _submit(app, "Create scenario").click().run()
    assert not app.exception
    assert "Scenario name 'Projection Level 1' is not allowed" in app.error[0].value
    assert not app.success


def test_duplicate_name_and_bad_json_are_messages(open_page, runtime) -> None:
    _seed(runtime)
    app = open_page(PAGE)
    app.selectbox(key="sc_pick").set_value("➕ New scenario").run()
    _fill(app, Name="projection-level-1")
    _submit(app, "Create scenario").click().run()
    assert "already exists: pick another name" in app.error[0].value
    _fill(app, **{"Name": "projection-level-3", "Other model inputs (JSON object)": "{scheduler"})
    _submit(app, "Create scenario").click().run()
    assert "Other model inputs must be a JSON object" in app.error[0].value

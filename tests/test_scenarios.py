"""core.scenarios.versions: versions with diffs, status steps, promotion, and the production exports."""

from __future__ import annotations

import ast
import json

import pytest
from sqlalchemy import select

from core.scenarios import versions as scenarios
from core.errors import InvalidInput, NotFound
from core.data.models import AuditEntry, GenerationState
from tests.factories import make_generation, make_sweep


def _actions(session) -> list[str]:
    return list(session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))


def test_create_edit_and_versions(db_session):
    created = scenarios.create_scenario(
        db_session, "projection-level-1", actor="alice", description="subtle",
        params={"strength": 0.35, "num_inference_steps": 30})
    assert (created.version, created.status, created.params["strength"]) == (1, "draft", 0.35)
    edited = scenarios.edit_scenario(
        db_session, "projection-level-1",
        {"params": {"strength": 0.4, "num_inference_steps": 30, "guidance_scale": 7},
         "description": "a bit stronger"}, actor="bob", note="after review")
    assert edited.version == 2 and edited.updated_by == "bob"
    assert edited.params == {"strength": 0.4, "num_inference_steps": 30, "guidance_scale": 7.0}
    unchanged = scenarios.edit_scenario(db_session, created.id, {"description": "a bit stronger"},
                                        actor="bob")
    assert unchanged.version == 2  # nothing changed, no version
    full = scenarios.get_scenario(db_session, created.id)
    assert [v.version for v in full.versions] == [1, 2]
    first, second = full.versions
    assert first.changed_by == "alice" and first.diff == {
        "name": [None, "projection-level-1"], "description": [None, "subtle"],
        "params.num_inference_steps": [None, 30], "params.strength": [None, 0.35],
        "status": [None, "draft"]}
    assert second.diff == {"description": ["subtle", "a bit stronger"],
                           "params.guidance_scale": [None, 7.0], "params.strength": [0.35, 0.4]}
    assert second.note == "after review" and second.snapshot["params"]["strength"] == 0.4
    assert second.changed_at.tzinfo is not None
    assert _actions(db_session) == ["create_scenario", "edit_scenario"]


def test_rename_list_and_lookup(db_session):
    scenarios.create_scenario(db_session, "b-scenario", actor="alice")
    scenarios.create_scenario(db_session, "a-scenario", actor="alice")
    renamed = scenarios.edit_scenario(db_session, "b-scenario", {"name": "c-scenario"},
                                      actor="alice")
    assert renamed.name == "c-scenario"
    assert [s.name for s in scenarios.list_scenarios(db_session)] == ["a-scenario", "c-scenario"]
    with pytest.raises(InvalidInput, match="'a-scenario' already exists"):
        scenarios.edit_scenario(db_session, "c-scenario", {"name": "a-scenario"}, actor="alice")
    with pytest.raises(InvalidInput, match="'a-scenario' already exists"):
        scenarios.create_scenario(db_session, "a-scenario", actor="bob")
    with pytest.raises(NotFound, match="'nope'"):
        scenarios.get_scenario(db_session, "nope")
    with pytest.raises(NotFound, match="Scenario 999"):
        scenarios.get_scenario(db_session, 999)


@pytest.mark.parametrize("name", ["Projection Level 1", "projection_level_1", "-lead", "a--b",
                                  "", "x" * 121])
def test_bad_names_say_what_is_allowed(db_session, name):
    with pytest.raises(InvalidInput, match="lowercase letters, digits and single dashes"):
        scenarios.create_scenario(db_session, name, actor="alice")


@pytest.mark.parametrize("changes, message", [
    ({"params": {"strength": 1.5}}, "strength = 1.5"),
    ({"params": {"num_inference_steps": 25.5}}, "a whole number"),
    ({"params": {"guidance_scale": "high"}}, "guidance_scale = 'high'"),
    ({"params": {"prompt": "x"}}, "'prompt' is not allowed"),
    ({"params": {"scheduler": ["K_EULER"]}}, "scheduler"),
    ({"model_ref": "not a model"}, "owner/name"),
    ({"status": "production"}, "status has its own step"),
])
def test_bad_edits(db_session, changes, message):
    scenarios.create_scenario(db_session, "s1", actor="alice")
    with pytest.raises(InvalidInput, match=message):
        scenarios.edit_scenario(db_session, "s1", changes, actor="alice")


def test_status_steps(db_session):
    scenarios.create_scenario(db_session, "s1", actor="alice")
    with pytest.raises(InvalidInput, match="from draft to production: from draft it can go "
                                           "calibrated or back to draft"):
        scenarios.set_status(db_session, "s1", "production", actor="alice")
    with pytest.raises(InvalidInput, match="'golden' is not one of draft, calibrated, production"):
        scenarios.set_status(db_session, "s1", "golden", actor="alice")
    calibrated = scenarios.set_status(db_session, "s1", "calibrated", actor="alice")
    assert calibrated.status == "calibrated"
    with pytest.raises(InvalidInput, match="only through .Approve for production"):
        scenarios.set_status(db_session, "s1", "production", actor="bob", note="ship it")
    done = scenarios.approve(db_session, "s1", 2, "bob", "ship it, reviewed")
    assert (done.status, done.version, done.production_version) == ("production", 2, 2)
    with pytest.raises(InvalidInput, match="is in production .version 2.*withdrawing"):
        scenarios.set_status(db_session, "s1", "draft", actor="carol")
    back = scenarios.withdraw(db_session, "s1", "carol", "pulled after incident")
    assert (back.status, back.version, back.production_version) == ("draft", 3, None)
    versions = scenarios.get_scenario(db_session, "s1").versions
    assert versions[1].diff == {"status": ["draft", "calibrated"]}
    assert [s.name for s in scenarios.list_scenarios(db_session, "draft")] == ["s1"]
    with pytest.raises(InvalidInput, match="actor|who changes"):
        scenarios.set_status(db_session, "s1", "calibrated", actor=" ")


def _in_production(session, name: str = "projection-level-1"):
    created = scenarios.create_scenario(session, name, actor="alice", description="subtle",
                                        params={"strength": 0.35, "num_inference_steps": 30})
    scenarios.set_status(session, created.id, "calibrated", actor="alice")
    return scenarios.approve(session, created.id, 2, "alice", "calibrated on 40 photos")


def test_editing_a_production_scenario_makes_a_candidate_and_production_does_not_change(db_session):
    _in_production(db_session)
    before = scenarios.export_json(db_session)
    edited = scenarios.edit_scenario(db_session, "projection-level-1",
                                     {"params": {"strength": 0.6, "num_inference_steps": 30}},
                                     actor="bob")
    assert (edited.version, edited.production_version, edited.candidate) == (3, 2, 3)
    assert edited.status == "production"
    assert scenarios.export_json(db_session) == before  # production reads v2 still
    config = scenarios.production_config(db_session)["projection-level-1"]
    assert (config["version"], config["strength"]) == (2, 0.35)
    text = scenarios.export_python(db_session)
    assert "# projection-level-1: version 2, approved by alice on " in text
    assert "(calibrated on 40 photos)" in text


def test_approval_is_explicit_audited_and_says_who_and_why(db_session):
    _in_production(db_session)
    scenarios.edit_scenario(db_session, "projection-level-1",
                            {"params": {"strength": 0.6, "num_inference_steps": 30}}, actor="bob")
    with pytest.raises(InvalidInput, match="Say why"):
        scenarios.approve(db_session, "projection-level-1", 3, "carol", " ")
    with pytest.raises(NotFound, match="no version 9; it has 1, 2, 3"):
        scenarios.approve(db_session, "projection-level-1", 9, "carol", "looks right")
    with pytest.raises(InvalidInput, match="already the production version"):
        scenarios.approve(db_session, "projection-level-1", 2, "carol", "looks right")
    with pytest.raises(InvalidInput, match="Version 3 has no gate run"):
        scenarios.approve(db_session, "projection-level-1", 3, "carol", "gate passed")
    approved = scenarios.approve(db_session, "projection-level-1", 3, "carol", "gate passed",
                                 override_reason="unit test: no gate run here")
    assert approved.production_version == 3
    assert scenarios.production_config(db_session)["projection-level-1"]["strength"] == 0.6
    v3 = approved.versions[2]
    assert (v3.approved_by, v3.approval_reason) == ("carol", "gate passed")
    entry = db_session.scalars(select(AuditEntry).where(
        AuditEntry.action == "approve_scenario_version").order_by(AuditEntry.id.desc())).first()
    assert entry.actor == "carol" and entry.detail["version"] == 3
    assert entry.detail["previous_production_version"] == 2
    assert entry.detail["reason"] == "gate passed"


def test_a_draft_is_not_approved(db_session):
    scenarios.create_scenario(db_session, "s1", actor="alice")
    with pytest.raises(InvalidInput, match="is a draft: mark it calibrated first"):
        scenarios.approve(db_session, "s1", 1, "alice", "ship it now")


def test_an_earlier_version_is_restored_as_a_new_candidate(db_session):
    _in_production(db_session)
    scenarios.edit_scenario(db_session, "projection-level-1",
                            {"params": {"strength": 0.6, "num_inference_steps": 30}}, actor="bob")
    scenarios.approve(db_session, "projection-level-1", 3, "carol", "gate passed",
                      override_reason="unit test: no gate run here")
    restored = scenarios.restore_version(db_session, "projection-level-1", 2, actor="dave")
    assert (restored.version, restored.production_version, restored.candidate) == (4, 3, 4)
    assert restored.params["strength"] == 0.35
    last = restored.versions[-1] if restored.versions else scenarios.get_scenario(
        db_session, "projection-level-1").versions[-1]
    assert last.note == "Restored from version 2"
    assert scenarios.production_config(db_session)["projection-level-1"]["strength"] == 0.6


def test_promote_generation_creates_then_versions(db_session):
    sweep = make_sweep(db_session)
    gen = make_generation(db_session, sweep, strength=0.45, steps=28, guidance=6.5, seed=42,
                          prompt="portrait, studio light", negative_prompt="blurry, text")
    created = scenarios.promote_generation(db_session, gen.id, "projection-level-2", actor="alice",
                                           new_scenario=True)
    assert created.version == 1 and created.prompt_template == "portrait, studio light"
    assert created.params == {"strength": 0.45, "num_inference_steps": 28,
                              "guidance_scale": 6.5, "seed": 42}
    assert created.model_ref == f"stability-ai/sdxl:{sweep.version_id}"
    scenarios.edit_scenario(db_session, created.id,
                            {"params": {**created.params, "scheduler": "K_EULER"}}, actor="bob")
    better = make_generation(db_session, sweep, strength=0.3, steps=28, guidance=6.5, seed=7,
                             prompt="portrait, studio light", negative_prompt="blurry, text")
    promoted = scenarios.promote_generation(db_session, better.id, created.id, actor="carol")
    assert promoted.version == 3
    assert promoted.params == {"strength": 0.3, "num_inference_steps": 28, "guidance_scale": 6.5,
                               "seed": 7, "scheduler": "K_EULER"}  # other params are kept
    last = scenarios.get_scenario(db_session, created.id).versions[-1]
    assert last.diff == {"params.seed": [42, 7], "params.strength": [0.45, 0.3]}
    assert last.note == f"Promoted from generation {better.id} (sweep {sweep.id})"
    assert _actions(db_session) == ["promote_generation", "edit_scenario", "promote_generation"]


def test_promote_states_what_it_pins_and_can_leave_it_out(db_session):
    sweep = make_sweep(db_session)
    gen = make_generation(db_session, sweep, strength=0.45, steps=28, guidance=6.5, seed=42)
    _in_production(db_session)
    preview = scenarios.preview_promotion(db_session, gen.id, "projection-level-1")
    assert not preview.new_scenario and preview.in_production
    assert "pins seed 42, model version " in preview.summary()
    assert "makes a candidate version" in preview.summary()
    assert preview.changes["params.seed"] == [None, 42]
    loose = scenarios.preview_promotion(db_session, gen.id, "projection-level-1",
                                        pin_seed=False, pin_model_version=False)
    assert "pins nothing" in loose.summary() and "params.seed" not in loose.changes
    promoted = scenarios.promote_generation(db_session, gen.id, "projection-level-1",
                                            actor="bob", pin_seed=False, pin_model_version=False)
    assert "seed" not in promoted.params and promoted.model_ref == "stability-ai/sdxl"
    assert (promoted.version, promoted.production_version) == (3, 2)  # a candidate
    assert scenarios.production_config(db_session)["projection-level-1"]["strength"] == 0.35


def test_promote_refuses_bad_targets(db_session):
    sweep = make_sweep(db_session)
    gen = make_generation(db_session, sweep)
    with pytest.raises(NotFound, match="Generation 424242"):
        scenarios.promote_generation(db_session, 424242, "s1", actor="alice")
    failed = make_generation(db_session, sweep, state=GenerationState.FAILED)
    with pytest.raises(InvalidInput, match="is failed"):
        scenarios.promote_generation(db_session, failed.id, "s1", actor="alice")
    with pytest.raises(NotFound, match="'projection-levle-1' does not exist: pick an existing"):
        scenarios.promote_generation(db_session, gen.id, "projection-levle-1", actor="alice")
    assert scenarios.list_scenarios(db_session) == []  # a typo creates nothing
    with pytest.raises(NotFound, match="Scenario 77"):
        scenarios.promote_generation(db_session, gen.id, 77, actor="alice")
    with pytest.raises(InvalidInput, match="like projection-level-1"):
        scenarios.promote_generation(db_session, gen.id, "Level 2", actor="alice",
                                     new_scenario=True)
    scenarios.create_scenario(db_session, "s1", actor="alice")
    with pytest.raises(InvalidInput, match="'s1' already exists: pick it from the list"):
        scenarios.promote_generation(db_session, gen.id, "s1", actor="alice", new_scenario=True)


def _production_pair(session) -> None:
    scenarios.create_scenario(session, "projection-level-2", actor="a", description="stronger",
                              params={"strength": 0.5, "num_inference_steps": 25})
    scenarios.create_scenario(
        session, "projection-level-1", actor="a", description='subtle "quoted"\nline two é',
        prompt_template="portrait", negative_prompt="blurry", model_ref="stability-ai/sdxl",
        params={"scheduler": "K_EULER", "strength": 0.35, "guidance_scale": 7.5, "seed": 1})
    scenarios.create_scenario(session, "still-draft", actor="a", params={"strength": 0.9})
    for name in ("projection-level-1", "projection-level-2"):
        scenarios.set_status(session, name, "calibrated", actor="a")
        scenarios.approve(session, name, 2, "a", "first release")


def test_production_config_shape(db_session):
    _production_pair(db_session)
    config = scenarios.production_config(db_session)
    assert list(config) == ["projection-level-1", "projection-level-2"]
    assert config["projection-level-2"] == {"description": "stronger", "version": 2,
                                            "strength": 0.5, "num_inference_steps": 25}
    level1 = config["projection-level-1"]
    assert list(level1) == ["description", "version", "strength", "guidance_scale", "seed",
                            "prompt", "negative_prompt", "model", "endpoint", "scheduler"]
    assert level1["strength"] == 0.35 and level1["model"] == "stability-ai/sdxl"
    assert level1["endpoint"].startswith("POST /v1/predictions (version ")
    both = scenarios.production_config(db_session, statuses=("production", "draft"))
    assert list(both) == ["projection-level-1", "projection-level-2", "still-draft"]
    with pytest.raises(InvalidInput, match="'live'"):
        scenarios.production_config(db_session, statuses=("live",))


def test_exports_round_trip(db_session):
    _production_pair(db_session)
    config = scenarios.production_config(db_session)
    assert json.loads(scenarios.export_json(db_session)) == config
    text = scenarios.export_python(db_session)
    assert text.startswith("# Exported by Scenario Tuner")
    assert "\nscenario_config = {\n" in text
    rhs = text.split("scenario_config = ", 1)[1]
    assert ast.literal_eval(rhs) == config
    assert list(ast.literal_eval(rhs)["projection-level-1"]) == list(config["projection-level-1"])
    assert '        "strength": 0.35,\n' in text
    assert scenarios.export_python(db_session) == text  # stable
    namespace: dict = {}
    exec(compile(text, "ml_service.py", "exec"), namespace)  # noqa: S102 - our own output
    assert namespace["scenario_config"] == config


def test_empty_export(db_session):
    assert scenarios.production_config(db_session) == {}
    assert scenarios.export_python(db_session).endswith("scenario_config = {}\n")
    assert scenarios.export_json(db_session) == "{}\n"


def test_a_parameter_outside_the_models_schema_is_refused_before_storing(db_session):
    scenarios.create_scenario(db_session, "edit", actor="a",
                              model_ref="black-forest-labs/flux-kontext-pro")
    with pytest.raises(InvalidInput, match="aspect_ratio = '7:3' is not allowed for "
                                           "black-forest-labs/flux-kontext-pro"):
        scenarios.edit_scenario(db_session, "edit", {"params": {"aspect_ratio": "7:3"}}, actor="a")
    assert scenarios.get_scenario(db_session, "edit").params == {}


def test_an_official_models_export_names_the_models_endpoint(db_session):
    scenarios.create_scenario(db_session, "edit", actor="a",
                              model_ref="black-forest-labs/flux-kontext-pro",
                              params={"aspect_ratio": "1:1", "safety_tolerance": 2})
    config = scenarios.production_config(db_session, statuses=("draft",))["edit"]
    assert config == {"description": "", "model": "black-forest-labs/flux-kontext-pro",
                      "endpoint": "POST /v1/models/black-forest-labs/flux-kontext-pro/predictions",
                      "aspect_ratio": "1:1", "safety_tolerance": 2}

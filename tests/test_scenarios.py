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
    done = scenarios.set_status(db_session, "s1", "production", actor="bob", note="ship it")
    assert (done.status, done.version) == ("production", 3)
    with pytest.raises(InvalidInput, match="only back to draft"):
        scenarios.set_status(db_session, "s1", "calibrated", actor="bob")
    assert scenarios.set_status(db_session, "s1", "production", actor="bob").version == 3
    back = scenarios.set_status(db_session, "s1", "draft", actor="carol")
    assert (back.status, back.version) == ("draft", 4)
    versions = scenarios.get_scenario(db_session, "s1").versions
    assert versions[2].diff == {"status": ["calibrated", "production"]}
    assert [s.name for s in scenarios.list_scenarios(db_session, "draft")] == ["s1"]
    with pytest.raises(InvalidInput, match="actor|who changes"):
        scenarios.set_status(db_session, "s1", "calibrated", actor=" ")


def test_promote_generation_creates_then_versions(db_session):
    sweep = make_sweep(db_session)
    gen = make_generation(db_session, sweep, strength=0.45, steps=28, guidance=6.5, seed=42,
                          prompt="portrait, studio light", negative_prompt="blurry, text")
    created = scenarios.promote_generation(db_session, gen.id, "projection-level-2", actor="alice")
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


def test_promote_refuses_bad_targets(db_session):
    sweep = make_sweep(db_session)
    gen = make_generation(db_session, sweep)
    with pytest.raises(NotFound, match="Generation 424242"):
        scenarios.promote_generation(db_session, 424242, "s1", actor="alice")
    failed = make_generation(db_session, sweep, state=GenerationState.FAILED)
    with pytest.raises(InvalidInput, match="is failed"):
        scenarios.promote_generation(db_session, failed.id, "s1", actor="alice")
    with pytest.raises(NotFound, match="'s1'"):
        scenarios.promote_generation(db_session, gen.id, "s1", actor="alice",
                                     create_if_missing=False)
    with pytest.raises(NotFound, match="Scenario 77"):
        scenarios.promote_generation(db_session, gen.id, 77, actor="alice")
    with pytest.raises(InvalidInput, match="like projection-level-1"):
        scenarios.promote_generation(db_session, gen.id, "Level 2", actor="alice")


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
        scenarios.set_status(session, name, "production", actor="a")


def test_production_config_shape(db_session):
    _production_pair(db_session)
    config = scenarios.production_config(db_session)
    assert list(config) == ["projection-level-1", "projection-level-2"]
    assert config["projection-level-2"] == {"description": "stronger", "strength": 0.5,
                                            "num_inference_steps": 25}
    level1 = config["projection-level-1"]
    assert list(level1) == ["description", "strength", "guidance_scale", "seed", "prompt",
                            "negative_prompt", "model", "scheduler"]
    assert level1["strength"] == 0.35 and level1["model"] == "stability-ai/sdxl"
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

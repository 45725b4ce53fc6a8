"""Scenarios: named prompt + parameter presets, versioned, promoted from generations, and
exported as the production service's ``scenario_config`` dict.

Every change (create, edit, status, promote) is a new ``ScenarioVersion`` with who, when, a
note, a snapshot and a diff ``{field: [old, new]}`` (parameters as ``params.<key>``), and one
audit entry. Status moves draft → calibrated → production; any status may go back to draft.
Parameters use the production service's names: strength, num_inference_steps,
guidance_scale, seed (plus any other model input given by name).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.data.audit import record
from core.errors import InvalidInput, NotFound
from core.data.models import Scenario, ScenarioStatus, ScenarioVersion, utcnow
from core.scenarios.rules import PARAM_RULES, clean_field, parse_status
from core.scenarios.rules import validate_name  # noqa: F401 - re-exported for pages
from core.planning.sweeps import succeeded_generation

FIELDS = ("name", "description", "prompt_template", "negative_prompt", "params", "model_ref")
NEXT_STATUS = {ScenarioStatus.DRAFT: ScenarioStatus.CALIBRATED,
               ScenarioStatus.CALIBRATED: ScenarioStatus.PRODUCTION}


@dataclasses.dataclass(frozen=True)
class VersionInfo:
    version: int
    changed_by: str
    changed_at: dt.datetime
    note: str
    diff: dict[str, list[Any]]
    snapshot: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class ScenarioInfo:
    id: int
    name: str
    description: str
    prompt_template: str
    negative_prompt: str
    params: dict[str, Any]
    model_ref: str | None
    status: str
    version: int
    updated_at: dt.datetime
    updated_by: str
    versions: tuple[VersionInfo, ...] = ()  # filled by get_scenario only


# -- reading -------------------------------------------------------------------------------------
def _find(session: Session, scenario: int | str) -> Scenario | None:
    if isinstance(scenario, int) and not isinstance(scenario, bool):
        return session.get(Scenario, scenario)
    return session.scalar(select(Scenario).where(Scenario.name == str(scenario).strip()))


def _get(session: Session, scenario: int | str) -> Scenario:
    found = _find(session, scenario)
    if found is None:
        what = f"Scenario {scenario}" if isinstance(scenario, int) else f"Scenario {scenario!r}"
        raise NotFound(f"{what} does not exist.")
    return found


def _info(s: Scenario, versions: Iterable[ScenarioVersion] = ()) -> ScenarioInfo:
    return ScenarioInfo(
        id=s.id, name=s.name, description=s.description, prompt_template=s.prompt_template,
        negative_prompt=s.negative_prompt, params=dict(s.params or {}), model_ref=s.model_ref,
        status=ScenarioStatus(s.status).value, version=s.version, updated_at=s.updated_at,
        updated_by=s.updated_by,
        versions=tuple(VersionInfo(v.version, v.changed_by, v.changed_at, v.note, dict(v.diff),
                                   dict(v.snapshot)) for v in versions))


def list_scenarios(session: Session, status: str | None = None) -> list[ScenarioInfo]:
    query = select(Scenario).order_by(Scenario.name)
    if status is not None:
        query = query.where(Scenario.status == parse_status(status))
    return [_info(s) for s in session.scalars(query)]


def get_scenario(session: Session, scenario: int | str) -> ScenarioInfo:
    """One scenario by id or name, with every version (oldest first)."""
    found = _get(session, scenario)
    versions = session.scalars(select(ScenarioVersion).where(
        ScenarioVersion.scenario_id == found.id).order_by(ScenarioVersion.version))
    return _info(found, versions)


# -- writing -------------------------------------------------------------------------------------
def _snapshot(s: Scenario) -> dict[str, Any]:
    return {"name": s.name, "description": s.description, "prompt_template": s.prompt_template,
            "negative_prompt": s.negative_prompt, "params": dict(s.params or {}),
            "model_ref": s.model_ref, "status": ScenarioStatus(s.status).value}


def _diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, list[Any]]:
    diff: dict[str, list[Any]] = {}
    for field in new:
        if field == "params":
            before, after = old.get("params") or {}, new["params"] or {}
            for key in sorted(set(before) | set(after)):
                if before.get(key) != after.get(key):
                    diff[f"params.{key}"] = [before.get(key), after.get(key)]
        elif field not in old and not new[field]:
            continue  # a new scenario's empty fields are no change worth listing
        elif old.get(field) != new[field]:
            diff[field] = [old.get(field), new[field]]
    return diff


def _apply(session: Session, scenario: Scenario, changes: Mapping[str, Any], *, actor: str,
           note: str, action: str, detail: Mapping[str, Any] | None = None) -> ScenarioInfo:
    """Set the changed fields; when anything changed, write a version and an audit entry."""
    if not (actor or "").strip():
        raise InvalidInput("Changing a scenario needs the name of who changes it.")
    if "name" in changes and changes["name"] != scenario.name:
        _check_unique(session, changes["name"], scenario.id)
    before = _snapshot(scenario) if scenario.id is not None else {}
    for field, value in changes.items():
        setattr(scenario, field, value)
    diff = _diff(before, _snapshot(scenario))
    if not diff:
        return _info(scenario)
    if scenario.id is None:
        session.add(scenario)
    scenario.version = (scenario.version or 0) + 1
    scenario.updated_at, scenario.updated_by = utcnow(), actor
    session.flush()
    session.add(ScenarioVersion(scenario_id=scenario.id, version=scenario.version,
                                snapshot=_snapshot(scenario), diff=diff, note=note.strip(),
                                changed_by=actor, changed_at=scenario.updated_at))
    record(session, actor, action, "scenario", scenario.id,
           {"name": scenario.name, "version": scenario.version, "diff": diff, **(detail or {})})
    session.flush()
    return _info(scenario)


def _check_unique(session: Session, name: str, own_id: int | None) -> None:
    other = _find(session, name)
    if other is not None and other.id != own_id:
        raise InvalidInput(f"A scenario named {name!r} already exists: pick another name.")


def create_scenario(session: Session, name: str, *, actor: str, description: str = "",
                    prompt_template: str = "", negative_prompt: str = "",
                    params: Mapping[str, Any] | None = None, model_ref: str | None = None,
                    note: str = "") -> ScenarioInfo:
    """A new draft scenario, as version 1."""
    fields = {"name": name, "description": description, "prompt_template": prompt_template,
              "negative_prompt": negative_prompt, "params": params or {}, "model_ref": model_ref}
    return _create(session, fields, actor=actor, note=note or "Created", action="create_scenario")


def _create(session: Session, fields: Mapping[str, Any], *, actor: str, note: str, action: str,
            detail: Mapping[str, Any] | None = None) -> ScenarioInfo:
    clean = {field: clean_field(field, value) for field, value in fields.items()}
    scenario = Scenario(status=ScenarioStatus.DRAFT, version=0)
    return _apply(session, scenario, {**clean, "status": ScenarioStatus.DRAFT}, actor=actor,
                  note=note, action=action, detail=detail)


def edit_scenario(session: Session, scenario: int | str, changes: Mapping[str, Any], *,
                  actor: str, note: str = "") -> ScenarioInfo:
    """Change any of name, description, prompt_template, negative_prompt, params (replaced
    whole) and model_ref. Nothing changed means no new version."""
    unknown = set(changes) - set(FIELDS)
    if unknown:
        raise InvalidInput(f"{', '.join(sorted(unknown))} cannot be edited; editable: "
                           f"{', '.join(FIELDS)} (status has its own step).")
    clean = {field: clean_field(field, value) for field, value in changes.items()}
    return _apply(session, _get(session, scenario), clean, actor=actor, note=note,
                  action="edit_scenario")


def set_status(session: Session, scenario: int | str, status: str, *, actor: str,
               note: str = "") -> ScenarioInfo:
    """draft → calibrated → production, or back to draft from anywhere."""
    target = parse_status(status)
    found = _get(session, scenario)
    current = ScenarioStatus(found.status)
    if target not in (current, ScenarioStatus.DRAFT, NEXT_STATUS.get(current)):
        step = NEXT_STATUS.get(current)
        allowed = f"{step.value} or back to draft" if step else "only back to draft"
        raise InvalidInput(f"Scenario {found.name!r} cannot go from {current.value} to "
                           f"{target.value}: from {current.value} it can go {allowed}.")
    return _apply(session, found, {"status": target}, actor=actor, note=note,
                  action="set_scenario_status")


def promote_generation(session: Session, generation_id: int, scenario: int | str, *, actor: str,
                       create_if_missing: bool = True, note: str = "") -> ScenarioInfo:
    """Copy a succeeded generation's prompt, negative prompt and parameters (strength, steps,
    guidance, seed, model) into a scenario as a new version; other parameters are kept.
    A scenario name that does not exist yet is created as a draft."""
    gen = succeeded_generation(session, generation_id, "promoted")
    sweep = gen.sweep
    model = f"{sweep.model_ref}:{sweep.version_id}" if sweep.version_id else sweep.model_ref
    taken = {"strength": gen.strength, "num_inference_steps": gen.steps,
             "guidance_scale": gen.guidance, "seed": gen.seed}
    taken = {k: v for k, v in taken.items() if v is not None}
    note = note or f"Promoted from generation {gen.id} (sweep {gen.sweep_id})"
    detail = {"generation_id": gen.id, "sweep_id": gen.sweep_id}
    found = _find(session, scenario)
    if found is None:
        if not create_if_missing or isinstance(scenario, int):
            _get(session, scenario)  # raises NotFound
        fields = {"name": str(scenario), "description": "", "prompt_template": gen.prompt,
                  "negative_prompt": gen.negative_prompt, "params": taken, "model_ref": model}
        return _create(session, fields, actor=actor, note=note, action="promote_generation",
                       detail=detail)
    changes = {"prompt_template": gen.prompt, "negative_prompt": gen.negative_prompt,
               "params": {**(found.params or {}), **taken}, "model_ref": model}
    clean = {field: clean_field(field, value) for field, value in changes.items()}
    return _apply(session, found, clean, actor=actor, note=note, action="promote_generation",
                  detail=detail)


# -- export --------------------------------------------------------------------------------------
def production_config(session: Session,
                      statuses: Iterable[str] = ("production",)) -> dict[str, dict[str, Any]]:
    """``{name: {"description": ..., "strength": ..., ...}}`` for scenarios in ``statuses``,
    by name; keys in a fixed order, each present only when set."""
    wanted = [parse_status(s) for s in statuses]
    config: dict[str, dict[str, Any]] = {}
    for s in session.scalars(select(Scenario).where(Scenario.status.in_(wanted))
                             .order_by(Scenario.name)):
        params = dict(s.params or {})
        entry: dict[str, Any] = {"description": s.description}
        entry.update({key: params.pop(key) for key in PARAM_RULES if key in params})
        for key, value in (("prompt", s.prompt_template), ("negative_prompt", s.negative_prompt),
                           ("model", s.model_ref)):
            if value:
                entry[key] = value
        entry.update({key: params[key] for key in sorted(params)})
        config[s.name] = entry
    return config


def export_json(session: Session, statuses: Iterable[str] = ("production",)) -> str:
    return json.dumps(production_config(session, statuses), indent=4, ensure_ascii=False) + "\n"


def export_python(session: Session, statuses: Iterable[str] = ("production",)) -> str:
    """``scenario_config = {...}`` as ``ml_service.py`` holds it; the right-hand side is a
    literal that ``ast.literal_eval`` reads back to ``production_config``."""
    statuses = list(statuses)
    config = production_config(session, statuses)
    header = f"# Exported by Scenario Tuner: {', '.join(statuses)} scenarios.\n"
    return header + "scenario_config = " + _literal(config, 0) + "\n"


def _literal(value: Any, depth: int) -> str:
    if isinstance(value, dict):
        if not value:
            return "{}"
        pad = "    " * (depth + 1)
        items = "".join(f"{pad}{_literal(k, depth + 1)}: {_literal(v, depth + 1)},\n"
                        for k, v in value.items())
        return "{\n" + items + "    " * depth + "}"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # JSON's escapes mean the same in Python
    if value is None or isinstance(value, (bool, int, float)):
        return repr(value)
    raise InvalidInput(f"{value!r} cannot be written into the Python config.")

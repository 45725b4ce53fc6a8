"""Scenarios: named prompt + parameter presets, versioned, promoted from generations, and
exported as the production service's ``scenario_config`` dict.

Every change (create, edit, status, promote, restore) is a new ``ScenarioVersion`` with who,
when, a note, a snapshot and a diff ``{field: [old, new]}`` (parameters as ``params.<key>``),
and one audit entry. Status moves draft → calibrated; production is reached only through
``approve`` (who and why, audited), which pins the version production reads
(``Scenario.production_version``). Edits and promotions of a scenario in production make
candidate versions: production keeps reading the approved one until another is approved.
Parameters are the model's inputs by their own names (scheduler, width, aspect_ratio …),
except the strength, kept as ``strength`` as the production service names it whatever the
model calls it (prompt_strength on SDXL). Every parameter is checked against the scenario's
model schema (SDXL when none is set) before it is stored, and a scenario prefills a sweep
with all of them.
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
from core.scenarios.rules import PARAM_ORDER, clean_field, parse_status
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
    approved_by: str | None = None
    approved_at: dt.datetime | None = None
    approval_reason: str | None = None


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
    production_version: int | None = None  # the approved version production reads

    @property
    def candidate(self) -> int | None:
        """The newest version when it is not the one production reads (awaiting approval)."""
        if self.production_version is not None and self.version != self.production_version:
            return self.version
        return None


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
        updated_by=s.updated_by, production_version=s.production_version,
        versions=tuple(VersionInfo(v.version, v.changed_by, v.changed_at, v.note, dict(v.diff),
                                   dict(v.snapshot), v.approved_by, v.approved_at,
                                   v.approval_reason) for v in versions))


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
    if "params" in changes or "model_ref" in changes:  # checked before anything is changed
        _check_params(session, changes.get("model_ref", scenario.model_ref),
                      changes.get("params", scenario.params) or {})
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


def model_schema(session: Session, model_ref: str | None) -> tuple[str, dict[str, Any] | None]:
    """The scenario model's name and input schema: the stored one, else the known model's
    (None when neither is here yet: nothing to check against)."""
    from core.data.models import ModelSpec
    from core.planning.known_models import SDXL_REF, known_model
    from core.planning.schema import parse_model_ref

    name = parse_model_ref(model_ref)[0] if model_ref else SDXL_REF
    spec = session.scalar(select(ModelSpec).where(ModelSpec.ref == name)) if name else None
    if spec is not None and spec.input_schema:
        return name or "", spec.input_schema
    known = known_model(name or "")
    return name or "", known.openapi_schema if known else None


def model_inputs(params: Mapping[str, Any], openapi_schema: Mapping[str, Any]) -> dict[str, Any]:
    """A scenario's parameters as the model's inputs (``strength`` under the model's name)."""
    from core.planning.schema import input_roles

    roles = input_roles(openapi_schema)
    return {(roles.strength or key) if key == "strength" else key: value
            for key, value in params.items()}


def _check_params(session: Session, model_ref: str | None, params: Mapping[str, Any]) -> None:
    from core.planning.schema import validate_input

    name, openapi_schema = model_schema(session, model_ref)
    if openapi_schema is None or not params:
        return
    inputs = model_inputs(params, openapi_schema)
    shown = {model_key: key for key, model_key in zip(params, inputs)}
    problems = [p for p in validate_input(openapi_schema, inputs, supplied_later=inputs.keys()
                                          | {"prompt", "image", "input_image", "image_input"})
                if "not an input" not in p and "not inputs" not in p]
    if problems:
        first = problems[0]
        key = next((k for k in inputs if first.startswith(k + " ")), None)
        value = inputs.get(key) if key else None
        label = f"{shown.get(key, key)} = {value!r}" if key else "A parameter"
        raise InvalidInput(f"{label} is not allowed for {name}: {first}.")


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
    """draft → calibrated, or back to draft. Production is entered only by ``approve`` and
    left only by ``withdraw``: both say who and why."""
    target = parse_status(status)
    found = _get(session, scenario)
    current = ScenarioStatus(found.status)
    if target == current:
        return _info(found)
    if current == ScenarioStatus.PRODUCTION:
        raise InvalidInput(f"Scenario {found.name!r} is in production (version "
                           f"{found.production_version}): its status changes only by approving "
                           "another version, or by withdrawing it from production with a reason.")
    if target == ScenarioStatus.PRODUCTION and current == ScenarioStatus.CALIBRATED:
        raise InvalidInput(f"Scenario {found.name!r} goes into production only through "
                           "\"Approve for production\" (who and why are recorded).")
    if target not in (current, ScenarioStatus.DRAFT, NEXT_STATUS.get(current)):
        step = NEXT_STATUS.get(current)
        allowed = f"{step.value} or back to draft" if step else "only back to draft"
        raise InvalidInput(f"Scenario {found.name!r} cannot go from {current.value} to "
                           f"{target.value}: from {current.value} it can go {allowed}.")
    return _apply(session, found, {"status": target}, actor=actor, note=note,
                  action="set_scenario_status")


@dataclasses.dataclass(frozen=True)
class PromotionPreview:
    """What a promotion will do, said before it is done: the scenario (or a new one), the
    changes, and what it pins (seed, model version) that the person may leave out."""

    generation_id: int
    scenario: str
    new_scenario: bool
    changes: dict[str, list[Any]]
    seed: int | None  # pinned when pin_seed
    model_version: str | None  # pinned when pin_model_version
    pin_seed: bool
    pin_model_version: bool
    in_production: bool  # the promotion makes a candidate; production is unchanged

    def summary(self) -> str:
        pins = [f"seed {self.seed}" if self.pin_seed and self.seed is not None else None,
                f"model version {self.model_version[:12]}…"
                if self.pin_model_version and self.model_version else None]
        pinned = ", ".join(p for p in pins if p) or "nothing (seed and model version left out)"
        target = (f"new scenario {self.scenario!r} (draft)" if self.new_scenario
                  else f"scenario {self.scenario!r}")
        text = f"Promote generation {self.generation_id} into {target}; pins {pinned}."
        if self.in_production:
            text += (" It is in production: this makes a candidate version, production keeps "
                     "its approved one until a person approves the new one.")
        return text


def _promoted_fields(session: Session, generation_id: int, *, pin_seed: bool,
                     pin_model_version: bool) -> tuple[Any, dict[str, Any], str, str | None]:
    gen = succeeded_generation(session, generation_id, "promoted")
    pinned, taken, version = _inputs_of(session, gen)
    if not pin_seed:
        taken.pop("seed", None)
    model = pinned if pin_model_version else pinned.split(":", 1)[0]
    return gen, taken, model, version


def _target(session: Session, scenario: int | str, new_scenario: bool) -> Scenario | None:
    found = _find(session, scenario)
    if new_scenario:
        if found is not None:
            raise InvalidInput(f"A scenario named {found.name!r} already exists: pick it from "
                               "the list instead of New scenario, or choose another name.")
        if isinstance(scenario, int):
            raise InvalidInput("A new scenario needs a name, not an id.")
        return None
    if found is None:
        what = f"Scenario {scenario}" if isinstance(scenario, int) else f"Scenario {scenario!r}"
        raise NotFound(f"{what} does not exist: pick an existing scenario from the list, or "
                       "choose New scenario to create one.")
    return found


def _promotion_changes(found: Scenario | None, gen: Any, taken: dict[str, Any], model: str,
                       pin_seed: bool) -> dict[str, Any]:
    params = dict(found.params or {}) if found is not None else {}
    if not pin_seed:
        params.pop("seed", None)  # left out: production draws its own
    return {"prompt_template": gen.prompt, "negative_prompt": gen.negative_prompt,
            "params": {**params, **taken}, "model_ref": model}


def preview_promotion(session: Session, generation_id: int, scenario: int | str, *,
                      new_scenario: bool = False, pin_seed: bool = True,
                      pin_model_version: bool = True) -> PromotionPreview:
    gen, taken, model, version = _promoted_fields(session, generation_id, pin_seed=pin_seed,
                                                  pin_model_version=pin_model_version)
    found = _target(session, scenario, new_scenario)
    changes = {f: clean_field(f, v) for f, v in
               _promotion_changes(found, gen, taken, model, pin_seed).items()}
    before = _snapshot(found) if found is not None else {}
    after = {**before, **changes} if found is not None else changes
    return PromotionPreview(
        generation_id, found.name if found is not None else str(scenario).strip(),
        found is None, _diff(before, after), gen.seed, version, pin_seed, pin_model_version,
        found is not None and found.production_version is not None)


def promote_generation(session: Session, generation_id: int, scenario: int | str, *, actor: str,
                       new_scenario: bool = False, pin_seed: bool = True,
                       pin_model_version: bool = True, note: str = "") -> ScenarioInfo:
    """Copy a succeeded generation's prompt, negative prompt, model and every input it was
    made with (unless left out, its seed and model version) into an existing scenario as a
    new version, other parameters kept; or, only when ``new_scenario`` says so, into a new
    draft. A scenario in production gets a candidate version: production does not change."""
    gen, taken, model, _ = _promoted_fields(session, generation_id, pin_seed=pin_seed,
                                            pin_model_version=pin_model_version)
    found = _target(session, scenario, new_scenario)
    note = note or f"Promoted from generation {gen.id} (sweep {gen.sweep_id})"
    detail = {"generation_id": gen.id, "sweep_id": gen.sweep_id, "pin_seed": pin_seed,
              "pin_model_version": pin_model_version}
    changes = _promotion_changes(found, gen, taken, model, pin_seed)
    if found is None:
        fields = {"name": str(scenario), "description": "", **changes}
        return _create(session, fields, actor=actor, note=note, action="promote_generation",
                       detail=detail)
    clean = {field: clean_field(field, value) for field, value in changes.items()}
    return _apply(session, found, clean, actor=actor, note=note, action="promote_generation",
                  detail=detail)


# -- production: approve, withdraw, restore ------------------------------------------------------
APPROVAL_REASON_MIN = 5


def version_row(session: Session, scenario: Scenario, version: int) -> ScenarioVersion:
    row = session.scalar(select(ScenarioVersion).where(ScenarioVersion.scenario_id == scenario.id,
                                                       ScenarioVersion.version == version))
    if row is None:
        have = session.scalars(select(ScenarioVersion.version).where(
            ScenarioVersion.scenario_id == scenario.id).order_by(ScenarioVersion.version)).all()
        raise NotFound(f"Scenario {scenario.name!r} has no version {version}; it has "
                       f"{', '.join(map(str, have)) or 'none'}.")
    return row


def approve(session: Session, scenario: int | str, version: int, actor: str, reason: str,
            override_reason: str | None = None) -> ScenarioInfo:
    """Make ``version`` the one production reads: the only way a scenario's production
    config changes. Needs who and why; audited as ``approve_scenario_version`` with the
    version production read before. ``override_reason`` is for approving despite a gate that
    did not pass (checked by the gate, core.scenarios.verdict.require_gate)."""
    if not (actor or "").strip():
        raise InvalidInput("Approving for production needs the name of who approves.")
    why = (reason or "").strip()
    if len(why) < APPROVAL_REASON_MIN:
        raise InvalidInput("Say why this version should go to production (a reason of at "
                           f"least {APPROVAL_REASON_MIN} characters); it is recorded with your name.")
    found = _get(session, scenario)
    if ScenarioStatus(found.status) == ScenarioStatus.DRAFT:
        raise InvalidInput(f"Scenario {found.name!r} is a draft: mark it calibrated first, then "
                           "approve a version for production.")
    row = version_row(session, found, version)
    if found.production_version == version:
        raise InvalidInput(f"Version {version} of {found.name!r} is already the production "
                           "version: nothing changed.")
    # The production gate: raises unless the version's latest gate passed or override_reason
    # says why it may go anyway (that override is audited as gate_override).
    from core.scenarios.verdict import require_gate

    gate = require_gate(session, found.id, version, actor=actor, override_reason=override_reason)
    previous = found.production_version
    now = utcnow()
    row.approved_by, row.approved_at, row.approval_reason = actor, now, why
    row.override_reason = None if gate.passed else (override_reason or "").strip()
    found.production_version = version
    found.status = ScenarioStatus.PRODUCTION
    found.updated_at, found.updated_by = now, actor
    record(session, actor, "approve_scenario_version", "scenario", found.id,
           {"name": found.name, "version": version, "previous_production_version": previous,
            "reason": why, "override_reason": row.override_reason,
            "gate": gate.message, "gate_run_id": gate.latest.gate_run_id if gate.latest else None})
    session.flush()
    return get_scenario(session, found.id)


def withdraw(session: Session, scenario: int | str, actor: str, reason: str) -> ScenarioInfo:
    """Take a scenario out of production (back to draft), saying who and why; audited."""
    why = (reason or "").strip()
    if len(why) < APPROVAL_REASON_MIN or not (actor or "").strip():
        raise InvalidInput("Withdrawing from production needs who and why (a reason of at "
                           f"least {APPROVAL_REASON_MIN} characters).")
    found = _get(session, scenario)
    if found.production_version is None:
        raise InvalidInput(f"Scenario {found.name!r} is not in production: nothing to withdraw.")
    previous = found.production_version
    found.production_version = None
    return _apply(session, found, {"status": ScenarioStatus.DRAFT}, actor=actor, note=why,
                  action="withdraw_from_production", detail={"production_version": previous})


def restore_version(session: Session, scenario: int | str, version: int, *, actor: str,
                    note: str = "") -> ScenarioInfo:
    """An earlier version's fields as a new version (a candidate when in production)."""
    found = _get(session, scenario)
    snapshot = version_row(session, found, version).snapshot
    changes = {field: clean_field(field, snapshot.get(field)) for field in FIELDS
               if field != "name" and field in snapshot}
    return _apply(session, found, changes, actor=actor,
                  note=note or f"Restored from version {version}", action="restore_version",
                  detail={"restored_from": version})


def _inputs_of(session: Session, gen: Any) -> tuple[str, dict[str, Any], str | None]:
    """The generation's model reference (pinned to its version when it has one), its
    parameters (every input sent, image, prompt and negative prompt excepted, with the schema
    defaults it ran with for strength, steps, guidance and seed) and the version."""
    from core.data.models import ModelSpec
    from core.planning.schema import input_roles

    sweep = gen.sweep
    spec = session.get(ModelSpec, gen.model_id or sweep.model_id)
    roles = input_roles(spec.input_schema or {}) if spec is not None else None
    ref = spec.ref if spec is not None else sweep.model_ref
    version = spec.version_id if spec is not None else sweep.version_id
    versioned = spec is None or spec.create_via == "versioned"
    model = f"{ref}:{version}" if version and versioned else ref
    skip = {roles.prompt, roles.negative_prompt, roles.image} if roles else {
        "prompt", "negative_prompt", "image"}
    sent = {k: v for k, v in (gen.model_input or {}).items() if k not in skip}
    strength_name = roles.strength if roles else "prompt_strength"
    if strength_name and strength_name in sent:
        sent["strength"] = sent.pop(strength_name)
    resolved = {"strength": gen.strength,
                (roles.steps if roles and roles.steps else "num_inference_steps"): gen.steps,
                (roles.guidance if roles and roles.guidance else "guidance_scale"): gen.guidance,
                "seed": gen.seed}
    return (model, {**{k: v for k, v in resolved.items() if v is not None}, **sent},
            version or None)


def endpoint_of(session: Session, model_ref: str | None) -> str | None:
    """How production creates this scenario's predictions: the API call, by model."""
    from core.data.models import ModelSpec
    from core.engine.replicate_api import CreateTarget
    from core.planning.known_models import known_model
    from core.planning.schema import parse_model_ref

    if not model_ref:
        return None
    name, version = parse_model_ref(model_ref)
    spec = session.scalar(select(ModelSpec).where(ModelSpec.ref == name))
    known = known_model(name or "")
    via = spec.create_via if spec is not None else (known.create_via if known else "versioned")
    if version:
        via = "versioned" if via == "official" else via
    return CreateTarget(via, name or "", version or (spec.version_id if spec else None),
                        spec.deployment if spec is not None else None).endpoint_text


# -- export --------------------------------------------------------------------------------------
def production_config(session: Session,
                      statuses: Iterable[str] = ("production",)) -> dict[str, dict[str, Any]]:
    """``{name: {"description": ..., "strength": ..., ...}}`` for scenarios in ``statuses``,
    by name; keys in a fixed order, each present only when set."""
    return {name: entry for name, entry, _ in _exported(session, statuses)}


def _exported(session: Session, statuses: Iterable[str]
              ) -> list[tuple[str, dict[str, Any], ScenarioVersion | None]]:
    """(name, entry, approved version row) per exported scenario. A scenario in production
    exports its approved version, with ``version`` = its number, never a later candidate."""
    wanted = [parse_status(s) for s in statuses]
    rows = []
    for s in session.scalars(select(Scenario).where(Scenario.status.in_(wanted))
                             .order_by(Scenario.name)):
        approved = (version_row(session, s, s.production_version)
                    if s.production_version is not None else None)
        fields = approved.snapshot if approved is not None else _snapshot(s)
        params = dict(fields.get("params") or {})
        entry: dict[str, Any] = {"description": fields.get("description", "")}
        if approved is not None:
            entry["version"] = approved.version
        entry.update({key: params.pop(key) for key in PARAM_ORDER if key in params})
        for key, field in (("prompt", "prompt_template"), ("negative_prompt", "negative_prompt"),
                           ("model", "model_ref")):
            if fields.get(field):
                entry[key] = fields[field]
        if fields.get("model_ref"):  # which API call production makes for this model
            entry["endpoint"] = endpoint_of(session, fields["model_ref"])
        entry.update({key: params[key] for key in sorted(params)})
        rows.append((s.name, entry, approved))
    return rows


def export_json(session: Session, statuses: Iterable[str] = ("production",)) -> str:
    return json.dumps(production_config(session, statuses), indent=4, ensure_ascii=False) + "\n"


def export_python(session: Session, statuses: Iterable[str] = ("production",)) -> str:
    """``scenario_config = {...}`` as ``ml_service.py`` holds it; the right-hand side is a
    literal that ``ast.literal_eval`` reads back to ``production_config``."""
    statuses = list(statuses)
    rows = _exported(session, statuses)
    header = f"# Exported by Scenario Tuner: {', '.join(statuses)} scenarios.\n"
    for name, _, approved in rows:
        if approved is not None:
            header += (f"# {name}: version {approved.version}, approved by "
                       f"{approved.approved_by or 'an earlier release'}"
                       + (f" on {approved.approved_at:%Y-%m-%d %H:%M} UTC"
                          if approved.approved_at else "")
                       + (f" ({' '.join(approved.approval_reason.split())})"
                          if approved.approval_reason else "")
                       + "\n")
    config = {name: entry for name, entry, _ in rows}
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

"""Scenarios: reads and writes through core.scenarios.versions (one transaction each), the editor form,
the status steps, the version history with diffs, and the production config export."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

import pandas as pd
import streamlit as st

from core.scenarios import versions as core_scenarios
from core.data.db import read_scope, session_scope
from core.errors import InvalidInput
from core.data.models import ScenarioStatus
from core.scenarios.versions import NEXT_STATUS, ScenarioInfo, VersionInfo
from dashboard import format as fmt
from dashboard import frame
from dashboard.resources import runtime

EXPORT_KEY = "sc_export_format"  # the export shown: Python or JSON
TAB_KEY = "sc_tab"  # a scenario's open tab: Edit or History (N versions)
STATUSES = tuple(status.value for status in ScenarioStatus)  # draft → calibrated → production
_BADGE_COLOURS = {ScenarioStatus.DRAFT: "gray", ScenarioStatus.CALIBRATED: "blue",
                  ScenarioStatus.PRODUCTION: "green"}
_MOVE_LABELS = {ScenarioStatus.CALIBRATED: "Mark calibrated",
                ScenarioStatus.DRAFT: "Back to draft"}
# the production service's parameter names, in the editor's order, with their number input;
# the allowed range is the scenario model's schema (checked in core.scenarios on save, with a
# message naming the bound), not repeated here
NUMBER_PARAMS = {
    "strength": dict(step=0.05, format="%.2f",
                     help="0.2–0.4 subtle; 0.8–1.0 may lose the person's identity. Saved as "
                          "the model's own strength input (prompt_strength on SDXL)."),
    "num_inference_steps": dict(step=1, help="25–30 in production."),
    "guidance_scale": dict(step=0.5, format="%.1f"),
    "seed": dict(min_value=0, step=1, help="Empty for a random seed."),
}


# -- reads and writes ----------------------------------------------------------------------------
@st.cache_data(ttl=5, show_spinner=False)
def scenarios() -> list[ScenarioInfo]:
    with read_scope(runtime().engine) as session:
        return core_scenarios.list_scenarios(session)


def scenario(name: str) -> ScenarioInfo:
    """One scenario with all its versions (fresh: the page shows it right after a change)."""
    with read_scope(runtime().engine) as session:
        return core_scenarios.get_scenario(session, name)


def _write(fn: Callable[..., ScenarioInfo], *args: Any, **kwargs: Any) -> ScenarioInfo:
    with session_scope(runtime().engine) as session:
        info = fn(session, *args, **kwargs)
    scenarios.clear()
    return info


def create(fields: dict[str, Any], *, actor: str, note: str = "") -> ScenarioInfo:
    fields = dict(fields)
    return _write(core_scenarios.create_scenario, fields.pop("name"), actor=actor, note=note,
                  **fields)


def edit(name: str, changes: dict[str, Any], *, actor: str, note: str = "") -> ScenarioInfo:
    return _write(core_scenarios.edit_scenario, name, changes, actor=actor, note=note)


def set_status(name: str, status: str, *, actor: str) -> ScenarioInfo:
    return _write(core_scenarios.set_status, name, status, actor=actor)


def approve(name: str, version: int, *, actor: str, reason: str,
            override_reason: str | None = None) -> ScenarioInfo:
    return _write(core_scenarios.approve, name, version, actor, reason,
                  override_reason=override_reason)


def withdraw(name: str, *, actor: str, reason: str) -> ScenarioInfo:
    return _write(core_scenarios.withdraw, name, actor, reason)


def restore(name: str, version: int, *, actor: str) -> ScenarioInfo:
    return _write(core_scenarios.restore_version, name, version, actor=actor)


def preview_promotion(generation_id: int, target: str, **options: bool
                      ) -> core_scenarios.PromotionPreview:
    with session_scope(runtime().engine) as session:
        return core_scenarios.preview_promotion(session, generation_id, target, **options)


def export(kind: str, statuses: Iterable[str]) -> str:
    """The ``scenario_config`` of the scenarios in ``statuses`` as ``json`` or ``python``."""
    write = core_scenarios.export_json if kind == "json" else core_scenarios.export_python
    with session_scope(runtime().engine) as session:
        return write(session, list(statuses))


def config_is_empty(statuses: Iterable[str]) -> bool:
    with read_scope(runtime().engine) as session:
        return not core_scenarios.production_config(session, list(statuses))


# -- widgets -------------------------------------------------------------------------------------
def table(items: list[ScenarioInfo]) -> None:
    rows = [{"name": s.name, "status": s.status, "version": s.version,
             "strength": s.params.get("strength"), "steps": s.params.get("num_inference_steps"),
             "guidance": s.params.get("guidance_scale"), "description": s.description,
             "changed by": s.updated_by, "changed": fmt.ago(s.updated_at)} for s in items]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")


def _other_params(text: str) -> dict[str, Any]:
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"Other model inputs must be a JSON object, like "
                           f'{{"scheduler": "K_EULER"}}: {exc.msg} at character {exc.pos}.') from exc
    if not isinstance(value, dict):
        raise InvalidInput('Other model inputs must be a JSON object, like {"scheduler": "K_EULER"}.')
    return value


def editor(current: ScenarioInfo | None, key: str) -> tuple[dict[str, Any], str] | None:
    """The scenario form; on submit, (fields, change note). Parameters left empty are unset.
    Raises InvalidInput for other inputs that are not a JSON object."""
    params = dict(current.params) if current else {}
    with st.form(key):
        name = st.text_input("Name", value=current.name if current else "",
                             placeholder="projection-level-1",
                             help="Lowercase letters, digits and single dashes.")
        description = st.text_input("Description", value=current.description if current else "")
        prompt = st.text_area("Prompt template", value=current.prompt_template if current else "",
                              height=80)
        negative = st.text_input("Negative prompt",
                                 value=current.negative_prompt if current else "")
        model = st.text_input("Model", value=(current.model_ref or "") if current else "",
                              placeholder="stability-ai/sdxl")
        columns = st.columns(len(NUMBER_PARAMS))
        chosen: dict[str, Any] = {}
        for column, (param, spec) in zip(columns, NUMBER_PARAMS.items()):
            chosen[param] = column.number_input(param, value=params.pop(param, None), **spec)
        other = st.text_area("Other model inputs (JSON object)",
                             value=json.dumps(params) if params else "", height=68)
        note = st.text_input("What changed and why", placeholder="e.g. less drift at 0.35")
        label = "Create scenario" if current is None else "Save as a new version"
        if not st.form_submit_button(label, type="primary"):
            return None
    fields = {"name": name.strip(), "description": description, "prompt_template": prompt,
              "negative_prompt": negative, "model_ref": model.strip() or None,
              "params": {**_other_params(other),
                         **{k: v for k, v in chosen.items() if v is not None}}}
    return fields, note


def status_steps(current: ScenarioInfo, on_status: Callable[[str], None]) -> None:
    """draft → calibrated → production, the current step in bold, and the allowed moves:
    calibrated, or back to draft; production only through approval (below)."""
    status = ScenarioStatus(current.status)
    steps = " → ".join(f"**:{_BADGE_COLOURS[s]}-badge[{s.value}]**" if s == status else s.value
                       for s in ScenarioStatus)
    st.markdown(f"Status: {steps}")
    if current.production_version is not None:
        text = f"Production reads **version {current.production_version}**"
        if current.candidate is not None:
            text += (f"; version {current.candidate} is a **candidate**: production does not "
                     "change until a person approves it")
        st.markdown(text + ".")
    if status == ScenarioStatus.PRODUCTION:
        return  # leaves production only by approving another version or withdrawing
    moves = [target for target in (NEXT_STATUS.get(status), ScenarioStatus.DRAFT)
             if target not in (None, status, ScenarioStatus.PRODUCTION)]
    for column, target in zip(st.columns(len(moves) + 2), moves):
        if column.button(_MOVE_LABELS[target], key=f"sc_status_{current.name}_{target.value}",
                         type="primary" if target != ScenarioStatus.DRAFT else "secondary"):
            on_status(target.value)


def approval_form(current: ScenarioInfo) -> tuple[int, str, str | None] | None:
    """"Approve for production": which version (each with its latest gate result), why, and
    an override reason when its gate did not pass; returns (version, reason, override) when
    pressed."""
    from dashboard import gate_widgets

    if current.status == "draft":
        st.caption("Mark the scenario calibrated first; then a version can be approved for "
                   "production.")
        return None
    versions = [v.version for v in reversed(current.versions)] or [current.version]
    gates = gate_widgets.gate_states(current.id, tuple(versions))
    newest = gates.get(versions[0])
    if newest is not None and versions[0] != current.production_version:
        (st.success if newest.passed else st.warning)(
            f"Gate for v{versions[0]}: {fmt.plain(newest.message)}"
            + ("" if newest.passed else " Approving it needs an override reason (audited); "
               "check it on the Gate page first."))
    with st.form(f"sc_approve_{current.id}"):
        st.markdown("**Approve for production**")
        version = st.selectbox("Version", versions, format_func=lambda v: f"v{v}" + (
            " (production now)" if v == current.production_version else
            " (newest)" if v == current.version else "")
            + gate_widgets.gate_label(gates.get(v)), key=f"sc_approve_version_{current.id}")
        reason = st.text_input("Why this version (recorded with your name)",
                               key=f"sc_approve_reason_{current.id}")
        override = st.text_input("Override reason (only if its gate did not pass)",
                                 key=f"sc_approve_override_{current.id}")
        if not st.form_submit_button("Approve for production", type="primary"):
            return None
    return int(version), reason, override.strip() or None


def withdraw_form(current: ScenarioInfo) -> str | None:
    if current.production_version is None:
        return None
    with st.expander("Withdraw from production"):
        reason = st.text_input("Why (recorded with your name)", key=f"sc_withdraw_{current.id}")
        if st.button("Withdraw from production", key=f"sc_withdraw_btn_{current.id}"):
            return reason
    return None


def promote_form(generation_id: int, *, key: str, disabled: bool,
                 promote: Callable[..., str]) -> None:
    """Promote a cell: an existing scenario from the list, or "New scenario" said explicitly
    with a name; what will be pinned (seed, model version), each with a choice to leave it
    out; the resulting change shown before the button."""
    from dashboard.errors import shown_errors

    new_label = "➕ New scenario"
    names = [s.name for s in scenarios()]
    target = st.selectbox("Promote into scenario", [*names, new_label], key=f"{key}_target",
                          disabled=disabled)
    new = target == new_label
    name = st.text_input("New scenario name", placeholder="projection-level-3",
                         key=f"{key}_new_name", disabled=disabled) if new else target
    left, right = st.columns(2)
    pin_seed = left.checkbox("Pin the seed", value=True, key=f"{key}_pin_seed", disabled=disabled)
    pin_model = right.checkbox("Pin the model version", value=True, key=f"{key}_pin_model",
                               disabled=disabled)
    options = dict(new_scenario=new, pin_seed=pin_seed, pin_model_version=pin_model)
    ready = not disabled and bool((name or "").strip())
    if ready:
        with shown_errors("checking the promotion"):
            preview = preview_promotion(generation_id, name.strip(), **options)
            st.caption(fmt.plain(preview.summary()))
            if preview.changes:
                st.dataframe(pd.DataFrame([{"field": f, "before": _show(a), "after": _show(b)}
                                           for f, (a, b) in preview.changes.items()]),
                             hide_index=True, width="stretch")
    if st.button("Promote these settings", key=f"{key}_go", type="primary", disabled=not ready):
        with shown_errors("promoting the settings"):
            st.success(fmt.plain(promote(generation_id, name.strip(), **options)))


def _show(value: Any) -> str:
    return "–" if value is None or value == "" else str(value)


def history(versions: tuple[VersionInfo, ...], *, production_version: int | None = None,
            on_restore: Callable[[int], None] | None = None) -> None:
    """Newest first: who, when, the note, what changed (field, before, after), who approved
    it for production and why, and a button to restore an earlier one as a new version."""
    for version in reversed(versions):
        badge = " · :green-badge[production]" if version.version == production_version else ""
        title = (f"v{version.version} · {fmt.plain(version.changed_by)} · "
                 f"{version.changed_at:%Y-%m-%d %H:%M} UTC · "
                 f"{fmt.plain(version.note or 'no note')}{badge}")
        with st.expander(title, expanded=version.version == versions[-1].version):
            if version.approved_by:
                st.caption(f"Approved for production by {fmt.plain(version.approved_by)} on "
                           f"{version.approved_at:%Y-%m-%d %H:%M} UTC: "
                           f"{fmt.plain(version.approval_reason)}")
            rows = [{"field": field, "before": _show(old), "after": _show(new)}
                    for field, (old, new) in version.diff.items()]
            st.dataframe(pd.DataFrame(rows, columns=["field", "before", "after"]),
                         hide_index=True, width="stretch")
            if on_restore is not None and version.version != versions[-1].version and st.button(
                    f"Restore v{version.version} as a new version",
                    key=f"sc_restore_{version.version}"):
                on_restore(version.version)


def export_panel(statuses: list[str]) -> None:
    if not statuses:
        st.info("Choose which statuses to export.")
        return
    if config_is_empty(statuses):
        st.info(f"No scenario is {' or '.join(statuses)} yet: mark one calibrated and approve "
                "a version for production above, or include calibrated ones in the export.")
        return
    def show(fmt_name: str, file_name: str, mime: str, language: str) -> None:
        text = export(fmt_name, statuses)
        st.download_button(f"Download {file_name}", text.encode(), file_name=file_name,
                           mime=mime, icon=":material/download:")
        st.code(text, language=language)

    # Lazy: only the chosen format is worked out and sent.
    frame.sections({
        "Python (ml_service.py)": lambda: show("python", "scenario_config.py", "text/x-python",
                                               "python"),
        "JSON": lambda: show("json", "scenario_config.json", "application/json", "json"),
    }, key=EXPORT_KEY, in_url=False)

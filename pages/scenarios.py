"""Scenarios: the list; create and edit (each change a version with author, time and diff);
status draft → calibrated; production only by approving a version (who and why); restore an
earlier version; export the production scenario_config (the approved versions)."""

import streamlit as st

from dashboard import format as fmt
from dashboard import frame, runs_view
from dashboard import scenario_widgets as sw
from dashboard.errors import shown_errors

NEW = "➕ New scenario"

user = frame.page_setup()
st.title("Scenarios")
runs_view.show_flash()
if "sc_goto" in st.session_state:  # chosen after a create or rename, before the box exists
    st.session_state.sc_pick = st.session_state.pop("sc_goto")

items = []
with shown_errors("loading scenarios"):
    items = sw.scenarios()
if items:
    sw.table(items)
else:
    st.info("No scenarios yet. Create one below, or promote a good cell's settings from "
            "Gallery or Review.")

names = [s.name for s in items]
if st.session_state.get("sc_pick") not in (NEW, *names):
    st.session_state.sc_pick = names[0] if names else NEW
picked = st.selectbox("Scenario", [NEW, *names], key="sc_pick")


def done(message: str, name: str) -> None:
    st.session_state.flash.append(("success", message))
    st.session_state.sc_goto = name
    st.rerun()


if picked == NEW:
    st.subheader("New scenario")
    with shown_errors("creating the scenario"):
        submitted = sw.editor(None, key="sc_new")
        if submitted:
            fields, note = submitted
            created = sw.create(fields, actor=user, note=note)
            done(f"Scenario {created.name} created as a draft (version 1).", created.name)
else:
    current = None
    with shown_errors("loading the scenario"):
        current = sw.scenario(picked)
    if current is not None:
        st.subheader(f"{fmt.plain(current.name)} · v{current.version}")
        st.caption(f"Last changed by {fmt.plain(current.updated_by)} on "
                   f"{current.updated_at:%Y-%m-%d %H:%M} UTC")

        def change_status(target: str) -> None:
            with shown_errors("changing the status"):
                changed = sw.set_status(current.name, target, actor=user)
                done(f"{changed.name} is now {changed.status} (version {changed.version}).",
                     changed.name)

        sw.status_steps(current, change_status)
        with shown_errors("approving for production"):
            approval = sw.approval_form(current)
            if approval is not None:
                version, reason, override = approval
                approved = sw.approve(current.name, version, actor=user, reason=reason,
                                      override_reason=override)
                done(f"{approved.name}: version {version} is now the production version.",
                     approved.name)
        with shown_errors("withdrawing from production"):
            reason = sw.withdraw_form(current)
            if reason is not None:
                gone = sw.withdraw(current.name, actor=user, reason=reason)
                done(f"{gone.name} is out of production (now a draft).", gone.name)

        def restore(version: int) -> None:
            with shown_errors("restoring the version"):
                restored = sw.restore(current.name, version, actor=user)
                done(f"{restored.name}: version {version} restored as version "
                     f"{restored.version}" + (" (a candidate: production is unchanged)."
                                              if restored.candidate else "."), restored.name)

        # The history (an expander and a diff table a version) runs and is sent only while
        # its tab is open; the editor is drawn in either, so a change typed but not saved
        # survives a look at the history.
        edit_tab, history_tab = st.tabs(["Edit", f"History ({len(current.versions)} versions)"],
                                        key=sw.TAB_KEY, on_change="rerun")
        with edit_tab:
            with shown_errors("saving the scenario"):
                submitted = sw.editor(current, key=f"sc_edit_{current.id}_{current.version}")
                if submitted:
                    fields, note = submitted
                    edited = sw.edit(current.name, fields, actor=user, note=note)
                    if edited.version == current.version:
                        st.info("Nothing changed, so no new version was made.")
                    else:
                        done(f"{edited.name} saved as version {edited.version}" + (
                            f", a candidate: production still reads version "
                            f"{edited.production_version} until one is approved."
                            if edited.candidate else "."), edited.name)
        if history_tab.open:
            with history_tab:
                sw.history(current.versions, production_version=current.production_version,
                           on_restore=restore)

st.divider()
st.subheader("Export the production config")
st.caption("The `scenario_config` dict the production service (ml_service.py) reads, as Python "
           "and as JSON: each production scenario as its approved version, with its number.")
statuses = st.multiselect("Scenarios with status", list(sw.STATUSES), default=["production"],
                          key="sc_export_statuses")
with shown_errors("exporting the config"):
    sw.export_panel(statuses)

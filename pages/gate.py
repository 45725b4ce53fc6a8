"""Gate: check a candidate version of a scenario against production before approving it —
on a test set of photos, with the same seeds, judged blind in pairs, with a verdict."""

import streamlit as st

from core.scenarios.gate import GateRequest
from dashboard import format as fmt
from dashboard import frame, runs_view
from dashboard import gate_panel as gp
from dashboard import gate_widgets as gw
from dashboard.errors import shown_errors

SECTIONS = ["Check a candidate", "Blind review", "Verdict", "Test sets", "Pass rules"]

user = frame.page_setup()
gp.init_state()
st.title("Gate")
st.caption("Before a candidate version goes to production: run it and the production version "
           "on the same photos with the same seeds, judge the outputs blind in pairs, and read "
           "the verdict with its evidence.")
runs_view.show_flash()

scenarios = []
with shown_errors("loading scenarios"):
    scenarios = gw.scenario_choices()
by_name = {s["name"]: s for s in scenarios}
section = st.segmented_control("Section", SECTIONS, default=SECTIONS[0], key="gate_section",
                               label_visibility="collapsed") or SECTIONS[0]


def pick_run(key: str) -> int | None:
    runs = gw.gate_runs()
    if not runs:
        st.info("No gate runs yet: start one under “Check a candidate”.")
        return None
    labels = {r["id"]: f"#{r['id']} {r['scenario']} v{r['candidate']} vs v{r['production']} "
                       f"({r['created_by']}, {r['created_at']:%d %b %H:%M})" for r in runs}
    return st.selectbox("Gate run", list(labels), format_func=labels.get, key=key)


if section == "Check a candidate":
    if not scenarios:
        st.info("No scenarios yet: create one on Scenarios.")
        st.stop()
    name = st.selectbox("Scenario", list(by_name), key="gate_scenario")
    chosen = by_name[name]
    production = chosen["production"]
    if production is None:
        st.info(f"{fmt.plain(name)} has no production version yet, so there is nothing to check a "
                "candidate against: its first approval needs no gate.")
        st.stop()
    others = [v["version"] for v in reversed(chosen["versions"]) if v["version"] != production]
    if not others:
        st.info(f"{fmt.plain(name)} has only its production version (v{production}): edit it on "
                "Scenarios to make a candidate.")
        st.stop()
    info = {v["version"]: v for v in chosen["versions"]}
    left, right = st.columns(2)
    candidate = left.selectbox(
        "Candidate version", others, key="gate_candidate",
        format_func=lambda v: f"v{v} · {info[v]['by']} · {info[v]['note'] or 'no note'}")
    right.markdown(f"**Production version:** v{production}")
    right.caption(fmt.plain(f"Candidate: {info[candidate]['params']} · "
                            f"{info[candidate]['model'] or 'sdxl'}\nProduction: "
                            f"{info[production]['params']} · {info[production]['model'] or 'sdxl'}"))
    sets = gw.test_sets(chosen["id"])
    if not sets:
        st.info("No test set for this scenario (and no shared one): make one under “Test sets”.")
        st.stop()
    set_labels = {t.id: f"{t.name} · v{t.version} · {len(t.photos)} photos · "
                        f"{t.scenario_name or 'shared'}" for t in sets}
    c1, c2, c3, c4 = st.columns(4)
    test_set = c1.selectbox("Test set", list(set_labels), format_func=set_labels.get,
                            key="gate_set")
    seeds = c2.number_input("Seeds per photo", 1, 20, 2, key="gate_seeds",
                            help="The same seeds for both versions; the same for every gate on "
                                 "this test set, so production's outputs are reused.")
    reviewers = c3.number_input("Reviewers per pair", 1, 10, 1, key="gate_reviewers")
    budget = c4.number_input("Cap (USD)", 0.0, value=float(gw.runtime().settings.sweep_budget_usd),
                             step=0.5, key="gate_budget", help="Checked before it starts.")
    fresh = st.toggle("Fresh run (do not reuse identical outputs)", key="gate_fresh")
    request = GateRequest(chosen["id"], int(candidate), test_set, seeds=int(seeds),
                          reviewers_per_pair=int(reviewers), budget_usd=float(budget),
                          fresh_run=fresh, production_version=production)
    plan = None
    with shown_errors("estimating the gate"):
        plan = gw.estimate(request)
    if plan is not None:
        gw.plan_summary(plan)
        over = plan.estimated_cost_usd > budget
        if over:
            st.error(f"The estimate is over the cap of ${budget:.4f}: use fewer seeds or photos, "
                     "or raise the cap.")
        if st.button("Check candidate against production", type="primary", disabled=over,
                     key="gate_start"):
            with shown_errors("starting the gate"):
                started = gw.start(request, user=user)
                note = ("" if started.dispatched else
                        " Redis does not answer: the cells are saved and sent when it is back.")
                st.session_state.flash.append((
                    "success", f"Gate run {started.gate_run_id} started: {started.cells} cells "
                               f"({started.reused} reused).{note} Judge its pairs under "
                               "“Blind review” as they finish."))
                st.rerun()

elif section == "Blind review":
    run_id = pick_run("gate_review_run")

    @st.fragment
    def pair_panel(run_id: int) -> None:
        with shown_errors("loading the pairs"):
            gp.panel(run_id, user)
        if st.button("Refresh: look for newly finished pairs", key="gate_refresh"):
            st.rerun(scope="fragment")

    if run_id is not None:
        pair_panel(run_id)

elif section == "Verdict":
    with shown_errors("listing gate runs"):
        recent = gw.recent_verdicts()
        if recent:
            st.dataframe(recent, hide_index=True, width="stretch")
    run_id = pick_run("gate_verdict_run")
    if run_id is not None:
        res = None
        with shown_errors("computing the verdict"):
            res = gw.result(run_id)
        if res is not None:
            gw.verdict_view(res)
            with shown_errors("building the report"):
                st.download_button("Download the report (one HTML file)",
                                   gw.report_html(run_id), file_name=f"gate-{run_id}.html",
                                   mime="text/html", key="gate_report")
            st.markdown("**Approval**")
            with shown_errors("checking approval"):
                check = gw.approval(res.scenario_id, res.candidate_version)
                (st.success if check.passed else st.warning)(
                    f"Approving v{res.candidate_version}: {fmt.plain(check.message)}"
                    + ("" if check.passed else " Approval asks for an explicit, audited override "
                                               "with a reason."))

elif section == "Test sets":
    sets = gw.test_sets()
    NEW = "➕ New test set"
    labels = {t.name: t for t in sets}
    picked = st.selectbox("Test set", [NEW, *labels], key="gate_set_pick")
    existing = labels.get(picked)
    with st.form(f"gate_set_form_{existing.id if existing else 'new'}_"
                 f"{existing.version if existing else 0}"):
        name = st.text_input("Name", value=existing.name if existing else "",
                             disabled=existing is not None, placeholder="portraits-hard-light")
        owner = st.selectbox("Belongs to", ["(shared)", *by_name],
                             index=([None, *[s["id"] for s in scenarios]].index(
                                 existing.scenario_id) if existing else 0),
                             disabled=existing is not None)
        description = st.text_input("Description", value=existing.description if existing else "")
        photos = gw.photo_picker(existing.image_ids if existing else [], key=f"gate_set_photos_{picked}")
        notes = gw.notes_editor(photos, {p.image_id: p.note for p in existing.photos}
                                if existing else {}, key=f"gate_set_notes_{picked}")
        if st.form_submit_button("Save test set", type="primary"):
            with shown_errors("saving the test set"):
                saved = gw.save_test_set(name, photos, notes, user=user,
                                         scenario=None if owner == "(shared)" else owner,
                                         description=description, existing=existing)
                st.session_state.flash.append(
                    ("success", f"Test set {saved.name} saved as version {saved.version} "
                                f"({len(saved.photos)} photos)."))
                st.rerun()
    st.caption("Changing the photos or notes makes a new version; a gate run keeps the version "
               "it ran on. Deleting a photo from the library removes it from its sets (audited).")
    if existing:
        st.dataframe([{"photo": p.image_id, "file": p.label, "note": p.note}
                      for p in existing.photos], hide_index=True, width="stretch")

elif section == "Pass rules":
    if not scenarios:
        st.info("No scenarios yet.")
        st.stop()
    name = st.selectbox("Scenario", list(by_name), key="gate_rules_scenario")
    scenario_id = by_name[name]["id"]
    st.caption("A gate passes when the lower end of the candidate's win-rate interval reaches "
               "the bound and no metric is worse by more than its margin (mean paired delta).")
    with shown_errors("saving the pass rules"):
        values = gw.rules_form(scenario_id, gw.rules(scenario_id), key=f"gate_rules_{scenario_id}")
        if values is not None:
            gw.save_rules(scenario_id, values, user=user)
            st.success(f"Pass rules of {fmt.plain(name)} saved.")

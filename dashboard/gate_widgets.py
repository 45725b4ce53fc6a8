"""The Gate page's building blocks: reads and writes through core.scenarios (gate, verdict,
testsets), the start form with its estimate, the verdict with its evidence, test sets and
pass rules."""

from __future__ import annotations

import dataclasses
from typing import Any

import pandas as pd
import streamlit as st

from core.data.db import read_scope, session_scope
from core.insight.pairwise import Interval
from core.scenarios import gate as core_gate
from core.scenarios import testsets as core_sets
from core.scenarios import verdict as core_verdict
from core.scenarios.gate_report import render_html
from core.scenarios.versions import get_scenario, list_scenarios
from dashboard import format as fmt
from dashboard import queries
from dashboard.resources import media, runtime

STATUS_BADGES = {"pass": ":green-badge[PASS]", "fail": ":red-badge[FAIL]",
                 "incomplete": ":orange-badge[INCOMPLETE]"}


# -- reads ---------------------------------------------------------------------------------------
@st.cache_data(ttl=5, show_spinner=False)
def scenario_choices() -> list[dict[str, Any]]:
    """Every scenario with its versions and its production version (None: none yet)."""
    with read_scope(runtime().engine) as session:
        out = []
        for s in list_scenarios(session):
            full = get_scenario(session, s.id)
            row = core_gate.scenario_row(session, s.id)
            out.append({"id": s.id, "name": s.name,
                        "production": core_gate.production_version(session, row),
                        "versions": [{"version": v.version, "by": v.changed_by,
                                      "at": v.changed_at, "note": v.note,
                                      "params": v.snapshot.get("params") or {},
                                      "model": v.snapshot.get("model_ref")}
                                     for v in full.versions]})
        return out


@st.cache_data(ttl=5, show_spinner=False)
def test_sets(scenario_id: int | None = None) -> list[core_sets.TestSetInfo]:
    with read_scope(runtime().engine) as session:
        return core_sets.list_test_sets(session, scenario_id)


@st.cache_data(ttl=3, show_spinner=False)
def gate_runs(scenario_id: int | None = None) -> list[dict[str, Any]]:
    with read_scope(runtime().engine) as session:
        names = {s.id: s.name for s in list_scenarios(session)}
        return [{"id": r.id, "scenario": names.get(r.scenario_id, "?"),
                 "scenario_id": r.scenario_id, "candidate": r.candidate_version,
                 "production": r.production_version, "seeds": len(r.seeds),
                 "reviewers_per_pair": r.reviewers_per_pair, "created_by": r.created_by,
                 "created_at": r.created_at}
                for r in core_gate.list_gate_runs(session, scenario_id)]


@st.cache_data(ttl=10, show_spinner=False)
def recent_verdicts(limit: int = 10) -> list[dict[str, Any]]:
    """The latest gate runs with their status and headline numbers, newest first."""
    with read_scope(runtime().engine) as session:
        rows = []
        for run in core_gate.list_gate_runs(session, limit=limit):
            res = core_verdict.gate_result(session, run.id)
            wr = res.preference.win_rate
            rows.append({"run": run.id, "scenario": res.scenario_name,
                         "versions": f"v{res.candidate_version} vs v{res.production_version}",
                         "status": res.status, "win rate (95% CI)": _pct(wr),
                         "ties": res.preference.ties,
                         "pairs judged": f"{res.pairs_complete}/{res.pairs_reviewable}",
                         "by": res.created_by, "started": res.created_at})
        return rows


def result(gate_run_id: int) -> core_verdict.GateResult:
    with session_scope(runtime().engine) as session:
        return core_verdict.gate_result(session, gate_run_id)


def report_html(gate_run_id: int) -> bytes:
    return render_html(result(gate_run_id), media).encode("utf-8")


def approval(scenario_id: int, version: int) -> core_verdict.ApprovalGate:
    with session_scope(runtime().engine) as session:
        return core_verdict.approval_gate(session, scenario_id, version)


@st.cache_data(ttl=5, show_spinner=False)
def gate_states(scenario_id: int, versions: tuple[int, ...]) -> dict[int, core_verdict.ApprovalGate]:
    """What approving each version has to go on: its latest gate and whether it passed."""
    with read_scope(runtime().engine) as session:
        return {v: core_verdict.approval_gate(session, scenario_id, v) for v in versions}


def gate_label(check: core_verdict.ApprovalGate | None) -> str:
    if check is None or (check.latest is None and check.passed):
        return ""
    if check.latest is None:
        return " · no gate run"
    return f" · gate run {check.latest.gate_run_id}: {check.latest.status}" + (
        "" if check.passed or check.latest.status != "pass" else " (against an older production)")


def rules(scenario_id: int) -> core_verdict.PassRules:
    with session_scope(runtime().engine) as session:
        return core_verdict.get_rules(session, scenario_id)


# -- writes --------------------------------------------------------------------------------------
def _changed() -> None:
    test_sets.clear()
    gate_runs.clear()
    scenario_choices.clear()


def estimate(request: core_gate.GateRequest) -> core_gate.GatePlan:
    return core_gate.estimate_gate(runtime(), request)


def start(request: core_gate.GateRequest, *, user: str) -> core_gate.StartedGate:
    started = core_gate.start_gate(runtime(), request, actor=user)
    _changed()
    queries.sweep_summaries.clear()
    return started


def save_test_set(name: str, image_ids: list[int], notes: dict[int, str], *, user: str,
                  scenario: str | None, description: str,
                  existing: core_sets.TestSetInfo | None) -> core_sets.TestSetInfo:
    with session_scope(runtime().engine) as session:
        if existing is None:
            saved = core_sets.create_test_set(session, name, image_ids, actor=user, notes=notes,
                                              scenario=scenario, description=description)
        else:
            before = set(existing.image_ids)
            saved = core_sets.update_test_set(
                session, existing.id, actor=user, add=[i for i in image_ids if i not in before],
                remove=[i for i in existing.image_ids if i not in set(image_ids)], notes=notes,
                description=description)
    _changed()
    return saved


def save_rules(scenario_id: int, values: dict[str, Any], *, user: str) -> None:
    with session_scope(runtime().engine) as session:
        core_verdict.set_rules(session, scenario_id, values, actor=user)


# -- widgets -------------------------------------------------------------------------------------
def _pct(i: Interval) -> str:
    if i.estimate is None:
        return "–"
    return (f"{i.estimate:.0%}" if i.low is None
            else f"{i.estimate:.0%} ({i.low:.0%}–{i.high:.0%})")


def _delta(i: Interval, digits: int = 3) -> str:
    if i.estimate is None:
        return "–"
    text = f"{i.estimate:+.{digits}f}"
    return text if i.low is None else f"{text} ({i.low:+.{digits}f} to {i.high:+.{digits}f})"


def plan_summary(plan: core_gate.GatePlan) -> None:
    cols = st.columns(4)
    cols[0].metric("Photos × seeds", f"{len(plan.photos)} × {len(plan.seeds)}")
    cols[1].metric("Cells", plan.cells, help="Candidate and production, one per photo and seed.")
    cols[2].metric("Reused", plan.reused, help="Identical requests that ran before: no cost.")
    cols[3].metric("Estimated cost", fmt.usd(plan.estimated_cost_usd))
    st.caption(f"Candidate v{plan.candidate_version} ({fmt.plain(plan.candidate.model.ref)}, "
               f"{plan.candidate.to_run} to run) against production v{plan.production_version} "
               f"({fmt.plain(plan.production.model.ref)}, {plan.production.to_run} to run); seeds "
               f"{', '.join(map(str, plan.seeds))}.")


def verdict_view(res: core_verdict.GateResult) -> None:
    st.markdown(f"### {STATUS_BADGES.get(res.status, res.status)} Gate run {res.gate_run_id}: "
                f"{fmt.plain(res.scenario_name)} v{res.candidate_version} against "
                f"v{res.production_version}")
    st.caption(f"Test set {fmt.plain(res.test_set)} (version {res.test_set_version}) · seeds "
               f"{', '.join(map(str, res.seeds))} · {res.reviewers_per_pair} reviewer(s) per pair "
               f"· started by {fmt.plain(res.created_by)} · {fmt.endpoint_badge(res.endpoint)}")
    for reason in res.reasons:
        st.markdown(f"- {fmt.plain(reason)}")
    pref = res.preference
    cols = st.columns(4)
    cols[0].metric("Candidate win rate (95% CI)", _pct(pref.win_rate),
                   help="Decisive pairs only (Wilson interval); a pair's outcome is the mean of "
                        "its reviewers' choices.")
    cols[1].metric("Wins / losses / ties", f"{pref.wins} / {pref.losses} / {pref.ties}")
    cols[2].metric("Pairs complete", f"{res.pairs_complete} / {res.pairs_reviewable}",
                   help=f"{res.pairs_total} pairs; {res.cells_unfinished} cell(s) still running.")
    f = res.failures
    cols[3].metric("Failure rate cand. / prod.",
                   f"{_pct(f.candidate)} / {_pct(f.production)}",
                   help=f"Safety filter: {f.candidate_safety} / {f.production_safety}; "
                        f"difference {_delta(f.difference, 2)} (Newcombe).")
    st.markdown("**Pass rules**")
    st.dataframe(pd.DataFrame([{"rule": c.rule, "result": "pass" if c.passed else
                                "not yet known" if c.passed is None else "FAIL",
                                "evidence": c.detail} for c in res.checks]),
                 hide_index=True, width="stretch")
    st.markdown("**Metric deltas** (candidate − production, paired by photo and seed; 95% CI)")
    st.dataframe(pd.DataFrame([{"metric": name, "candidate": m.candidate_mean,
                                "production": m.production_mean, "delta (95% CI)": _delta(m.delta, 4),
                                "n": m.delta.n} for name, m in res.metrics.items()]),
                 hide_index=True, width="stretch")
    st.markdown("**Per photo**")
    rows = []
    for p in res.per_photo:
        row = {"photo": f"#{p.image_id} {p.label}", "note": p.note,
               "win rate (95% CI)": _pct(p.preference.win_rate),
               "W/L/T": f"{p.preference.wins}/{p.preference.losses}/{p.preference.ties}",
               "failures cand./prod.": f"{_pct(p.failures.candidate)} / {_pct(p.failures.production)}"}
        for name, m in p.metrics.items():
            row[f"Δ {name}"] = _delta(m.delta, 4)
        rows.append(row)
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    if res.bradley_terry:
        st.markdown("**Bradley–Terry strength of every version compared in this scenario's gates**")
        st.dataframe(pd.DataFrame([{"version": f"v{v}", "log-strength": s} for v, s in
                                   sorted(res.bradley_terry.items(), key=lambda kv: -kv[1])]),
                     hide_index=True)
    if res.reviewers:
        st.markdown("**Who reviewed**")
        st.dataframe(pd.DataFrame([{"reviewer": name, **r} for name, r in res.reviewers.items()]),
                     hide_index=True)


def rules_form(scenario_id: int, current: core_verdict.PassRules, *, key: str) -> dict | None:
    with st.form(key):
        c1, c2, c3 = st.columns(3)
        win = c1.number_input("Win-rate lower bound at least", 0.0, 1.0,
                              current.min_win_rate_low, 0.05)
        sim = c2.number_input("Similarity may fall by at most", 0.0, 1.0,
                              current.max_similarity_drop, 0.01, format="%.3f")
        ident = c3.number_input("Identity may fall by at most", 0.0, 1.0,
                                current.max_identity_drop, 0.01, format="%.3f")
        c4, c5, c6 = st.columns(3)
        fail = c4.number_input("Failure rate may rise by at most", 0.0, 1.0,
                               current.max_failure_rate_increase, 0.01)
        cost = c5.number_input("Cost per image may rise by at most (USD, 0 = off)", 0.0,
                               value=current.max_cost_increase_usd or 0.0, step=0.001,
                               format="%.4f")
        latency = c6.number_input("Latency per image may rise by at most (s, 0 = off)", 0.0,
                                  value=current.max_latency_increase_s or 0.0, step=0.5)
        if st.form_submit_button("Save pass rules"):
            return {"min_win_rate_low": win, "max_similarity_drop": sim,
                    "max_identity_drop": ident, "max_failure_rate_increase": fail,
                    "max_cost_increase_usd": cost or None, "max_latency_increase_s": latency or None}
    return None


def photo_picker(selected: list[int], *, key: str) -> list[int]:
    images = queries.library()
    labels = {i["id"]: f"#{i['id']} {i.get('label') or ''}".strip() for i in images}
    return st.multiselect("Photos from the library", list(labels), default=[
        i for i in selected if i in labels], format_func=lambda i: labels.get(i, f"#{i}"), key=key)


def notes_editor(image_ids: list[int], notes: dict[int, str], *, key: str) -> dict[int, str]:
    if not image_ids:
        return {}
    labels = {i["id"]: i.get("label") or "" for i in queries.library()}
    frame = pd.DataFrame([{"photo": i, "file": labels.get(i, ""), "note": notes.get(i, "")}
                          for i in image_ids])
    edited = st.data_editor(frame, hide_index=True, width="stretch", key=key,
                            disabled=["photo", "file"], column_config={"note": st.column_config.TextColumn(
                                "Note", help="e.g. side view, dark skin, low light", max_chars=500)})
    return {int(r["photo"]): str(r["note"] or "") for r in edited.to_dict("records")}


def dataclass_dict(value: Any) -> dict[str, Any]:
    return dataclasses.asdict(value)

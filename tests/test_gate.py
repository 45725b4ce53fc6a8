"""core.scenarios.gate and verdict: a gate run is two sweeps and their pairs; blind judgments
land on the pair named; the verdict's numbers, per photo and overall; approval with and without
a passing gate. On SQLite and PostgreSQL."""

from __future__ import annotations

import types

import pytest
from sqlalchemy import select, update

from core.data.models import (AuditEntry, Endpoint, GateJudgment, GatePair, Generation,
                              GenerationState, ScenarioVersion, Sweep)
from core.errors import BudgetExceeded, InvalidInput, NotFound
from core.planning.budget import Caps
from core.scenarios import gate, testsets, verdict
from core.scenarios import versions as scenarios
from tests.factories import make_image, make_production_scenario

LIMITS = types.SimpleNamespace(max_cells_per_sweep=2000, inflight_cap=32,
                               create_rate_per_minute=600)
CAPS = Caps(sweep_usd=5.0, daily_usd=20.0, monthly_usd=300.0)


def make_gate(session, *, photos: int = 2, seeds: int = 2, reviewers: int = 1,
              budget: float | None = None) -> int:
    make_production_scenario(session)
    images = [make_image(session) for _ in range(photos)]
    testsets.create_test_set(session, "hard-light", [i.id for i in images], actor="alice",
                             notes={images[0].id: "dark skin, low light"})
    plan = gate.plan_gate(session, gate.GateRequest(
        "projection-level-1", 4, "hard-light", seeds=seeds, reviewers_per_pair=reviewers,
        budget_usd=budget), limits=LIMITS)
    return gate.create_gate(session, plan, actor="alice", endpoint=Endpoint.EMULATOR,
                            caps=CAPS).id


def finish_cells(session, run_id: int, *, failed: set[int] = frozenset(),
                 safety: bool = False) -> None:
    """Mark the gate's cells as a worker would: outputs, cost, latency; some failed."""
    run = gate.gate_run(session, run_id)
    for g in session.scalars(select(Generation).where(Generation.sweep_id.in_(
            [run.candidate_sweep_id, run.production_sweep_id]))):
        if g.id in failed:
            g.state = GenerationState.FAILED
            g.error = "NSFW content detected. Try again." if safety else "CUDA out of memory"
        else:
            g.state = GenerationState.SUCCEEDED
            g.output_key = f"outputs/{g.id:064x}.png"
            is_candidate = g.sweep_id == run.candidate_sweep_id
            g.cost_usd, g.latency_s = (0.004, 6.0) if is_candidate else (0.003, 5.0)
    session.flush()


def similarity_reader(values: dict[str, float]):
    """Image metrics as the metrics module would give them: by the cell's sweep."""
    def read(session, ids):
        rows = session.execute(select(Generation.id, Sweep.name).join(Sweep).where(
            Generation.id.in_(list(ids))))
        return {gid: {"similarity": values["candidate" if "candidate" in name else "production"]}
                for gid, name in rows}
    return read


def test_a_gate_is_two_sweeps_on_the_same_photos_and_seeds(db_session):
    run_id = make_gate(db_session, photos=2, seeds=3)
    run = gate.gate_run(db_session, run_id)
    cand, prod = (db_session.get(Sweep, run.candidate_sweep_id),
                  db_session.get(Sweep, run.production_sweep_id))
    assert cand.axes["strength"] == [0.9] and prod.axes["strength"] == [0.35]
    assert cand.axes["seed"] == prod.axes["seed"] == run.seeds == gate.gate_seeds(
        run.test_set_id, 3)
    assert (run.candidate_version, run.production_version) == (4, 3)
    pairs = list(db_session.scalars(select(GatePair).where(GatePair.gate_run_id == run_id)))
    assert len(pairs) == 6  # 2 photos × 3 seeds
    for pair in pairs:
        c = db_session.get(Generation, pair.candidate_generation_id)
        p = db_session.get(Generation, pair.production_generation_id)
        assert (c.input_image_id, c.seed) == (p.input_image_id, p.seed) == (
            pair.input_image_id, pair.seed)
    assert gate.gate_seeds(run.test_set_id, 2) == run.seeds[:2]  # more seeds keep the first


def test_the_cost_is_capped_before_anything_is_stored(db_session):
    with pytest.raises(BudgetExceeded, match="cap is \\$0.0000"):
        make_gate(db_session, budget=0.0)
    assert db_session.scalar(select(Sweep.id)) is None


def test_bad_requests_say_what_to_fix(db_session):
    make_production_scenario(db_session)
    image = make_image(db_session)
    testsets.create_test_set(db_session, "one", [image.id], actor="alice")
    for request, message in (
            (gate.GateRequest("projection-level-1", 3, "one"), "production version itself"),
            (gate.GateRequest("projection-level-1", 9, "one"), "no version 9"),
            (gate.GateRequest("projection-level-1", 4, "one", seeds=0), "between 1 and 20"),
            (gate.GateRequest("projection-level-1", 4, "nope"), "Test set 'nope'"),
            (gate.GateRequest("nope", 4, "one"), "Scenario 'nope'")):
        with pytest.raises((InvalidInput, NotFound), match=message):
            gate.plan_gate(db_session, request, limits=LIMITS)


def test_a_pick_lands_on_the_pair_named_and_is_mapped_blind(db_session):
    run_id = make_gate(db_session)
    assert gate.next_pair(db_session, run_id, "carol") is None  # nothing succeeded yet
    finish_cells(db_session, run_id)
    first, second = gate.upcoming_pairs(db_session, run_id, "carol", limit=2)
    run = gate.gate_run(db_session, run_id)
    side = gate.candidate_side(run, second, "carol")
    view = gate.pair_view(db_session, second, "carol")
    cand = db_session.get(Generation, db_session.get(GatePair, second).candidate_generation_id)
    assert (view.left_key if side == "left" else view.right_key) == cand.output_key
    # the pick names the second pair while the first is "next": it lands on the second
    saved = gate.judge(db_session, second, "carol", side, seconds_spent=2.5)
    assert (saved.pair_id, saved.choice) == (second, "candidate")
    judgments = list(db_session.scalars(select(GateJudgment)))
    assert [(j.pair_id, j.choice, j.candidate_side) for j in judgments] == [
        (second, "candidate", side)]
    assert gate.next_pair(db_session, run_id, "carol") == first
    other = "right" if side == "left" else "left"
    assert gate.judge(db_session, second, "carol", other).replaced
    assert db_session.scalar(select(GateJudgment.choice)) == "production"
    assert gate.pair_view(db_session, second, "carol").your_pick == other
    with pytest.raises(InvalidInput, match="one of left, right, same"):
        gate.judge(db_session, first, "carol", "candidate")
    with pytest.raises(NotFound, match="nothing was saved"):
        gate.judge(db_session, 999_999, "carol", "left")


def test_each_pair_waits_for_the_reviewers_it_needs(db_session):
    run_id = make_gate(db_session, photos=1, seeds=1, reviewers=2)
    finish_cells(db_session, run_id)
    (pair,) = gate.upcoming_pairs(db_session, run_id, "carol")
    gate.judge(db_session, pair, "carol", "same")
    assert gate.next_pair(db_session, run_id, "carol") is None  # carol has judged it
    assert gate.next_pair(db_session, run_id, "dave") == pair  # it still needs a second person
    assert gate.review_progress(db_session, run_id, "dave").complete == 0
    gate.judge(db_session, pair, "dave", "left")
    assert gate.next_pair(db_session, run_id, "erin") is None
    assert gate.review_progress(db_session, run_id, "erin").complete == 1


def judge_all(session, run_id: int, choose) -> None:
    """Every reviewable pair judged by 'carol': choose(pair_index) → candidate/production/same."""
    run = gate.gate_run(session, run_id)
    pairs = sorted(session.scalars(gate._reviewable(run_id)))
    for index, pair_id in enumerate(pairs):
        choice = choose(index)
        side = gate.candidate_side(run, pair_id, "carol")
        pick = ("same" if choice == "same" else side if choice == "candidate"
                else ("right" if side == "left" else "left"))
        gate.judge(session, pair_id, "carol", pick, seconds_spent=3.0)


def test_the_verdict_counts_pairs_ties_and_metrics_by_hand(db_session):
    run_id = make_gate(db_session, photos=2, seeds=3)
    finish_cells(db_session, run_id)
    # pairs in id order: photo 1 seeds ×3, photo 2 seeds ×3 → W W W, W L same
    choices = ["candidate"] * 4 + ["production", "same"]
    judge_all(db_session, run_id, lambda i: choices[i])
    result = verdict.gate_result(db_session, run_id,
                                 similarity_reader({"candidate": 0.70, "production": 0.72}))
    pref = result.preference
    assert (pref.wins, pref.losses, pref.ties) == (4, 1, 1)
    assert pref.win_rate.estimate == pytest.approx(0.8)
    # Wilson 4 of 5: (0.3755, 0.9638)
    assert (pref.win_rate.low, pref.win_rate.high) == (pytest.approx(0.37553, abs=1e-4),
                                                       pytest.approx(0.96378, abs=1e-4))
    sim = result.metrics["similarity"]
    assert sim.delta.estimate == pytest.approx(-0.02) and sim.delta.n == 6
    assert result.metrics["cost_usd"].delta.estimate == pytest.approx(0.001)
    assert result.metrics["latency_s"].delta.estimate == pytest.approx(1.0)
    photo_one, photo_two = result.per_photo
    assert photo_one.note == "dark skin, low light"
    assert (photo_one.preference.wins, photo_two.preference.wins,
            photo_two.preference.losses, photo_two.preference.ties) == (3, 1, 1, 1)
    # the lower bound 0.3755 < 0.5: the rule fails and says so; similarity is within 0.05
    assert result.status == "fail"
    assert any(r.startswith("win_rate:") and "lower bound must be ≥ 50%" in r
               for r in result.reasons)
    assert not any(r.startswith("similarity") for r in result.reasons)
    data = result.as_dict()
    assert data["win_rate"]["ci_low"] == pytest.approx(0.37553, abs=1e-4)
    assert data["verdict"]["status"] == "fail" and len(data["per_photo"]) == 2
    assert data["reviewers"]["carol"]["judgments"] == 6


def test_a_candidate_that_loses_similarity_fails_and_the_verdict_names_it(db_session):
    run_id = make_gate(db_session, photos=2, seeds=3)
    finish_cells(db_session, run_id)
    judge_all(db_session, run_id, lambda i: "candidate")
    verdict.set_rules(db_session, gate.gate_run(db_session, run_id).scenario_id,
                      {"min_win_rate_low": 0.5, "max_similarity_drop": 0.1}, actor="alice")
    result = verdict.gate_result(db_session, run_id,
                                 similarity_reader({"candidate": 0.41, "production": 0.83}))
    assert result.status == "fail"
    (reason,) = [r for r in result.reasons if r.startswith("similarity")]
    assert "fell by 0.42" in reason and "at most 0.1" in reason
    passing = verdict.gate_result(db_session, run_id,
                                  similarity_reader({"candidate": 0.80, "production": 0.83}))
    assert passing.status == "pass" and passing.reasons == ()


def test_failures_and_safety_filter_failures_are_counted(db_session):
    run_id = make_gate(db_session, photos=2, seeds=2)
    run = gate.gate_run(db_session, run_id)
    cand_cells = list(db_session.scalars(select(Generation.id).where(
        Generation.sweep_id == run.candidate_sweep_id).order_by(Generation.id)))
    finish_cells(db_session, run_id, failed=set(cand_cells[:2]), safety=True)
    result = verdict.gate_result(db_session, run_id, lambda s, ids: {})
    f = result.failures
    assert (f.candidate.estimate, f.production.estimate, f.candidate_safety) == (0.5, 0.0, 2)
    assert f.difference.estimate == pytest.approx(0.5)
    assert result.pairs_reviewable == 2 and result.status == "fail"
    assert any(r.startswith("failure_rate") and "2 safety filter" in r for r in result.reasons)


def test_incomplete_until_every_pair_has_its_reviewers(db_session):
    run_id = make_gate(db_session, photos=1, seeds=2)
    assert verdict.gate_result(db_session, run_id).status == "incomplete"
    finish_cells(db_session, run_id)
    result = verdict.gate_result(db_session, run_id)
    assert result.status == "incomplete"
    assert any("2 of 2 pairs still need reviewers" in r for r in result.reasons)


def test_bradley_terry_appears_once_three_versions_were_compared(db_session):
    run_id = make_gate(db_session, photos=1, seeds=3)
    finish_cells(db_session, run_id)
    judge_all(db_session, run_id, lambda i: "candidate")
    assert verdict.gate_result(db_session, run_id).bradley_terry is None  # two versions only
    scenarios.edit_scenario(db_session, "projection-level-1",
                            {"params": {"strength": 0.5, "num_inference_steps": 25}}, actor="bob")
    plan = gate.plan_gate(db_session, gate.GateRequest("projection-level-1", 5, "hard-light",
                                                       seeds=3), limits=LIMITS)
    second = gate.create_gate(db_session, plan, actor="alice", endpoint=Endpoint.EMULATOR,
                              caps=CAPS).id
    finish_cells(db_session, second)
    judge_all(db_session, second, lambda i: "production" if i else "candidate")
    strengths = verdict.gate_result(db_session, second).bradley_terry
    assert set(strengths) == {3, 4, 5}
    assert strengths[4] > strengths[3] and strengths[3] > strengths[5]


def test_approval_needs_a_passing_gate_or_an_audited_override(db_session):
    run_id = make_gate(db_session, photos=2, seeds=3)  # 6 of 6 wins: Wilson lower bound 0.61
    scenario_id = gate.gate_run(db_session, run_id).scenario_id
    check = verdict.approval_gate(db_session, scenario_id, 4)
    assert not check.passed and "did not pass (incomplete)" in check.message
    with pytest.raises(InvalidInput, match="give a reason for the override"):
        verdict.require_gate(db_session, scenario_id, 4, actor="bob")
    with pytest.raises(InvalidInput, match="at least 10 characters"):
        verdict.require_gate(db_session, scenario_id, 4, actor="bob", override_reason="ok")
    verdict.require_gate(db_session, scenario_id, 4, actor="bob",
                         override_reason="hotfix for a broken prompt, approved by Dana")
    audit = db_session.scalar(select(AuditEntry).where(AuditEntry.action == "gate_override"))
    assert audit.actor == "bob" and audit.detail["reason"].startswith("hotfix")
    assert audit.detail["gate_run_id"] == run_id

    finish_cells(db_session, run_id)
    judge_all(db_session, run_id, lambda i: "candidate")
    reader = similarity_reader({"candidate": 0.8, "production": 0.8})
    passed = verdict.require_gate(db_session, scenario_id, 4, actor="bob", reader=reader)
    assert passed.passed and passed.latest.gate_run_id == run_id
    assert db_session.scalar(select(AuditEntry.id).where(
        AuditEntry.action == "gate_override").offset(1)) is None  # no second override


def test_approval_without_any_gate_run_or_production_version(db_session):
    make_production_scenario(db_session)
    scenario_id = gate.scenario_row(db_session, "projection-level-1").id
    assert "has no gate run" in verdict.approval_gate(db_session, scenario_id, 4).message
    fresh = scenarios.create_scenario(db_session, "new-one", actor="alice")
    assert verdict.approval_gate(db_session, fresh.id, 1).passed  # nothing in production yet


def test_deleting_a_photo_removes_its_pairs_with_it(db_session):
    from core.data.library import delete_image

    run_id = make_gate(db_session, photos=2, seeds=1)
    image_id = db_session.scalar(select(GatePair.input_image_id).where(
        GatePair.gate_run_id == run_id).order_by(GatePair.id))
    delete_image(db_session, image_id, actor="alice")
    db_session.expire_all()
    left = list(db_session.scalars(select(GatePair.input_image_id).where(
        GatePair.gate_run_id == run_id)))
    assert image_id not in left and len(left) == 1
    db_session.execute(update(Generation).values(state=GenerationState.SUCCEEDED,
                                                 output_key="outputs/x.png"))
    assert verdict.gate_result(db_session, run_id).pairs_total == 1


def override_of(session, version: int) -> str | None:
    return session.scalar(select(ScenarioVersion.override_reason).where(
        ScenarioVersion.version == version))


def test_approve_for_production_goes_through_the_gate(db_session):
    run_id = make_gate(db_session, photos=2, seeds=3)
    scenario_id = gate.gate_run(db_session, run_id).scenario_id
    with pytest.raises(InvalidInput, match=r"did not pass \(incomplete\).*reason for the override"):
        scenarios.approve(db_session, scenario_id, 4, "bob", "the stronger look we want")
    assert scenarios.get_scenario(db_session, scenario_id).production_version == 3
    finish_cells(db_session, run_id)
    judge_all(db_session, run_id, lambda i: "candidate")  # 6 of 6: lower bound 0.61 ≥ 0.5
    approved = scenarios.approve(db_session, scenario_id, 4, "bob", "the stronger look we want")
    assert approved.production_version == 4 and override_of(db_session, 4) is None
    entry = db_session.scalar(select(AuditEntry).where(
        AuditEntry.action == "approve_scenario_version").order_by(AuditEntry.id.desc()))
    assert entry.detail["gate_run_id"] == run_id and "passed" in entry.detail["gate"]
    assert db_session.scalar(select(AuditEntry).where(AuditEntry.action == "gate_override")) is None


def test_approve_without_a_passing_gate_needs_an_audited_override(db_session):
    make_production_scenario(db_session)  # v4 is a candidate with no gate run at all
    approved = scenarios.approve(db_session, "projection-level-1", 4, "bob", "urgent prompt fix",
                                 override_reason="prompt broke in production, Dana agreed")
    assert approved.production_version == 4
    assert override_of(db_session, 4) == "prompt broke in production, Dana agreed"
    override = db_session.scalar(select(AuditEntry).where(AuditEntry.action == "gate_override"))
    assert (override.actor, override.detail["version"], override.detail["gate_status"]) == (
        "bob", 4, "none")

"""A gate run's verdict with its evidence, overall and per photo, and the scenario's pass rules.

How the numbers are made (intervals from ``core.insight.pairwise``):

- **Preference.** Each judgment scores the candidate 1 (better), 0.5 (same) or 0 (worse). A
  pair's outcome is its reviewers' mean: above 0.5 a candidate win, below a loss, exactly 0.5 a
  tie. The unit is the pair (one photo, one seed), so several reviewers of one pair count once
  and their disagreement cannot inflate n. **Win rate** = wins / (wins + losses) with a Wilson
  95% interval; ties are reported beside it, not folded in.
- **Metric deltas.** For each pair where both outputs exist: candidate − production, for
  similarity and identity (from the stored image metrics), cost per image and latency per image
  (a reused output counts what its original cost and took: production would pay that). Mean
  delta with a Student-t 95% interval over pairs.
- **Failure rate.** Per version over its finished cells (canceled ones never ran): failed /
  finished with Wilson intervals; safety-filter failures counted apart; the candidate's minus
  production's rate with Newcombe's interval.
- **Per photo** the same, over that photo's seeds, so "better on average, worse on dark skin"
  shows.
- **Bradley–Terry** strengths of every version of the scenario judged in any of its gate runs,
  where more than two versions were compared (ties left out).
- **Pass rules** (per scenario): the win rate's lower bound ≥ ``min_win_rate_low``, and no mean
  delta worse than its margin. Status is ``pass``, ``fail``, or ``incomplete`` while cells run or
  reviewable pairs lack reviewers; every failing rule is named in ``reasons``.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.data.audit import record
from core.data.models import (GateJudgment, GatePair, GateRule, GateRun, Generation,
                              GenerationState, InputImage, Scenario, TestSet, utcnow)
from core.errors import InvalidInput
from core.insight.pairwise import (Interval, bradley_terry, mean_difference, rate_difference,
                                   wilson)
from core.scenarios.gate import gate_run

SAFETY_MARKERS = ("nsfw", "safety", "sensitive content")
SCORE = {"candidate": 1.0, "same": 0.5, "production": 0.0}
# image metrics compared, and whether more is better (+1) or worse (-1)
IMAGE_METRICS = {"similarity": +1, "identity": +1}
COST_METRICS = {"cost_usd": -1, "latency_s": -1}

MetricsReader = Callable[[Session, Sequence[int]], dict[int, dict[str, float]]]


def stored_metrics(session: Session, generation_ids: Sequence[int]) -> dict[int, dict[str, float]]:
    """Similarity and identity per generation as ``core.insight.measured`` stored them; a
    reused output has the metrics of the generation that made it."""
    from core.insight.measured import metrics_by_generation

    ids = list(generation_ids)
    origin = dict(session.execute(select(Generation.id, Generation.reused_from_id).where(
        Generation.id.in_(ids))).all())
    found = metrics_by_generation(session, set(ids) | {o for o in origin.values() if o})
    out: dict[int, dict[str, float]] = {}
    for gid in ids:
        measured = found.get(gid) or found.get(origin.get(gid) or -1)
        if measured is not None:
            out[gid] = {k: v for k, v in (("similarity", measured.similarity),
                                          ("identity", measured.identity)) if v is not None}
    return out


# -- pass rules ----------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class PassRules:
    min_win_rate_low: float = 0.5  # Wilson lower bound of the candidate's win rate
    max_similarity_drop: float = 0.05  # similarity to the photo, 0–1
    max_identity_drop: float = 0.05
    max_failure_rate_increase: float = 0.05  # absolute, 0–1
    max_cost_increase_usd: float | None = None  # per image; None: not checked
    max_latency_increase_s: float | None = None

    def margin(self, metric: str) -> float | None:
        return {"similarity": self.max_similarity_drop, "identity": self.max_identity_drop,
                "cost_usd": self.max_cost_increase_usd,
                "latency_s": self.max_latency_increase_s}.get(metric)


def _check_rules(values: dict[str, Any]) -> PassRules:
    known = {f.name for f in dataclasses.fields(PassRules)}
    unknown = set(values) - known
    if unknown:
        raise InvalidInput(f"Unknown pass rule(s) {', '.join(sorted(unknown))}; known: "
                           f"{', '.join(sorted(known))}.")
    clean: dict[str, float | None] = {}
    for name, value in values.items():
        if value is None or value == "":
            if name in ("min_win_rate_low",):
                raise InvalidInput("min_win_rate_low needs a value between 0 and 1.")
            clean[name] = None
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise InvalidInput(f"Pass rule {name} must be a number; got {value!r}.") from None
        if number < 0 or (name in ("min_win_rate_low", "max_failure_rate_increase",
                                   "max_similarity_drop", "max_identity_drop") and number > 1):
            raise InvalidInput(f"Pass rule {name} = {number} is out of range: use 0–1 for rates "
                               "and similarities, a non-negative amount otherwise.")
        clean[name] = number
    return PassRules(**{**dataclasses.asdict(PassRules()), **clean})


def get_rules(session: Session, scenario_id: int) -> PassRules:
    row = session.get(GateRule, scenario_id)
    return _check_rules(dict(row.rules)) if row else PassRules()


def set_rules(session: Session, scenario_id: int, values: dict[str, Any], *,
              actor: str) -> PassRules:
    """Replace a scenario's pass rules (fields left out take their defaults); audited."""
    if session.get(Scenario, scenario_id) is None:
        raise InvalidInput(f"Scenario {scenario_id} does not exist.")
    rules = _check_rules(values)
    stored = dataclasses.asdict(rules)
    row = session.get(GateRule, scenario_id)
    before = dict(row.rules) if row else None
    if row is None:
        session.add(GateRule(scenario_id=scenario_id, rules=stored, updated_by=actor))
    else:
        row.rules, row.updated_by, row.updated_at = stored, actor, utcnow()
    record(session, actor, "set_gate_rules", "scenario", scenario_id,
           {"before": before, "after": stored})
    session.flush()
    return rules


# -- the result ----------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class MetricDelta:
    metric: str
    candidate_mean: float | None
    production_mean: float | None
    delta: Interval  # candidate − production, paired

    def as_dict(self) -> dict[str, Any]:
        return {"candidate_mean": self.candidate_mean, "production_mean": self.production_mean,
                **{f"delta_{k}" if k != "n" else "n": v for k, v in self.delta.as_dict().items()
                   if k != "method"}, "method": self.delta.method}


@dataclasses.dataclass(frozen=True)
class FailureRates:
    candidate: Interval
    production: Interval
    difference: Interval
    candidate_safety: int
    production_safety: int

    def as_dict(self) -> dict[str, Any]:
        return {"candidate": self.candidate.as_dict(), "production": self.production.as_dict(),
                "difference": self.difference.as_dict(),
                "candidate_safety_filter": self.candidate_safety,
                "production_safety_filter": self.production_safety}


@dataclasses.dataclass(frozen=True)
class Preference:
    wins: int
    losses: int
    ties: int
    win_rate: Interval
    judgments: dict[str, int]  # candidate / production / same

    def as_dict(self) -> dict[str, Any]:
        return {"wins": self.wins, "losses": self.losses, "ties": self.ties,
                **self.win_rate.as_dict(), "judgments": dict(self.judgments)}


@dataclasses.dataclass(frozen=True)
class PairResult:
    pair_id: int
    seed: int
    candidate_generation_id: int
    production_generation_id: int
    candidate_state: str
    production_state: str
    candidate_output: str | None
    production_output: str | None
    score: float | None  # mean of the judgments' scores (1 candidate better, 0.5 same)
    judgments: tuple[tuple[str, str], ...]  # (reviewer, choice)
    candidate_metrics: dict[str, float]
    production_metrics: dict[str, float]


@dataclasses.dataclass(frozen=True)
class PhotoResult:
    image_id: int
    label: str
    note: str
    input_key: str | None
    preference: Preference
    metrics: dict[str, MetricDelta]
    failures: FailureRates
    pairs: tuple[PairResult, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"image_id": self.image_id, "label": self.label, "note": self.note,
                "win_rate": self.preference.as_dict(),
                "metric_deltas": {k: v.as_dict() for k, v in self.metrics.items()},
                "failure_rate": self.failures.as_dict(),
                "pairs": [{"pair_id": p.pair_id, "seed": p.seed, "score": p.score,
                           "candidate_generation_id": p.candidate_generation_id,
                           "production_generation_id": p.production_generation_id,
                           "candidate_state": p.candidate_state,
                           "production_state": p.production_state,
                           "judgments": [{"reviewer": r, "choice": c} for r, c in p.judgments],
                           "candidate_metrics": p.candidate_metrics,
                           "production_metrics": p.production_metrics}
                          for p in self.pairs]}


@dataclasses.dataclass(frozen=True)
class RuleCheck:
    rule: str
    passed: bool | None  # None: not enough data to tell
    detail: str


@dataclasses.dataclass(frozen=True)
class GateResult:
    gate_run_id: int
    scenario_id: int
    scenario_name: str
    candidate_version: int
    production_version: int
    test_set: str
    test_set_version: int
    seeds: list[int]
    sweeps: dict[str, int | None]
    endpoint: str
    created_by: str
    created_at: Any
    reviewers_per_pair: int
    cells_unfinished: int
    pairs_total: int
    pairs_reviewable: int
    pairs_complete: int
    preference: Preference
    metrics: dict[str, MetricDelta]
    failures: FailureRates
    per_photo: tuple[PhotoResult, ...]
    reviewers: dict[str, dict[str, Any]]
    bradley_terry: dict[int, float] | None
    rules: PassRules
    checks: tuple[RuleCheck, ...]
    status: str  # pass | fail | incomplete
    reasons: tuple[str, ...]
    cost_usd: dict[str, float]

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    def as_dict(self) -> dict[str, Any]:
        return {
            "gate_run_id": self.gate_run_id, "scenario": self.scenario_name,
            "scenario_id": self.scenario_id, "candidate_version": self.candidate_version,
            "production_version": self.production_version,
            "test_set": {"name": self.test_set, "version": self.test_set_version},
            "seeds": self.seeds, "sweeps": self.sweeps, "endpoint": self.endpoint,
            "created_by": self.created_by, "created_at": str(self.created_at),
            "reviewers_per_pair": self.reviewers_per_pair,
            "progress": {"cells_unfinished": self.cells_unfinished, "pairs": self.pairs_total,
                         "reviewable": self.pairs_reviewable, "complete": self.pairs_complete},
            "win_rate": self.preference.as_dict(),
            "ties": self.preference.ties,
            "metric_deltas": {k: v.as_dict() for k, v in self.metrics.items()},
            "failure_rate": self.failures.as_dict(),
            "per_photo": [p.as_dict() for p in self.per_photo],
            "reviewers": self.reviewers,
            "bradley_terry": ({str(k): v for k, v in self.bradley_terry.items()}
                              if self.bradley_terry else None),
            "rules": dataclasses.asdict(self.rules),
            "checks": [dataclasses.asdict(c) for c in self.checks],
            "verdict": {"status": self.status, "passed": self.passed,
                        "reasons": list(self.reasons)},
            "cost_usd": self.cost_usd,
        }


def _is_safety(error: str | None) -> bool:
    text = (error or "").lower()
    return any(marker in text for marker in SAFETY_MARKERS)


def _preference(pairs: Sequence[PairResult]) -> Preference:
    judged = [p.score for p in pairs if p.score is not None]
    wins = sum(1 for s in judged if s > 0.5)
    losses = sum(1 for s in judged if s < 0.5)
    counts = {c: 0 for c in SCORE}
    for p in pairs:
        for _, choice in p.judgments:
            counts[choice] += 1
    return Preference(wins, losses, len(judged) - wins - losses, wilson(wins, wins + losses),
                      counts)


def _failures(pairs: Sequence[PairResult], errors: dict[int, str | None]) -> FailureRates:
    stats = {}
    for side in ("candidate", "production"):
        states = [(getattr(p, f"{side}_state"), getattr(p, f"{side}_generation_id"))
                  for p in pairs]
        finished = [(s, g) for s, g in states if s in ("succeeded", "failed")]
        failed = [g for s, g in finished if s == "failed"]
        stats[side] = (len(failed), len(finished), sum(1 for g in failed if _is_safety(errors[g])))
    (kc, nc, sc), (kp, np_, sp) = stats["candidate"], stats["production"]
    return FailureRates(wilson(kc, nc), wilson(kp, np_), rate_difference(kc, nc, kp, np_), sc, sp)


def _metric_deltas(pairs: Sequence[PairResult]) -> dict[str, MetricDelta]:
    out = {}
    for metric in (*IMAGE_METRICS, *COST_METRICS):
        cand = [p.candidate_metrics.get(metric) for p in pairs]
        prod = [p.production_metrics.get(metric) for p in pairs]
        both = [(c, q) for c, q in zip(cand, prod) if c is not None and q is not None]
        if metric in IMAGE_METRICS and not both:
            continue  # not measured (no face, or metrics not computed): left out, not zero
        out[metric] = MetricDelta(
            metric,
            statistics.fmean(c for c in cand if c is not None) if any(c is not None for c in cand) else None,
            statistics.fmean(q for q in prod if q is not None) if any(q is not None for q in prod) else None,
            mean_difference([c - q for c, q in both]))
    return out


def _checks(rules: PassRules, preference: Preference, metrics: dict[str, MetricDelta],
            failures: FailureRates) -> list[RuleCheck]:
    checks = []
    wr = preference.win_rate
    if wr.estimate is None or wr.low is None:
        checks.append(RuleCheck("win_rate", None, "no decisive judgments yet (only ties or none)"))
    else:
        ok = wr.low >= rules.min_win_rate_low
        checks.append(RuleCheck(
            "win_rate", ok,
            f"candidate preferred in {preference.wins} of {preference.wins + preference.losses} "
            f"decisive pairs ({wr.estimate:.0%}, 95% CI {wr.low:.0%}–{wr.high:.0%}; "
            f"{preference.ties} ties); the lower bound must be ≥ {rules.min_win_rate_low:.0%}"))
    for metric, delta in metrics.items():
        margin = rules.margin(metric)
        if margin is None:
            continue
        direction = IMAGE_METRICS.get(metric) or COST_METRICS[metric]
        d = delta.delta.estimate
        if d is None:
            checks.append(RuleCheck(metric, None, f"{metric}: no pair with both outputs yet"))
            continue
        worse_by = -d * direction  # > 0: the candidate is worse
        ok = worse_by <= margin + 1e-12
        verb = ("fell" if d < 0 else "rose")
        interval = ("" if delta.delta.low is None
                    else f", 95% CI {delta.delta.low:+.4g} to {delta.delta.high:+.4g}")
        checks.append(RuleCheck(
            metric, ok,
            f"{metric} {verb} by {abs(d):.4g} (candidate {delta.candidate_mean:.4g} vs "
            f"production {delta.production_mean:.4g}{interval}); allowed worse by at most "
            f"{margin:.4g}"))
    diff = failures.difference
    if diff.estimate is None:
        checks.append(RuleCheck("failure_rate", None, "no finished cells yet"))
    else:
        ok = diff.estimate <= rules.max_failure_rate_increase + 1e-12
        checks.append(RuleCheck(
            "failure_rate", ok,
            f"failure rate {failures.candidate.estimate:.0%} (candidate, "
            f"{failures.candidate_safety} safety filter) vs {failures.production.estimate:.0%} "
            f"(production, {failures.production_safety} safety filter): "
            f"{diff.estimate:+.0%}, 95% CI {diff.low:+.0%} to {diff.high:+.0%}; allowed at most "
            f"+{rules.max_failure_rate_increase:.0%}"))
    return checks


def _pairs(session: Session, run: GateRun, reader: MetricsReader) -> list[PairResult]:
    pairs = list(session.scalars(select(GatePair).where(GatePair.gate_run_id == run.id)
                                 .order_by(GatePair.input_image_id, GatePair.seed)))
    gen_ids = [g for p in pairs for g in (p.candidate_generation_id, p.production_generation_id)]
    gens = {g.id: g for g in session.scalars(select(Generation).where(Generation.id.in_(gen_ids)))}
    sources = {g.id: g for g in session.scalars(select(Generation).where(Generation.id.in_(
        [g.reused_from_id for g in gens.values() if g.reused_from_id])))}
    image_metrics = reader(session, gen_ids) if gen_ids else {}
    judgments: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for j in session.scalars(select(GateJudgment).where(
            GateJudgment.pair_id.in_([p.id for p in pairs])).order_by(GateJudgment.id)):
        judgments[j.pair_id].append((j.reviewer, j.choice))

    def metrics(gen: Generation) -> dict[str, float]:
        if gen.state != GenerationState.SUCCEEDED:
            return {}
        # what the output cost when it was made
        origin = gen if gen.reused_from_id is None else sources.get(gen.reused_from_id, gen)
        values = {k: float(v) for k, v in (image_metrics.get(gen.id) or {}).items()
                  if k in IMAGE_METRICS and v is not None}
        values["cost_usd"] = float(origin.cost_usd or 0.0)
        if origin.latency_s is not None:
            values["latency_s"] = float(origin.latency_s)
        return values

    out = []
    for p in pairs:
        cand, prod = gens[p.candidate_generation_id], gens[p.production_generation_id]
        js = judgments.get(p.id, [])
        out.append(PairResult(
            p.id, p.seed, cand.id, prod.id, cand.state.value, prod.state.value, cand.output_key,
            prod.output_key, statistics.fmean(SCORE[c] for _, c in js) if js else None,
            tuple(js), metrics(cand), metrics(prod)))
    return out


def gate_result(session: Session, gate_run_id: int,
                reader: MetricsReader = stored_metrics) -> GateResult:
    run = gate_run(session, gate_run_id)
    scenario = session.get(Scenario, run.scenario_id)
    rules = get_rules(session, run.scenario_id)
    results = _pairs(session, run, reader)
    gens = {g.id: g for g in session.scalars(select(Generation).where(Generation.id.in_(
        [i for p in results for i in (p.candidate_generation_id, p.production_generation_id)])))}
    errors = {gid: g.error for gid, g in gens.items()}
    test_set = session.get(TestSet, run.test_set_id) if run.test_set_id else None
    images = {i.id: i for i in session.scalars(select(InputImage).where(
        InputImage.id.in_({pair.input_image_id for pair in run.pairs})))}
    by_photo: dict[int, list[PairResult]] = defaultdict(list)
    pair_rows = {pair.id: pair for pair in run.pairs}
    for r in results:
        by_photo[pair_rows[r.pair_id].input_image_id].append(r)
    per_photo = []
    for image_id, photo_pairs in by_photo.items():
        image = images.get(image_id)
        per_photo.append(PhotoResult(
            image_id, image.label if image else "", pair_rows[photo_pairs[0].pair_id].note,
            image.storage_key if image else None, _preference(photo_pairs),
            _metric_deltas(photo_pairs), _failures(photo_pairs, errors), tuple(photo_pairs)))
    preference = _preference(results)
    metrics = _metric_deltas(results)
    failures = _failures(results, errors)
    checks = _checks(rules, preference, metrics, failures)
    unfinished = sum(1 for g in gens.values() if not g.state.is_final)
    reviewable = [r for r in results if r.candidate_state == r.production_state == "succeeded"
                  and r.candidate_output and r.production_output]
    complete = sum(1 for r in reviewable if len(r.judgments) >= run.reviewers_per_pair)
    reasons = [f"{c.rule}: {c.detail}" for c in checks if c.passed is False]
    if reasons:
        status = "fail"
    elif unfinished or complete < len(reviewable) or any(c.passed is None for c in checks):
        status = "incomplete"
    else:
        status = "pass"
    if unfinished:
        reasons.append(f"{unfinished} cell(s) still running")
    if complete < len(reviewable):
        reasons.append(f"{len(reviewable) - complete} of {len(reviewable)} pairs still need "
                       f"reviewers ({run.reviewers_per_pair} per pair)")
    reasons.extend(f"{c.rule}: {c.detail}" for c in checks if c.passed is None)
    return GateResult(
        gate_run_id=run.id, scenario_id=run.scenario_id,
        scenario_name=scenario.name if scenario else "?",
        candidate_version=run.candidate_version, production_version=run.production_version,
        test_set=test_set.name if test_set else "(deleted)", test_set_version=run.test_set_version,
        seeds=list(run.seeds), sweeps={"candidate": run.candidate_sweep_id,
                                       "production": run.production_sweep_id},
        endpoint=next(iter({g.endpoint.value for g in gens.values()}), "?"),
        created_by=run.created_by, created_at=run.created_at,
        reviewers_per_pair=run.reviewers_per_pair, cells_unfinished=unfinished,
        pairs_total=len(results), pairs_reviewable=len(reviewable), pairs_complete=complete,
        preference=preference, metrics=metrics, failures=failures,
        per_photo=tuple(sorted(per_photo, key=lambda p: p.image_id)),
        reviewers=_reviewers(session, run), bradley_terry=version_strengths(session, run.scenario_id),
        rules=rules, checks=tuple(checks), status=status, reasons=tuple(reasons),
        cost_usd={"candidate": sum(gens[r.candidate_generation_id].cost_usd or 0 for r in results),
                  "production": sum(gens[r.production_generation_id].cost_usd or 0
                                    for r in results)})


def _reviewers(session: Session, run: GateRun) -> dict[str, dict[str, Any]]:
    rows = session.execute(select(GateJudgment.reviewer, GateJudgment.seconds_spent,
                                  GateJudgment.updated_at)
                           .join(GatePair, GatePair.id == GateJudgment.pair_id)
                           .where(GatePair.gate_run_id == run.id))
    out: dict[str, dict[str, Any]] = {}
    for reviewer, seconds, at in rows:
        entry = out.setdefault(reviewer, {"judgments": 0, "seconds": [], "last": None})
        entry["judgments"] += 1
        if seconds is not None:
            entry["seconds"].append(seconds)
        entry["last"] = max(filter(None, [entry["last"], at]), default=None)
    return {name: {"judgments": e["judgments"],
                   "median_seconds": statistics.median(e["seconds"]) if e["seconds"] else None,
                   "last_at": str(e["last"]) if e["last"] else None}
            for name, e in sorted(out.items())}


def version_strengths(session: Session, scenario_id: int) -> dict[int, float] | None:
    """Bradley–Terry log-strength per version from every decisive judgment in the scenario's
    gate runs; None unless more than two versions were compared."""
    rows = session.execute(
        select(GateRun.candidate_version, GateRun.production_version, GateJudgment.choice)
        .join(GatePair, GatePair.gate_run_id == GateRun.id)
        .join(GateJudgment, GateJudgment.pair_id == GatePair.id)
        .where(GateRun.scenario_id == scenario_id, GateJudgment.choice != "same")).all()
    wins = [(c, p) if choice == "candidate" else (p, c) for c, p, choice in rows]
    if len({v for pair in wins for v in pair}) <= 2:
        return None
    return bradley_terry(wins)


def latest_result(session: Session, scenario_id: int, candidate_version: int,
                  reader: MetricsReader = stored_metrics) -> GateResult | None:
    run_id = session.scalar(select(GateRun.id).where(
        GateRun.scenario_id == scenario_id, GateRun.candidate_version == candidate_version)
        .order_by(GateRun.id.desc()).limit(1))
    return gate_result(session, run_id, reader) if run_id is not None else None


# -- approval ------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class ApprovalGate:
    """What approving ``version`` has to go on: the latest gate run of it, and whether it passed."""

    version: int
    latest: GateResult | None
    passed: bool
    message: str


def approval_gate(session: Session, scenario_id: int, version: int,
                  reader: MetricsReader = stored_metrics) -> ApprovalGate:
    from core.scenarios.gate import production_version

    scenario = session.get(Scenario, scenario_id)
    if scenario is None:
        raise InvalidInput(f"Scenario {scenario_id} does not exist.")
    current = production_version(session, scenario)
    if current is None:
        return ApprovalGate(version, None, True, "No version is in production yet: there is "
                            "nothing to check the candidate against, so no gate is needed.")
    if current == version:
        return ApprovalGate(version, None, True, f"Version {version} is already in production.")
    latest = latest_result(session, scenario_id, version, reader)
    if latest is None:
        return ApprovalGate(version, None, False, f"Version {version} has no gate run: check it "
                            f"against production (v{current}) on a test set first.")
    if latest.production_version != current:
        return ApprovalGate(version, latest, False, f"The latest gate (run {latest.gate_run_id}) "
                            f"compared against v{latest.production_version}, but production is "
                            f"now v{current}: run the gate again.")
    if latest.passed:
        return ApprovalGate(version, latest, True, f"Gate run {latest.gate_run_id} passed.")
    why = "; ".join(latest.reasons) or latest.status
    return ApprovalGate(version, latest, False,
                        f"Gate run {latest.gate_run_id} did not pass ({latest.status}): {why}")


OVERRIDE_REASON_MIN = 10


def require_gate(session: Session, scenario_id: int, version: int, *, actor: str,
                 override_reason: str | None = None,
                 reader: MetricsReader = stored_metrics) -> ApprovalGate:
    """Call before approving ``version`` for production: returns when its latest gate passed,
    or when a reason to override is given (audited as ``gate_override``); otherwise raises
    InvalidInput saying why the gate stands in the way."""
    gate = approval_gate(session, scenario_id, version, reader)
    if gate.passed:
        return gate
    reason = (override_reason or "").strip()
    if len(reason) < OVERRIDE_REASON_MIN:
        message = gate.message if gate.message.endswith(".") else gate.message + "."
        raise InvalidInput(f"{message} To approve without a passing gate, give a reason "
                           f"for the override (at least {OVERRIDE_REASON_MIN} characters); it is "
                           "recorded with your name.")
    record(session, actor, "gate_override", "scenario", scenario_id,
           {"version": version, "reason": reason, "gate_run_id":
            gate.latest.gate_run_id if gate.latest else None,
            "gate_status": gate.latest.status if gate.latest else "none",
            "message": gate.message})
    return gate

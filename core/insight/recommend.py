"""Which setting to ship: the one with the highest mean rating (or a chosen metric) among
those that meet the user's constraints, with its evidence and its runner-up.

A *setting* is a combination of the swept parameters other than the input image and the seed
(those vary within a setting). Constraints apply to a setting's means over its cells:
similarity and identity floors (identity only where a face was measured), a ceiling on the
failure rate (failed over succeeded + failed; safety-filter failures count), a ceiling on the
cost per delivered image, a rating floor.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import pandas as pd

from core.errors import InvalidInput
from core.insight.evidence import cost_per_image, setting_of, swept_axes
from core.insight.stats import Interval, mean_interval, ratings_needed

OBJECTIVES = ("rating", "similarity", "identity", "sharpness")
MIN_RATINGS_PER_SETTING = 3  # fewer and a setting's mean is one person's mood


@dataclasses.dataclass(frozen=True)
class Constraints:
    min_similarity: float | None = None
    min_identity: float | None = None
    max_failure_rate: float | None = None
    max_cost_usd: float | None = None  # per delivered image
    min_rating: float | None = None

    def __post_init__(self) -> None:
        for name in ("min_similarity", "min_identity", "max_failure_rate"):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= 1:
                raise InvalidInput(f"{name.replace('_', ' ')} must be between 0 and 1, "
                                   f"not {value}.")
        if self.max_cost_usd is not None and self.max_cost_usd < 0:
            raise InvalidInput(f"The cost ceiling must be 0 or more, not {self.max_cost_usd}.")
        if self.min_rating is not None and not 1 <= self.min_rating <= 5:
            raise InvalidInput(f"The rating floor must be between 1 and 5, not {self.min_rating}.")

    def describe(self) -> str:
        parts = []
        if self.min_similarity is not None:
            parts.append(f"similarity ≥ {self.min_similarity:g}")
        if self.min_identity is not None:
            parts.append(f"identity ≥ {self.min_identity:g}")
        if self.max_failure_rate is not None:
            parts.append(f"failure rate ≤ {self.max_failure_rate:.0%}")
        if self.max_cost_usd is not None:
            parts.append(f"cost ≤ ${self.max_cost_usd:g} per image")
        if self.min_rating is not None:
            parts.append(f"rating ≥ {self.min_rating:g}")
        return " and ".join(parts)


@dataclasses.dataclass(frozen=True)
class SettingEvidence:
    setting: dict[str, Any]
    objective: Interval
    rating: Interval
    cells: int
    failure_rate: float | None
    safety_failures: int
    cost_per_image_usd: float | None
    similarity: float | None
    identity: float | None
    violations: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {**self.setting, "n": self.objective.n, "mean": self.objective.mean,
                "ci_low": self.objective.ci_low, "ci_high": self.objective.ci_high,
                "method": self.objective.method, "cells": self.cells,
                "rating": {"n": self.rating.n, "mean": self.rating.mean},
                "failure_rate": self.failure_rate, "safety_failures": self.safety_failures,
                "cost_per_image_usd": self.cost_per_image_usd,
                "similarity": self.similarity, "identity": self.identity,
                "violations": list(self.violations)}


@dataclasses.dataclass(frozen=True)
class Recommendation:
    objective: str
    constraints: Constraints
    axes: list[str]
    best: SettingEvidence | None
    runner_up: SettingEvidence | None
    distinguishable: bool | None  # None without a runner-up
    more_ratings_needed: int | None
    message: str
    settings: list[SettingEvidence]  # every setting, best first

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"objective": self.objective,
                               "constraints": dataclasses.asdict(self.constraints),
                               "message": self.message, "distinguishable": self.distinguishable,
                               "more_ratings_needed": self.more_ratings_needed}
        # The same keys whether or not a setting qualifies, so scripts can rely on them.
        out.update({"parameters": None, "n": None, "mean": None, "ci_low": None,
                    "ci_high": None})
        if self.best is not None:
            out.update(self.best.as_dict())
            out["parameters"] = self.best.setting
        out["runner_up"] = self.runner_up.as_dict() if self.runner_up else None
        return out


def recommend(cells: pd.DataFrame, ratings: pd.DataFrame, *, objective: str = "rating",
              constraints: Constraints = Constraints(),
              axes: Sequence[str] | None = None) -> Recommendation:
    """The best setting among ``cells`` (from ``core.insight.evidence``) under constraints."""
    if objective not in OBJECTIVES:
        raise InvalidInput(f"Objective {objective!r} is not one of {', '.join(OBJECTIVES)}.")
    axes = list(axes) if axes is not None else (swept_axes(cells) or ["model"])
    if cells.empty:
        return Recommendation(objective, constraints, axes, None, None, None, None,
                              "This sweep has no cells yet.", [])
    settings = [_evidence(group, ratings, axes, objective, constraints)
                for _, group in cells.groupby(axes, sort=True, dropna=False)]
    settings.sort(key=lambda s: (s.objective.mean is None, -(s.objective.mean or 0),
                                 -s.objective.n))
    return _decide(objective, constraints, axes, settings)


def _evidence(group: pd.DataFrame, ratings: pd.DataFrame, axes: list[str], objective: str,
              constraints: Constraints) -> SettingEvidence:
    setting = setting_of(group.iloc[0], axes)
    mine = ratings[ratings["generation_id"].isin(group["id"])]
    rating = mean_interval(mine["rating"].tolist(), mine["image"].tolist())
    if objective == "rating":
        target = rating
    else:
        measured = group[group[objective].notna()]
        target = mean_interval(measured[objective].tolist(), measured["image"].tolist())
    succeeded = int((group["state"] == "succeeded").sum())
    failed = int((group["state"] == "failed").sum())
    decided = succeeded + failed
    similarity = _mean(group["similarity"])
    identity = _mean(group["identity"])
    cost = cost_per_image(group)
    failure_rate = failed / decided if decided else None
    violations = []
    if constraints.min_similarity is not None and (similarity is None
                                                   or similarity < constraints.min_similarity):
        violations.append("similarity")
    if constraints.min_identity is not None and identity is not None \
            and identity < constraints.min_identity:
        violations.append("identity")
    if constraints.max_failure_rate is not None and (failure_rate is None
                                                     or failure_rate > constraints.max_failure_rate):
        violations.append("failure rate")
    if constraints.max_cost_usd is not None and (cost is None or cost > constraints.max_cost_usd):
        violations.append("cost")
    if constraints.min_rating is not None and (rating.mean is None
                                               or rating.mean < constraints.min_rating):
        violations.append("rating")
    return SettingEvidence(setting, target, rating, len(group), failure_rate,
                           int(group["safety_failure"].sum()), cost, similarity, identity,
                           tuple(violations))


def _decide(objective: str, constraints: Constraints, axes: list[str],
            settings: list[SettingEvidence]) -> Recommendation:
    def result(best: SettingEvidence | None, runner: SettingEvidence | None,
               distinguishable: bool | None, more: int | None, message: str) -> Recommendation:
        return Recommendation(objective, constraints, axes, best, runner, distinguishable, more,
                              message, settings)

    meeting = [s for s in settings if not s.violations]
    if not meeting:
        closest = min(settings, key=lambda s: len(s.violations))
        return result(None, None, None, None,
                      f"No setting has {constraints.describe()} (closest: {_label(closest)}, "
                      f"which misses {', '.join(closest.violations)}). Loosen a constraint or "
                      "sweep other values.")
    if objective == "rating":
        rated = [s for s in meeting if s.objective.n >= MIN_RATINGS_PER_SETTING]
        if not rated:
            top = sorted(meeting, key=lambda s: -s.objective.n)[:2]
            short = sum(max(0, MIN_RATINGS_PER_SETTING - s.objective.n) for s in top)
            done = sum(s.objective.n for s in meeting)
            return result(None, None, None, short,
                          f"Too few ratings to recommend: {done} rating(s) so far; rate "
                          f"{short} more ({MIN_RATINGS_PER_SETTING} per setting, starting "
                          f"with {' and '.join(_label(s) for s in top)}).")
        meeting = rated
    measured = [s for s in meeting if s.objective.mean is not None]
    if not measured:
        return result(None, None, None, None,
                      f"No {objective} has been measured for these cells yet: run "
                      "`python -m core metrics backfill`.")
    best = measured[0]
    runner = measured[1] if len(measured) > 1 else None
    if runner is None:
        return result(best, None, None, None,
                      f"{_label(best)} is the only setting that qualifies.")
    if not best.objective.overlaps(runner.objective):
        return result(best, runner, True, 0,
                      f"{_label(best)} beats the runner-up {_label(runner)}: their 95% "
                      "intervals do not overlap.")
    more = ratings_needed(best.objective, runner.objective)
    what = "rate" if objective == "rating" else "measure"
    tail = f"{what} about {more} more" if more else f"{what} more images"
    return result(best, runner, False, more,
                  f"Not yet distinguishable from {_label(runner)}: {tail} (the 95% intervals "
                  "overlap).")


def _label(evidence: SettingEvidence) -> str:
    return ", ".join(f"{k}={v}" for k, v in evidence.setting.items())


def _mean(series: pd.Series) -> float | None:
    present = series.dropna()
    return float(present.mean()) if len(present) else None


def representative(cells: pd.DataFrame, setting: dict[str, Any]) -> int:
    """The succeeded cell that stands for a setting when it is promoted: its best-rated one,
    else the one closest to its input. Its prompt and parameters become the candidate."""
    mask = cells["state"] == "succeeded"
    for axis, value in setting.items():
        mask &= cells[axis] == value
    chosen = cells[mask]
    if chosen.empty:
        raise InvalidInput(f"No succeeded cell has {', '.join(f'{k}={v}' for k, v in setting.items())}.")
    ordered = chosen.sort_values(["rating_mean", "similarity"], ascending=False,
                                 na_position="last")
    return int(ordered.iloc[0]["id"])

"""Recommendations from plain tables: the best setting under constraints, its runner-up,
and what to say when the data cannot decide."""

from __future__ import annotations

import itertools

import pandas as pd
import pytest

from core.errors import InvalidInput
from core.insight.evidence import CELL_COLUMNS, RATING_COLUMNS
from core.insight.recommend import Constraints, recommend

_ids = itertools.count(1)


def cells_and_ratings(spec: dict[float, dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``{strength: {"ratings": [[image-0 ratings], [image-1 ratings]...], "similarity": x,
    "failed": k, "cost": c}}`` → the two tables ``core.insight.evidence`` makes."""
    cells, ratings = [], []
    for strength, s in spec.items():
        per_image = s.get("ratings", [[]] * 2)
        for image, values in enumerate(per_image):
            gid = next(_ids)
            cells.append(_cell(gid, image, strength, "succeeded", s))
            ratings += [{"generation_id": gid, "reviewer": f"r{i}", "rating": float(v),
                         "image": image, "model": "m", "strength": strength, "steps": 25,
                         "guidance": 7.5, "prompt": "P1", "seed": 1}
                        for i, v in enumerate(values)]
        for _ in range(s.get("failed", 0)):
            cells.append(_cell(next(_ids), 0, strength, "failed", s))
    return (pd.DataFrame(cells, columns=CELL_COLUMNS),
            pd.DataFrame(ratings, columns=RATING_COLUMNS))


def _cell(gid: int, image: int, strength: float, state: str, s: dict) -> dict:
    return {"id": gid, "sweep_id": 1, "cell_index": gid, "image": image, "model": "m",
            "strength": strength, "steps": 25, "guidance": 7.5, "prompt": "P1", "seed": 1,
            "state": state, "error": "NSFW content detected." if state == "failed" else None,
            "safety_failure": state == "failed", "cost_usd": s.get("cost", 0.01),
            "reused": False, "similarity": s.get("similarity", 0.8), "identity": None,
            "sharpness": s.get("sharpness", 100.0), "change": 0.1, "phash_distance": 4,
            "rating_n": 0, "rating_mean": None}


def test_the_best_rated_setting_wins_when_its_interval_clears_the_runner_up():
    cells, ratings = cells_and_ratings({
        0.3: {"ratings": [[5, 5, 5, 4]] * 3},
        0.5: {"ratings": [[2, 2, 3, 2]] * 3},
        0.7: {"ratings": [[1, 1, 2, 1]] * 3},
    })
    rec = recommend(cells, ratings, axes=["strength"])
    assert rec.best.setting == {"strength": 0.3} and rec.runner_up.setting == {"strength": 0.5}
    assert rec.best.objective.n == 12 and rec.best.objective.mean == pytest.approx(4.75)
    assert rec.distinguishable is True and "do not overlap" in rec.message
    out = rec.as_dict()
    assert out["parameters"] == {"strength": 0.3} and out["runner_up"]["strength"] == 0.5
    assert {"n", "mean", "ci_low", "ci_high"} <= set(out)


def test_overlapping_intervals_say_how_many_more_ratings_would_tell():
    cells, ratings = cells_and_ratings({0.3: {"ratings": [[4, 3, 5]]},
                                        0.5: {"ratings": [[4, 3, 4]]}})
    rec = recommend(cells, ratings, axes=["strength"])
    assert rec.best.setting == {"strength": 0.3} and rec.distinguishable is False
    assert rec.more_ratings_needed > 0
    assert f"rate about {rec.more_ratings_needed} more" in rec.message
    assert rec.message.startswith("Not yet distinguishable")


def test_constraints_no_setting_meets_are_named():
    cells, ratings = cells_and_ratings({0.3: {"ratings": [[3, 3, 3]], "similarity": 0.85},
                                        0.6: {"ratings": [[5, 5, 4]], "similarity": 0.6}})
    rec = recommend(cells, ratings, axes=["strength"],
                    constraints=Constraints(min_similarity=0.9, min_rating=4))
    assert rec.best is None
    assert rec.message.startswith("No setting has similarity ≥ 0.9 and rating ≥ 4")


def test_a_similarity_floor_and_a_failure_ceiling_rule_settings_out():
    cells, ratings = cells_and_ratings({
        0.3: {"ratings": [[3, 3, 4]], "similarity": 0.9},
        0.6: {"ratings": [[5, 5, 5]], "similarity": 0.5},  # best rated, too far from the photo
        0.4: {"ratings": [[5, 4, 5]], "similarity": 0.85, "failed": 2},  # safety failures
    })
    rec = recommend(cells, ratings, axes=["strength"],
                    constraints=Constraints(min_similarity=0.8, max_failure_rate=0.25))
    assert rec.best.setting == {"strength": 0.3} and rec.runner_up is None
    failing = next(s for s in rec.settings if s.setting == {"strength": 0.4})
    assert failing.safety_failures == 2 and failing.failure_rate == pytest.approx(2 / 3)
    assert failing.violations == ("failure rate",)


def test_a_cost_ceiling_uses_the_cost_per_delivered_image():
    cells, ratings = cells_and_ratings({0.3: {"ratings": [[4, 4, 4]], "cost": 0.02},
                                        0.5: {"ratings": [[3, 3, 3]], "cost": 0.005}})
    rec = recommend(cells, ratings, axes=["strength"], constraints=Constraints(max_cost_usd=0.01))
    assert rec.best.setting == {"strength": 0.5}
    assert rec.best.cost_per_image_usd == pytest.approx(0.005)


def test_too_few_ratings_say_how_many_more_and_metrics_still_recommend():
    cells, ratings = cells_and_ratings({0.3: {"ratings": [[4]], "sharpness": 50},
                                        0.5: {"ratings": [[]], "sharpness": 80}})
    rec = recommend(cells, ratings, axes=["strength"])
    assert rec.best is None and rec.more_ratings_needed == 2 + 3
    assert "rate 5 more" in rec.message
    by_metric = recommend(cells, ratings, objective="sharpness", axes=["strength"])
    assert by_metric.best.setting == {"strength": 0.5}


def test_unknown_objectives_and_impossible_constraints_are_refused():
    cells, ratings = cells_and_ratings({0.3: {"ratings": [[4]]}})
    with pytest.raises(InvalidInput, match="Objective 'beauty'"):
        recommend(cells, ratings, objective="beauty")
    with pytest.raises(InvalidInput, match="between 0 and 1"):
        Constraints(min_similarity=1.5)

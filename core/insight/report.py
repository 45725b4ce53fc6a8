"""Everything known about one sweep, as plain data: ``python -m core report SWEEP_ID --json``
prints it, and the pages show the same figures from the same functions."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
from sqlalchemy.orm import Session

from core.data.models import FINAL_STATES, Sweep
from core.errors import NotFound
from core.insight import stats
from core.insight.agreement import agreement
from core.insight.evidence import (METRIC_COLUMNS, PARAMETER_AXES, load_cells, load_ratings,
                                   swept_axes)
from core.insight.recommend import Constraints, recommend

REPORTED_METRICS = ("similarity", "change", "sharpness", "identity", "phash_distance")
STATISTICS_NOTE = (f"Means with 95% intervals: a percentile bootstrap resampling input images "
                   f"({stats.BOOTSTRAP_RESAMPLES} resamples, seed {stats.BOOTSTRAP_SEED}) where "
                   f"a group has ratings of {stats.MIN_IMAGES_FOR_BOOTSTRAP} images or more, "
                   "Student's t over single ratings below that; `method` says which.")


def sweep_report(session: Session, sweep_id: int, *, objective: str = "rating",
                 constraints: Constraints = Constraints()) -> dict[str, Any]:
    sweep = session.get(Sweep, sweep_id)
    if sweep is None:
        raise NotFound(f"Sweep {sweep_id} does not exist.")
    cells = load_cells(session, sweep_ids=[sweep_id])
    ratings = load_ratings(session, cells)
    axes = swept_axes(cells) or ["strength"]
    reviewers_agreement = agreement(session, sweep_id=sweep_id)
    return {
        "sweep": {"id": sweep.id, "name": sweep.name, "model": sweep.model_ref,
                  "endpoint": sweep.endpoint.value, "axes": sweep.axes,
                  "created_at": sweep.created_at.isoformat()},
        "statistics": STATISTICS_NOTE,
        "cells": [cell_record(row) for row in cells.to_dict("records")],
        "by_parameter": by_parameter(ratings, [a for a in PARAMETER_AXES if a in axes]
                                     or axes),
        "metrics_by_parameter": metrics_by_parameter(cells, axes),
        "by_setting": by_setting(ratings, axes),
        "recommendation": recommend(cells, ratings, objective=objective,
                                    constraints=constraints, axes=axes).as_dict(),
        "estimate": {"cost_usd": sweep.estimated_cost_usd,
                     "duration_s": sweep.estimated_duration_s},
        "actual": actual(sweep, cells),
        "agreement": ({"alpha": reviewers_agreement.alpha,
                       "n_reviewers": reviewers_agreement.n_reviewers,
                       "n_items": reviewers_agreement.n_items,
                       "exact": reviewers_agreement.exact,
                       "within_one": reviewers_agreement.within_one,
                       "warning": reviewers_agreement.warning,
                       "why_no_alpha": reviewers_agreement.why_no_alpha}
                      if reviewers_agreement.n_reviewers >= 2 else None),
    }


def cell_record(cell: dict[str, Any]) -> dict[str, Any]:
    metrics = {name: _number(cell[name]) for name in REPORTED_METRICS
               if name != "identity" or _number(cell["identity"]) is not None}
    if metrics.get("phash_distance") is not None:
        metrics["phash_distance"] = int(metrics["phash_distance"])
    return {"id": int(cell["id"]), "cell_index": int(cell["cell_index"]),
            "image": _number(cell["image"]),
            **{axis: _number(cell[axis]) for axis in PARAMETER_AXES},
            "state": cell["state"], "error": cell["error"], "cost_usd": cell["cost_usd"],
            "predict_time_s": _number(cell["predict_time_s"]),
            "metrics": metrics if metrics.get("similarity") is not None else {},
            "rating": {"n": int(cell["rating_n"]), "mean": _number(cell["rating_mean"])}}


def by_parameter(ratings: pd.DataFrame, axes: list[str]) -> dict[str, dict[str, Any]]:
    """``{axis: {value: {n, mean, ci_low, ci_high, method, n_images}}}`` of the ratings."""
    out: dict[str, dict[str, Any]] = {}
    for axis in axes:
        table = stats.grouped_intervals(ratings, axis, "rating")
        out[axis] = {_key(row[axis]): _interval(row) for row in table.to_dict("records")}
    return out


def metrics_by_parameter(cells: pd.DataFrame, axes: list[str]) -> dict[str, Any]:
    """``{axis: {value: {metric: {n, mean, ci_low, ci_high, method}}}}``."""
    out: dict[str, Any] = {}
    for axis in axes:
        per_value: dict[str, Any] = {}
        for metric in METRIC_COLUMNS:
            table = stats.grouped_intervals(cells, axis, metric)
            for row in table.to_dict("records"):
                per_value.setdefault(_key(row[axis]), {})[metric] = _interval(row)
        out[axis] = per_value
    return out


def by_setting(ratings: pd.DataFrame, axes: list[str]) -> list[dict[str, Any]]:
    """The ratings of each grid setting (every swept axis fixed)."""
    table = stats.grouped_intervals(ratings, axes, "rating")
    return [{**{a: _number(row[a]) for a in axes}, **_interval(row)}
            for row in table.to_dict("records")]


def actual(sweep: Sweep, cells: pd.DataFrame) -> dict[str, Any]:
    """What the sweep cost and how long it took from submit to its last stored output (None
    while cells are still running)."""
    ran = cells[~cells["reused"]]
    finished = bool(len(cells)) and bool(cells["state"].isin([s.value for s in FINAL_STATES]).all())
    duration = None
    if finished and ran["completed_at"].notna().any():
        duration = (ran["completed_at"].max() - sweep.created_at).total_seconds()
    return {"cost_usd": float(ran["cost_usd"].sum()), "duration_s": duration,
            "finished": finished, "cells_run": int(len(ran))}


def _interval(row: dict[str, Any]) -> dict[str, Any]:
    return {"n": int(row["n"]), "n_images": int(row["n_images"]), "mean": _number(row["mean"]),
            "ci_low": _number(row["ci_low"]), "ci_high": _number(row["ci_high"]),
            "method": row["method"]}


def _number(value: Any) -> Any:
    if value is None:
        return None
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _key(value: Any) -> str:
    value = _number(value)
    return str(value)

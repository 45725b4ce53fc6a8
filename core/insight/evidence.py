"""What ran and what people said of it, as two plain tables the statistics work on.

``cells``: one row per generation with its setting (model, strength, steps, guidance, prompt,
seed), input image, outcome, cost, timings and image metrics. ``ratings``: one row per star
rating with the generation's input image and setting beside it. Reports, recommendations,
comparisons and pages all start here, so every figure comes from the same rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.data.models import Generation, OutputMetrics, Review, Sweep
from core.errors import InvalidInput, NotFound

# What a person can ship: the setting. Image and seed vary *within* a setting.
SETTING_AXES = ("model", "strength", "steps", "guidance", "prompt")
PARAMETER_AXES = (*SETTING_AXES, "seed")
METRIC_COLUMNS = ("similarity", "phash_distance", "change", "sharpness", "identity")
SAFETY_MARKERS = ("nsfw", "safety", "sensitive", "flagged")
CELL_COLUMNS = ["id", "sweep_id", "cell_index", "image", *PARAMETER_AXES, "state", "error",
                "safety_failure", "cost_usd", "predict_time_s", "latency_s", "output_width",
                "output_height", "endpoint", "submitted_at", "completed_at", "reused",
                *METRIC_COLUMNS, "rating_n", "rating_mean"]
RATING_COLUMNS = ["generation_id", "reviewer", "rating", "image", *PARAMETER_AXES]


def load_cells(session: Session, *, sweep_ids: Sequence[int] | None = None,
               scenario_id: int | None = None, image_id: int | None = None) -> pd.DataFrame:
    """The cells of some sweeps, of every sweep of a scenario, or made from one input image."""
    if sweep_ids is None and scenario_id is None and image_id is None:
        raise InvalidInput("Say which sweeps, scenario or input image to read.")
    query = (select(Generation, Sweep.model_ref, OutputMetrics)
             .join(Sweep, Sweep.id == Generation.sweep_id)
             # A reused cell shows the metrics of the output it reuses.
             .outerjoin(OutputMetrics, OutputMetrics.generation_id
                        == func.coalesce(Generation.reused_from_id, Generation.id))
             .order_by(Generation.sweep_id, Generation.cell_index))
    if sweep_ids is not None:
        missing = set(sweep_ids) - set(session.scalars(
            select(Sweep.id).where(Sweep.id.in_(list(sweep_ids)))))
        if missing:
            raise NotFound(f"Sweep {', '.join(map(str, sorted(missing)))} does not exist.")
        query = query.where(Generation.sweep_id.in_(list(sweep_ids)))
    if scenario_id is not None:
        query = query.where(Sweep.scenario_id == scenario_id)
    if image_id is not None:
        query = query.where(Generation.input_image_id == image_id)
    rows = []
    for gen, model_ref, metrics in session.execute(query):
        error = gen.error or ""
        rows.append({
            "id": gen.id, "sweep_id": gen.sweep_id, "cell_index": gen.cell_index,
            "image": gen.input_image_id, "model": model_ref, "strength": gen.strength,
            "steps": gen.steps, "guidance": gen.guidance, "prompt": gen.prompt_label or "",
            "seed": gen.seed, "state": gen.state.value, "error": gen.error,
            "safety_failure": gen.state.value == "failed"
            and any(m in error.lower() for m in SAFETY_MARKERS),
            "cost_usd": gen.cost_usd, "predict_time_s": gen.predict_time_s,
            "latency_s": gen.latency_s, "output_width": gen.output_width,
            "output_height": gen.output_height, "endpoint": gen.endpoint.value,
            "submitted_at": gen.submitted_at, "completed_at": gen.completed_at,
            "reused": gen.reused_from_id is not None,
            **{name: getattr(metrics, name) if metrics is not None else None
               for name in METRIC_COLUMNS},
        })
    cells = pd.DataFrame(rows, columns=CELL_COLUMNS)
    ratings = load_ratings(session, cells)
    counts = ratings.groupby("generation_id")["rating"].agg(["count", "mean"])
    cells["rating_n"] = cells["id"].map(counts["count"]).fillna(0).astype(int)
    cells["rating_mean"] = cells["id"].map(counts["mean"])
    for name in METRIC_COLUMNS:
        cells[name] = cells[name].astype(float)
    return cells


def load_ratings(session: Session, cells: pd.DataFrame) -> pd.DataFrame:
    """Every star rating of the given cells, with each cell's image and setting beside it."""
    if cells.empty:
        return pd.DataFrame([], columns=RATING_COLUMNS)
    ids = [int(i) for i in cells["id"]]
    found: list[Any] = []
    for start in range(0, len(ids), 900):  # stay under SQLite's bound-parameter limit
        found.extend(session.execute(
            select(Review.generation_id, Review.reviewer, Review.rating)
            .where(Review.generation_id.in_(ids[start:start + 900]),
                   Review.rating.is_not(None))).all())
    ratings = pd.DataFrame(found, columns=["generation_id", "reviewer", "rating"])
    setting = cells.set_index("id")[["image", *PARAMETER_AXES]]
    ratings = ratings.join(setting, on="generation_id")
    ratings["rating"] = ratings["rating"].astype(float)
    return ratings[RATING_COLUMNS]


def cost_per_image(cells: pd.DataFrame) -> float | None:
    """What one delivered image cost among ``cells``: every prediction's cost over the
    predictions that succeeded, so failures' cost is spread over the successes, as it would be
    in production. A reused cell is no prediction (its output was paid for once, by the cell
    it reuses) and would flatter the figure. None when no prediction succeeded."""
    predictions = cells[~cells["reused"].astype(bool)]
    succeeded = int((predictions["state"] == "succeeded").sum())
    if not succeeded:
        return None
    return float(predictions["cost_usd"].fillna(0.0).sum()) / succeeded


def swept_axes(cells: pd.DataFrame, axes: Sequence[str] = SETTING_AXES) -> list[str]:
    """The setting axes that take more than one value among the cells."""
    return [a for a in axes if cells[a].nunique(dropna=True) > 1]


def setting_of(row: pd.Series | dict, axes: Sequence[str]) -> dict[str, object]:
    return {a: _plain(row[a]) for a in axes}


def _plain(value: object) -> object:
    """numpy scalars → Python numbers, for JSON and for equality with typed values."""
    if hasattr(value, "item"):
        return value.item()
    return value

"""One gallery cell as a typed record: where it sits on every axis of its sweep, what it
produced, and which of the sweep's inputs its model does not have.

The gallery, the grid PNG and the cell dialog read these instead of a dict (which held both
the cell's ``state`` and an export ``status`` for the same thing)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from core.data.models import Generation
from core.planning.schema import ROLE_NAMES
from core.planning.sweeps import NOT_APPLIED_KEY

# Axes kept as the cell's own fields; any other axis is read from the model input.
FIELD_AXES = ("model", "strength", "steps", "guidance", "seed", "prompt", "image")


@dataclasses.dataclass(frozen=True)
class GridCell:
    id: int
    cell_index: int
    state: str  # GenerationState's value
    model: str  # owner/name of the cell's model
    image: str  # "#3 face.png", or "deleted image"
    image_key: str | None
    image_thumbnail: str | None
    prompt: str  # the variant's label (P1, or the Prompt S/R replacement)
    prompt_text: str
    negative_prompt: str
    strength: float | None
    steps: int | None
    guidance: float | None
    seed: int | None
    model_input: Mapping[str, Any]
    output: str | None
    thumbnail: str | None
    extra_outputs: tuple[str, ...]  # further images of a list output
    error: str | None
    replicate_status: str | None
    cost_usd: float
    predict_time_s: float | None
    latency_s: float | None
    attempts: int
    prediction_id: str | None
    endpoint: str
    reused_from: int | None
    created_at: dt.datetime | None
    completed_at: dt.datetime | None
    lacks: tuple[str, ...] = ()  # the sweep's inputs this cell's model does not have
    rating: float | None = None
    n_ratings: int = 0
    ratings_by: Mapping[str, int] = dataclasses.field(default_factory=dict)  # reviewer → stars
    tags: tuple[str, ...] = ()
    metrics: Mapping[str, float | None] = dataclasses.field(default_factory=dict)  # similarity …

    def value(self, axis: str) -> Any:
        """The cell's place on ``axis`` (None where its model lacks that input)."""
        if axis in FIELD_AXES:
            return getattr(self, axis)
        return self.model_input.get(axis)

    def __getitem__(self, name: str) -> Any:
        """A field, an image metric or a swept input, by name (the widgets read cells by the
        axis or metric a person picked)."""
        if name in _FIELDS:
            return getattr(self, name)
        if name in self.metrics:
            return self.metrics[name]
        if name in self.model_input:
            return self.model_input[name]
        raise KeyError(name)

    def get(self, name: str, default: Any = None) -> Any:
        try:
            return self[name]
        except KeyError:
            return default

    def lacks_axis(self, axis: str | None) -> bool:
        return axis is not None and axis in self.lacks


_FIELDS = frozenset(f.name for f in dataclasses.fields(GridCell))


def grid_cell(gen: Generation, *, model_ref: str, lacks: Iterable[str] = (),
              rating: float | None = None, tags: Sequence[str] = (),
              metrics: Mapping[str, float | None] | None = None) -> GridCell:
    image = gen.input_image
    label = (image.label or f"image {image.id}") if image else "deleted image"
    return GridCell(
        id=gen.id, cell_index=gen.cell_index, state=gen.state.value, model=model_ref,
        image=f"#{gen.input_image_id} {label}" if image else label,
        image_key=image.storage_key if image else None,
        image_thumbnail=image.thumbnail_key if image else None,
        prompt=gen.prompt_label or "P1", prompt_text=gen.prompt,
        negative_prompt=gen.negative_prompt, strength=gen.strength, steps=gen.steps,
        guidance=gen.guidance, seed=gen.seed, model_input=dict(gen.model_input or {}),
        output=gen.output_key, thumbnail=gen.thumbnail_key,
        extra_outputs=tuple(o["output_key"] for o in gen.extra_outputs or []),
        error=gen.error, replicate_status=gen.replicate_status, cost_usd=gen.cost_usd or 0.0,
        predict_time_s=gen.predict_time_s, latency_s=gen.latency_s, attempts=gen.attempts,
        prediction_id=gen.prediction_id, endpoint=gen.endpoint.value,
        reused_from=gen.reused_from_id, created_at=gen.created_at,
        completed_at=gen.completed_at, lacks=tuple(lacks), rating=rating, tags=tuple(tags),
        metrics=dict(metrics or {}))


def lacking_inputs(fixed_params: Mapping[str, Any]) -> dict[str, list[str]]:
    """model → the sweep's inputs it does not have, as the plan recorded them."""
    return dict(fixed_params.get(NOT_APPLIED_KEY) or {})


def swept_axes(cells: Sequence[GridCell]) -> list[str]:
    """The axes along which the cells differ: the model, the usual parameters, prompt and
    image, then any other model input that varies (in the order first seen)."""
    # An axis varies within one model's cells; values that differ only between models (a
    # default one model has and another lacks) are the model axis, not another.
    seen: dict[tuple[str, str], set[str]] = {}  # (model, axis) → its values
    for cell in cells:
        for axis in FIELD_AXES[1:]:
            seen.setdefault((cell.model, axis), set()).add(repr(cell.value(axis)))
        for name, value in cell.model_input.items():
            if name not in ("prompt", "negative_prompt") and name not in _ROLE_INPUTS:
                seen.setdefault((cell.model, name), set()).add(repr(value))
    varying = dict.fromkeys(name for (_, name), values in seen.items() if len(values) > 1)
    models = ["model"] if len({c.model for c in cells}) > 1 else []
    return models + [a for a in FIELD_AXES[1:] if a in varying] + [
        n for n in varying if n not in FIELD_AXES]


# Model inputs already shown through a role axis (strength, steps, guidance, seed).
_ROLE_INPUTS = frozenset(name for role in ("strength", "steps", "guidance", "seed")
                         for name in ROLE_NAMES[role])

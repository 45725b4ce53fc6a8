"""What predictions cost, what a sweep will cost and how long it will take.

Replicate bills in four ways, and the API returns no price, so every figure here is an
estimate from the price table (one row per model, ``core.data.models.ModelSpec``, with the
date the price was read; known models' prices and sources are in
``core.planning.known_models``):

- per second of a hardware SKU (community models such as stability-ai/sdxl):
  ``metrics.predict_time`` × rate, whatever the outcome (a failed or canceled prediction is
  billed for the time it used; an ``aborted`` one never started and costs nothing);
- per output image (most official models): only images produced are billed;
- per output megapixel, each output rounded up to a whole megapixel, plus, where the model
  charges for them, its input images' megapixels, each rounded up;
- per run: a flat price for each prediction that ran.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, Literal, cast

from core.errors import InvalidInput

PricingKind = Literal["per_second", "per_image", "per_megapixel", "per_run"]
PRICING_KINDS: dict[str, str] = {
    "per_second": "per second of hardware",
    "per_image": "per output image",
    "per_megapixel": "per output megapixel (+ input megapixels)",
    "per_run": "per run",
}
_RATE_FIELD = {"per_second": "usd_per_second", "per_image": "usd_per_image",
               "per_megapixel": "usd_per_megapixel", "per_run": "usd_per_run"}
# Output sizes named by models' "size" inputs (seedream: 1K, 2K, 4K square at most).
_NAMED_SIZES_MP = {"1K": 1.05, "2K": 4.19, "4K": 16.78}
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_OUTPUT_COUNT_INPUTS = ("num_outputs", "num_images", "max_images", "batch_size")


class MissingPrice(InvalidInput):
    """A model has no price yet: planning refuses it instead of guessing."""


@dataclass(frozen=True)
class Pricing:
    kind: PricingKind
    usd_per_second: float | None = None
    hardware: str | None = None  # e.g. "Nvidia A40 (Large) GPU"; per-second pricing only
    usd_per_image: float | None = None
    usd_per_megapixel: float | None = None
    usd_per_input_megapixel: float | None = None
    usd_per_run: float | None = None
    as_of: str | None = None  # YYYY-MM-DD the price was read

    def __post_init__(self) -> None:
        if self.kind not in _RATE_FIELD:
            raise InvalidInput(f"Pricing kind {self.kind!r} is not one of "
                               f"{', '.join(_RATE_FIELD)}.")
        for name in ("usd_per_second", "usd_per_image", "usd_per_megapixel",
                     "usd_per_input_megapixel", "usd_per_run"):
            rate = getattr(self, name)
            if rate is not None and (not isinstance(rate, (int, float)) or not math.isfinite(rate)
                                     or rate < 0):
                raise InvalidInput(f"{name} must be a price of 0 or more, not {rate!r}.")
        if self.as_of is not None and not _DATE.fullmatch(self.as_of):
            raise InvalidInput(f"The price date {self.as_of!r} is not YYYY-MM-DD.")
        if self.rate is None:
            raise InvalidInput(f"A model priced {PRICING_KINDS[self.kind]} needs "
                               f"{_RATE_FIELD[self.kind]}.")

    @property
    def rate(self) -> float | None:
        return getattr(self, _RATE_FIELD[self.kind])

    @classmethod
    def for_kind(cls, kind: str, usd: float | None, *, hardware: str | None = None,
                 usd_per_input_megapixel: float | None = None,
                 as_of: str | None = None) -> Pricing:
        """A price in the unit ``kind`` names (``per_image`` …), as typed on a form or flag."""
        if kind not in _RATE_FIELD:
            raise InvalidInput(f"Pricing kind {kind!r} is not one of {', '.join(_RATE_FIELD)}.")
        return cls(kind=cast(PricingKind, kind), hardware=hardware, as_of=as_of,
                   usd_per_input_megapixel=usd_per_input_megapixel, **{_RATE_FIELD[kind]: usd})

    @classmethod
    def per_second(cls, hardware: str, usd_per_second: float, as_of: str | None = None) -> Pricing:
        return cls(kind="per_second", hardware=hardware, usd_per_second=usd_per_second,
                   as_of=as_of)

    @classmethod
    def per_image(cls, usd_per_image: float, as_of: str | None = None) -> Pricing:
        return cls(kind="per_image", usd_per_image=usd_per_image, as_of=as_of)

    @classmethod
    def per_megapixel(cls, usd: float, usd_per_input_megapixel: float | None = None,
                      as_of: str | None = None) -> Pricing:
        return cls(kind="per_megapixel", usd_per_megapixel=usd,
                   usd_per_input_megapixel=usd_per_input_megapixel, as_of=as_of)

    @classmethod
    def per_run(cls, usd: float, as_of: str | None = None) -> Pricing:
        return cls(kind="per_run", usd_per_run=usd, as_of=as_of)

    @classmethod
    def of(cls, model: Any) -> Pricing:
        """The pricing of a price-table row (a ModelSpec or anything with its fields);
        MissingPrice when it has none yet."""
        kind = getattr(model, "pricing_kind", None)
        ref = getattr(model, "ref", "this model")
        if kind is None or getattr(model, _RATE_FIELD.get(kind, "pricing_kind"), None) is None:
            raise MissingPrice(
                f"{ref} has no price yet: set one before planning, on Settings → Models and "
                f"pricing or with `python -m core pricing set {ref} --per-image USD` (or "
                "--per-second USD --hardware SKU, --per-megapixel USD, --per-run USD). "
                "Replicate's API does not say what a model costs.")
        columns = {f.name: getattr(model, f.name, None) for f in fields(cls)
                   if f.name not in ("kind", "as_of")}
        return cls(kind=kind, as_of=getattr(model, "price_as_of", None), **columns)

    def as_columns(self) -> dict[str, Any]:
        """The price-table columns (ModelSpec) this pricing sets; the others are cleared."""
        return {"pricing_kind": self.kind, "hardware": self.hardware,
                "usd_per_second": self.usd_per_second, "usd_per_image": self.usd_per_image,
                "usd_per_megapixel": self.usd_per_megapixel,
                "usd_per_input_megapixel": self.usd_per_input_megapixel,
                "usd_per_run": self.usd_per_run, "price_as_of": self.as_of}

    def describe(self) -> str:
        """``$0.000725 per second (Nvidia A40 (Large) GPU), as of 2026-11-24``."""
        rate = f"${self.rate:g}"
        text = {"per_second": f"{rate} per second" + (f" ({self.hardware})" if self.hardware
                                                     else ""),
                "per_image": f"{rate} per output image",
                "per_megapixel": f"{rate} per output megapixel" + (
                    f" + ${self.usd_per_input_megapixel:g} per input megapixel"
                    if self.usd_per_input_megapixel else ""),
                "per_run": f"{rate} per run"}[self.kind]
        return text + (f", as of {self.as_of}" if self.as_of else "")


def price_text(model: Any) -> str | None:
    """The model's price in words (``Pricing.describe``), or None when it has none yet."""
    try:
        return Pricing.of(model).describe()
    except MissingPrice:
        return None


def _whole_megapixels(megapixels: Iterable[float]) -> int:
    return sum(math.ceil(mp - 1e-9) for mp in megapixels if mp > 0)


def cost_of(pricing: Pricing, predict_time_s: float | None, n_outputs: int, *,
            output_megapixels: Sequence[float] | None = None,
            input_megapixels: Sequence[float] = ()) -> float:
    """USD billed for one finished prediction (an estimate: the API returns no price).

    Per second: ``predict_time_s`` × rate, for any outcome (None, a prediction that never
    started, costs nothing). Per image: outputs × rate. Per megapixel: each output's
    megapixels rounded up (1 MP each when unknown) × rate, plus each input image's rounded up ×
    the input rate, when there were outputs. Per run: the rate for a prediction that ran.
    """
    if n_outputs < 0:
        raise ValueError(f"n_outputs {n_outputs} is negative")
    if predict_time_s is not None and (predict_time_s < 0 or not math.isfinite(predict_time_s)):
        raise ValueError(f"predict_time_s {predict_time_s!r} is not a duration")
    rate = pricing.rate or 0.0
    if pricing.kind == "per_image":
        return n_outputs * rate
    if pricing.kind == "per_megapixel":
        if n_outputs == 0:
            return 0.0
        sizes = list(output_megapixels) if output_megapixels else [1.0] * n_outputs
        return (_whole_megapixels(sizes) * rate
                + _whole_megapixels(input_megapixels) * (pricing.usd_per_input_megapixel or 0.0))
    if pricing.kind == "per_run":
        return rate if (n_outputs or predict_time_s) else 0.0
    return (predict_time_s or 0.0) * rate


def outputs_per_prediction(model_input: Mapping[str, Any]) -> int:
    """How many images a prediction with this input may return (``num_outputs``,
    ``max_images`` …; one when the model has no such input)."""
    for name in _OUTPUT_COUNT_INPUTS:
        value = model_input.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return 1


def output_megapixels(model_input: Mapping[str, Any], input_megapixels: float | None) -> float:
    """The size of one output, as far as the input tells: width × height, a ``megapixels``
    input, a named size (1K/2K/4K), else the input image's size, else 1 MP."""
    width, height = model_input.get("width"), model_input.get("height")
    if isinstance(width, (int, float)) and isinstance(height, (int, float)) and (
            model_input.get("size") in (None, "custom")):
        return width * height / 1e6
    try:
        return float(model_input["megapixels"])
    except (KeyError, TypeError, ValueError):
        pass
    if model_input.get("size") in _NAMED_SIZES_MP:
        return _NAMED_SIZES_MP[model_input["size"]]
    return input_megapixels or 1.0


def expected_cost(pricing: Pricing, model_input: Mapping[str, Any], *,
                  expected_predict_time_s: float, input_megapixels: float | None = None) -> float:
    """The estimate for one cell that succeeds as expected."""
    n = outputs_per_prediction(model_input)
    out_mp = [output_megapixels(model_input, input_megapixels)] * n
    return cost_of(pricing, expected_predict_time_s, n, output_megapixels=out_mp,
                   input_megapixels=[input_megapixels] if input_megapixels else ())


def max_cost(pricing: Pricing, model_input: Mapping[str, Any], cancel_after_s: float, *,
             input_megapixels: float | None = None) -> float:
    """The most one create can cost: per second, the whole Cancel-After deadline at the
    rate (the prediction is canceled then); per image and megapixel, every output the input
    allows; per run, the rate. For budget checks before a create (issue 16)."""
    if cancel_after_s < 0 or not math.isfinite(cancel_after_s):
        raise ValueError(f"cancel_after_s {cancel_after_s!r} is not a duration")
    return expected_cost(pricing, model_input, expected_predict_time_s=cancel_after_s,
                         input_megapixels=input_megapixels)


@dataclass(frozen=True)
class Estimate:
    cost_usd: float
    duration_s: float


def estimate_sweep(
    pricing: Pricing,
    n_cells: int,
    expected_predict_time_s: float,
    inflight_cap: int,
    create_rate_per_minute: float,
    *,
    outputs_per_cell: int = 1,
    per_cell_overhead_s: float = 0.0,
    cost_usd: float | None = None,
) -> Estimate:
    """Cost and wall-clock duration of running ``n_cells`` predictions.

    Duration is the slower of two limits: at most ``inflight_cap`` predictions run at once
    (so ``ceil(n / cap)`` waves of the predict time), and creates are paced at
    ``create_rate_per_minute`` (the last one created still has to run). Queueing on
    Replicate's side and cold boots are not modelled, except as ``per_cell_overhead_s``: time
    a cell takes besides predicting (queue, our polls and storing), which holds its slot.
    ``cost_usd``: the cells' cost when the caller priced each one (``expected_cost``: per
    image, per megapixel), instead of ``n_cells`` alike.
    """
    if n_cells < 0 or inflight_cap < 1 or create_rate_per_minute <= 0:
        raise ValueError("n_cells must be 0 or more, inflight_cap and create rate positive")
    cost = (cost_usd if cost_usd is not None
            else n_cells * cost_of(pricing, expected_predict_time_s, outputs_per_cell))
    if n_cells == 0:
        return Estimate(cost_usd=0.0, duration_s=0.0)
    cell_s = expected_predict_time_s + per_cell_overhead_s
    waves = math.ceil(n_cells / inflight_cap) * cell_s
    paced = (n_cells - 1) * 60.0 / create_rate_per_minute + cell_s
    return Estimate(cost_usd=cost, duration_s=max(waves, paced))


def format_usd(amount: float) -> str:
    """``$12.34`` from a dollar up, ``$0.0123`` below, ``<$0.0001`` for a sliver, ``$0.00``."""
    sign = "-" if amount < 0 else ""
    amount = abs(amount)
    if amount == 0:
        return "$0.00"
    if amount >= 0.99995:  # would print as $1.0000
        return f"{sign}${amount:,.2f}"
    if amount < 0.00005:
        return f"{sign}<$0.0001"
    return f"{sign}${amount:.4f}"

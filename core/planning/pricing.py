"""What predictions cost, what a sweep will cost and how long it will take.

Replicate bills community models such as stability-ai/sdxl per second of the hardware they run
on (``metrics.predict_time``), whatever the outcome: a failed or canceled prediction is billed
for the time it used. Official models are billed per output image instead, so a prediction that
produced nothing costs nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

PricingKind = Literal["per_second", "per_image"]


@dataclass(frozen=True)
class Pricing:
    kind: PricingKind
    usd_per_second: float | None = None
    hardware: str | None = None  # e.g. "Nvidia A40 (Large) GPU"; per-second pricing only
    usd_per_image: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("per_second", "per_image"):
            raise ValueError(f"pricing kind {self.kind!r} is not per_second or per_image")
        rate = self.usd_per_second if self.kind == "per_second" else self.usd_per_image
        if rate is None or not math.isfinite(rate) or rate < 0:
            raise ValueError(f"{self.kind} pricing needs a rate of 0 or more, not {rate!r}")

    @classmethod
    def per_second(cls, hardware: str, usd_per_second: float) -> Pricing:
        return cls(kind="per_second", hardware=hardware, usd_per_second=usd_per_second)

    @classmethod
    def per_image(cls, usd_per_image: float) -> Pricing:
        return cls(kind="per_image", usd_per_image=usd_per_image)


DEFAULT_PRICING = Pricing.per_second("Nvidia A40 (Large) GPU", 0.000725)  # stability-ai/sdxl


def cost_of(pricing: Pricing, predict_time_s: float | None, n_outputs: int) -> float:
    """USD billed for one prediction.

    Per second: ``predict_time_s`` × rate, for any outcome (None, a prediction that never
    started, costs nothing). Per image: outputs × rate.
    """
    if pricing.kind == "per_image":
        if n_outputs < 0:
            raise ValueError(f"n_outputs {n_outputs} is negative")
        return n_outputs * (pricing.usd_per_image or 0.0)
    if predict_time_s is None:
        return 0.0
    if predict_time_s < 0 or not math.isfinite(predict_time_s):
        raise ValueError(f"predict_time_s {predict_time_s!r} is not a duration")
    return predict_time_s * (pricing.usd_per_second or 0.0)


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
) -> Estimate:
    """Cost and wall-clock duration of running ``n_cells`` predictions.

    Duration is the slower of two limits: at most ``inflight_cap`` predictions run at once
    (so ``ceil(n / cap)`` waves of the predict time), and creates are paced at
    ``create_rate_per_minute`` (the last one created still has to run). Queueing on
    Replicate's side and cold boots are not modelled, except as ``per_cell_overhead_s``: time
    a cell takes besides predicting (queue, our polls and storing), which holds its slot.
    """
    if n_cells < 0 or inflight_cap < 1 or create_rate_per_minute <= 0:
        raise ValueError("n_cells must be 0 or more, inflight_cap and create rate positive")
    cost = n_cells * cost_of(pricing, expected_predict_time_s, outputs_per_cell)
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

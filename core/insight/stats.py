"""Means with 95% intervals, for ratings and metrics, from plain values.

Ratings of outputs made from the same input photo are not independent (a hard photo drags
every setting down), so an interval resamples *input images*, not single ratings: a
percentile bootstrap over images (scipy.stats.bootstrap, ``BOOTSTRAP_RESAMPLES`` resamples,
seed ``BOOTSTRAP_SEED``, so a report is reproducible). With fewer than
``MIN_IMAGES_FOR_BOOTSTRAP`` images a bootstrap over so few groups is too narrow, so the
interval is Student's t over the single values (mean ± t₀.₉₇₅,ₙ₋₁ · s/√n), which treats them
as independent. ``Interval.method`` says which one was used ("bootstrap" or "t"); a single
value has no interval ("none").
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from core.errors import InvalidInput

CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 12
MIN_IMAGES_FOR_BOOTSTRAP = 5


@dataclasses.dataclass(frozen=True)
class Interval:
    n: int  # values (ratings)
    n_images: int  # distinct input images they came from
    mean: float | None
    ci_low: float | None
    ci_high: float | None
    method: str  # "bootstrap" (by input image), "t", or "none"
    sd: float | None = None  # sample standard deviation of the values

    def overlaps(self, other: Interval) -> bool:
        if None in (self.ci_low, self.ci_high, other.ci_low, other.ci_high):
            return True
        return not (self.ci_low > other.ci_high or other.ci_low > self.ci_high)  # type: ignore[operator]

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def mean_interval(values: Sequence[float], images: Sequence[Hashable] | None = None, *,
                  confidence: float = CONFIDENCE) -> Interval:
    """The mean of ``values`` and its interval; ``images[i]`` is the input image of
    ``values[i]`` (each value its own image when None)."""
    x = np.asarray(values, dtype=float)
    if x.ndim != 1 or (images is not None and len(images) != len(x)):
        raise InvalidInput("Give one input image per value.")
    if not np.all(np.isfinite(x)):
        raise InvalidInput("Values must be finite numbers.")
    n = len(x)
    groups: list[Hashable] = list(range(n)) if images is None else list(images)
    n_images = len(set(groups))
    if n == 0:
        return Interval(0, 0, None, None, None, "none")
    mean = float(x.mean())
    sd = float(x.std(ddof=1)) if n > 1 else None
    if n == 1:
        return Interval(1, n_images, mean, None, None, "none", sd)
    if n_images >= MIN_IMAGES_FOR_BOOTSTRAP:
        low, high = _bootstrap_by_image(x, groups, confidence)
        return Interval(n, n_images, mean, low, high, "bootstrap", sd)
    half = float(scipy_stats.t.ppf((1 + confidence) / 2, n - 1)) * (sd or 0.0) / math.sqrt(n)
    return Interval(n, n_images, mean, mean - half, mean + half, "t", sd)


def _bootstrap_by_image(x: np.ndarray, groups: list[Hashable],
                        confidence: float) -> tuple[float, float]:
    codes, _ = pd.factorize(pd.Series(groups, dtype=object))
    sums = np.bincount(codes, weights=x)
    counts = np.bincount(codes).astype(float)
    if np.all(sums / counts == sums[0] / counts[0]):  # every image alike: no spread to resample
        value = float(sums.sum() / counts.sum())
        return value, value

    def pooled_mean(image_index: np.ndarray, axis: int = -1) -> np.ndarray:
        return sums[image_index].sum(axis=axis) / counts[image_index].sum(axis=axis)

    result = scipy_stats.bootstrap((np.arange(len(sums)),), pooled_mean, vectorized=True,
                                   n_resamples=BOOTSTRAP_RESAMPLES, confidence_level=confidence,
                                   method="percentile",
                                   rng=np.random.default_rng(BOOTSTRAP_SEED))
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def grouped_intervals(frame: pd.DataFrame, by: str | Sequence[str], value: str,
                      image: str = "image") -> pd.DataFrame:
    """One ``mean_interval`` of ``value`` per group of ``by`` (rows with a missing value are
    left out). Columns: the ``by`` columns, n, n_images, mean, ci_low, ci_high, method, sd."""
    keys = [by] if isinstance(by, str) else list(by)
    _check_columns(frame, [*keys, value, image])
    present = frame[frame[value].notna()]
    rows = []
    for key, group in present.groupby(keys, sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        interval = mean_interval(group[value].tolist(), group[image].tolist())
        rows.append({**dict(zip(keys, key)), **interval.as_dict()})
    columns = [*keys, *(f.name for f in dataclasses.fields(Interval))]
    return pd.DataFrame(rows, columns=columns)


def heatmap(frame: pd.DataFrame, x: str, y: str, value: str) -> pd.DataFrame:
    """Mean of ``value`` and n over every (x, y) pair that has any: columns x, y, n, mean."""
    if x == y:
        raise InvalidInput(f"Pick two different axes for the heatmap, not {x!r} twice.")
    _check_columns(frame, [x, y, value])
    present = frame[frame[value].notna()]
    table = (present.groupby([x, y], sort=True, dropna=False)[value]
             .agg(n="count", mean="mean").reset_index())
    return table


def ratings_needed(best: Interval, other: Interval, *, confidence: float = CONFIDENCE) -> int | None:
    """About how many more ratings, split evenly between the two, until their intervals
    stop overlapping if the means and spread stay as they are (normal approximation:
    2 · z · s / √n < difference). None when the means are equal (no number of ratings
    would separate them) or a spread is unknown."""
    if best.mean is None or other.mean is None:
        return None
    difference = abs(best.mean - other.mean)
    spreads = [s for s in (best.sd, other.sd) if s is not None]
    if difference == 0 or not spreads:
        return None
    sd = max(float(np.mean(spreads)), 1e-9)
    z = float(scipy_stats.norm.ppf((1 + confidence) / 2))
    per_setting = math.ceil((2 * z * sd / difference) ** 2)
    return max(0, per_setting - best.n) + max(0, per_setting - other.n)


def _check_columns(frame: pd.DataFrame, columns: Sequence[str]) -> None:
    unknown = [c for c in columns if c not in frame.columns]
    if unknown:
        raise InvalidInput(f"Unknown column(s) {', '.join(map(repr, unknown))}; "
                           f"choose from {', '.join(map(str, frame.columns))}.")

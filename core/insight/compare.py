"""Two sweeps side by side, and one input photo across every sweep and model that used it.

Two sweeps are paired cell by cell on the input image and on every parameter the two have a
value in common for (the common slice); a parameter on which they share no value (another
model, another fixed step count) is what is being compared, so it does not have to match.
Each pair carries both sides' metrics and mean rating and their difference (B − A); the
summary gives each difference's mean with a 95% interval (``core.insight.stats``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pandas as pd
from sqlalchemy.orm import Session

from core.errors import InvalidInput
from core.insight import stats
from core.insight.evidence import PARAMETER_AXES, load_cells

COMPARED = ("similarity", "change", "sharpness", "identity", "rating_mean")


@dataclasses.dataclass(frozen=True)
class SweepComparison:
    a: int
    b: int
    same_axes: bool
    matched_on: list[str]  # the parameters pairs agree on (besides the input image)
    differing: list[str]  # parameters with no value in common: what is compared
    common_values: dict[str, list[Any]]  # the common slice, per matched parameter
    pairs: pd.DataFrame  # image, matched parameters, id_a, id_b, <m>_a, <m>_b, <m>_delta
    summary: dict[str, stats.Interval]  # mean B − A per compared quantity
    message: str


def compare_sweeps(session: Session, a: int, b: int) -> SweepComparison:
    if a == b:
        raise InvalidInput("Pick two different sweeps to compare.")
    cells = load_cells(session, sweep_ids=[a, b])
    left, right = cells[cells["sweep_id"] == a], cells[cells["sweep_id"] == b]
    keys, differing, common = ["image"], [], {}
    same_axes = True
    for axis in PARAMETER_AXES:
        mine, theirs = set(left[axis].dropna()), set(right[axis].dropna())
        if mine != theirs:
            same_axes = False
        shared = mine & theirs
        if shared:
            keys.append(axis)
            common[axis] = sorted(shared, key=str)
        elif mine or theirs:
            differing.append(axis)
    shared_images = set(left["image"].dropna()) & set(right["image"].dropna())
    if not shared_images:
        return SweepComparison(a, b, same_axes, keys[1:], differing, common,
                               pd.DataFrame(), {}, "The two sweeps share no input image, so no "
                               "output can be paired: compare them on the Decide page instead.")
    columns = ["id", *COMPARED]
    pairs = left[[*keys, *columns]].merge(right[[*keys, *columns]], on=keys,
                                          suffixes=("_a", "_b"))
    for name in COMPARED:
        pairs[f"{name}_delta"] = pairs[f"{name}_b"] - pairs[f"{name}_a"]
    summary = {}
    for name in COMPARED:
        present = pairs[pairs[f"{name}_delta"].notna()]
        summary[name] = stats.mean_interval(present[f"{name}_delta"].tolist(),
                                            present["image"].tolist())
    slice_note = ("same axes" if same_axes else
                  "the common slice: " + "; ".join(f"{k} {', '.join(map(str, v))}"
                                                   for k, v in common.items()))
    message = (f"{len(pairs)} pairs over {len(shared_images)} input image(s), matched on "
               f"{slice_note}" + (f"; compared across {', '.join(differing)}" if differing
                                  else ""))
    return SweepComparison(a, b, same_axes, keys[1:], differing, common, pairs, summary, message)

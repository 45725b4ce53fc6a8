"""Statistics for comparing two (or more) versions on paired outputs.

Every interval is a 95% interval from a kept library, never a hand-rolled formula:

- a win rate: Wilson score interval (statsmodels ``proportion_confint(method="wilson")``),
  which stays inside [0, 1] and behaves at 0/n and n/n where the normal interval does not;
- a difference of two rates (candidate failures minus production failures): Newcombe's hybrid
  score interval (statsmodels ``confint_proportions_2indep(method="newcomb")``), built from the
  two Wilson intervals;
- a mean of paired differences (similarity, cost, latency of the same photo and seed under the
  two versions): Student's t (``scipy.stats.ttest_1samp(...).confidence_interval``);
- strengths of more than two versions from pairwise wins: Bradley–Terry, fitted by ``choix``'s
  iterative Luce spectral ranking with a small regularisation so a version that never lost still
  gets a finite strength.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Hashable, Sequence
from typing import TypeVar

CONFIDENCE = 0.95
Item = TypeVar("Item", bound=Hashable)


@dataclasses.dataclass(frozen=True)
class Interval:
    """An estimate with its 95% interval; ``estimate`` is None when there is no data."""

    estimate: float | None
    low: float | None
    high: float | None
    n: int
    method: str

    def as_dict(self) -> dict[str, float | int | str | None]:
        return {"estimate": self.estimate, "ci_low": self.low, "ci_high": self.high, "n": self.n,
                "method": self.method}


def wilson(successes: int, n: int) -> Interval:
    """The share ``successes / n`` with its Wilson score interval."""
    from statsmodels.stats.proportion import proportion_confint

    _check_counts(successes, n)
    if n == 0:
        return Interval(None, None, None, 0, "wilson")
    low, high = proportion_confint(successes, n, alpha=1 - CONFIDENCE, method="wilson")
    return Interval(successes / n, float(low), float(high), n, "wilson")


def rate_difference(k1: int, n1: int, k2: int, n2: int) -> Interval:
    """``k1/n1 - k2/n2`` with Newcombe's hybrid score interval (independent samples)."""
    from statsmodels.stats.proportion import confint_proportions_2indep

    _check_counts(k1, n1)
    _check_counts(k2, n2)
    if n1 == 0 or n2 == 0:
        return Interval(None, None, None, min(n1, n2), "newcombe")
    low, high = confint_proportions_2indep(k1, n1, k2, n2, method="newcomb", compare="diff",
                                           alpha=1 - CONFIDENCE)
    return Interval(k1 / n1 - k2 / n2, float(low), float(high), min(n1, n2), "newcombe")


def mean_difference(deltas: Sequence[float]) -> Interval:
    """Mean of paired differences with a Student-t interval; one value has no interval, and
    identical values have a zero-width one."""
    from scipy import stats

    values = [float(d) for d in deltas if d is not None and not math.isnan(float(d))]
    n = len(values)
    if n == 0:
        return Interval(None, None, None, 0, "t")
    mean = sum(values) / n
    if n == 1:
        return Interval(mean, None, None, 1, "t")
    if max(values) == min(values):
        return Interval(mean, mean, mean, n, "t")
    ci = stats.ttest_1samp(values, 0.0).confidence_interval(CONFIDENCE)
    return Interval(mean, float(ci.low), float(ci.high), n, "t")


def bradley_terry(wins: Sequence[tuple[Item, Item]], alpha: float = 0.01) -> dict[Item, float]:
    """Bradley–Terry log-strengths (mean zero) from ``(winner, loser)`` pairs. Ties are the
    caller's to leave out. P(a beats b) = 1 / (1 + exp(s_b - s_a))."""
    import choix

    items = sorted({v for pair in wins for v in pair}, key=str)
    if len(items) < 2:
        return {item: 0.0 for item in items}
    index = {item: i for i, item in enumerate(items)}
    data = [(index[winner], index[loser]) for winner, loser in wins]
    params = choix.ilsr_pairwise(len(items), data, alpha=alpha)
    return {item: float(params[index[item]]) for item in items}


def beat_probability(strength_a: float, strength_b: float) -> float:
    return 1.0 / (1.0 + math.exp(strength_b - strength_a))


def _check_counts(k: int, n: int) -> None:
    if n < 0 or k < 0 or k > n:
        raise ValueError(f"counts must satisfy 0 <= k <= n, got k={k}, n={n}")

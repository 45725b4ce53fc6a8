"""core.insight.pairwise against values computed by hand (formulas written out in each test)."""

from __future__ import annotations

import math

import pytest

from core.insight.pairwise import (beat_probability, bradley_terry, mean_difference,
                                   rate_difference, wilson)

Z = 1.959963984540054  # the 97.5% normal quantile


def wilson_by_hand(k: int, n: int) -> tuple[float, float]:
    p = k / n
    centre = (p + Z * Z / (2 * n)) / (1 + Z * Z / n)
    half = Z * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n)) / (1 + Z * Z / n)
    return centre - half, centre + half


def test_wilson_interval_matches_the_formula():
    # 8 of 10: centre (0.8 + 0.19207) / 1.38415 = 0.71674, half-width 0.22658
    interval = wilson(8, 10)
    assert interval.estimate == 0.8 and interval.n == 10
    assert interval.low == pytest.approx(0.49016, abs=1e-5)
    assert interval.high == pytest.approx(0.94332, abs=1e-5)
    for k, n in ((0, 5), (5, 5), (3, 7), (50, 100)):
        low, high = wilson_by_hand(k, n)
        got = wilson(k, n)
        assert (got.low, got.high) == (pytest.approx(low, abs=1e-9), pytest.approx(high, abs=1e-9))
    # at 0 of 5 the interval starts at 0 and stays inside [0, 1] (the normal interval would not)
    assert wilson(0, 5).low == pytest.approx(0.0, abs=1e-12) and wilson(0, 5).high < 0.44


def test_no_data_has_no_estimate_and_bad_counts_are_refused():
    assert wilson(0, 0).estimate is None and wilson(0, 0).low is None
    with pytest.raises(ValueError, match="k=3, n=2"):
        wilson(3, 2)


def test_newcombe_difference_of_two_rates():
    # Newcombe (1998) method 10: d = p1 - p2,
    # low  = d - sqrt((p1 - l1)^2 + (u2 - p2)^2), high = d + sqrt((u1 - p1)^2 + (p2 - l2)^2)
    # with (l, u) each rate's Wilson interval. 3/10 vs 1/10:
    l1, u1 = wilson_by_hand(3, 10)
    l2, u2 = wilson_by_hand(1, 10)
    d = 0.3 - 0.1
    low = d - math.sqrt((0.3 - l1) ** 2 + (u2 - 0.1) ** 2)
    high = d + math.sqrt((u1 - 0.3) ** 2 + (0.1 - l2) ** 2)
    got = rate_difference(3, 10, 1, 10)
    assert got.estimate == pytest.approx(0.2)
    assert got.low == pytest.approx(low, abs=1e-9) and got.high == pytest.approx(high, abs=1e-9)
    assert got.low == pytest.approx(-0.15979, abs=1e-5)  # the published value for 3/10 vs 1/10


def test_mean_of_paired_differences_with_a_t_interval():
    # deltas 0.1, -0.2, 0.05, 0.3: mean 0.0625, squared deviations sum to 0.126875,
    # sd = sqrt(0.126875 / 3) = 0.205650,
    # t(0.975, 3) = 3.182446, half-width 3.182446 * 0.205650 / 2 = 0.327234
    got = mean_difference([0.1, -0.2, 0.05, 0.3])
    assert got.estimate == pytest.approx(0.0625)
    assert got.low == pytest.approx(0.0625 - 0.327234, abs=1e-5)
    assert got.high == pytest.approx(0.0625 + 0.327234, abs=1e-5)
    assert mean_difference([0.2]).low is None  # one value: no interval
    same = mean_difference([-0.1, -0.1, -0.1])
    assert (same.low, same.high) == (pytest.approx(-0.1), pytest.approx(-0.1))
    assert mean_difference([]).estimate is None


def test_bradley_terry_strengths_match_the_closed_form():
    # Two items, a beats b 3 times and loses once: the maximum-likelihood strengths satisfy
    # P(a beats b) = 3/4, so s_a - s_b = ln 3 (the small regularisation moves it a little).
    strengths = bradley_terry([("a", "b")] * 3 + [("b", "a")], alpha=1e-6)
    assert strengths["a"] - strengths["b"] == pytest.approx(math.log(3), abs=1e-3)
    assert beat_probability(strengths["a"], strengths["b"]) == pytest.approx(0.75, abs=1e-3)


def test_bradley_terry_orders_three_versions_and_keeps_unbeaten_ones_finite():
    # v3 beats both others every time, v2 beats v1 two times in three
    wins = [(3, 1)] * 4 + [(3, 2)] * 4 + [(2, 1)] * 2 + [(1, 2)]
    strengths = bradley_terry(wins)
    assert strengths[3] > strengths[2] > strengths[1]
    assert all(math.isfinite(s) for s in strengths.values())
    assert sum(strengths.values()) == pytest.approx(0.0, abs=1e-9)

"""Means and 95% intervals against values computed by hand (and scipy's t and binomial
quantiles for the constants)."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from scipy import stats as scipy_stats

from core.errors import InvalidInput
from core.insight.stats import (Interval, grouped_intervals, heatmap, mean_interval,
                                ratings_needed)


def test_few_images_get_a_t_interval():
    # mean 3.6; squared deviations 2.56+0.36+0.16+0.16+1.96 = 5.2; s = √(5.2/4) = 1.140175;
    # t(0.975, 4) = 2.776445; half-width = 2.776445 · 1.140175 / √5 = 1.415711.
    interval = mean_interval([2, 3, 4, 4, 5], ["a", "a", "b", "b", "c"])
    assert interval.method == "t" and interval.n == 5 and interval.n_images == 3
    assert interval.mean == pytest.approx(3.6)
    assert interval.sd == pytest.approx(1.140175, abs=1e-6)
    assert scipy_stats.t.ppf(0.975, 4) == pytest.approx(2.776445, abs=1e-6)
    assert interval.ci_low == pytest.approx(3.6 - 1.415711, abs=1e-5)
    assert interval.ci_high == pytest.approx(3.6 + 1.415711, abs=1e-5)


def test_one_value_has_no_interval_and_none_has_no_mean():
    assert mean_interval([4], ["a"]) == Interval(1, 1, 4.0, None, None, "none", None)
    assert mean_interval([], []).mean is None


def test_images_that_agree_leave_nothing_to_resample():
    interval = mean_interval([3, 5] * 6, [i // 2 for i in range(12)])  # each image: 3 and 5
    assert interval.method == "bootstrap"
    assert (interval.ci_low, interval.mean, interval.ci_high) == (4.0, 4.0, 4.0)


def test_bootstrap_over_images_matches_the_binomial_it_samples():
    # 20 images with one rating each, ten 0s and ten 1s: a resampled mean is Binomial(20, ½)/20,
    # whose 2.5% and 97.5% quantiles are 6/20 and 14/20.
    assert scipy_stats.binom.ppf([0.025, 0.975], 20, 0.5).tolist() == [6, 14]
    interval = mean_interval([0] * 10 + [1] * 10, list(range(20)))
    assert interval.method == "bootstrap"
    assert interval.ci_low == pytest.approx(0.30, abs=0.05)
    assert interval.ci_high == pytest.approx(0.70, abs=0.05)


def test_ratings_of_one_photo_count_as_one_photo():
    # Six images, five ratings each, all alike within an image: the by-image interval must be
    # about as wide as six values give, far wider than thirty independent ratings would.
    values = [v for v in (1, 5, 1, 5, 1, 5) for _ in range(5)]
    images = [i for i in range(6) for _ in range(5)]
    clustered = mean_interval(values, images)
    independent = 2 * scipy_stats.t.ppf(0.975, 29) * pd.Series(values).std() / math.sqrt(30)
    assert clustered.ci_high - clustered.ci_low > 1.5 * independent


def test_intervals_per_group_and_heatmap_counts():
    frame = pd.DataFrame({"strength": [0.3, 0.3, 0.3, 0.6, 0.6],
                          "steps": [20, 20, 30, 20, 30],
                          "rating": [4, 5, 3, 2, None],
                          "image": [1, 2, 1, 1, 2]})
    table = grouped_intervals(frame, "strength", "rating").set_index("strength")
    assert table.loc[0.3, "n"] == 3 and table.loc[0.3, "mean"] == pytest.approx(4.0)
    assert table.loc[0.6, "n"] == 1 and table.loc[0.6, "method"] == "none"
    cells = heatmap(frame, "strength", "steps", "rating").set_index(["strength", "steps"])
    assert cells.loc[(0.3, 20), "n"] == 2 and cells.loc[(0.3, 20), "mean"] == 4.5
    assert (0.6, 30) not in cells.index  # no rating there


def test_bad_requests_say_what_to_fix():
    frame = pd.DataFrame({"strength": [0.3], "rating": [4], "image": [1]})
    with pytest.raises(InvalidInput, match="'colour'.*choose from strength"):
        grouped_intervals(frame, "colour", "rating")
    with pytest.raises(InvalidInput, match="two different axes"):
        heatmap(frame, "strength", "strength", "rating")
    with pytest.raises(InvalidInput, match="one input image per value"):
        mean_interval([1, 2], ["a"])


def test_ratings_needed_to_separate_two_settings():
    # z = 1.959964; per setting n > (2 · 1.959964 · 1 / 0.5)² = 61.46 → 62; each has 3.
    best = Interval(3, 3, 4.0, 3.0, 5.0, "t", 1.0)
    other = Interval(3, 3, 3.5, 2.5, 4.5, "t", 1.0)
    assert ratings_needed(best, other) == 2 * (62 - 3)
    assert ratings_needed(best, Interval(3, 3, 4.0, 3.0, 5.0, "t", 1.0)) is None

"""core.insight.agreement: Krippendorff's alpha (ordinal) and the exact / ±1 shares, against
values worked out by hand, and its scopes (a sweep, a scenario, everything) on real databases."""

from __future__ import annotations

import pytest

from core.errors import InvalidInput, NotFound
from core.insight.agreement import LOW_ALPHA_WARNING, agreement, agreement_of
from core.insight.review import save_review
from tests.factories import make_generation, make_scenario, make_sweep


def test_two_reviewers_nearly_agree():
    # Items (a, b): (1,1) (2,2) (3,4). Pairable values n1=2 n2=2 n3=1 n4=1, n=6.
    # Observed: only the (3,4) pair disagrees, ordinal delta²_34 = (n3+n4 - (n3+n4)/2)² = 1,
    # counted both ways: D_o = 2·1 / 6 = 1/3.
    # Expected: delta²: 12→4, 13→12.25, 14→20.25, 23→2.25, 24→6.25, 34→1; sum of
    # n_c·n_k·delta² over c<k = 16+24.5+40.5+4.5+12.5+1 = 99, both ways 198, over n(n-1)=30:
    # D_e = 6.6. alpha = 1 - (1/3)/6.6 = 94/99.
    result = agreement_of({1: {"a": 1, "b": 1}, 2: {"a": 2, "b": 2}, 3: {"a": 3, "b": 4}})
    assert result.alpha == pytest.approx(94 / 99)
    assert (result.n_items, result.n_reviewers, result.n_ratings, result.n_pairs) == (3, 2, 6, 3)
    assert result.exact == pytest.approx(2 / 3) and result.within_one == 1.0
    assert not result.low and result.warning is None


def test_three_reviewers_with_missing_ratings():
    # g1 (a1, b1), g2 (a2, b3, c3), g3 (a5) alone — not pairable, g4 (a4, c5).
    # Pairable n1=2 n2=1 n3=2 n4=1 n5=1, n=7. Observed: g2 gives o_23=o_32=o_33=1/2·2=1;
    # g4 gives o_45=o_54=1. delta²_23 = (3-1.5)² = 2.25, delta²_45 = 1: D_o = (4.5+2)/7.
    # Expected: n_c·n_k·delta² over c<k: 12 4.5, 13 36, 14 40.5, 15 60.5, 23 4.5, 24 9, 25 16,
    # 34 4.5, 35 12.5, 45 1 = 189, both ways 378 over 42: D_e = 9. alpha = 1 - 6.5/63.
    result = agreement_of({1: {"a": 1, "b": 1}, 2: {"a": 2, "b": 3, "c": 3}, 3: {"a": 5},
                           4: {"a": 4, "c": 5}})
    assert result.alpha == pytest.approx(1 - 6.5 / 63)
    assert (result.n_items, result.n_reviewers, result.n_ratings) == (3, 3, 8)
    # pairs: g1 (1,1); g2 (2,3) (2,3) (3,3); g4 (4,5): 2 of 5 equal, all 5 within one star
    assert result.n_pairs == 5
    assert result.exact == pytest.approx(0.4) and result.within_one == 1.0


def test_opposite_ratings_warn():
    # (1,5) (5,1) (3,3): n1=n3=n5=2, n=6. delta²_15 = (6-2)² = 16, 13 and 35 → 4.
    # D_o = 4·16/6 = 32/3; D_e = 2·(4·4 + 4·16 + 4·4)/30 = 6.4; alpha = 1 - (32/3)/6.4 = -2/3.
    result = agreement_of({1: {"a": 1, "b": 5}, 2: {"a": 5, "b": 1}, 3: {"a": 3, "b": 3}})
    assert result.alpha == pytest.approx(-2 / 3)
    assert result.exact == pytest.approx(1 / 3) and result.within_one == pytest.approx(1 / 3)
    assert result.low and LOW_ALPHA_WARNING in result.warning and "-0.67" in result.warning


@pytest.mark.parametrize("ratings, reason", [
    ({}, "0 generation(s)"),
    ({1: {"a": 3}, 2: {"b": 4}}, "0 generation(s)"),  # nobody rated the same generation
    ({1: {"a": 3, "b": 4}}, "1 generation(s)"),
    ({1: {"a": 3, "b": 3}, 2: {"a": 3, "b": 3}}, "same value"),
])
def test_no_alpha_says_why(ratings, reason):
    result = agreement_of(ratings)
    assert result.alpha is None and reason in result.why_no_alpha and not result.low


def test_a_rating_outside_the_scale_is_refused():
    with pytest.raises(InvalidInput, match="Rating 6 by a on generation 1"):
        agreement_of({1: {"a": 6, "b": 1}})


def test_scopes_on_the_database(db_session):
    scenario = make_scenario(db_session, "projection-level-1")
    tuned = make_sweep(db_session, scenario=scenario)
    other = make_sweep(db_session)
    table = [(tuned, {"a": 1, "b": 1}), (tuned, {"a": 2, "b": 2}), (tuned, {"a": 3, "b": 4}),
             (other, {"a": 1, "b": 5}), (other, {"a": 5, "b": 1})]
    for sweep, by_reviewer in table:
        gid = make_generation(db_session, sweep).id
        for reviewer, stars in by_reviewer.items():
            save_review(db_session, gid, reviewer, rating=stars)
    thumbs_only = make_generation(db_session, tuned).id
    save_review(db_session, thumbs_only, "a", thumbs=1)  # no stars: not part of alpha
    save_review(db_session, thumbs_only, "b", thumbs=-1)
    assert agreement(db_session, sweep_id=tuned.id).alpha == pytest.approx(94 / 99)
    assert agreement(db_session, scenario="projection-level-1").alpha == pytest.approx(94 / 99)
    everything = agreement(db_session)
    assert (everything.n_items, everything.n_ratings) == (5, 10)
    assert everything.exact == pytest.approx(2 / 5)
    with pytest.raises(NotFound, match="Sweep 99999"):
        agreement(db_session, sweep_id=99999)
    with pytest.raises(NotFound, match="'nope'"):
        agreement(db_session, scenario="nope")

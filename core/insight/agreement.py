"""How much reviewers agree on their star ratings, per sweep, per scenario or overall.

Krippendorff's alpha comes from the ``krippendorff`` package (ordinal, 1–5 as the value
domain); it copes with missing ratings, so each reviewer rates whatever they rated. Only
generations rated by two people or more carry information about agreement: their number is
``n_items``. Beside alpha, the plain shares a person can read: of all pairs of ratings given
to the same generation by two different reviewers, how many are equal (``exact``) and how many
differ by at most one star (``within_one``).

Alpha is None when it cannot be computed: fewer than two overlapping generations, or every
rating the same value (no variation, so no expected disagreement to compare against).
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.data.models import Generation, Review, Scenario, Sweep
from core.errors import InvalidInput, NotFound

RATING_DOMAIN = (1, 2, 3, 4, 5)
LOW_ALPHA = 0.4
LOW_ALPHA_WARNING = "reviewers disagree: read the notes before trusting the means"


@dataclasses.dataclass(frozen=True)
class Agreement:
    """Agreement between reviewers' ratings in one scope (a sweep, a scenario, or all)."""

    alpha: float | None  # Krippendorff's alpha, ordinal; None when it cannot be computed
    n_items: int  # generations rated by two reviewers or more (what alpha rests on)
    n_reviewers: int  # people who gave a rating in the scope
    n_ratings: int  # star ratings in the scope
    n_pairs: int  # pairs of ratings on the same generation by two different reviewers
    exact: float | None  # share of those pairs that are equal
    within_one: float | None  # share of those pairs at most one star apart

    @property
    def low(self) -> bool:
        """Alpha is known and below LOW_ALPHA: the means should not be trusted as they are."""
        return self.alpha is not None and self.alpha < LOW_ALPHA

    @property
    def warning(self) -> str | None:
        return f"α = {self.alpha:.2f}: {LOW_ALPHA_WARNING}." if self.low else None

    @property
    def why_no_alpha(self) -> str | None:
        """Why alpha is None, in words; None when it was computed."""
        if self.alpha is not None:
            return None
        if self.n_items < 2:
            return (f"{self.n_items} generation(s) rated by two reviewers or more; alpha needs "
                    "at least 2")
        return "every overlapping rating has the same value; alpha is undefined without variation"


def agreement(session: Session, sweep_id: int | None = None,
              scenario: str | None = None) -> Agreement:
    """Agreement over the ratings of one sweep, of every sweep of a scenario (by name), or of
    everything when both are None."""
    query = (select(Review.generation_id, Review.reviewer, Review.rating)
             .join(Generation, Generation.id == Review.generation_id)
             .where(Review.rating.is_not(None)))
    if sweep_id is not None:
        if session.get(Sweep, sweep_id) is None:
            raise NotFound(f"Sweep {sweep_id} does not exist.")
        query = query.where(Generation.sweep_id == sweep_id)
    if scenario is not None:
        scenario_id = session.scalar(select(Scenario.id).where(Scenario.name == scenario))
        if scenario_id is None:
            raise NotFound(f"Scenario {scenario!r} does not exist.")
        query = query.join(Sweep, Sweep.id == Generation.sweep_id).where(
            Sweep.scenario_id == scenario_id)
    ratings: dict[int, dict[str, int]] = {}
    for generation_id, reviewer, rating in session.execute(query):
        ratings.setdefault(generation_id, {})[reviewer] = int(rating)  # type: ignore[arg-type]  # rated rows only
    return agreement_of(ratings)


def agreement_of(ratings: dict[int, dict[str, int]]) -> Agreement:
    """Agreement of ``{generation id: {reviewer: stars}}`` (the pure part, for reports and
    tests)."""
    reviewers = sorted({r for by_reviewer in ratings.values() for r in by_reviewer})
    for gid, by_reviewer in ratings.items():
        for reviewer, stars in by_reviewer.items():
            if stars not in RATING_DOMAIN:
                raise InvalidInput(f"Rating {stars!r} by {reviewer} on generation {gid} is "
                                   "outside 1–5.")
    overlapping = {gid: by for gid, by in ratings.items() if len(by) >= 2}
    pairs = [abs(a - b) for by in overlapping.values()
             for a, b in itertools.combinations(by.values(), 2)]
    n_pairs = len(pairs)
    return Agreement(
        alpha=_alpha(overlapping, reviewers), n_items=len(overlapping),
        n_reviewers=len(reviewers), n_ratings=sum(len(by) for by in ratings.values()),
        n_pairs=n_pairs,
        exact=sum(d == 0 for d in pairs) / n_pairs if n_pairs else None,
        within_one=sum(d <= 1 for d in pairs) / n_pairs if n_pairs else None)


def _alpha(overlapping: dict[int, dict[str, int]], reviewers: list[str]) -> float | None:
    if len(overlapping) < 2:
        return None
    values = {v for by in overlapping.values() for v in by.values()}
    if len(values) < 2:
        return None
    import krippendorff  # imported here: only agreement needs it, and it loads numpy paths

    gids = sorted(overlapping)
    table = np.full((len(reviewers), len(gids)), np.nan)
    for column, gid in enumerate(gids):
        for row, reviewer in enumerate(reviewers):
            if reviewer in overlapping[gid]:
                table[row, column] = overlapping[gid][reviewer]
    alpha = float(krippendorff.alpha(reliability_data=table, level_of_measurement="ordinal",
                                     value_domain=list(RATING_DOMAIN)))
    return alpha if math.isfinite(alpha) else None

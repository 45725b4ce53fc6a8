"""Reviewing generations: the queue, one review per (generation, reviewer), several reviewers
per sweep, their progress, and the summary of ratings by parameter value.

Only succeeded generations are reviewed. The queue runs oldest first by completion time (ties
by id); the "first 100" view is the first ``n`` succeeded generations ever, or of one sweep,
in that same order, and progress counts how many of them a reviewer has done ("37 / 100").

Several reviewers: a sweep's ``min_ratings`` (None: everyone reviews everything) takes a
generation out of everybody's queue once that many people reviewed it; until then each person
is served what still lacks *their* review. Others' reviews of a generation are given to a
reviewer only once they have reviewed it themselves (``QueueItem.others``), so nobody anchors
on a colleague's stars. Agreement between reviewers is in core.insight.agreement.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Iterable
from typing import Any

import pandas as pd
from sqlalchemy import and_, case, exists, func, or_, select
from sqlalchemy.orm import Session

from core.data.audit import record
from core.errors import InvalidInput, NotFound
from core.data.models import Generation, GenerationState, InputImage, Review, Sweep, utcnow
from core.planning.sweeps import succeeded_generation

PRESET_TAGS = ("identity lost", "artifact", "too subtle", "too strong", "anatomy",
               "background changed")
FIRST_N = 100
MAX_TAGS = 10
MAX_TAG_CHARS = 40
MAX_NOTE_CHARS = 5000
MAX_MIN_RATINGS = 20
UNLABELLED = "(unlabelled)"


@dataclasses.dataclass(frozen=True)
class ReviewRecord:
    generation_id: int
    reviewer: str
    rating: int | None
    thumbs: int | None
    tags: tuple[str, ...]
    note: str
    seconds_spent: float | None
    updated_at: dt.datetime


@dataclasses.dataclass(frozen=True)
class QueueItem:
    """What the Review page shows for one generation, with this reviewer's review if any."""

    generation_id: int
    sweep_id: int
    cell_index: int
    completed_at: dt.datetime | None
    input_image_id: int | None
    input_key: str | None
    output_key: str | None
    thumbnail_key: str | None
    strength: float | None
    steps: int | None
    guidance: float | None
    seed: int | None
    prompt: str
    prompt_label: str
    negative_prompt: str
    model_ref: str
    endpoint: str
    cost_usd: float
    latency_s: float | None
    review: ReviewRecord | None
    input_label: str = ""  # the uploaded file's name
    sweep_name: str = ""
    min_ratings: int | None = None  # the sweep's reviews wanted per generation
    n_reviews: int = 0  # reviews by anyone
    others: tuple[ReviewRecord, ...] = ()  # other people's reviews; empty until I reviewed

    @property
    def mean_rating(self) -> float | None:
        """Mean stars over everyone, once I have reviewed (None before, or without stars)."""
        stars = [r.rating for r in (self.review, *self.others) if r is not None and r.rating]
        return sum(stars) / len(stars) if stars and self.review is not None else None


@dataclasses.dataclass(frozen=True)
class Progress:
    reviewed: int
    total: int

    def __str__(self) -> str:
        return f"{self.reviewed} / {self.total}"


# -- scope and order -----------------------------------------------------------------------------
def _scope(sweep_id: int | None, first_n: int | None) -> list[Any]:
    conditions: list[Any] = [Generation.state == GenerationState.SUCCEEDED]
    if sweep_id is not None:
        conditions.append(Generation.sweep_id == sweep_id)
    if first_n is not None:
        if first_n < 1:
            raise InvalidInput(f"The first-generations view needs a count of 1 or more, "
                               f"not {first_n}.")
        firsts = (select(Generation.id).where(*conditions)
                  .order_by(Generation.completed_at, Generation.id).limit(first_n)
                  .correlate(None))  # its own scan of generation, not the outer query's row
        conditions.append(Generation.id.in_(firsts.scalar_subquery()))
    return conditions


def _reviewed_by(reviewer: str | None) -> Any:
    mine = [Review.generation_id == Generation.id]
    if reviewer is not None:
        mine.append(Review.reviewer == reviewer)
    return exists().where(*mine)


def _wanted_by(reviewer: str) -> Any:
    """Still to be served to ``reviewer``: not reviewed by them, and its sweep wants more
    reviews than it has (always, for a sweep without ``min_ratings``)."""
    wanted = (select(Sweep.min_ratings).where(Sweep.id == Generation.sweep_id)
              .scalar_subquery())
    reviews = (select(func.count(Review.id)).where(Review.generation_id == Generation.id)
               .scalar_subquery())
    return and_(~_reviewed_by(reviewer), or_(wanted.is_(None), reviews < wanted))


def review_queue(session: Session, reviewer: str, *, sweep_id: int | None = None,
                 first_n: int | None = None, include_reviewed: bool = False,
                 limit: int = 50) -> list[QueueItem]:
    """Succeeded generations still wanted from ``reviewer`` (not reviewed by them, and short of
    their sweep's ``min_ratings``), oldest first (all of them in scope with
    ``include_reviewed``); ``first_n=100`` restricts to the first 100."""
    conditions = _scope(sweep_id, first_n)
    if not include_reviewed:
        conditions.append(_wanted_by(reviewer))
    ids = list(session.scalars(select(Generation.id).where(*conditions)
                               .order_by(Generation.completed_at, Generation.id).limit(limit)))
    return _items(session, ids, reviewer)


def review_item(session: Session, generation_id: int, reviewer: str) -> QueueItem:
    items = _items(session, [generation_id], reviewer)
    if not items:
        raise NotFound(f"Generation {generation_id} does not exist.")
    return items[0]


def progress(session: Session, reviewer: str | None, *, sweep_id: int | None = None,
             first_n: int | None = FIRST_N) -> Progress:
    """How many generations in scope ``reviewer`` (anyone, for None) has reviewed."""
    conditions = _scope(sweep_id, first_n)
    total, reviewed = session.execute(select(
        func.count(), func.coalesce(func.sum(case((_reviewed_by(reviewer), 1), else_=0)), 0))
        .where(*conditions)).one()
    return Progress(reviewed=int(reviewed), total=int(total))


def next_generation_id(session: Session, current_id: int | None, reviewer: str, *,
                       sweep_id: int | None = None, first_n: int | None = None,
                       unreviewed_only: bool = False) -> int | None:
    """The generation after ``current_id`` in queue order (the first when None); None at the
    end. ``unreviewed_only`` skips what is not wanted from ``reviewer`` (rate-and-advance)."""
    return _neighbour(session, current_id, reviewer, sweep_id, first_n, unreviewed_only, +1)


def previous_generation_id(session: Session, current_id: int | None, reviewer: str, *,
                           sweep_id: int | None = None, first_n: int | None = None,
                           unreviewed_only: bool = False) -> int | None:
    """The generation before ``current_id`` in queue order (the last when None)."""
    return _neighbour(session, current_id, reviewer, sweep_id, first_n, unreviewed_only, -1)


def _neighbour(session: Session, current_id: int | None, reviewer: str, sweep_id: int | None,
               first_n: int | None, unreviewed_only: bool, direction: int) -> int | None:
    conditions = _scope(sweep_id, first_n)
    if unreviewed_only:
        conditions.append(_wanted_by(reviewer))
    if current_id is not None:
        key = session.execute(select(Generation.completed_at, Generation.id)
                              .where(Generation.id == current_id)).first()
        if key is None:
            raise NotFound(f"Generation {current_id} does not exist.")
        at, gid = key
        if direction > 0:
            conditions.append(or_(Generation.completed_at > at,
                                  and_(Generation.completed_at == at, Generation.id > gid)))
        else:
            conditions.append(or_(Generation.completed_at < at,
                                  and_(Generation.completed_at == at, Generation.id < gid)))
    order = ((Generation.completed_at, Generation.id) if direction > 0
             else (Generation.completed_at.desc(), Generation.id.desc()))
    return session.scalar(select(Generation.id).where(*conditions).order_by(*order).limit(1))


def _items(session: Session, ids: list[int], reviewer: str) -> list[QueueItem]:
    if not ids:
        return []
    rows = session.execute(
        select(Generation, InputImage.storage_key, InputImage.label, Sweep.model_ref,
               Sweep.name, Sweep.min_ratings)
        .join(Sweep, Sweep.id == Generation.sweep_id)
        .outerjoin(InputImage, InputImage.id == Generation.input_image_id)
        .where(Generation.id.in_(ids)))
    reviews = reviews_of(session, ids)
    by_id = {}
    for gen, input_key, input_label, model_ref, sweep_name, min_ratings in rows:
        all_reviews = reviews.get(gen.id, [])
        mine = next((r for r in all_reviews if r.reviewer == reviewer), None)
        others = tuple(r for r in all_reviews if r.reviewer != reviewer) if mine else ()
        by_id[gen.id] = QueueItem(
            generation_id=gen.id, sweep_id=gen.sweep_id, cell_index=gen.cell_index,
            completed_at=gen.completed_at, input_image_id=gen.input_image_id,
            input_key=input_key, output_key=gen.output_key, thumbnail_key=gen.thumbnail_key,
            strength=gen.strength, steps=gen.steps, guidance=gen.guidance, seed=gen.seed,
            prompt=gen.prompt, prompt_label=gen.prompt_label,
            negative_prompt=gen.negative_prompt, model_ref=model_ref,
            endpoint=gen.endpoint.value, cost_usd=gen.cost_usd, latency_s=gen.latency_s,
            review=mine, input_label=input_label or "", sweep_name=sweep_name or "",
            min_ratings=min_ratings, n_reviews=len(all_reviews), others=others)
    return [by_id[i] for i in ids if i in by_id]


def reviews_of(session: Session, generation_ids: Iterable[int]) -> dict[int, list[ReviewRecord]]:
    """Every review of these generations, oldest first, by generation id."""
    ids = list(generation_ids)
    found: dict[int, list[ReviewRecord]] = {}
    if not ids:
        return found
    for review in session.scalars(select(Review).where(Review.generation_id.in_(ids))
                                  .order_by(Review.created_at, Review.id)):
        found.setdefault(review.generation_id, []).append(_record(review))
    return found


def _record(review: Review) -> ReviewRecord:
    return ReviewRecord(review.generation_id, review.reviewer, review.rating, review.thumbs,
                        tuple(review.tags or ()), review.note, review.seconds_spent,
                        review.updated_at)


# -- several reviewers ---------------------------------------------------------------------------
def set_min_ratings(session: Session, sweep_id: int, min_ratings: int | None, *,
                    actor: str) -> None:
    """How many people should review each generation of a sweep (None: everyone, all)."""
    if min_ratings is not None and (isinstance(min_ratings, bool)
                                    or not isinstance(min_ratings, int)
                                    or not 1 <= min_ratings <= MAX_MIN_RATINGS):
        raise InvalidInput(f"Reviews per generation {min_ratings!r} is not allowed: give 1 to "
                           f"{MAX_MIN_RATINGS}, or none for everyone reviews everything.")
    sweep = session.get(Sweep, sweep_id)
    if sweep is None:
        raise NotFound(f"Sweep {sweep_id} does not exist.")
    before, sweep.min_ratings = sweep.min_ratings, min_ratings
    session.flush()
    record(session, actor, "review_min_ratings", "sweep", sweep_id,
           {"before": before, "after": min_ratings})


@dataclasses.dataclass(frozen=True)
class ReviewerProgress:
    """One person's reviewing in a scope: how many, how fast, how recently."""

    reviewer: str
    reviewed: int
    rated: int  # of which with stars
    median_seconds: float | None
    last_at: dt.datetime


@dataclasses.dataclass(frozen=True)
class Coverage:
    """Generations in scope that have the reviews they want (``wanted`` per generation)."""

    covered: int
    total: int
    wanted: int


def reviewer_progress(session: Session, *, sweep_id: int | None = None,
                      first_n: int | None = FIRST_N) -> list[ReviewerProgress]:
    """Each reviewer's count in scope, most reviews first."""
    conditions = _scope(sweep_id, first_n)
    rows = session.execute(select(Review.reviewer, Review.rating, Review.seconds_spent,
                                  Review.updated_at)
                           .join(Generation, Generation.id == Review.generation_id)
                           .where(*conditions))
    by: dict[str, list[Any]] = {}
    for reviewer, rating, seconds, at in rows:
        by.setdefault(reviewer, []).append((rating, seconds, at))
    result = []
    for reviewer, items in by.items():
        durations = sorted(s for _, s, _ in items if s is not None)
        median = None
        if durations:
            middle = len(durations) // 2
            median = (durations[middle] if len(durations) % 2
                      else (durations[middle - 1] + durations[middle]) / 2)
        result.append(ReviewerProgress(reviewer, len(items), sum(r is not None for r, _, _ in items),
                                       median, max(at for _, _, at in items)))
    return sorted(result, key=lambda p: (-p.reviewed, p.reviewer))


def coverage(session: Session, *, sweep_id: int | None = None,
             first_n: int | None = FIRST_N, wanted: int = 1) -> Coverage:
    """How many generations in scope have at least ``wanted`` reviews."""
    conditions = _scope(sweep_id, first_n)
    reviews = (select(func.count(Review.id)).where(Review.generation_id == Generation.id)
               .scalar_subquery())
    total, covered = session.execute(select(
        func.count(), func.coalesce(func.sum(case((reviews >= wanted, 1), else_=0)), 0))
        .where(*conditions)).one()
    return Coverage(int(covered), int(total), wanted)


def min_ratings_of(session: Session, sweep_id: int) -> int | None:
    return session.scalar(select(Sweep.min_ratings).where(Sweep.id == sweep_id))


# -- saving --------------------------------------------------------------------------------------
def normalize_tags(tags: Iterable[str]) -> list[str]:
    """Trimmed, lowercase, inner spaces collapsed, duplicates dropped (first kept)."""
    result: list[str] = []
    for raw in tags:
        if not isinstance(raw, str):
            raise InvalidInput(f"Tag {raw!r} is not text.")
        tag = " ".join(raw.split()).lower()
        if not tag or tag in result:
            continue
        if len(tag) > MAX_TAG_CHARS:
            raise InvalidInput(f"Tag {tag!r} is {len(tag)} characters long; "
                               f"keep tags to {MAX_TAG_CHARS}.")
        result.append(tag)
    if len(result) > MAX_TAGS:
        raise InvalidInput(f"{len(result)} tags given; a review takes at most {MAX_TAGS}.")
    return result


def _validate(reviewer: str, rating: Any, thumbs: Any, note: str,
              seconds_spent: Any) -> tuple[str, str]:
    reviewer = (reviewer or "").strip()
    if not reviewer or len(reviewer) > 120:
        raise InvalidInput("A review needs the reviewer's name (1 to 120 characters).")
    if rating is not None and (isinstance(rating, bool) or not isinstance(rating, int)
                               or not 1 <= rating <= 5):
        raise InvalidInput(f"Rating {rating!r} is not allowed: give 1 to 5 stars, or none.")
    if thumbs is not None and (isinstance(thumbs, bool) or thumbs not in (1, -1)):
        raise InvalidInput(f"Thumbs {thumbs!r} is not allowed: +1 (up), -1 (down) or none.")
    if not isinstance(note, str):
        raise InvalidInput(f"Note {note!r} is not text.")
    note = note.strip()
    if len(note) > MAX_NOTE_CHARS:
        raise InvalidInput(f"The note is {len(note)} characters; shorten it to {MAX_NOTE_CHARS} "
                           "or fewer.")
    if seconds_spent is not None and (not isinstance(seconds_spent, (int, float))
                                      or not math.isfinite(seconds_spent) or seconds_spent < 0):
        raise InvalidInput(f"Seconds spent {seconds_spent!r} is not a duration.")
    return reviewer, note


def save_review(session: Session, generation_id: int, reviewer: str, rating: int | None = None,
                thumbs: int | None = None, tags: Iterable[str] = (), note: str = "",
                seconds_spent: float | None = None) -> ReviewRecord:
    """Create or replace ``reviewer``'s review of a succeeded generation: exactly what was on
    screen (stars, thumbs, tags, note) replaces their earlier review. Everything is checked
    before anything is written, so a refused review changes nothing stored."""
    reviewer, note = _validate(reviewer, rating, thumbs, note, seconds_spent)
    if isinstance(tags, str):
        raise InvalidInput(f"Tags {tags!r} should be a list of tags, not one text.")
    clean_tags = normalize_tags(tags)
    if rating is None and thumbs is None and not clean_tags and not note:
        raise InvalidInput("Nothing to save: give a rating, a thumb, a tag or a note.")
    try:
        succeeded_generation(session, generation_id, "reviewed")
    except NotFound as exc:
        raise NotFound(f"Generation {generation_id} does not exist (it may have been deleted "
                       "with its input photo); nothing was saved.") from exc
    review = session.scalar(select(Review).where(Review.generation_id == generation_id,
                                                 Review.reviewer == reviewer))
    now = utcnow()
    if review is None:
        review = Review(generation_id=generation_id, reviewer=reviewer, created_at=now)
        session.add(review)
    review.rating, review.thumbs, review.tags, review.note = rating, thumbs, clean_tags, note
    review.seconds_spent, review.updated_at = seconds_spent, now
    session.flush()
    record(session, reviewer, "review", "generation", generation_id,
           {"rating": rating, "thumbs": thumbs, "tags": clean_tags})
    return _record(review)


# -- summary -------------------------------------------------------------------------------------
RATED_PARAMETERS = (("strength", Generation.strength), ("steps", Generation.steps),
                    ("guidance", Generation.guidance), ("prompt", Generation.prompt_label))


def ratings_by_parameter(session: Session, sweep_id: int | None = None) -> pd.DataFrame:
    """Mean rating per value of each swept parameter (strength, steps, guidance, prompt
    variant), over all reviewers. Columns: parameter, value, mean_rating (None when only
    thumbs were given), ratings, thumbs_up, thumbs_down, reviews."""
    columns = [column for _, column in RATED_PARAMETERS]
    # One GROUP BY over every combination, then summed per parameter here: the same means
    # as four separate queries, in one pass over the table.
    query = (select(*columns, func.coalesce(func.sum(Review.rating), 0), func.count(Review.rating),
                    func.coalesce(func.sum(case((Review.thumbs == 1, 1), else_=0)), 0),
                    func.coalesce(func.sum(case((Review.thumbs == -1, 1), else_=0)), 0),
                    func.count(Review.id))
             .join(Generation, Generation.id == Review.generation_id).group_by(*columns))
    if sweep_id is not None:
        query = query.where(Generation.sweep_id == sweep_id)
    totals: dict[tuple[str, Any], list[int]] = {}
    for row in session.execute(query):
        counts = [int(x or 0) for x in row[len(columns):]]  # COUNT and COALESCE(SUM, 0)
        for (name, _), value in zip(RATED_PARAMETERS, row[:len(columns)]):
            if name == "prompt":
                value = value or UNLABELLED
            elif value is None:
                continue
            total = totals.setdefault((name, value), [0, 0, 0, 0, 0])
            for i, count in enumerate(counts):
                total[i] += count
    order = {name: n for n, (name, _) in enumerate(RATED_PARAMETERS)}
    rows = [(name, value, rating_sum / n_rated if n_rated else None, n_rated, up, down, n)
            for (name, value), (rating_sum, n_rated, up, down, n)
            in sorted(totals.items(), key=lambda item: (order[item[0][0]], item[0][1]))]
    return pd.DataFrame(rows, columns=["parameter", "value", "mean_rating", "ratings",
                                       "thumbs_up", "thumbs_down", "reviews"])


@dataclasses.dataclass(frozen=True)
class CellMarks:
    """What reviewers said of one generation, for filtering a gallery."""

    mean_rating: float | None
    tags: frozenset[str]
    ratings: tuple[tuple[str, int], ...] = ()  # (reviewer, stars), for "n" and "yours"

    @property
    def n_ratings(self) -> int:
        return len(self.ratings)


def marks_version(session: Session, sweep_id: int) -> tuple:
    """What changes whenever a review of the sweep is added or changed (saving one stamps
    ``updated_at``): a cache keyed by it holds the sweep's marks until then."""
    count, last_id, last_update = session.execute(
        select(func.count(Review.id), func.max(Review.id), func.max(Review.updated_at))
        .join(Generation, Review.generation_id == Generation.id)
        .where(Generation.sweep_id == sweep_id)).one()
    return count, last_id, str(last_update)


def marks_for_sweep(session: Session, sweep_id: int) -> dict[int, CellMarks]:
    """Mean rating and the union of tags of every reviewed cell of a sweep (one query; a
    sweep has at most a few thousand cells, each with a reviewer or two)."""
    rows = session.execute(
        select(Review.generation_id, Review.reviewer, Review.rating, Review.tags)
        .join(Generation, Review.generation_id == Generation.id)
        .where(Generation.sweep_id == sweep_id).order_by(Review.id))
    ratings: dict[int, list[tuple[str, int]]] = {}
    tags: dict[int, set[str]] = {}
    for generation_id, reviewer, rating, row_tags in rows:
        if rating is not None:
            ratings.setdefault(generation_id, []).append((reviewer, rating))
        tags.setdefault(generation_id, set()).update(row_tags or [])
    marks = {}
    for gid in set(ratings) | set(tags):
        stars = ratings.get(gid, [])
        mean = sum(r for _, r in stars) / len(stars) if stars else None
        marks[gid] = CellMarks(mean, frozenset(tags.get(gid, ())), tuple(stars))
    return marks

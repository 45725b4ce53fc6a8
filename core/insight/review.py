"""Reviewing generations: the queue, one review per (generation, reviewer), and the summary of
ratings by parameter value.

Only succeeded generations are reviewed. The queue runs oldest first by completion time (ties
by id); the "first 100" view is the first ``n`` succeeded generations ever, or of one sweep,
in that same order, and progress counts how many of them a reviewer has done ("37 / 100").
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


def review_queue(session: Session, reviewer: str, *, sweep_id: int | None = None,
                 first_n: int | None = None, include_reviewed: bool = False,
                 limit: int = 50) -> list[QueueItem]:
    """Succeeded generations ``reviewer`` has not reviewed yet, oldest first (all of them in
    scope with ``include_reviewed``); ``first_n=100`` restricts to the first 100."""
    conditions = _scope(sweep_id, first_n)
    if not include_reviewed:
        conditions.append(~_reviewed_by(reviewer))
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
    end. ``unreviewed_only`` skips what ``reviewer`` has reviewed (rate-and-advance)."""
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
        conditions.append(~_reviewed_by(reviewer))
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
        select(Generation, InputImage.storage_key, Sweep.model_ref, Review)
        .join(Sweep, Sweep.id == Generation.sweep_id)
        .outerjoin(InputImage, InputImage.id == Generation.input_image_id)
        .outerjoin(Review, and_(Review.generation_id == Generation.id,
                                Review.reviewer == reviewer))
        .where(Generation.id.in_(ids)))
    by_id = {}
    for gen, input_key, model_ref, review in rows:
        by_id[gen.id] = QueueItem(
            generation_id=gen.id, sweep_id=gen.sweep_id, cell_index=gen.cell_index,
            completed_at=gen.completed_at, input_image_id=gen.input_image_id,
            input_key=input_key, output_key=gen.output_key, thumbnail_key=gen.thumbnail_key,
            strength=gen.strength, steps=gen.steps, guidance=gen.guidance, seed=gen.seed,
            prompt=gen.prompt, prompt_label=gen.prompt_label,
            negative_prompt=gen.negative_prompt, model_ref=model_ref,
            endpoint=gen.endpoint.value, cost_usd=gen.cost_usd, latency_s=gen.latency_s,
            review=_record(review) if review is not None else None)
    return [by_id[i] for i in ids if i in by_id]


def _record(review: Review) -> ReviewRecord:
    return ReviewRecord(review.generation_id, review.reviewer, review.rating, review.thumbs,
                        tuple(review.tags or ()), review.note, review.seconds_spent,
                        review.updated_at)


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
    note = (note or "").strip()
    if len(note) > MAX_NOTE_CHARS:
        raise InvalidInput(f"The note is {len(note)} characters; keep it to {MAX_NOTE_CHARS}.")
    if seconds_spent is not None and (not isinstance(seconds_spent, (int, float))
                                      or not math.isfinite(seconds_spent) or seconds_spent < 0):
        raise InvalidInput(f"Seconds spent {seconds_spent!r} is not a duration.")
    return reviewer, note


def save_review(session: Session, generation_id: int, reviewer: str, rating: int | None = None,
                thumbs: int | None = None, tags: Iterable[str] = (), note: str = "",
                seconds_spent: float | None = None) -> ReviewRecord:
    """Create or replace ``reviewer``'s review of a succeeded generation."""
    reviewer, note = _validate(reviewer, rating, thumbs, note, seconds_spent)
    clean_tags = normalize_tags(tags)
    if rating is None and thumbs is None and not clean_tags and not note:
        raise InvalidInput("Nothing to save: give a rating, a thumb, a tag or a note.")
    succeeded_generation(session, generation_id, "reviewed")
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
        counts = [int(x) for x in row[len(columns):]]
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


def marks_for_sweep(session: Session, sweep_id: int) -> dict[int, CellMarks]:
    """Mean rating and the union of tags of every reviewed cell of a sweep (one query; a
    sweep has at most a few thousand cells, each with a reviewer or two)."""
    rows = session.execute(
        select(Review.generation_id, Review.rating, Review.tags)
        .join(Generation, Review.generation_id == Generation.id)
        .where(Generation.sweep_id == sweep_id))
    ratings: dict[int, list[int]] = {}
    tags: dict[int, set[str]] = {}
    for generation_id, rating, row_tags in rows:
        if rating is not None:
            ratings.setdefault(generation_id, []).append(rating)
        tags.setdefault(generation_id, set()).update(row_tags or [])
    return {gid: CellMarks(sum(ratings[gid]) / len(ratings[gid]) if gid in ratings else None,
                           frozenset(tags.get(gid, ())))
            for gid in set(ratings) | set(tags)}

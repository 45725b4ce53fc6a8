"""core.insight.review: the queue, first-100 progress, navigation, saving and the ratings summary."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from core.insight import review
from core.errors import InvalidInput, NotFound
from core.data.models import AuditEntry, GenerationState, Review
from tests.factories import at, make_generation, make_image, make_sweep


@pytest.fixture
def cells(db_session):
    """Five succeeded cells completed at 09:01…09:05 (inserted out of order), one failed."""
    sweep = make_sweep(db_session)
    image = make_image(db_session)
    by_minute = {}
    for minute, strength, steps, label in ((3, 0.3, 25, "P1"), (1, 0.3, 30, "P1"),
                                           (5, 0.5, 25, "P2"), (2, 0.5, 30, "P2"),
                                           (4, 0.5, 25, "")):
        by_minute[minute] = make_generation(
            db_session, sweep, completed_at=at(2026, 1, 10, 9, minute), strength=strength,
            steps=steps, prompt_label=label, input_image_id=image.id).id
    make_generation(db_session, sweep, state=GenerationState.FAILED,
                    completed_at=at(2026, 1, 10, 9, 0))
    ids = [by_minute[m] for m in sorted(by_minute)]  # oldest first
    return db_session, sweep, ids


def test_queue_is_oldest_first_and_skips_what_i_reviewed(cells):
    session, sweep, ids = cells
    queue = review.review_queue(session, "alice")
    assert [item.generation_id for item in queue] == ids
    assert queue[0].input_key.startswith("inputs/") and queue[0].model_ref == "stability-ai/sdxl"
    review.save_review(session, ids[0], "alice", rating=4)
    review.save_review(session, ids[1], "bob", rating=2)
    assert [i.generation_id for i in review.review_queue(session, "alice")] == ids[1:]
    assert [i.generation_id for i in review.review_queue(session, "bob")] == [ids[0], *ids[2:]]
    everything = review.review_queue(session, "alice", include_reviewed=True)
    assert everything[0].review.rating == 4 and everything[1].review is None
    assert review.review_queue(session, "alice", sweep_id=sweep.id + 999) == []


def test_first_n_progress(cells):
    session, sweep, ids = cells
    assert str(review.progress(session, "alice")) == "0 / 5"
    assert [i.generation_id for i in review.review_queue(session, "alice", first_n=3)] == ids[:3]
    review.save_review(session, ids[1], "alice", thumbs=1)
    review.save_review(session, ids[4], "alice", thumbs=-1)  # outside the first 3
    review.save_review(session, ids[0], "bob", rating=5)
    assert review.progress(session, "alice", first_n=3) == review.Progress(1, 3)
    assert str(review.progress(session, None, first_n=3)) == "2 / 3"
    assert str(review.progress(session, "alice", sweep_id=sweep.id, first_n=None)) == "2 / 5"
    assert [i.generation_id for i in review.review_queue(session, "alice", first_n=3)] == [
        ids[0], ids[2]]
    with pytest.raises(InvalidInput, match="not 0"):
        review.progress(session, "alice", first_n=0)


def test_next_and_previous(cells):
    session, _, ids = cells
    assert review.next_generation_id(session, None, "alice") == ids[0]
    assert review.next_generation_id(session, ids[1], "alice") == ids[2]
    assert review.next_generation_id(session, ids[4], "alice") is None
    assert review.previous_generation_id(session, ids[2], "alice") == ids[1]
    assert review.previous_generation_id(session, ids[0], "alice") is None
    assert review.previous_generation_id(session, None, "alice", first_n=2) == ids[1]
    review.save_review(session, ids[2], "alice", rating=3)
    assert review.next_generation_id(session, ids[1], "alice", unreviewed_only=True) == ids[3]
    with pytest.raises(NotFound, match="12345"):
        review.next_generation_id(session, 12345, "alice")


def test_save_review_upserts_and_normalises(cells):
    session, _, ids = cells
    saved = review.save_review(session, ids[0], " alice ", rating=2,
                               tags=["Identity lost", "  Too   Strong ", "identity lost", ""],
                               note=" soft ", seconds_spent=4.5)
    assert saved.tags == ("identity lost", "too strong") and saved.note == "soft"
    again = review.save_review(session, ids[0], "alice", rating=5, thumbs=1, tags=["Hair Glitch"])
    assert (again.rating, again.thumbs, again.tags) == (5, 1, ("hair glitch",))
    count = session.scalar(select(func.count()).select_from(Review))
    assert count == 1
    assert review.review_item(session, ids[0], "alice").review.rating == 5
    actions = session.scalars(select(AuditEntry.action)).all()
    assert actions == ["review", "review"]


@pytest.mark.parametrize("kwargs, message", [
    ({"rating": 6}, "Rating 6"),
    ({"rating": 0}, "Rating 0"),
    ({"rating": True}, "Rating True"),
    ({"rating": 3.5}, "Rating 3.5"),
    ({"thumbs": 2}, "Thumbs 2"),
    ({"rating": 3, "tags": ["x" * 41]}, "41 characters"),
    ({"rating": 3, "tags": [f"t{i}" for i in range(11)]}, "at most 10"),
    ({"rating": 3, "seconds_spent": -1}, "Seconds spent -1"),
    ({}, "Nothing to save"),
])
def test_save_review_rejects_bad_input(cells, kwargs, message):
    session, _, ids = cells
    with pytest.raises(InvalidInput, match=message):
        review.save_review(session, ids[0], "alice", **kwargs)


def test_save_review_needs_a_succeeded_generation(cells):
    session, sweep, _ = cells
    with pytest.raises(NotFound, match="Generation 98765"):
        review.save_review(session, 98765, "alice", rating=3)
    failed = make_generation(session, sweep, state=GenerationState.FAILED)
    with pytest.raises(InvalidInput, match="is failed"):
        review.save_review(session, failed.id, "alice", rating=3)
    with pytest.raises(InvalidInput, match="reviewer"):
        review.save_review(session, failed.id, "  ", rating=3)


def test_ratings_by_parameter(cells):
    session, sweep, ids = cells
    # ids (oldest first): 0.3/30/P1, 0.5/30/P2, 0.3/25/P1, 0.5/25/"", 0.5/25/P2
    review.save_review(session, ids[0], "alice", rating=4)
    review.save_review(session, ids[0], "bob", rating=2, thumbs=1)
    review.save_review(session, ids[1], "alice", rating=5)
    review.save_review(session, ids[2], "alice", thumbs=-1)
    review.save_review(session, ids[3], "alice", rating=1)
    frame = review.ratings_by_parameter(session, sweep.id)
    rows = {(r.parameter, r.value): r for r in frame.itertuples()}
    assert rows[("strength", 0.3)].mean_rating == pytest.approx(3.0)
    assert (rows[("strength", 0.3)].ratings, rows[("strength", 0.3)].reviews) == (2, 3)
    assert (rows[("strength", 0.3)].thumbs_up, rows[("strength", 0.3)].thumbs_down) == (1, 1)
    assert rows[("strength", 0.5)].mean_rating == pytest.approx(3.0)
    assert rows[("steps", 30)].mean_rating == pytest.approx(11 / 3)
    assert rows[("steps", 25)].mean_rating == pytest.approx(1.0)
    assert rows[("prompt", "P1")].mean_rating == pytest.approx(3.0)
    assert rows[("prompt", review.UNLABELLED)].mean_rating == pytest.approx(1.0)
    assert ("prompt", "P2") in rows and ("guidance", 7.5) in rows
    assert review.ratings_by_parameter(session, sweep.id + 1).empty


def test_several_reviewers_share_a_sweep(cells):
    session, sweep, ids = cells
    review.set_min_ratings(session, sweep.id, 2, actor="lead")
    review.save_review(session, ids[0], "alice", rating=4, seconds_spent=2.0)
    review.save_review(session, ids[0], "bob", rating=2, seconds_spent=6.0)
    review.save_review(session, ids[1], "bob", rating=5, note="crisp", seconds_spent=3.0)
    # ids[0] has its two reviews: nobody is served it any more; ids[1] still lacks alice's
    assert [i.generation_id for i in review.review_queue(session, "carol")] == ids[1:]
    assert [i.generation_id for i in review.review_queue(session, "alice")] == ids[1:]
    assert [i.generation_id for i in review.review_queue(session, "bob")] == ids[2:]
    assert review.next_generation_id(session, None, "carol", unreviewed_only=True) == ids[1]
    # others' reviews stay hidden until I have reviewed the generation myself
    unseen = review.review_item(session, ids[1], "alice")
    assert unseen.others == () and unseen.n_reviews == 1 and unseen.mean_rating is None
    assert unseen.min_ratings == 2 and unseen.sweep_name == sweep.name
    seen = review.review_item(session, ids[0], "alice")
    assert [o.reviewer for o in seen.others] == ["bob"] and seen.mean_rating == pytest.approx(3)
    people = review.reviewer_progress(session, sweep_id=sweep.id)
    assert [(p.reviewer, p.reviewed, p.rated, p.median_seconds) for p in people] == [
        ("bob", 2, 2, 4.5), ("alice", 1, 1, 2.0)]
    assert review.coverage(session, sweep_id=sweep.id, wanted=2) == review.Coverage(1, 5, 2)
    assert review.coverage(session, sweep_id=sweep.id) == review.Coverage(2, 5, 1)
    review.set_min_ratings(session, sweep.id, None, actor="lead")  # everyone reviews all
    assert [i.generation_id for i in review.review_queue(session, "carol")] == ids


@pytest.mark.parametrize("value", [0, 21, 2.5, True, "3"])
def test_min_ratings_out_of_range_is_refused(cells, value):
    session, sweep, _ = cells
    with pytest.raises(InvalidInput, match="give 1 to 20, or none"):
        review.set_min_ratings(session, sweep.id, value, actor="lead")
    assert review.min_ratings_of(session, sweep.id) is None


def test_a_refused_review_changes_nothing_stored(cells):
    session, sweep, ids = cells
    review.save_review(session, ids[0], "alice", rating=4, tags=["artifact"], note="ok")
    for kwargs, message in (({"rating": 9}, "give 1 to 5 stars"),
                            ({"rating": 2, "note": "x" * 5001}, "shorten it to 5000"),
                            ({"rating": 2, "tags": "artifact"}, "a list of tags")):
        with pytest.raises(InvalidInput, match=message):
            review.save_review(session, ids[0], "alice", **kwargs)
    kept = review.review_item(session, ids[0], "alice").review
    assert (kept.rating, kept.tags, kept.note) == (4, ("artifact",), "ok")
    gone = make_generation(session, sweep)
    gone_id = gone.id
    session.delete(gone)
    session.flush()
    with pytest.raises(NotFound, match=f"Generation {gone_id} does not exist .* nothing was"):
        review.save_review(session, gone_id, "alice", rating=3)

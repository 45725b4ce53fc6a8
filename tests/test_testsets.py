"""core.scenarios.testsets: named, versioned photo sets; a deleted photo leaves its sets, audited."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core.data.library import delete_image
from core.data.models import AuditEntry
from core.errors import InvalidInput, NotFound
from core.scenarios import testsets
from core.scenarios import versions as scenarios
from tests.factories import make_image


def test_create_edit_and_read_back_every_version(db_session):
    a, b, c = (make_image(db_session, label=f"{n}.jpg") for n in "abc")
    scenarios.create_scenario(db_session, "projection-level-1", actor="alice")
    created = testsets.create_test_set(
        db_session, "hard-light", [a.id, b.id], actor="alice", scenario="projection-level-1",
        notes={a.id: "side view, dark skin, low light"}, description="the hard ones")
    assert (created.version, created.scenario_name, created.image_ids) == (
        1, "projection-level-1", [a.id, b.id])
    assert created.photos[0] == testsets.TestSetPhoto(a.id, "a.jpg",
                                                      "side view, dark skin, low light")
    edited = testsets.update_test_set(db_session, "hard-light", actor="bob", add=[c.id],
                                      remove=[a.id], notes={b.id: "glasses"})
    assert edited.version == 2 and edited.image_ids == [b.id, c.id]
    assert edited.photos[0].note == "glasses" and edited.updated_by == "bob"
    same = testsets.update_test_set(db_session, "hard-light", actor="bob", add=[c.id])
    assert same.version == 2  # nothing changed, no version
    assert testsets.photos_at(db_session, created.id, 1) == [
        {"image_id": a.id, "note": "side view, dark skin, low light"},
        {"image_id": b.id, "note": ""}]
    assert [v.changed_by for v in testsets.history(db_session, created.id)] == ["alice", "bob"]
    actions = list(db_session.scalars(select(AuditEntry.action).where(
        AuditEntry.target_type == "test_set").order_by(AuditEntry.id)))
    assert actions == ["create_test_set", "edit_test_set"]


def test_shared_sets_are_listed_with_each_scenario(db_session):
    image = make_image(db_session)
    own = scenarios.create_scenario(db_session, "one", actor="alice")
    scenarios.create_scenario(db_session, "two", actor="alice")
    testsets.create_test_set(db_session, "shared", [image.id], actor="alice")
    testsets.create_test_set(db_session, "mine", [image.id], actor="alice", scenario="one")
    testsets.create_test_set(db_session, "theirs", [image.id], actor="alice", scenario="two")
    assert [t.name for t in testsets.list_test_sets(db_session, own.id)] == ["mine", "shared"]
    assert len(testsets.list_test_sets(db_session)) == 3


def test_bad_input_is_refused_and_nothing_changes(db_session):
    image = make_image(db_session)
    testsets.create_test_set(db_session, "one", [image.id], actor="alice")
    for call, message in (
            (lambda: testsets.create_test_set(db_session, "one", [image.id], actor="a"),
             "already exists"),
            (lambda: testsets.create_test_set(db_session, " ", [image.id], actor="a"),
             "Give the test set a name"),
            (lambda: testsets.create_test_set(db_session, "two", [], actor="a"),
             "at least one photo"),
            (lambda: testsets.create_test_set(db_session, "two", [999_999], actor="a"),
             r"\[999999\] are not in the library"),
            (lambda: testsets.create_test_set(db_session, "two", [image.id], actor="a",
                                              notes={image.id: "x" * 501}), "under 500"),
            (lambda: testsets.update_test_set(db_session, "one", actor="a", remove=[image.id]),
             "cannot be left empty"),
            (lambda: testsets.create_test_set(db_session, "two", [image.id], actor="a",
                                              scenario="nope"), "Scenario 'nope'")):
        with pytest.raises(InvalidInput, match=message) if message != "Scenario 'nope'" \
                else pytest.raises(NotFound, match=message):
            call()
    with pytest.raises(NotFound, match="Known test sets: one"):
        testsets.get_test_set(db_session, "nope")
    assert testsets.get_test_set(db_session, "one").version == 1


def test_deleting_a_photo_takes_it_out_of_its_sets_with_an_audit_entry(db_session):
    keep, doomed = make_image(db_session), make_image(db_session)
    first = testsets.create_test_set(db_session, "first", [keep.id, doomed.id], actor="alice")
    second = testsets.create_test_set(db_session, "second", [doomed.id, keep.id], actor="alice")
    untouched = testsets.create_test_set(db_session, "third", [keep.id], actor="alice")
    delete_image(db_session, doomed.id, actor="bob")
    for test_set in (first, second):
        now = testsets.get_test_set(db_session, test_set.id)
        assert now.image_ids == [keep.id] and now.version == 2 and now.updated_by == "bob"
        assert testsets.photos_at(db_session, test_set.id, 1)[-1 if test_set is first else 0][
            "image_id"] == doomed.id  # the earlier version still says what it held
    assert testsets.get_test_set(db_session, untouched.id).version == 1
    removals = list(db_session.scalars(select(AuditEntry).where(
        AuditEntry.action == "remove_from_test_set").order_by(AuditEntry.id)))
    assert [(e.actor, e.target_id, e.detail["image_id"]) for e in removals] == [
        ("bob", str(first.id), doomed.id), ("bob", str(second.id), doomed.id)]
    deletion = db_session.scalar(select(AuditEntry).where(AuditEntry.action == "delete_image"))
    assert sorted(deletion.detail["test_sets_changed"]) == sorted([first.id, second.id])

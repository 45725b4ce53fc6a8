"""Test sets: named, versioned sets of input photos from the library to check a scenario on.

A set belongs to one scenario or is shared (``scenario_id`` None). Each photo may carry a note
("side view, dark skin, low light"), which the gate report repeats beside that photo's results.
Every change is a new version with who, when and what it held (``TestSetVersion.items``), and
one audit entry, so a gate run names exactly which photos it ran on. Deleting a photo from the
library removes it from its sets (``drop_image``): a new version of each set, audited.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.data.audit import record
from core.data.models import InputImage, Scenario, TestSet, TestSetItem, TestSetVersion, utcnow
from core.errors import InvalidInput, NotFound

NAME_MAX = 120
NOTE_MAX = 500


@dataclasses.dataclass(frozen=True)
class TestSetPhoto:
    __test__ = False

    image_id: int
    label: str
    note: str


@dataclasses.dataclass(frozen=True)
class TestSetInfo:
    __test__ = False

    id: int
    name: str
    description: str
    scenario_id: int | None
    scenario_name: str | None
    version: int
    photos: tuple[TestSetPhoto, ...]
    updated_by: str
    updated_at: dt.datetime

    @property
    def image_ids(self) -> list[int]:
        return [p.image_id for p in self.photos]


def _clean_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise InvalidInput("Give the test set a name, e.g. 'portraits-hard-light'.")
    if len(name) > NAME_MAX:
        raise InvalidInput(f"A test set name is at most {NAME_MAX} characters; this one has "
                           f"{len(name)}.")
    return name


def _clean_notes(notes: Mapping[int, str] | None) -> dict[int, str]:
    clean = {}
    for image_id, note in (notes or {}).items():
        note = (note or "").strip()
        if len(note) > NOTE_MAX:
            raise InvalidInput(f"The note on photo {image_id} has {len(note)} characters; "
                               f"keep it under {NOTE_MAX}.")
        clean[int(image_id)] = note
    return clean


def _find(session: Session, test_set: int | str) -> TestSet | None:
    if isinstance(test_set, int) and not isinstance(test_set, bool):
        return session.get(TestSet, test_set)
    text = str(test_set).strip()
    found = session.scalar(select(TestSet).where(TestSet.name == text))
    if found is None and text.isdigit():
        found = session.get(TestSet, int(text))
    return found


def _get(session: Session, test_set: int | str) -> TestSet:
    found = _find(session, test_set)
    if found is None:
        names = session.scalars(select(TestSet.name).order_by(TestSet.name)).all()
        known = f" Known test sets: {', '.join(names)}." if names else " None exists yet."
        raise NotFound(f"Test set {test_set!r} does not exist.{known}")
    return found


def _scenario_id(session: Session, scenario: int | str | None) -> int | None:
    if scenario is None or scenario == "":
        return None
    if isinstance(scenario, int):
        found = session.get(Scenario, scenario)
    else:
        found = session.scalar(select(Scenario).where(Scenario.name == scenario.strip()))
    if found is None:
        raise NotFound(f"Scenario {scenario!r} does not exist: leave it empty for a shared set.")
    return found.id


def _check_images(session: Session, image_ids: Sequence[int]) -> None:
    if not image_ids:
        raise InvalidInput("A test set needs at least one photo: pick them from the library.")
    found = set(session.scalars(select(InputImage.id).where(InputImage.id.in_(list(image_ids)))))
    missing = sorted(set(image_ids) - found)
    if missing:
        raise InvalidInput(f"Photo(s) {missing} are not in the library (deleted?): pick others.")


def _snapshot(test_set: TestSet) -> list[dict[str, object]]:
    return [{"image_id": i.input_image_id, "note": i.note} for i in test_set.items]


def _new_version(session: Session, test_set: TestSet, *, actor: str, note: str,
                 action: str, detail: Mapping[str, object]) -> None:
    test_set.version = (test_set.version or 0) + 1
    test_set.updated_by, test_set.updated_at = actor, utcnow()
    session.flush()
    session.refresh(test_set, ["items"])
    session.add(TestSetVersion(test_set_id=test_set.id, version=test_set.version,
                               items=_snapshot(test_set), note=note.strip(), changed_by=actor,
                               changed_at=test_set.updated_at))
    record(session, actor, action, "test_set", test_set.id,
           {"name": test_set.name, "version": test_set.version, **detail})
    session.flush()


def create_test_set(session: Session, name: str, image_ids: Sequence[int], *, actor: str,
                    notes: Mapping[int, str] | None = None, scenario: int | str | None = None,
                    description: str = "") -> TestSetInfo:
    """A new set (version 1) of the given library photos, in the order given."""
    if not (actor or "").strip():
        raise InvalidInput("Creating a test set needs the name of who creates it.")
    name = _clean_name(name)
    if _find(session, name) is not None:
        raise InvalidInput(f"A test set named {name!r} already exists: pick another name or "
                           "edit that one.")
    ids = list(dict.fromkeys(int(i) for i in image_ids))
    _check_images(session, ids)
    notes = _clean_notes(notes)
    test_set = TestSet(name=name, description=(description or "").strip(),
                       scenario_id=_scenario_id(session, scenario), version=0,
                       created_by=actor)
    session.add(test_set)
    session.flush()
    for position, image_id in enumerate(ids):
        session.add(TestSetItem(test_set_id=test_set.id, input_image_id=image_id,
                                note=notes.get(image_id, ""), position=position))
    _new_version(session, test_set, actor=actor, note="Created", action="create_test_set",
                 detail={"images": ids})
    return _info(session, test_set)


def update_test_set(session: Session, test_set: int | str, *, actor: str,  # noqa: C901
                    add: Sequence[int] = (), remove: Sequence[int] = (),
                    notes: Mapping[int, str] | None = None, description: str | None = None,
                    note: str = "") -> TestSetInfo:
    """Add photos, remove photos, change notes or the description: one new version, or none
    when nothing changed."""
    if not (actor or "").strip():
        raise InvalidInput("Changing a test set needs the name of who changes it.")
    found = _get(session, test_set)
    current = {i.input_image_id: i for i in found.items}
    to_add = [i for i in dict.fromkeys(int(i) for i in add) if i not in current]
    to_remove = [i for i in dict.fromkeys(int(i) for i in remove) if i in current]
    if to_add:
        _check_images(session, to_add)
    if len(current) + len(to_add) - len(to_remove) == 0:
        raise InvalidInput("A test set cannot be left empty: keep at least one photo.")
    notes = _clean_notes(notes)
    changed_notes = {i: n for i, n in notes.items() if i in current and current[i].note != n}
    unknown_notes = sorted(set(notes) - set(current) - set(to_add))
    if unknown_notes:
        raise InvalidInput(f"Photo(s) {unknown_notes} are not in test set {found.name!r}; "
                           "add them before giving them a note.")
    new_description = None if description is None else description.strip()
    if new_description == found.description:
        new_description = None
    if not (to_add or to_remove or changed_notes or new_description is not None):
        return _info(session, found)
    for image_id in to_remove:
        session.delete(current[image_id])
    position = max((i.position for i in found.items), default=-1) + 1
    for offset, image_id in enumerate(to_add):
        session.add(TestSetItem(test_set_id=found.id, input_image_id=image_id,
                                note=notes.get(image_id, ""), position=position + offset))
    for image_id, text in changed_notes.items():
        current[image_id].note = text
    if new_description is not None:
        found.description = new_description
    _new_version(session, found, actor=actor, note=note, action="edit_test_set",
                 detail={"added": to_add, "removed": to_remove,
                         "notes_changed": sorted(changed_notes),
                         "description_changed": new_description is not None})
    return _info(session, found)


def drop_image(session: Session, image_id: int, *, actor: str) -> list[int]:
    """Take a photo being deleted out of every set holding it (a new version each, audited);
    returns the ids of the sets changed. Called by ``core.data.library.delete_image``."""
    items = list(session.scalars(select(TestSetItem).where(TestSetItem.input_image_id == image_id)))
    changed = []
    for item in items:
        test_set = item.test_set
        session.delete(item)
        session.flush()
        _new_version(session, test_set, actor=actor,
                     note=f"Photo {image_id} deleted from the library",
                     action="remove_from_test_set",
                     detail={"image_id": image_id, "reason": "photo deleted from the library"})
        changed.append(test_set.id)
    return changed


def _info(session: Session, test_set: TestSet) -> TestSetInfo:
    labels = dict(session.execute(select(InputImage.id, InputImage.label).where(
        InputImage.id.in_([i.input_image_id for i in test_set.items]))).all())
    scenario_name = (session.scalar(select(Scenario.name).where(Scenario.id == test_set.scenario_id))
                     if test_set.scenario_id is not None else None)
    return TestSetInfo(
        id=test_set.id, name=test_set.name, description=test_set.description,
        scenario_id=test_set.scenario_id, scenario_name=scenario_name, version=test_set.version,
        photos=tuple(TestSetPhoto(i.input_image_id, labels.get(i.input_image_id, ""), i.note)
                     for i in test_set.items),
        updated_by=test_set.updated_by, updated_at=test_set.updated_at)


def get_test_set(session: Session, test_set: int | str) -> TestSetInfo:
    return _info(session, _get(session, test_set))


def list_test_sets(session: Session, scenario_id: int | None = None) -> list[TestSetInfo]:
    """Every set, or a scenario's own sets plus the shared ones."""
    query = select(TestSet).order_by(TestSet.name)
    if scenario_id is not None:
        query = query.where((TestSet.scenario_id == scenario_id) | TestSet.scenario_id.is_(None))
    return [_info(session, t) for t in session.scalars(query)]


def photos_at(session: Session, test_set_id: int, version: int) -> list[dict[str, Any]]:
    """What the set held at ``version``: ``[{"image_id", "note"}]``."""
    row = session.scalar(select(TestSetVersion).where(TestSetVersion.test_set_id == test_set_id,
                                                      TestSetVersion.version == version))
    if row is None:
        raise NotFound(f"Test set {test_set_id} has no version {version}.")
    return list(row.items)


def history(session: Session, test_set: int | str) -> list[TestSetVersion]:
    found = _get(session, test_set)
    return list(session.scalars(select(TestSetVersion).where(
        TestSetVersion.test_set_id == found.id).order_by(TestSetVersion.version)))

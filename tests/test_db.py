"""Read-only transactions (core.data.db.read_scope): on SQLite a page's reads take no lock, so
they neither wait behind a sweep's writes nor hold them up; a write inside one raises on both
backends and changes nothing; what was read stays usable after the block."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select, text

from core.data.db import create_db_engine, read_scope, session_scope
from core.data.models import Scenario
from tests.factories import make_scenario


@pytest.fixture
def engine(db_url):
    """An engine on a migrated database, once per backend, disposed afterwards."""
    engine = create_db_engine(db_url)
    yield engine
    engine.dispose()


def test_a_read_takes_no_lock_while_a_writer_holds_it_on_sqlite(sqlite_url) -> None:
    from core.data.db import upgrade

    upgrade(sqlite_url)
    engine = create_db_engine(sqlite_url)
    try:
        with session_scope(engine) as session:
            make_scenario(session, "committed")
        holding, read_done = threading.Event(), threading.Event()
        outcome: dict[str, object] = {}

        def writer() -> None:
            with session_scope(engine) as session:  # BEGIN IMMEDIATE: the write lock
                make_scenario(session, "not yet committed")
                session.flush()
                holding.set()
                # Released only when the read is done (or after 20 s, which fails the test):
                # a read that queued for the lock, as every read did, would never finish.
                outcome["read_while_locked"] = read_done.wait(20)

        thread = threading.Thread(target=writer)
        thread.start()
        assert holding.wait(20)
        with read_scope(engine) as session:
            outcome["names"] = session.scalars(select(Scenario.name)).all()
        read_done.set()
        thread.join(30)
        assert outcome["read_while_locked"] is True
        assert outcome["names"] == ["committed"]  # the snapshot before the writer's commit
        with read_scope(engine) as session:
            assert session.scalar(select(func.count(Scenario.id))) == 2
    finally:
        engine.dispose()


def test_a_write_inside_read_scope_raises_and_changes_nothing(engine) -> None:
    with session_scope(engine) as session:
        make_scenario(session, "kept")
    with pytest.raises(PermissionError, match="A write inside read_scope: UPDATE"):
        with read_scope(engine) as session:
            session.execute(text("UPDATE scenario SET description = 'changed'"))
    with pytest.raises(PermissionError, match="A write inside read_scope: INSERT"):
        with read_scope(engine) as session:
            make_scenario(session, "never stored")
            session.flush()
    with read_scope(engine) as session:
        rows = session.execute(select(Scenario.name, Scenario.description)).all()
    assert [tuple(r) for r in rows] == [("kept", "")]
    # A writing session on the same engine afterwards is unaffected.
    with session_scope(engine) as session:
        session.execute(text("UPDATE scenario SET description = 'changed'"))
    with read_scope(engine) as session:
        assert session.scalar(select(Scenario.description)) == "changed"


def test_what_a_read_loaded_stays_usable_after_it(engine) -> None:
    with session_scope(engine) as session:
        make_scenario(session, "portrait", params={"strength": 0.4})
    with read_scope(engine) as session:
        scenario = session.scalars(select(Scenario)).one()
    assert (scenario.name, scenario.params) == ("portrait", {"strength": 0.4})

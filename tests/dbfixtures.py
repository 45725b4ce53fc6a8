"""A migrated database per test, on SQLite and on PostgreSQL.

Import the fixture into a test module with ``from tests.dbfixtures import db_session  # noqa``
(or ``db_url`` for a bare migrated URL). Every test using them runs twice: on a SQLite
file under ``tmp_path`` and on a fresh PostgreSQL database that is dropped afterwards. When the
PostgreSQL server does not answer, that half is skipped with the reason, except under CI=true,
where it fails: CI must test both backends.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from core.db import create_db_engine, session_scope, upgrade

POSTGRES_SERVER_URL = os.environ.get("TEST_POSTGRES_URL",
                                     "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _admin_engine():  # noqa: ANN202 - an AUTOCOMMIT engine for CREATE/DROP DATABASE
    return create_engine(POSTGRES_SERVER_URL, isolation_level="AUTOCOMMIT",
                         connect_args={"connect_timeout": 3})


BACKENDS = ["sqlite", "postgresql"]


@contextlib.contextmanager
def migrated_database(backend: str, tmp_path: Path) -> Iterator[str]:
    """The URL of a new database at Alembic head: a SQLite file under ``tmp_path``, or a
    PostgreSQL database created for the test and dropped afterwards."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'tuner.db'}"
        upgrade(url)
        yield url
        return
    admin = _admin_engine()
    name = f"tuner_test_{secrets.token_hex(6)}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:
        admin.dispose()
        reason = f"PostgreSQL at {POSTGRES_SERVER_URL} is unreachable: {exc.orig}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    url = POSTGRES_SERVER_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        upgrade(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated database URL, once per backend."""
    with migrated_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture(params=BACKENDS)
def db_session(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Session]:
    """A Session in one transaction (committed at the end, as a page action would), once per
    backend; its URL is in ``session.info["db_url"]``. Self-contained, so importing this one
    name is enough."""
    with migrated_database(request.param, tmp_path) as url:
        engine = create_db_engine(url)
        try:
            with session_scope(engine) as session:
                session.info["db_url"] = url
                yield session
        finally:
            engine.dispose()

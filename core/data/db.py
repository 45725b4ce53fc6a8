"""Engines, sessions and migrations.

The caller owns the transaction (``with session_scope(engine) as s:`` at the page action,
job entry or CLI command); data functions take a Session and never commit.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000


def create_db_engine(database_url: str) -> Engine:
    """An engine tuned for its backend: SQLite in WAL mode with a busy timeout, so several
    worker processes can write at once; PostgreSQL with pre-ping to survive restarts."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
    else:
        engine = create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)
    event.listen(engine, "before_cursor_execute", _refuse_writes_when_reading)
    return engine


def _sqlite_begin(conn) -> None:  # noqa: ANN001 - a SQLAlchemy Connection
    """pysqlite's own transaction handling defers BEGIN; we emit it ourselves. A writer takes
    the lock up front (BEGIN IMMEDIATE) instead of failing to upgrade a read lock later; a
    read_scope reads its WAL snapshot with no lock (a deferred BEGIN), so a page's reads
    neither wait behind a sweep's writes nor hold them up."""
    reading = conn.get_execution_options().get(READ_ONLY_OPTION)
    conn.exec_driver_sql("BEGIN" if reading else "BEGIN IMMEDIATE")


READ_ONLY_OPTION = "tuner_read_only"
_READING_VERBS = ("SELECT", "WITH", "PRAGMA", "EXPLAIN", "SHOW", "SET", "BEGIN", "SAVEPOINT",
                  "RELEASE", "ROLLBACK")


def _refuse_writes_when_reading(conn, _cursor, statement: str,  # noqa: ANN001
                                *_args: object) -> None:
    if (conn.get_execution_options().get(READ_ONLY_OPTION)
            and not statement.lstrip().upper().startswith(_READING_VERBS)):
        raise PermissionError(
            f"A write inside read_scope: {statement.split(None, 1)[0]}. Writes belong in "
            "session_scope, which takes the write lock first.")


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # noqa: ANN001 - DBAPI types
    dbapi_connection.isolation_level = None  # let the "begin" listener emit BEGIN
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


@functools.cache
def _sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextlib.contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One transaction: committed when the block ends, rolled back when it raises."""
    with _sessionmaker(engine)() as session, session.begin():
        yield session


@contextlib.contextmanager
def read_scope(engine: Engine) -> Iterator[Session]:
    """One transaction that only reads: on SQLite a snapshot with no lock taken (a page's
    reads while workers write), anywhere a write in it raises. Nothing is committed: closing
    the session hands the connection back to the pool, which rolls it back; what was read
    stays loaded (detached, not expired)."""
    with _sessionmaker(_reading(engine))() as session:
        yield session


@functools.cache
def _reading(engine: Engine) -> Engine:
    return engine.execution_options(**{READ_ONLY_OPTION: True})


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["database_url"] = database_url
    return config


MIGRATION_LOCK_KEY = 0x7475_6D69  # any constant: the PostgreSQL advisory lock of migrations


def upgrade(database_url: str) -> None:
    """Apply every migration (run at start-up by the launcher, workers and tests). On
    PostgreSQL one process at a time: the others wait on an advisory lock, then find the
    schema current (two first starts at once no longer race to create the same tables).
    SQLite serialises writers itself."""
    if make_url(database_url).get_backend_name() != "postgresql":
        command.upgrade(alembic_config(database_url), "head")
        return
    engine = create_db_engine(database_url)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            connection.commit()
            try:
                config = alembic_config(database_url)
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
                connection.commit()
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"),
                                   {"key": MIGRATION_LOCK_KEY})
                connection.commit()
    finally:
        engine.dispose()


_engines: dict[tuple[int, str], Engine] = {}


def get_engine(database_url: str) -> Engine:
    """One engine per process and URL; a forked child builds its own, since a pooled
    connection must not cross ``fork()``."""
    key = (os.getpid(), database_url)
    if key not in _engines:
        _engines[key] = create_db_engine(database_url)
    return _engines[key]

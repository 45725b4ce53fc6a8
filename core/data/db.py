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
        # pysqlite's own transaction handling defers BEGIN; emit it ourselves so a writer
        # takes the lock up front instead of failing to upgrade a read lock later.
        event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)


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

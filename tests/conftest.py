"""Fixtures shared by the whole suite: real Redis, SQLite/PostgreSQL, the emulator over HTTP."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from core.data.db import create_db_engine, session_scope, upgrade
from core.emulator import EmulatorConfig, EmulatorServer

from tests.services import ProcessGroup, RedisServer, fresh_postgres_database


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    if not redis_server.answers():  # a test may have stopped it to simulate an outage
        redis_server.start()
    client = redis_server.client()
    client.flushall()
    yield redis_server.url
    if redis_server.answers():
        redis_server.client().flushall()


@contextlib.contextmanager
def migrated_database(backend: str, tmp_path: Path) -> Iterator[str]:
    """A new database at Alembic head: a SQLite file under tmp_path, or a fresh PostgreSQL
    database dropped afterwards (skipped when PostgreSQL is absent, failed under CI=true)."""
    with contextlib.ExitStack() as stack:
        url = (f"sqlite:///{tmp_path / 'tuner.db'}" if backend == "sqlite"
               else stack.enter_context(fresh_postgres_database()))
        upgrade(url)
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated database URL, once per backend."""
    with migrated_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def db_session(db_url: str) -> Iterator[Session]:
    """A Session in one transaction (committed at the end, as a page action would), once per
    backend; its URL is in ``session.info["db_url"]``."""
    engine = create_db_engine(db_url)
    try:
        with session_scope(engine) as session:
            session.info["db_url"] = db_url
            yield session
    finally:
        engine.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'tuner.db'}"


@pytest.fixture
def emulator() -> Iterator[EmulatorServer]:
    with EmulatorServer(EmulatorConfig.fast()) as server:
        yield server


@pytest.fixture
def processes() -> Iterator[ProcessGroup]:
    group = ProcessGroup()
    yield group
    group.stop_all()


@pytest.fixture
def tuner_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, redis_url: str,
              emulator) -> dict[str, str]:
    """Environment for one product instance: SQLite under tmp_path, media on disk, our Redis,
    the in-thread emulator. Returns the variables so subprocesses can get the same."""
    from core.config import get_settings

    values = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'tuner.db'}",
        "MEDIA_URL": f"file://{tmp_path / 'media'}",
        "REDIS_URL": redis_url,
        "REPLICATE_BASE_URL": emulator.base_url,
        "POLL_INTERVAL_S": "0.1",
        "CELL_LEASE_S": "6",
    }
    monkeypatch.delenv("REPLICATE_API_TOKEN", raising=False)
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    yield {**os.environ, **values}
    get_settings.cache_clear()

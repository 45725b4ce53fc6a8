"""Alembic environment: migrations run from code (core.data.db.upgrade) and from the alembic CLI."""

import os

from alembic import context
from core.data.db import create_db_engine
from core.data.models import Base

config = context.config
target_metadata = Base.metadata


def _database_url() -> str:
    """The URL given by code wins; the alembic CLI falls back to DATABASE_URL, then the ini."""
    url = (config.attributes.get("database_url") or os.environ.get("DATABASE_URL")
           or config.get_main_option("sqlalchemy.url"))
    if not url:
        raise RuntimeError("No database URL: set DATABASE_URL (or sqlalchemy.url in alembic.ini).")
    return str(url)


def run_migrations_offline() -> None:
    context.configure(url=_database_url(),
                      target_metadata=target_metadata, render_as_batch=True,
                      literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connectable = config.attributes.get("connection")
    if connectable is None:
        engine = create_db_engine(_database_url())
        with engine.connect() as connection:
            _run(connection)
        engine.dispose()
    else:
        _run(connectable)


def _run(connection) -> None:  # noqa: ANN001
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=True, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()

"""The live parts a process works with, built once from Settings and passed in explicitly."""

from __future__ import annotations

import dataclasses
import functools

from redis import Redis
from sqlalchemy import Engine

from core.planning.budget import Caps
from core.config import Settings
from core.data.db import get_engine, upgrade
from core.data.models import Endpoint as EndpointKind
from core.engine.replicate_api import Endpoint, resolve_endpoint
from core.data.settings_store import deployment_id, effective_settings
from core.data.storage import MediaStore, open_media_store


@dataclasses.dataclass
class Runtime:
    settings: Settings
    engine: Engine

    @functools.cached_property
    def redis(self) -> Redis:
        # Short time-outs: a page must say "Redis is down" at once, not hang.
        return Redis.from_url(self.settings.redis_url, socket_connect_timeout=2,
                              socket_timeout=10, health_check_interval=30)

    @functools.cached_property
    def store(self) -> MediaStore:
        return open_media_store(self.settings)

    @functools.cached_property
    def endpoint(self) -> Endpoint:
        return resolve_endpoint(self.settings)

    @functools.cached_property
    def deployment(self) -> str:
        """This database's id, the prefix of its Redis queue (``keys.queue_name``). Its own
        transaction (a write lock on SQLite): inside another one, use ``deployment_id``."""
        from core.data.db import session_scope

        with session_scope(self.engine) as session:
            return deployment_id(session)

    @property
    def endpoint_kind(self) -> EndpointKind:
        return EndpointKind.EMULATOR if self.endpoint.is_emulator else EndpointKind.REPLICATE

    def caps(self, session) -> Caps:  # noqa: ANN001 - a Session
        current = effective_settings(session, self.settings)
        return Caps(sweep_usd=current.sweep_budget_usd, daily_usd=current.daily_budget_usd,
                    monthly_usd=current.monthly_budget_usd)


def open_runtime(settings: Settings, *, migrate: bool = True) -> Runtime:
    if migrate:
        upgrade(settings.database_url)
    return Runtime(settings=settings, engine=get_engine(settings.database_url))

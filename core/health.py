"""System checks, shared by ``python -m core check``, the sidebar and the System check page.

Each check answers ✓ or ✗ with what to do about a ✗, and never shows a secret.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

from core.config import Settings, mask_token


@dataclasses.dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    seconds: float = 0.0


def _run(name: str, fn: Callable[[], str], fix: Callable[[Exception], str]) -> CheckResult:
    started = time.monotonic()
    try:
        detail = fn()
        return CheckResult(name, True, detail, seconds=time.monotonic() - started)
    except Exception as exc:  # noqa: BLE001 - every failure becomes a ✗ with a fix
        return CheckResult(name, False, _redact(str(exc) or type(exc).__name__), fix(exc),
                           time.monotonic() - started)


def _redact(text: str, settings: Settings | None = None) -> str:
    token = settings.replicate_api_token.get_secret_value() if settings and settings.replicate_api_token else None
    return text.replace(token, mask_token(token)) if token else text


def check_configuration(settings: Settings) -> CheckResult:
    def run() -> str:
        from core.engine.replicate_api import resolve_endpoint

        if settings.uses_emulator:
            mode = "local emulator (no REPLICATE_API_TOKEN set)"
        elif resolve_endpoint(settings).is_emulator:
            mode = (f"local emulator: token {settings.masked_token} is set, but "
                    "REPLICATE_BASE_URL points at this machine")
        else:
            mode = f"real Replicate, token {settings.masked_token}"
        return f"{mode}; database {settings.database_url.split('://')[0]}; media {settings.media_url.split('://')[0]}"

    return _run("Configuration", run, lambda e: "Fix the setting named above (environment or .env).")


def check_redis(settings: Settings) -> CheckResult:
    from redis import Redis

    def run() -> str:
        client = Redis.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=2)
        try:
            client.ping()
            return f"answers at {settings.redis_url.split('@')[-1]}"
        finally:
            client.close()

    return _run("Redis", run, lambda e: (
        "Start Redis (redis-server) or set REDIS_URL to one that answers; "
        "`python -m core up` starts one for you."))


def check_database(settings: Settings) -> CheckResult:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from core.data.db import alembic_config, get_engine, read_scope

    def run() -> str:
        engine = get_engine(settings.database_url)
        with read_scope(engine) as session:  # no write lock for a look at the schema
            current = MigrationContext.configure(session.connection()).get_current_revision()
        head = ScriptDirectory.from_config(alembic_config(settings.database_url)).get_current_head()
        if current != head:
            raise RuntimeError(f"schema at {current or 'nothing'}, code expects {head}")
        return f"{engine.dialect.name}, schema at {head}"

    return _run("Database", run, lambda e: (
        "Run `python -m core migrate` (or `up`, which migrates), and check DATABASE_URL."))


def check_storage(settings: Settings) -> CheckResult:
    from core.data.storage import open_media_store

    def run() -> str:
        store = open_media_store(settings)
        store.check()
        return store.describe()

    return _run("Media storage", run, lambda e: (
        "Make MEDIA_URL point at a writable folder or an S3 bucket these credentials can use."))


def check_replicate(settings: Settings) -> CheckResult:
    from core.engine.replicate_api import build_client, resolve_endpoint

    def run() -> str:
        endpoint = resolve_endpoint(settings)
        client = build_client(endpoint, timeout_s=5)
        model = client.models.get("stability-ai/sdxl")
        seen = f"{model.owner}/{model.name} visible"
        if endpoint.is_emulator:
            return f"emulator at {endpoint.base_url} answers ({seen}); no real token in use"
        return f"Replicate at {endpoint.base_url} answers; token {mask_token(endpoint.token)} accepted; {seen}"

    def fix(exc: Exception) -> str:
        status = getattr(exc, "status", None)
        if status == 401:
            return "The token was refused: create a new one at replicate.com/account/api-tokens and set REPLICATE_API_TOKEN."
        return ("Check the network path to Replicate, or unset REPLICATE_API_TOKEN to use the "
                "local emulator (`python -m core up` starts it).")

    result = _run("Replicate", run, fix)
    return dataclasses.replace(result, detail=_redact(result.detail, settings))


def check_workers(settings: Settings) -> CheckResult:
    from redis import Redis

    from core.engine.worker import live_workers

    def run() -> str:
        client = Redis.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=2)
        workers = live_workers(client, _deployment(settings))
        if not workers:
            raise RuntimeError("no worker is registered")
        busy = sum(1 for w in workers if w["current_job"])
        return f"{len(workers)} worker(s), {busy} busy"

    return _run("Workers", run, lambda e: "Start workers: `python -m core worker` (or `up`).")


def _deployment(settings: Settings) -> str | None:
    """The database's deployment id, so only this deployment's workers are counted; None
    (count every worker) when the database cannot say."""
    from core.data.db import get_engine, session_scope
    from core.data.settings_store import deployment_id

    try:
        with session_scope(get_engine(settings.database_url)) as session:
            return deployment_id(session)
    except Exception:  # noqa: BLE001 - the database check reports why
        return None


def run_all(settings: Settings) -> list[CheckResult]:
    return [check(settings) for check in (check_configuration, check_redis, check_database,
                                          check_storage, check_replicate, check_workers)]

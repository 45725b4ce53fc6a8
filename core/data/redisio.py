"""Redis outages, translated once: every caller catches ``RedisUnavailable`` (a
``ServiceUnavailable``), never the client library's connection and time-out classes."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from redis.exceptions import ConnectionError as _RedisConnectionError
from redis.exceptions import TimeoutError as _RedisTimeoutError

from core.errors import RedisUnavailable

T = TypeVar("T")
_OUTAGE = (_RedisConnectionError, _RedisTimeoutError)


@contextlib.contextmanager
def redis_errors() -> Iterator[None]:
    """Inside this block a Redis outage raises ``RedisUnavailable``."""
    try:
        yield
    except _OUTAGE as exc:
        raise RedisUnavailable(f"Redis did not answer ({type(exc).__name__}: {exc}); "
                               "check that redis-server is running and REDIS_URL points "
                               "at it.") from exc


def call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` with a Redis outage raised as ``RedisUnavailable``."""
    with redis_errors():
        return fn(*args, **kwargs)


def is_outage(exc: BaseException) -> bool:
    """True for a Redis outage, translated or not yet (for a boundary handed an exception
    that was caught somewhere else)."""
    return isinstance(exc, (RedisUnavailable, *_OUTAGE))

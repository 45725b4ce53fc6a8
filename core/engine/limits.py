"""Caps shared by every worker through Redis: predictions in flight per model, and the
create rate per endpoint. Both are single Lua scripts, so concurrent workers on several
machines never race between the check and the update."""

from __future__ import annotations

import time

from redis import Redis

from core.data import keys

# KEYS[1] slot set; ARGV: member, cap, now, lease seconds. Members carry their expiry as the
# score, so the slots of a crashed worker free themselves after one lease.
_ACQUIRE_SLOT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  redis.call('ZADD', KEYS[1], ARGV[3] + ARGV[4], ARGV[1])
  return 1
end
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], ARGV[3] + ARGV[4], ARGV[1])
  return 1
end
return 0
"""

# GCRA with reservation: KEYS[1] theoretical arrival time; ARGV: emission interval, burst.
# Every call books the next free moment and says how long to sleep until it, so a waiting
# create sleeps once instead of asking again. Uses Redis' clock, so machines with skewed
# clocks share one schedule.
_RESERVE_CREATE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local wait = tat + interval - burst * interval - now
if wait < 0 then wait = 0 end
redis.call('SET', KEYS[1], tostring(tat + interval), 'EX', math.ceil(tat + interval - now + burst * interval) + 60)
return tostring(wait)
"""

# Delete a lease only while it is still ours (KEYS[1] lease, ARGV[1] holder).
_RELEASE_LEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class InflightSlots:
    """A counting semaphore per model: at most ``cap`` predictions in flight across workers."""

    def __init__(self, redis: Redis, model_ref: str, cap: int, lease_s: float) -> None:
        self._redis = redis
        self._key = f"tuner:inflight:{model_ref}"
        self._cap = cap
        self._lease_s = lease_s
        self._acquire = redis.register_script(_ACQUIRE_SLOT)

    def try_acquire(self, holder: str) -> bool:
        args: list[str | int | float] = [holder, self._cap, time.time(), self._lease_s]
        return bool(self._acquire(keys=[self._key], args=args))

    def renew(self, holders: list[str]) -> None:
        if holders:
            expiry = time.time() + self._lease_s
            self._redis.zadd(self._key, {h: expiry for h in holders}, xx=True)

    def release(self, holder: str) -> None:
        self._redis.zrem(self._key, holder)

    def in_use(self) -> int:
        self._redis.zremrangebyscore(self._key, "-inf", time.time())
        return int(self._redis.zcard(self._key))


class CreateRateLimiter:
    """Replicate allows 600 creates a minute; this spreads ours evenly with a small burst."""

    def __init__(self, redis: Redis, endpoint: str, per_minute: int, burst: int = 10) -> None:
        self._key = f"tuner:create-rate:{endpoint}"
        self._interval = 60.0 / per_minute
        self._burst = max(1, burst)
        self._reserve = redis.register_script(_RESERVE_CREATE)

    def reserve(self) -> float:
        """Book the next create; returns the seconds to wait before sending it."""
        return float(self._reserve(keys=[self._key], args=[self._interval, self._burst]))


class CellLeases:
    """``tuner:DEPLOYMENT:lease:gen:ID`` = this worker, renewed while it works on the cell. A
    cell whose lease lapses is resumed elsewhere by the reaper."""

    def __init__(self, redis: Redis, deployment: str, holder: str, lease_s: float) -> None:
        self._redis = redis
        self._deployment = deployment
        self._holder = holder
        self._ttl = max(1, int(lease_s))
        self._release = redis.register_script(_RELEASE_LEASE)

    def take(self, generation_ids: list[int]) -> None:
        pipe = self._redis.pipeline()
        for gid in generation_ids:
            pipe.set(keys.cell_lease(self._deployment, gid), self._holder, ex=self._ttl)
        pipe.execute()

    def release(self, generation_id: int) -> None:
        self._release(keys=[keys.cell_lease(self._deployment, generation_id)],
                      args=[self._holder])

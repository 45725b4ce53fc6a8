"""The caps shared through Redis: in-flight slots per model, the create schedule, leases."""

from __future__ import annotations

from redis import Redis

from core.data import keys
from core.engine.limits import CellLeases, CreateRateLimiter, InflightSlots
from tests.services import wait_for


def test_inflight_slots_cap_holders_across_clients(redis_url):
    one = InflightSlots(Redis.from_url(redis_url), "stability-ai/sdxl", cap=2, lease_s=30)
    two = InflightSlots(Redis.from_url(redis_url), "stability-ai/sdxl", cap=2, lease_s=30)
    assert one.try_acquire("gen:1") and two.try_acquire("gen:2")
    assert not one.try_acquire("gen:3")
    assert one.try_acquire("gen:1")  # a holder asking again keeps its slot
    two.release("gen:2")
    assert one.try_acquire("gen:3")
    assert one.in_use() == 2


def test_a_crashed_holders_slot_frees_itself_after_its_lease(redis_url):
    slots = InflightSlots(Redis.from_url(redis_url), "m/x", cap=1, lease_s=0.2)
    assert slots.try_acquire("gen:1")
    assert not slots.try_acquire("gen:2")
    wait_for(lambda: slots.try_acquire("gen:2"), 5, "the lapsed slot to be freed")
    assert slots.in_use() == 1


def test_create_schedule_books_evenly_spaced_moments(redis_url):
    limiter = CreateRateLimiter(Redis.from_url(redis_url), "replicate", per_minute=600, burst=3)
    waits = [limiter.reserve() for _ in range(6)]
    assert waits[:3] == [0, 0, 0]  # the burst goes at once
    assert [round(w, 1) for w in waits[3:]] == [0.1, 0.2, 0.3]  # then one every 0.1 s


def test_leases_are_released_only_by_their_holder(redis_url):
    redis = Redis.from_url(redis_url)
    mine, theirs = CellLeases(redis, "dep", "a:1", 30), CellLeases(redis, "dep", "b:2", 30)
    mine.take([7, 8])
    theirs.take([8])  # the reaper resumed cell 8 elsewhere
    mine.release(8)
    assert redis.get(keys.cell_lease("dep", 8)) == b"b:2"
    mine.release(7)
    assert not redis.exists(keys.cell_lease("dep", 7))

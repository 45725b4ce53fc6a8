"""Lifecycle state derived from timestamps, without a server."""

from __future__ import annotations

import time

import pytest

from core.emulator import EmulatorConfig
from core.emulator.schema import SDXL_LATEST, Catalog
from core.emulator.store import Store

MODEL = Catalog().models["stability-ai/sdxl"]
INPUT = {"prompt": "p", "width": 32, "height": 32, "seed": 1}


def store(**changes: object) -> Store:
    return Store(EmulatorConfig.fast(random_seed=7, **changes))


def test_status_follows_the_clock() -> None:
    s = store(queue_delay_s=1.0, predict_time_s=2.0)
    pred = s.create(MODEL, SDXL_LATEST, INPUT, now=100.0)
    assert [pred.status(t) for t in (100.0, 100.99, 101.0, 102.99, 103.0)] == [
        "starting", "starting", "processing", "processing", "succeeded"]


def test_cancel_only_stops_unfinished_predictions() -> None:
    s = store(queue_delay_s=1.0, predict_time_s=2.0)
    running, finished = (s.create(MODEL, SDXL_LATEST, INPUT, now=100.0) for _ in range(2))
    s.cancel(running, now=101.5)
    s.cancel(finished, now=200.0)
    assert running.status(101.5) == "canceled" and running.status(500.0) == "canceled"
    assert finished.status(200.0) == "succeeded" and finished.canceled is None


@pytest.mark.parametrize("dist", ["fixed", "uniform", "lognormal"])
def test_predict_times_stay_in_their_distribution(dist: str) -> None:
    s = store(predict_time_dist=dist, predict_time_s=3.0, predict_time_range_s=(1.0, 6.0))
    times = [s.create(MODEL, SDXL_LATEST, INPUT, now=0.0).predict_s for _ in range(300)]
    assert all(1.0 <= t <= 6.0 for t in times)
    assert (len(set(times)) == 1) == (dist == "fixed")


def test_failure_rate_is_honoured() -> None:
    s = store(failure_rate=0.5)
    failed = sum(bool(s.create(MODEL, SDXL_LATEST, INPUT, now=0.0).error) for _ in range(400))
    assert 120 < failed < 280


def test_missing_seed_is_drawn_once_per_prediction() -> None:
    s = store()
    seeds = {s.create(MODEL, SDXL_LATEST, {"prompt": "p"}, now=0.0).params.seed for _ in range(20)}
    assert len(seeds) > 1


def test_pages_are_newest_first() -> None:
    s = store(page_size=3)
    ids = [s.create(MODEL, SDXL_LATEST, INPUT, now=0.0).id for _ in range(7)]
    first, older, newer = s.page(None)
    assert [p.id for p in first] == ids[::-1][:3] and newer is None
    second, _, back = s.page(older)
    assert [p.id for p in second] == ids[::-1][3:6] and back == 7


def test_thousands_in_flight_are_cheap() -> None:
    s = store(queue_delay_s=60.0)
    started = time.perf_counter()
    for _ in range(5000):
        s.create(MODEL, SDXL_LATEST, INPUT, now=time.time())
    stats = s.stats(time.time())
    assert time.perf_counter() - started < 2.0
    assert stats["predictions"]["starting"] == 5000 and stats["creates_total"] == 5000
    assert stats["creates_by_input_hash"] == {next(iter(stats["creates_by_input_hash"])): 5000}


def test_output_cache_is_bounded_and_respects_retention() -> None:
    s = store(output_cache_bytes=1, retention_s=10.0)
    preds = [s.create(MODEL, SDXL_LATEST, {**INPUT, "seed": i}, now=0.0) for i in range(3)]
    pngs = [s.output_png(p.id, 0, now=1.0) for p in preds]
    assert all(png and png.startswith(b"\x89PNG") for png in pngs)
    assert s.stats(1.0)["outputs_cached"] == 1
    assert s.output_png(preds[0].id, 0, now=1.0) == pngs[0]  # regenerated identically
    assert s.output_png(preds[0].id, 0, now=11.0) is None
    assert s.output_png(preds[0].id, 1, now=1.0) is None  # only one output was asked for


def test_the_realistic_profile_draws_queue_waits_and_cold_boots_and_counts_them() -> None:
    s = Store(EmulatorConfig.realistic(random_seed=3, cold_boot_share=0.1))
    preds = [s.create(MODEL, SDXL_LATEST, INPUT, now=0.0) for _ in range(500)]
    boots = [p for p in preds if p.queue_s >= 30.0]
    # 10 % of 500 boot (binomial: 35–65 holds with overwhelming probability); a boot is
    # 30–120 s on top of the queue wait, and every predict time stays in its range.
    assert 35 <= len(boots) <= 65
    assert all(30.0 <= p.queue_s <= 120.0 + 20 for p in boots)
    assert all(1.0 <= p.predict_s <= 60.0 for p in preds)
    assert len({round(p.queue_s, 6) for p in preds}) > 400  # exponential, not fixed
    stats = s.stats(now=0.0)
    assert stats["cold_boots_total"] == len(boots)
    assert stats["drawn_latency_s_total"] == pytest.approx(
        sum(p.queue_s + p.predict_s for p in preds), abs=0.5)
    assert stats["drawn_latency_s_max"] == pytest.approx(
        max(p.queue_s + p.predict_s for p in preds), abs=0.001)

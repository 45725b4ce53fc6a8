"""core.insight.analytics and core.insight.performance on known rows, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest

from core.insight import analytics

from core.insight import performance
from core.errors import InvalidInput
from core.data.models import GenerationState
from core.insight.sqlstats import day_range, grouped_percentiles
from tests.factories import at, make_generation, make_model, make_scenario, make_sweep

JAN_10, JAN_11 = dt.date(2026, 1, 10), dt.date(2026, 1, 11)
S, F, C = GenerationState.SUCCEEDED, GenerationState.FAILED, GenerationState.CANCELED


@pytest.fixture
def seeded(db_session):
    """Two people, two models, real and emulated cells over 10–11 January 2026."""
    sdxl = make_model(db_session, "stability-ai/sdxl")
    flux = make_model(db_session, "black-forest-labs/flux-schnell", pricing_kind="per_image",
                      usd_per_second=None, usd_per_image=0.003)
    scenario = make_scenario(db_session, "projection-level-1")
    alice = make_sweep(db_session, sdxl, created_by="alice", scenario=scenario,
                       created_at=at(2026, 1, 10, 8))
    bob = make_sweep(db_session, flux, created_by="bob", endpoint="emulator",
                     created_at=at(2026, 1, 11, 8))
    first = None
    for hour, cost, latency in ((9, 0.01, 10.0), (10, 0.02, 20.0), (11, 0.03, 30.0)):
        gen = make_generation(db_session, alice, completed_at=at(2026, 1, 10, hour),
                              cost_usd=cost, latency_s=latency, predict_time_s=latency / 2)
        first = first or gen
    make_generation(db_session, alice, state=F, completed_at=at(2026, 1, 10, 12), cost_usd=0.005,
                    error="NSFW content detected")
    for hour in (9, 10):
        make_generation(db_session, bob, completed_at=at(2026, 1, 10, hour), cost_usd=0.004,
                        latency_s=5.0)
    make_generation(db_session, alice, completed_at=at(2026, 1, 11, 9), cost_usd=0.01,
                    latency_s=40.0)
    make_generation(db_session, alice, state=F, completed_at=at(2026, 1, 11, 10),
                    error="NSFW content detected")
    make_generation(db_session, alice, state=F, completed_at=at(2026, 1, 11, 11),
                    error="CUDA out of memory")
    make_generation(db_session, bob, state=C, completed_at=at(2026, 1, 11, 12), cost_usd=0.001)
    # reused (free, instant), pending and out-of-range cells must not move the numbers
    make_generation(db_session, alice, completed_at=at(2026, 1, 11, 13), reused_from_id=first.id,
                    latency_s=0.0)
    make_generation(db_session, alice, state=GenerationState.PENDING)
    make_generation(db_session, alice, completed_at=at(2026, 2, 1), cost_usd=1.0, latency_s=99.0)
    return db_session


def test_spend_separates_real_from_emulated(seeded):
    result = analytics.spend(seeded, *day_range(JAN_10, JAN_11))
    assert result.real_usd == pytest.approx(0.075)  # 0.01+0.02+0.03+0.005 + 0.01
    assert result.emulated_usd == pytest.approx(0.009)


def test_overview_numbers(seeded):
    result = analytics.overview(seeded, *day_range(JAN_10, JAN_11), now=at(2026, 1, 11, 18))
    assert result.spend_today.real_usd == pytest.approx(0.01)
    assert result.spend_today.emulated_usd == pytest.approx(0.001)
    assert result.spend_month.real_usd == pytest.approx(0.075)
    # generations are what ran: 6 succeeded predictions + 3 failed; the canceled cell and the
    # reused one are apart (the reused one saved what its source cost)
    assert (result.generations, result.succeeded, result.failed, result.canceled) == (9, 6, 3, 1)
    assert (result.reused, result.saved_usd) == (1, pytest.approx(0.01))
    assert result.success_rate == pytest.approx(6 / 9)
    # succeeded predictions' latencies: 5, 5, 10, 20, 30, 40 (the reused cell is left out)
    assert result.latency_p50_s == pytest.approx(15.0)
    assert result.latency_p95_s == pytest.approx(37.5)
    assert result.failures_24h == 2
    assert [(e.error, e.count) for e in result.top_errors_24h] == [
        ("CUDA out of memory", 1), ("NSFW content detected", 1)]


def test_cost_per_day_by_scenario_and_model(seeded):
    by_scenario = analytics.cost_per_day(seeded, *day_range(JAN_10, JAN_11), by="scenario")
    totals = by_scenario.groupby(["day", "scenario"])["cost_usd"].sum()
    assert totals[(JAN_10, "projection-level-1")] == pytest.approx(0.065)
    assert totals[(JAN_10, analytics.NO_SCENARIO)] == pytest.approx(0.008)
    assert totals[(JAN_11, "projection-level-1")] == pytest.approx(0.01)
    assert totals[(JAN_11, analytics.NO_SCENARIO)] == pytest.approx(0.001)
    by_model = analytics.cost_per_day(seeded, *day_range(JAN_10, JAN_11), by="model")
    assert set(by_model["model"]) == {"stability-ai/sdxl", "black-forest-labs/flux-schnell"}
    assert by_model["cost_usd"].sum() == pytest.approx(0.084)
    flux = by_model[by_model["model"] == "black-forest-labs/flux-schnell"]
    assert set(flux["endpoint"]) == {"emulator"}
    with pytest.raises(InvalidInput, match="'person'"):
        analytics.cost_per_day(seeded, *day_range(JAN_10, JAN_11), by="person")


def test_cost_per_generation_per_day(seeded):
    frame = analytics.cost_per_generation(seeded, *day_range(JAN_10, JAN_11))
    real = frame[frame["endpoint"] == "replicate"].set_index("day")
    assert real.loc[JAN_10, "predictions"] == 4
    assert real.loc[JAN_10, "cost_per_prediction_usd"] == pytest.approx(0.065 / 4)
    assert real.loc[JAN_11, "predictions"] == 3  # the reused cell is no prediction
    assert real.loc[JAN_11, "cost_per_prediction_usd"] == pytest.approx(0.01 / 3)


def test_cumulative_real_spend_carries_the_month_and_resets(seeded):
    make_generation(seeded, make_sweep(seeded), completed_at=at(2026, 1, 5), cost_usd=0.5)
    frame = analytics.cumulative_real_spend(seeded, *day_range(JAN_10, dt.date(2026, 2, 1)),
                                            monthly_budget_usd=10.0)
    assert len(frame) == 23  # every day, spend or not
    rows = frame.set_index("day")
    assert rows.loc[JAN_10, "cumulative_usd"] == pytest.approx(0.565)
    assert rows.loc[JAN_11, "cumulative_usd"] == pytest.approx(0.575)
    assert rows.loc[dt.date(2026, 1, 31), "cumulative_usd"] == pytest.approx(0.575)
    assert rows.loc[dt.date(2026, 2, 1), "cumulative_usd"] == pytest.approx(1.0)  # new month
    assert rows.loc[dt.date(2026, 2, 1), "budget_used"] == pytest.approx(0.1)


def test_usage_per_person(seeded):
    frame = analytics.usage_per_person(seeded, *day_range(JAN_10, JAN_11)).set_index("person")
    assert frame.loc["alice", "sweeps"] == 1
    assert frame.loc["alice", "generations"] == 8  # reused cell counted, pending not
    assert frame.loc["alice", "real_cost_usd"] == pytest.approx(0.075)
    assert frame.loc["bob", "emulated_cost_usd"] == pytest.approx(0.009)
    assert frame.loc["bob", "real_cost_usd"] == 0
    assert list(frame.index) == ["alice", "bob"]


def test_projection_matches_the_production_table_at_one_cent(db_session):
    sweep = make_sweep(db_session)
    for cost in (0.008, 0.012, 0.01, 0.009):
        make_generation(db_session, sweep, cost_usd=cost)
    make_generation(db_session, sweep, state=F, cost_usd=0.001)  # spread over the successes
    projection = analytics.monthly_projection(db_session, *day_range(JAN_10, dt.date(2026, 1, 31)))
    assert projection.basis.endpoint == "replicate"
    assert projection.basis.images == 4
    assert projection.basis.cost_per_image_usd == pytest.approx(0.01)
    table = projection.table
    assert list(table["users_per_month"]) == [50, 100, 500, 1000, 5000]
    assert list(table["jobs_per_month"]) == [100, 250, 1000, 2500, 10000]
    assert list(table["images_per_month"]) == [200, 500, 2000, 5000, 20000]
    assert list(table["cost_per_month_usd"]) == pytest.approx([2, 5, 20, 50, 200])


def test_projection_with_jobs_per_user_and_without_data(db_session):
    table = analytics.projection_table(0.02, [10, 30], jobs_per_user=3, images_per_job=1)
    assert table.values.tolist() == [pytest.approx([10, 30, 30, 0.6]),
                                    pytest.approx([30, 90, 90, 1.8])]
    with pytest.raises(InvalidInput, match="77 users"):
        analytics.projection_table(0.02, [77])
    empty = analytics.monthly_projection(db_session, *day_range(JAN_10, JAN_11))
    assert empty.basis.cost_per_image_usd is None and empty.table.empty


def test_latency_percentiles_of_a_known_set(db_session):
    sweep = make_sweep(db_session)
    for second in range(1, 21):  # latencies 1..20 on 10 Jan, 100 and 200 on 11 Jan
        make_generation(db_session, sweep, completed_at=at(2026, 1, 10, 9, 0, second),
                        latency_s=float(second), queue_s=0.5)
    for value in (100.0, 200.0):
        make_generation(db_session, sweep, completed_at=at(2026, 1, 11), latency_s=value)
    overall = performance.latency_percentiles(db_session, *day_range(JAN_10, JAN_10))
    assert overall.n == 20
    assert overall[0.5] == pytest.approx(10.5)
    assert overall[0.95] == pytest.approx(19.05)  # percentile_cont: 19 + 0.05 × (20 − 19)
    frame = performance.latency_percentiles_per_day(db_session, *day_range(JAN_10, JAN_11))
    rows = frame.set_index(["day", "component"])
    assert rows.loc[(JAN_10, "latency_s"), "p95_s"] == pytest.approx(19.05)
    assert rows.loc[(JAN_11, "latency_s"), "p50_s"] == pytest.approx(150.0)
    assert rows.loc[(JAN_11, "latency_s"), "p95_s"] == pytest.approx(195.0)
    assert rows.loc[(JAN_10, "queue_s"), "p50_s"] == pytest.approx(0.5)
    assert (JAN_11, "queue_s") not in rows.index  # no queue time measured that day
    assert performance.latency_percentiles(db_session, *day_range(JAN_10, JAN_10),
                                           "predict_time_s") is None


def test_grouped_percentiles_single_value_and_bad_p(db_session):
    from core.data.models import Generation

    make_generation(db_session, make_sweep(db_session), latency_s=7.0)
    result = grouped_percentiles(db_session, Generation.latency_s, [], ps=(0.0, 0.5, 1.0))
    assert result[None].values == {0.0: 7.0, 0.5: 7.0, 1.0: 7.0}
    with pytest.raises(InvalidInput, match="95"):
        grouped_percentiles(db_session, Generation.latency_s, [], ps=(95,))


def test_latency_histogram_bins(db_session):
    sweep = make_sweep(db_session)
    for value in (0.0, 1.0, 2.5, 9.9, 10.0):
        make_generation(db_session, sweep, latency_s=value, predict_time_s=value)
    frame = performance.latency_histogram(db_session, *day_range(dt.date(2026, 1, 15),
                                                                 dt.date(2026, 1, 15)),
                                          "latency_s", bins=5)
    assert frame["bin_start_s"].tolist() == [0.0, 2.0, 4.0, 6.0, 8.0]
    assert frame["count"].tolist() == [2, 1, 0, 0, 2]  # the maximum falls in the last bin
    both = performance.latency_histograms(db_session, *day_range(dt.date(2026, 1, 15),
                                                                 dt.date(2026, 1, 15)),
                                          ["latency_s", "predict_time_s", "queue_s"], bins=5)
    assert both.groupby("component")["count"].sum().to_dict() == {"latency_s": 5,
                                                                    "predict_time_s": 5}
    with pytest.raises(InvalidInput, match="cpu_s"):
        performance.latency_histogram(db_session, *day_range(JAN_10, JAN_10), "cpu_s")


def test_throughput_and_failure_rate(seeded):
    daily = performance.throughput(seeded, *day_range(JAN_10, JAN_11), "day")
    assert daily.values.tolist() == [[JAN_10, 5, 1, 0, 6], [JAN_11, 1, 2, 1, 3]]  # canceled apart
    hourly = performance.throughput(seeded, *day_range(JAN_10, JAN_10), "hour")
    assert hourly["period"].tolist()[0] == at(2026, 1, 10, 9, 0)
    assert hourly["total"].tolist() == [2, 2, 1, 1]
    rate = performance.failure_rate_per_day(seeded, *day_range(JAN_10, JAN_11)).set_index("day")
    assert rate.loc[JAN_10, "failure_rate"] == pytest.approx(1 / 6)
    assert rate.loc[JAN_11, "failure_rate"] == pytest.approx(2 / 3)


def test_top_errors(seeded):
    errors = performance.top_errors(seeded, *day_range(JAN_10, JAN_11))
    assert [(e.error, e.count) for e in errors] == [("NSFW content detected", 2),
                                                    ("CUDA out of memory", 1)]
    assert errors[0].last_seen == at(2026, 1, 11, 10)


def test_bad_ranges_are_refused(db_session):
    with pytest.raises(InvalidInput, match="before it starts"):
        analytics.spend(db_session, at(2026, 1, 2), at(2026, 1, 1))
    with pytest.raises(InvalidInput, match="timezone"):
        analytics.spend(db_session, dt.datetime(2026, 1, 1), at(2026, 1, 2))
    with pytest.raises(InvalidInput, match="week"):
        performance.throughput(db_session, *day_range(JAN_10, JAN_11), "week")


def test_days_are_utc_days_whatever_the_session_time_zone(db_session):
    from sqlalchemy import text

    if db_session.get_bind().dialect.name == "postgresql":
        db_session.execute(text("SET LOCAL TIME ZONE 'America/New_York'"))
    sweep = make_sweep(db_session)
    make_generation(db_session, sweep, completed_at=at(2026, 1, 10, 23, 30), cost_usd=0.25)
    make_generation(db_session, sweep, completed_at=at(2026, 1, 11, 2), cost_usd=0.5)
    frame = analytics.cost_per_generation(db_session, *day_range(JAN_10, JAN_11))
    assert frame.set_index("day")["cost_usd"].to_dict() == {JAN_10: 0.25, JAN_11: 0.5}
    hours = performance.throughput(db_session, *day_range(JAN_10, JAN_11), "hour")
    assert hours["period"].tolist() == [at(2026, 1, 10, 23), at(2026, 1, 11, 2)]

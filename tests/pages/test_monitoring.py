"""Monitoring: empty state, every chart with its CSV, real and emulated apart, the stack
switch, the date range, the projection, a database error shown as a message."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import text

from core.data.db import session_scope
from core.data.models import GenerationState
from tests.factories import make_generation, make_scenario, make_sweep

PAGE = "pages/monitoring.py"


def _seed(runtime) -> None:
    when = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1)
    with session_scope(runtime.engine) as session:
        scenario = make_scenario(session, "projection-level-1")
        real = make_sweep(session, endpoint="replicate", scenario=scenario, created_by="alice")
        emulated = make_sweep(session, endpoint="emulator", created_by="bob")
        for i in range(3):
            make_generation(session, real, completed_at=when, cost_usd=0.01, latency_s=4.0 + i,
                            queue_s=0.5, replicate_queue_s=1.0, predict_time_s=2.0 + i)
        make_generation(session, real, state=GenerationState.FAILED, completed_at=when,
                        cost_usd=0.002, error="NSFW content detected")
        make_generation(session, emulated, completed_at=when, cost_usd=0.02, latency_s=1.0)


def _downloads(app) -> list[str]:
    return [d.label for d in app.get("download_button")]


def test_empty_state_points_to_new_sweep(open_page) -> None:
    app = open_page(PAGE)
    assert not app.exception
    assert "Nothing to chart yet" in app.info[0].value


def test_every_chart_has_its_csv(open_page, runtime) -> None:
    _seed(runtime)
    app = open_page(PAGE)
    assert not app.exception
    assert not app.error
    assert set(_downloads(app)) == {
        "CSV of real cost per day by scenario", "CSV of emulated cost per day by scenario",
        "CSV of cumulative real spend", "CSV of cost per generation",
        "CSV of latency p50 p95 per day", "CSV of latency distributions",
        "CSV of throughput per day", "CSV of failure rate per day",
        "CSV of most common errors", "CSV of failures by strength", "CSV of usage per person",
        "CSV of monthly projection"}
    assert len(app.get("vega_lite_chart")) == 9
    assert [t.label for t in app.tabs] == ["Real Replicate spend", "Emulated (not real money)"]
    frames = [d.value for d in app.dataframe]
    errors, by_strength, usage, projection = frames
    assert list(errors["error"]) == ["NSFW content detected"]
    assert by_strength["failed"].sum() == 1 and "strength" in by_strength
    assert list(usage["person"]) == ["alice", "bob"]
    assert list(usage["real_cost_usd"].round(3)) == [0.032, 0.0]
    # measured on real predictions: $0.032 over 3 images; 100 users → 250 jobs → 500 images
    assert "real Replicate predictions" in " ".join(m.value for m in app.markdown)
    row = projection[projection["users_per_month"] == 100].iloc[0]
    assert row["images_per_month"] == 500
    assert round(row["cost_per_month_usd"], 2) == round(500 * 0.032 / 3, 2)


def test_stack_by_model_and_an_empty_range(open_page, runtime) -> None:
    _seed(runtime)
    app = open_page(PAGE)
    app.segmented_control(key="mon_by").set_value("model").run()
    assert not app.exception
    assert "CSV of real cost per day by model" in _downloads(app)
    app.segmented_control(key="mon_quick").set_value("Custom").run()
    long_ago = dt.date(2020, 1, 1)
    app.date_input(key="mon_range").set_value((long_ago, long_ago + dt.timedelta(days=6))).run()
    assert not app.exception
    captions = " ".join(c.value for c in app.caption)
    assert "No real Replicate spend in this range." in captions
    assert "No latency measured in this range." in captions
    assert "No succeeded generation in this range" in captions
    assert "CSV of cumulative real spend" in _downloads(app)  # every day has a row, even empty


def test_a_database_error_is_a_message(open_page, runtime) -> None:
    _seed(runtime)
    with session_scope(runtime.engine) as session:
        session.execute(text("ALTER TABLE scenario RENAME TO scenario_gone"))
    app = open_page(PAGE)
    assert not app.exception
    assert any("Something went wrong while charting cost per day" in e.value for e in app.error)
    assert "CSV of throughput per day" in _downloads(app)  # the other charts still draw


def test_quick_ranges_and_what_ran(open_page, runtime) -> None:
    _seed(runtime)
    app = open_page(PAGE)
    assert app.segmented_control(key="mon_quick").value == "30 days"
    metrics = {m.label: m.value for m in app.metric}
    assert {"Generations", "Failure rate", "Canceled (did not run)", "Reused outputs"} <= set(metrics)
    app.segmented_control(key="mon_quick").set_value("Today").run()
    assert not app.exception
    today = dt.datetime.now(dt.timezone.utc).date()
    assert any(f"{today:%d %b %Y} – {today:%d %b %Y}" in c.value for c in app.caption)

"""Monitoring: empty state, every chart with its CSV, real and emulated apart, the stack
switch, the date range, the projection, a database error shown as a message."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import text

from core.data.db import session_scope
from core.data.models import GenerationState, ScenarioStatus, ScenarioVersion
from tests.factories import make_generation, make_scenario, make_sweep
from tests.pages.conftest import choose_tab

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


SECTIONS = ["Cost", "Latency", "Throughput and failures", "Usage per person",
            "Monthly projection"]


def _section(app, name: str):
    return choose_tab(app, "mon_section", name)


def _every_section(app) -> dict[str, dict]:
    """What each section drew: its downloads, charts, tables and captions."""
    seen = {}
    for name in SECTIONS:
        _section(app, name)
        assert not app.exception
        seen[name] = {"downloads": _downloads(app), "charts": len(app.get("vega_lite_chart")),
                      "frames": [d.value for d in app.dataframe],
                      "captions": " ".join(c.value for c in app.caption),
                      "errors": [e.value for e in app.error]}
    return seen


def test_empty_state_points_to_new_sweep(open_page) -> None:
    app = open_page(PAGE)
    assert not app.exception
    assert "Nothing to chart yet" in app.info[0].value


def test_every_chart_has_its_csv(open_page, runtime) -> None:
    _seed(runtime)
    app = open_page(PAGE)
    assert not app.exception
    assert not app.error
    # One section runs at a time: the first is open, the others wait for their tab.
    assert [t.label for t in app.tabs][:1] == ["Cost"] and len(app.get("vega_lite_chart")) == 4
    seen = _every_section(app)
    assert not any(s["errors"] for s in seen.values())
    assert {d for s in seen.values() for d in s["downloads"]} == {
        "CSV of real cost per day by scenario", "CSV of emulated cost per day by scenario",
        "CSV of cumulative real spend", "CSV of cost per generation",
        "CSV of latency p50 p95 per day", "CSV of latency distributions",
        "CSV of throughput per day", "CSV of failure rate per day",
        "CSV of most common errors", "CSV of failures by strength", "CSV of usage per person",
        "CSV of monthly projection"}
    assert sum(s["charts"] for s in seen.values()) == 9
    assert [s["charts"] for s in seen.values()] == [4, 2, 2, 1, 0]
    _section(app, "Cost")
    assert [t.label for t in app.tabs] == [*SECTIONS[:1], "Real Replicate spend",
                                           "Emulated (not real money)", *SECTIONS[1:]]
    errors, by_strength = seen["Throughput and failures"]["frames"]
    (usage,) = seen["Usage per person"]["frames"]
    (projection,) = seen["Monthly projection"]["frames"]
    assert list(errors["error"]) == ["NSFW content detected"]
    assert by_strength["failed"].sum() == 1 and "strength" in by_strength
    assert list(usage["person"]) == ["alice", "bob"]
    assert list(usage["real_cost_usd"].round(3)) == [0.032, 0.0]
    # The scenario sets no parameters, so every cell of its sweeps is its setting: real
    # predictions, $0.032 over 3 images; 100 users → 250 jobs → 500 images.
    row = projection.set_index("scenario").loc["projection-level-1"]
    assert row["counts"] == ("current (not in production) v1: 3 real image(s) of this "
                             "setting, every sweep of the scenario")
    assert round(row["usd_per_month_100_users"], 2) == round(500 * 0.032 / 3, 2)


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
    seen = _every_section(app)
    assert "No real Replicate spend in this range." in seen["Cost"]["captions"]
    assert "No latency measured in this range." in seen["Latency"]["captions"]
    # A scenario's setting is priced from every sweep of the scenario, whatever the range.
    projection = seen["Monthly projection"]["frames"][-1].set_index("scenario")
    assert projection.loc["projection-level-1", "cost_per_image_usd"] == pytest.approx(0.032 / 3)
    assert "CSV of cumulative real spend" in seen["Cost"]["downloads"]  # empty days have rows


def test_a_database_error_is_a_message(open_page, runtime) -> None:
    _seed(runtime)
    with session_scope(runtime.engine) as session:
        session.execute(text("ALTER TABLE scenario RENAME TO scenario_gone"))
    app = open_page(PAGE)
    assert not app.exception
    assert any("Something went wrong while charting cost per day" in e.value for e in app.error)
    assert "CSV of cumulative real spend" in _downloads(app)  # the other charts still draw
    _section(app, "Throughput and failures")
    assert not app.exception and "CSV of throughput per day" in _downloads(app)


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


def test_the_projection_prices_each_scenario_at_its_chosen_settings_own_cost(
        open_page, runtime) -> None:
    when = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1)
    production = {"strength": 0.35, "num_inference_steps": 25, "guidance_scale": 7.5}
    with session_scope(runtime.engine) as session:
        # In production at v1; v2 (strength 0.5, never run) is a candidate and must not count.
        shipped = make_scenario(session, "portrait-subtle", model_ref="stability-ai/sdxl",
                                params={**production, "strength": 0.5}, version=2,
                                status=ScenarioStatus.PRODUCTION, production_version=1)
        session.add(ScenarioVersion(scenario_id=shipped.id, version=1, changed_by="alice",
                                    snapshot={"params": production,
                                              "model_ref": "stability-ai/sdxl:abc123"}))
        make_scenario(session, "portrait-bold", params={"strength": 0.9,
                                                        "num_inference_steps": 30})
        sweep = make_sweep(session, endpoint="replicate", scenario=shipped)
        setting = {"strength": 0.35, "steps": 25, "guidance": 7.5, "completed_at": when}
        for _ in range(2):
            make_generation(session, sweep, cost_usd=0.012, **setting)
        make_generation(session, sweep, state=GenerationState.FAILED, cost_usd=0.003,
                        error="timeout", **setting)
        original = make_generation(session, sweep, cost_usd=0.012, **setting)
        make_generation(session, sweep, cost_usd=0.0, reused_from_id=original.id, **setting)
        for _ in range(2):  # another setting of the same scenario: not what it ships
            make_generation(session, sweep, cost_usd=0.05, strength=0.8, steps=50,
                            completed_at=when)

    app = open_page(PAGE)
    _section(app, "Monthly projection")
    assert not app.exception and not app.error
    table = app.dataframe[-1].value.set_index("scenario")
    # portrait-subtle ships v1: 3 succeeded predictions of strength 0.35 / 25 steps / 7.5
    # (the reused cell is no prediction) cost 3 × 0.012 + 0.003 (the failure) = $0.039, so
    # $0.013 an image; 100 users → 250 jobs → 500 images → $6.50; 5000 users → 20,000 images
    # → $260.
    subtle = table.loc["portrait-subtle"]
    assert subtle["version"] == 1
    assert subtle["counts"] == ("production v1: 3 real image(s) of this setting, every sweep "
                                "of the scenario")
    assert subtle["cost_per_image_usd"] == pytest.approx(0.013)
    assert subtle["usd_per_month_100_users"] == pytest.approx(6.50)
    assert subtle["usd_per_month_5000_users"] == pytest.approx(260.0)
    # portrait-bold's setting never ran: the average of every prediction in the range stands
    # in, and says so: (3 × 0.012 + 0.003 + 2 × 0.05) / 5 succeeded predictions = $0.0278;
    # 500 images → $13.90.
    bold = table.loc["portrait-bold"]
    assert bold["counts"] == ("current (not in production) v1: this setting never ran — "
                              "average of every prediction in the range (5 real image(s)) "
                              "instead")
    assert bold["cost_per_image_usd"] == pytest.approx(0.0278)
    assert bold["usd_per_month_100_users"] == pytest.approx(13.90)
    assert "that setting's own measured cost" in " ".join(m.value for m in app.markdown)


def test_a_link_opens_its_section(open_page, runtime) -> None:
    """The chosen section is in the URL (?mon_section=…): a shared link opens it."""
    _seed(runtime)
    app = open_page(PAGE, query={"mon_section": "Usage per person"})
    assert not app.exception
    assert _downloads(app) == ["CSV of usage per person"]
    assert app.session_state["mon_section"] == "Usage per person"

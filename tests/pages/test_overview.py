"""Overview: empty state, real and emulated spend apart, outcomes and latency, queue and
workers, recent sweeps, budget status, what is failing, Redis down."""

from __future__ import annotations

import datetime as dt

from core.data.db import session_scope
from core.data.models import GenerationState
from core.planning.pricing import format_usd as usd
from tests.factories import make_generation, make_sweep
from tests.pages.conftest import clear_caches
from tests.services import free_port

PAGE = "pages/overview.py"


def _metrics(app) -> dict[str, str]:
    return {m.label: m.value for m in app.metric}


def _seed(runtime, *, real_cost: float = 0.5, failed_error: str | None = None) -> None:
    now = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)
    with session_scope(runtime.engine) as session:
        real = make_sweep(session, endpoint="replicate", name="real sweep")
        emulated = make_sweep(session, endpoint="emulator", name="emulated sweep")
        make_generation(session, real, completed_at=now, cost_usd=real_cost, latency_s=4.0)
        make_generation(session, emulated, completed_at=now, cost_usd=0.25, latency_s=2.0)
        if failed_error:
            make_generation(session, real, state=GenerationState.FAILED, completed_at=now,
                            error=failed_error)


def test_empty_state_points_to_new_sweep(open_page) -> None:
    app = open_page(PAGE)
    assert not app.exception
    assert "No sweeps yet" in app.info[0].value
    assert app.get("page_link")


def test_real_and_emulated_spend_are_apart(open_page, runtime) -> None:
    _seed(runtime)
    app = open_page(PAGE)
    assert not app.exception
    metrics = _metrics(app)
    assert metrics["Real spend today"] == usd(0.5) and metrics["Real spend this month"] == usd(0.5)
    assert metrics["Emulated today"] == usd(0.25)
    assert metrics["Generations (7 days)"] == "2" and metrics["Success rate"] == "100.0%"
    assert metrics["Latency p50"] == "3.0 s"
    assert metrics["Live workers"] == "0"
    texts = [p.proto.text for p in app.get("progress")]
    assert any(f"{usd(0.5)} of {usd(20)} budget today" in t for t in texts)
    assert any("real sweep" in t and "1 of 1 cells done (1 succeeded, 0 failed)" in t for t in texts)
    # no worker runs in tests: that is the one thing needing attention, with its fix
    assert [e.value for e in app.error] == [
        "**Workers**: no worker is registered. Start workers: `python -m core worker` (or `up`)."]
    assert not app.warning


def test_budget_reached_and_failures_are_flagged(open_page, runtime) -> None:
    _seed(runtime, real_cost=25.0, failed_error="CUDA out of memory")
    app = open_page(PAGE)
    assert not app.exception
    assert any("Budget today reached" in e.value for e in app.error)
    warnings = " ".join(w.value for w in app.warning)
    assert "1 recent sweep(s) have failed cells — retry them on Runs:\n- #1 real sweep: 1 failed cell(s)" in warnings
    assert "1 generation(s) failed in the last 24 hours" in warnings
    assert "1 × CUDA out of memory" in warnings  # the most common errors, in the message


def test_queued_work_without_workers_is_flagged(open_page, runtime, finished_sweep) -> None:
    from tests.pages.conftest import start_sweep

    start_sweep(runtime, strength="0.4")
    app = open_page(PAGE)
    assert _metrics(app)["Queue depth"] == "1"
    assert any("no worker is running" in w.value for w in app.warning)


def test_redis_down_is_a_message(open_page, finished_sweep, monkeypatch) -> None:
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    clear_caches()
    app = open_page(PAGE)
    assert not app.exception
    assert _metrics(app)["Queue depth"] == "–"
    assert any("Redis does not answer" in w.value for w in app.warning)
    assert any("Redis" in e.value for e in app.error)  # the failing health check with its fix

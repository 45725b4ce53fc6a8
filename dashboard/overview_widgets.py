"""Cached analytics reads for Overview and Monitoring (aggregated in SQL by core: one row per
day, component or person comes back, never one per generation), and the Overview's panels."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, TypeVar

import pandas as pd
import streamlit as st

from core.insight import analytics

from core.insight import performance
from core.data.db import read_scope
from core.planning.sweeps import SweepSummary
from dashboard import format as fmt
from dashboard.resources import effective, runtime

T = TypeVar("T")
TTL_S = 30  # charts over days need not be fresher than this; Overview headline is 10 s


def _read(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    with read_scope(runtime().engine) as session:
        return fn(session, *args, **kwargs)


# -- reads ---------------------------------------------------------------------------------------
@st.cache_data(ttl=10, show_spinner=False)
def headline(start: dt.datetime, end: dt.datetime) -> analytics.Overview:
    return _read(analytics.overview, start, end)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def cost_per_day(start: dt.datetime, end: dt.datetime, by: str) -> pd.DataFrame:
    return _read(analytics.cost_per_day, start, end, by)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def cumulative_real_spend(start: dt.datetime, end: dt.datetime) -> pd.DataFrame:
    return _read(analytics.cumulative_real_spend, start, end,
                 float(effective("monthly_budget_usd")))


@st.cache_data(ttl=TTL_S, show_spinner=False)
def cost_per_generation(start: dt.datetime, end: dt.datetime) -> pd.DataFrame:
    return _read(analytics.cost_per_generation, start, end)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def latency_histograms(start: dt.datetime, end: dt.datetime) -> pd.DataFrame:
    return _read(performance.latency_histograms, start, end)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def latency_per_day(start: dt.datetime, end: dt.datetime) -> pd.DataFrame:
    return _read(performance.latency_percentiles_per_day, start, end)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def throughput(start: dt.datetime, end: dt.datetime) -> pd.DataFrame:
    return _read(performance.throughput, start, end, "day")


@st.cache_data(ttl=TTL_S, show_spinner=False)
def failure_rate(start: dt.datetime, end: dt.datetime) -> pd.DataFrame:
    return _read(performance.failure_rate_per_day, start, end)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def top_errors(start: dt.datetime, end: dt.datetime) -> pd.DataFrame:
    rows = [(e.error, e.count, e.last_seen) for e in _read(performance.top_errors, start, end)]
    return pd.DataFrame(rows, columns=["error", "count", "last_seen"])


@st.cache_data(ttl=TTL_S, show_spinner=False)
def failures_by(start: dt.datetime, end: dt.datetime, by: str) -> pd.DataFrame:
    return _read(performance.failures_by, start, end, by)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def usage_per_person(start: dt.datetime, end: dt.datetime) -> pd.DataFrame:
    return _read(analytics.usage_per_person, start, end)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def projection(start: dt.datetime, end: dt.datetime) -> analytics.Projection:
    return _read(analytics.monthly_projection, start, end)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def projection_by_scenario(start: dt.datetime, end: dt.datetime) -> pd.DataFrame:
    return analytics.projection_by_scenario(_read(analytics.scenario_projections, start, end))


def by_endpoint(frame: pd.DataFrame, endpoint: str) -> pd.DataFrame:
    return frame[frame["endpoint"] == endpoint].reset_index(drop=True)


# -- Overview panels -----------------------------------------------------------------------------
def spend_panel(numbers: analytics.Overview, daily_budget: float, monthly_budget: float) -> None:
    """Real spend against the budgets, emulated spend beside it and never in it."""
    today, month = numbers.spend_today, numbers.spend_month
    real, emulated = st.columns(2)
    with real:
        st.markdown(f"{fmt.endpoint_badge('replicate')} **Real spend**")
        a, b = st.columns(2)
        a.metric("Real spend today", fmt.usd(today.real_usd),
                 help=f"Daily budget {fmt.usd(daily_budget)}")
        b.metric("Real spend this month", fmt.usd(month.real_usd),
                 help=f"Monthly budget {fmt.usd(monthly_budget)}")
        _budget_bar("today", today.real_usd, daily_budget)
        _budget_bar("this month", month.real_usd, monthly_budget)
    with emulated:
        st.markdown(f"{fmt.endpoint_badge('emulator')} **Emulated** (what Replicate would "
                    "have charged; not real money)")
        a, b = st.columns(2)
        a.metric("Emulated today", fmt.usd(today.emulated_usd))
        b.metric("Emulated this month", fmt.usd(month.emulated_usd))


def _budget_bar(when: str, spent: float, budget: float) -> None:
    share = spent / budget if budget else 1.0
    text = f"{fmt.usd(spent)} of {fmt.usd(budget)} budget {when} ({share:.0%})"
    st.progress(min(share, 1.0), text=text)
    if share >= 1.0:
        st.error(f"Budget {when} reached: real sweeps are refused until it resets. Raise it on "
                 "Settings if this is expected.", icon="💸")
    elif share >= 0.8:
        st.warning(f"{share:.0%} of the budget {when} is spent.", icon="💸")


def outcome_panel(numbers: analytics.Overview, queue: dict[str, Any]) -> None:
    a, b, c, d, e, f = st.columns(6)
    a.metric("Generations (7 days)", numbers.generations,
             help=f"What ran: {numbers.succeeded} succeeded, {numbers.failed} failed attempts "
                  f"(retried ones included). Not counted: {numbers.canceled} canceled, "
                  f"{numbers.reused} reused (saved {fmt.usd(numbers.saved_usd)}).")
    b.metric("Success rate", "–" if numbers.success_rate is None
             else f"{numbers.success_rate:.1%}")
    c.metric("Latency p50", fmt.duration(numbers.latency_p50_s))
    d.metric("Latency p95", fmt.duration(numbers.latency_p95_s))
    e.metric("Queue depth", queue["queued"] if queue["ok"] else "–",
             help="RQ jobs (chunks of cells) waiting")
    f.metric("Live workers", f"{queue['workers']}" if queue["ok"] else "–",
             help=f"{queue['busy']} busy" if queue["ok"] else "Redis does not answer")


def recent_sweeps(summaries: list[SweepSummary]) -> None:
    for s in summaries:
        share = s.done / s.total if s.total else 1.0
        left, right = st.columns([3, 1])
        left.progress(share, text=f"#{s.id} {fmt.plain(s.name)} — {fmt.status(s.status)} · "
                                  f"{s.counts.describe()} · by {fmt.plain(s.created_by)} · "
                                  f"{fmt.ago(s.created_at)}")
        right.markdown(f"{fmt.endpoint_badge(s.endpoint)} {fmt.usd(s.cost_usd)}")


def failing_panel(numbers: analytics.Overview, checks: list[Any],
                  summaries: list[SweepSummary], queue: dict[str, Any]) -> None:
    """Everything that needs someone: health checks, failures, halted or failing sweeps."""
    problems = 0
    for check in checks:
        if not check.ok:
            problems += 1
            st.error(f"**{check.name}**: {check.detail}. {check.fix}", icon="🩺")
    if queue["ok"] and queue["queued"] and not queue["workers"]:
        problems += 1
        st.warning(f"{queue['queued']} job(s) are queued but no worker is running: start "
                   "`python -m core worker`.", icon="⏳")
    failing = []
    for s in summaries:
        if s.halted_reason:
            problems += 1
            st.warning(f"Sweep #{s.id} {fmt.plain(s.name)} stopped: {fmt.plain(s.halted_reason)}",
                       icon="⛔")
        elif s.by_state.get("failed"):
            failing.append(f"- #{s.id} {fmt.plain(s.name)}: {s.by_state['failed']} failed "
                           "cell(s)")
    if failing:  # one message, a line a sweep: a page of warnings hid the rest of the panel
        problems += 1
        st.warning(f"{len(failing)} recent sweep(s) have failed cells — retry them on Runs:\n"
                   + "\n".join(failing), icon="⚠️")
    if numbers.failures_24h:
        problems += 1
        errors = "\n".join(f"- {e.count} × {fmt.plain(e.error)} (last {fmt.ago(e.last_seen)})"
                           for e in numbers.top_errors_24h)
        st.warning(f"{numbers.failures_24h} generation(s) failed in the last 24 hours; most "
                   f"common errors:\n{errors}", icon="❌")
    if not problems:
        st.success("Nothing is failing.", icon="✅")


def last_days(days: int, today: dt.date | None = None) -> tuple[dt.datetime, dt.datetime]:
    """The UTC range of the last ``days`` whole days, today included."""
    from core.insight.sqlstats import day_range

    today = today or dt.datetime.now(dt.timezone.utc).date()
    return day_range(today - dt.timedelta(days=days - 1), today)

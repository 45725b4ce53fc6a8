"""Cached reads for the Decide and Compare pages: the evidence tables of ``core.insight``."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from core.data.db import read_scope
from core.data.models import Scenario, Sweep
from core.insight import compare, evidence
from core.insight.report import actual
from core.planning.sweeps import sweep_version
from dashboard.resources import runtime


@st.cache_data(ttl=5, show_spinner=False)
def sweep_evidence(sweep_id: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(cells, ratings) of one sweep."""
    with read_scope(runtime().engine) as session:
        cells = evidence.load_cells(session, sweep_ids=[sweep_id])
        return cells, evidence.load_ratings(session, cells)


@st.cache_data(ttl=5, show_spinner=False)
def scenario_evidence(scenario_id: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(cells, ratings) of every sweep of a scenario, across models."""
    with read_scope(runtime().engine) as session:
        cells = evidence.load_cells(session, scenario_id=scenario_id)
        return cells, evidence.load_ratings(session, cells)


@st.cache_data(ttl=5, show_spinner=False)
def image_evidence(image_id: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    with read_scope(runtime().engine) as session:
        cells = evidence.load_cells(session, image_id=image_id)
        return cells, evidence.load_ratings(session, cells)


@st.cache_data(ttl=30, show_spinner=False)
def scenarios() -> dict[int, str]:
    with read_scope(runtime().engine) as session:
        return dict(session.query(Scenario.id, Scenario.name).order_by(Scenario.name).all())


def estimate_and_actual(sweep_id: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The sweep's estimate and what it cost and took, cached by content: worked out again
    only when one of its cells moves (``sweep_version``), not every few seconds (its cells
    as evidence were ~30 ms of every Runs page load of a 1,000-cell sweep)."""
    with read_scope(runtime().engine) as session:
        version = sweep_version(session, sweep_id)
    return _estimate_and_actual(sweep_id, version)


@st.cache_data(ttl=600, max_entries=64, show_spinner=False)
def _estimate_and_actual(sweep_id: int, version: tuple) -> tuple[dict[str, Any], dict[str, Any]]:
    with read_scope(runtime().engine) as session:
        sweep = session.get(Sweep, sweep_id)
        cells = evidence.load_cells(session, sweep_ids=[sweep_id])
        return ({"cost_usd": sweep.estimated_cost_usd, "duration_s": sweep.estimated_duration_s},
                actual(sweep, cells))


@st.cache_data(ttl=5, show_spinner=False)
def sweep_pair(a: int, b: int) -> compare.SweepComparison:
    with read_scope(runtime().engine) as session:
        return compare.compare_sweeps(session, a, b)

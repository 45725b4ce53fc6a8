"""Cached reads for the pages, as plain data: sweeps, their cells, the image library, presets."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import streamlit as st

from core.planning.catalog import SDXL_REF, list_models
from core.data.db import read_scope, session_scope
from core.insight.export import export_sweep as core_export_sweep
from core.data.library import list_images
from core.data.models import Sweep
from core.insight.grid_cells import GridCell, grid_cell, lacking_inputs
from core.planning.presets import Preset, list_presets
from core.insight.progress import SweepProgress, sweep_progress
from core.insight.measured import metrics_by_generation, metrics_version
from core.insight.metrics import METRIC_NAMES
from core.insight.review import marks_for_sweep, marks_version
from core.planning.sweeps import SweepSummary, cells_of, summarize, sweep_version
from dashboard.resources import runtime


@st.cache_data(ttl=2, show_spinner=False)
def sweep_summaries(limit: int = 200) -> list[SweepSummary]:
    with read_scope(runtime().engine) as session:
        return summarize(session, limit=limit)


def sweep_summary(sweep_id: int) -> SweepSummary | None:
    """Fresh, uncached: the live panels call this every refresh."""
    with read_scope(runtime().engine) as session:
        found = summarize(session, [sweep_id])
    return found[0] if found else None


def live_progress(sweep_id: int, stuck_after_s: float = 120.0) -> SweepProgress:
    with read_scope(runtime().engine) as session:
        return sweep_progress(session, sweep_id, now=dt.datetime.now(dt.timezone.utc),
                              stuck_after_s=stuck_after_s)


def sweep_cells(sweep_id: int) -> tuple[GridCell, ...]:
    """The sweep's cells as typed records, with their review marks and image metrics, cached
    by content: the sweep's state counts and last finish, its reviews' last change and its
    outputs' metrics (how many, last measured). Three indexed reads a call; the 1,000 records
    of a sweep are built only when one of those moves, and are shared, not copied, between
    reruns and sessions (frozen records in a tuple). Metrics of outputs a sweep reused from
    another sweep, measured later by a backfill, show within the cache's ten minutes."""
    with read_scope(runtime().engine) as session:
        version = sweep_version(session, sweep_id)
        marks = marks_version(session, sweep_id)
        measured = metrics_version(session, sweep_id)
    return _marked_cells(sweep_id, version, marks, measured)


@st.cache_resource(ttl=600, max_entries=32, show_spinner=False)
def _marked_cells(sweep_id: int, version: tuple, marks_version: tuple,
                  metrics_version: tuple) -> tuple[GridCell, ...]:
    cells = _cells(sweep_id, version)  # its own session: SQLite sessions must not nest
    with read_scope(runtime().engine) as session:
        marks = marks_for_sweep(session, sweep_id)
        measured = metrics_by_generation(session, {c.reused_from or c.id for c in cells})
    out = []
    for cell in cells:
        mark, found = marks.get(cell.id), measured.get(cell.reused_from or cell.id)
        out.append(dataclasses.replace(
            cell, rating=mark.mean_rating if mark else None,
            n_ratings=mark.n_ratings if mark else 0,
            ratings_by=dict(mark.ratings) if mark else {},
            tags=tuple(sorted(mark.tags)) if mark else (),
            metrics={name: getattr(found, name) if found else None for name in METRIC_NAMES}))
    return tuple(out)


@st.cache_data(ttl=600, max_entries=32, show_spinner=False)
def _cells(sweep_id: int, version: tuple) -> list[GridCell]:
    """The cells as typed records: each with its model and, in a sweep of several models,
    the sweep's inputs that model lacks."""
    with read_scope(runtime().engine) as session:
        sweep = session.get(Sweep, sweep_id)
        lacking = lacking_inputs(sweep.fixed_params or {}) if sweep else {}
        refs = {m.id: m.ref for m in list_models(session)}
        cells = []
        for gen in cells_of(session, sweep_id):
            ref = refs.get(gen.model_id or sweep.model_id, sweep.model_ref) if sweep else ""
            cells.append(grid_cell(gen, model_ref=ref, lacks=lacking.get(ref, ())))
        return cells


def clear_sweep_cells() -> None:
    """After a change the state counts may not show (a promote, a deleted image's label)."""
    _marked_cells.clear()
    _cells.clear()


@st.cache_data(ttl=5, show_spinner=False)
def library() -> list[dict[str, Any]]:
    with read_scope(runtime().engine) as session:
        return [{"id": i.id, "label": i.label or f"image {i.id}", "thumbnail_key": i.thumbnail_key,
                 "width": i.width, "height": i.height, "uploaded_by": i.uploaded_by}
                for i in list_images(session)]


@st.cache_data(ttl=10, show_spinner=False)
def presets() -> list[Preset]:
    with read_scope(runtime().engine) as session:
        return list_presets(session)


@st.cache_data(ttl=30, show_spinner=False)
def model_refs() -> list[str]:
    with read_scope(runtime().engine) as session:
        refs = [m.ref for m in list_models(session)]
    return [SDXL_REF, *[r for r in refs if r != SDXL_REF]]


def export_sweep(sweep_id: int, kind: str) -> bytes:
    """The sweep as CSV or JSON (built only when the download is asked for)."""

    with session_scope(runtime().engine) as session:
        data = core_export_sweep(session, sweep_id, kind, runtime().store)
    return data.encode() if isinstance(data, str) else data


def grid_png(slices: list[tuple[str, list[dict[str, Any]]]], x: str | None, y: str | None,
             title: str) -> bytes:
    """Every slice (label, cells) of the grid in one labelled PNG."""
    from core.insight.contact_sheet import render_sheet_png

    store = runtime().store

    def load(cell: dict[str, Any]) -> bytes | None:
        return store.get(cell["thumbnail"]) if cell.get("thumbnail") else None

    return render_sheet_png(slices, x, y, load, title=title)

"""Cached reads for the pages, as plain data: sweeps, their cells, the image library, presets."""

from __future__ import annotations

import datetime as dt
from typing import Any

import streamlit as st

from core.planning.catalog import SDXL_REF, list_models
from core.data.db import session_scope
from core.insight.export import export_sweep as core_export_sweep
from core.data.library import list_images
from core.data.models import Generation
from core.planning.presets import Preset, list_presets
from core.insight.progress import SweepProgress, sweep_progress
from core.insight.measured import metrics_by_generation
from core.insight.metrics import METRIC_NAMES, Metrics
from core.insight.review import CellMarks, marks_for_sweep
from core.planning.sweeps import SweepSummary, cell_record, cells_of, summarize, sweep_version
from dashboard.resources import runtime


@st.cache_data(ttl=2, show_spinner=False)
def sweep_summaries(limit: int = 200) -> list[SweepSummary]:
    with session_scope(runtime().engine) as session:
        return summarize(session, limit=limit)


def sweep_summary(sweep_id: int) -> SweepSummary | None:
    """Fresh, uncached: the live panels call this every refresh."""
    with session_scope(runtime().engine) as session:
        found = summarize(session, [sweep_id])
    return found[0] if found else None


def live_progress(sweep_id: int, stuck_after_s: float = 120.0) -> SweepProgress:
    with session_scope(runtime().engine) as session:
        return sweep_progress(session, sweep_id, now=dt.datetime.now(dt.timezone.utc),
                              stuck_after_s=stuck_after_s)


def _cell(gen: Generation) -> dict[str, Any]:
    """One cell for the gallery: the swept values under their axis names, plus the rest."""
    record = cell_record(gen)
    image = gen.input_image
    label = (image.label or f"image {image.id}") if image else "deleted image"
    return {**record,
            "state": gen.state.value, "cell_index": gen.cell_index,
            "prompt": gen.prompt_label or "P1", "prompt_text": gen.prompt,
            "image": f"#{gen.input_image_id} {label}" if image else label,
            "image_key": image.storage_key if image else None,
            "image_thumbnail": image.thumbnail_key if image else None,
            "negative_prompt": gen.negative_prompt, "model_input": gen.model_input,
            "created_at": gen.created_at, "completed_at": gen.completed_at}


@st.cache_data(ttl=1, show_spinner=False)
def sweep_cells(sweep_id: int) -> list[dict[str, Any]]:
    """The sweep's cells with their review marks and image metrics. The cells are cached by
    their content (the sweep's state counts and last finish), so a finished sweep's 1,000 ORM
    rows are built once, not every second; marks and metrics are read fresh."""
    with session_scope(runtime().engine) as session:
        version = sweep_version(session, sweep_id)
    cells = _cells(sweep_id, version)  # its own session: SQLite sessions must not nest
    with session_scope(runtime().engine) as session:
        marks = marks_for_sweep(session, sweep_id)
        measured = metrics_by_generation(session, {c["reused_from"] or c["id"] for c in cells})
    return [_with_metrics(_with_marks(cell, marks.get(cell["id"])),
                          measured.get(cell["reused_from"] or cell["id"])) for cell in cells]


@st.cache_data(ttl=600, max_entries=32, show_spinner=False)
def _cells(sweep_id: int, version: tuple) -> list[dict[str, Any]]:
    with session_scope(runtime().engine) as session:
        return [_cell(gen) for gen in cells_of(session, sweep_id)]


def clear_sweep_cells() -> None:
    """After a change the state counts may not show (a promote, a deleted image's label)."""
    sweep_cells.clear()
    _cells.clear()


def _with_metrics(cell: dict[str, Any], metrics: Metrics | None) -> dict[str, Any]:
    """The output's image metrics under their names (None where not measured)."""
    return {**cell, **{name: getattr(metrics, name) if metrics else None
                       for name in METRIC_NAMES}}


def _with_marks(cell: dict[str, Any], marks: CellMarks | None) -> dict[str, Any]:
    return {**cell, "rating": marks.mean_rating if marks else None,
            "n_ratings": marks.n_ratings if marks else 0,
            "ratings_by": dict(marks.ratings) if marks else {},
            "tags": sorted(marks.tags) if marks else []}


@st.cache_data(ttl=5, show_spinner=False)
def library() -> list[dict[str, Any]]:
    with session_scope(runtime().engine) as session:
        return [{"id": i.id, "label": i.label or f"image {i.id}", "thumbnail_key": i.thumbnail_key,
                 "width": i.width, "height": i.height, "uploaded_by": i.uploaded_by}
                for i in list_images(session)]


@st.cache_data(ttl=10, show_spinner=False)
def presets() -> list[Preset]:
    with session_scope(runtime().engine) as session:
        return list_presets(session)


@st.cache_data(ttl=30, show_spinner=False)
def model_refs() -> list[str]:
    with session_scope(runtime().engine) as session:
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

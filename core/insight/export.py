"""A sweep's cells as CSV or JSON, for the Gallery's download buttons and the CLI.

Rows are ``core.planning.sweeps.cell_record`` plus what reviewers said of each cell (mean
rating, n ratings, thumbs, tags, notes, who reviewed it, and in ``reviews`` each review with its
time and seconds spent), the input file's name and the output's key and link. The JSON also
carries the sweep's own fields and its reviewers' agreement. Nothing
secret is written: setting-like keys are dropped and anything shaped like a Replicate API
token is masked, should one ever have reached an error text or a parameter.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
from typing import Any

from sqlalchemy.orm import Session

from core.data.models import Endpoint, Generation, GenerationState, Sweep
from core.data.storage import MediaStore
from core.errors import InvalidInput, NotFound, StorageError
from core.insight.agreement import agreement
from core.insight.review import ReviewRecord, reviews_of
from core.planning.sweeps import cell_record, cells_of, summarize

FORMATS = ("csv", "json")
_TOKEN = re.compile(r"r8_[A-Za-z0-9]{8,}")
_SECRET_KEY = re.compile(r"token|secret|password|api_key|authorization", re.IGNORECASE)


def export_sweep(session: Session, sweep_id: int, fmt: str,
                 store: MediaStore | None = None) -> bytes:
    """UTF-8 bytes of the sweep in ``fmt`` (csv: one row per cell; json: sweep + cells).
    With ``store``, each output also gets a link (a file URI, or a presigned S3 URL)."""
    if fmt not in FORMATS:
        raise InvalidInput(f"Export format {fmt!r} is not one of {', '.join(FORMATS)}.")
    sweep = session.get(Sweep, sweep_id)
    if sweep is None:
        raise NotFound(f"Sweep {sweep_id} does not exist.")
    generations = cells_of(session, sweep_id)
    reviews = reviews_of(session, [gen.id for gen in generations])
    cells = [_scrub({**cell_record(gen), **_extras(gen, reviews.get(gen.id, []), store)})
             for gen in generations]
    if fmt == "json":
        payload = {"sweep": _scrub(sweep_header(session, sweep)), "cells": cells}
        return (json.dumps(payload, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    return _csv(sweep_id, [_flat(cell) for cell in cells])


def _extras(gen: Generation, reviews: list[ReviewRecord],
            store: MediaStore | None) -> dict[str, Any]:
    """The input's file name, the output's key and link, and the reviews of one cell."""
    stars = [r.rating for r in reviews if r.rating is not None]
    link = None
    if store is not None and gen.output_key:
        try:
            link = store.url(gen.output_key)
        except (StorageError, ValueError):
            link = None  # a bucket that cannot sign now, or not a media key: the key stays
    return {
        "input_file": gen.input_image.label if gen.input_image else None,
        "output_key": gen.output_key, "output_url": link,
        "mean_rating": round(sum(stars) / len(stars), 3) if stars else None,
        "n_ratings": len(stars),
        "thumbs_up": sum(r.thumbs == 1 for r in reviews),
        "thumbs_down": sum(r.thumbs == -1 for r in reviews),
        "tags": sorted({tag for r in reviews for tag in r.tags}),
        "notes": [f"{r.reviewer}: {r.note}" for r in reviews if r.note],
        "reviewers": [r.reviewer for r in reviews],
        "reviews": [{"reviewer": r.reviewer, "rating": r.rating, "thumbs": r.thumbs,
                     "tags": list(r.tags), "note": r.note, "seconds_spent": r.seconds_spent,
                     "at": r.updated_at.isoformat()} for r in reviews],
    }


def _flat(cell: dict[str, Any]) -> dict[str, Any]:
    """A CSV row: lists joined with "; " (notes with " | ", as notes may hold ";"), and each
    review as JSON in one column."""
    return {**cell, "tags": "; ".join(cell["tags"]), "notes": " | ".join(cell["notes"]),
            "reviewers": "; ".join(cell["reviewers"]),
            "reviews": json.dumps(cell["reviews"], ensure_ascii=False) if cell["reviews"] else ""}


def sweep_header(session: Session, sweep: Sweep) -> dict[str, Any]:
    """The sweep's own fields as plain JSON values."""
    summary = summarize(session, [sweep.id])[0]
    return {
        "id": sweep.id, "name": sweep.name,
        "scenario": sweep.scenario.name if sweep.scenario else None,
        "model": sweep.model_ref, "version": sweep.version_id, "endpoint": sweep.endpoint.value,
        "axes": sweep.axes, "fixed_params": sweep.fixed_params,
        "created_by": sweep.created_by, "created_at": sweep.created_at.isoformat(),
        "budget_usd": sweep.budget_usd, "estimated_cost_usd": sweep.estimated_cost_usd,
        "cost_usd": summary.cost_usd, "status": summary.status, "cells": summary.total,
        "cells_by_state": summary.by_state, "cell_counts": summary.counts.as_dict(),
        "halted_reason": sweep.halted_reason,
        "min_ratings": sweep.min_ratings,
        "agreement": dataclasses.asdict(agreement(session, sweep_id=sweep.id)),
    }


def _csv(sweep_id: int, cells: list[dict[str, Any]]) -> bytes:
    buffer = io.StringIO()
    columns = ["sweep_id", *(cells[0] if cells else _empty_record_keys())]
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for cell in cells:
        writer.writerow({"sweep_id": sweep_id, **{k: _formula_safe(v) for k, v in cell.items()}})
    return buffer.getvalue().encode("utf-8")


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _formula_safe(value: Any) -> Any:
    """Text a spreadsheet would run as a formula (``=HYPERLINK(…)`` in a prompt) gets a
    leading apostrophe, so it opens as the text it is (OWASP's CSV-injection advice);
    numbers, negative ones included, stay numbers."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _empty_record_keys() -> list[str]:
    """The columns of a sweep with no cells, from a blank record."""
    blank = Generation(state=GenerationState.PENDING, endpoint=Endpoint.EMULATOR)
    return list({**cell_record(blank), **_extras(blank, [], None)})


def _scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items()
                if not (isinstance(k, str) and _SECRET_KEY.search(k))}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    if isinstance(value, str):
        return _TOKEN.sub("r8_…(masked)", value)
    return value

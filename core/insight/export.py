"""A sweep's cells as CSV or JSON, for the Gallery's download buttons and the CLI.

Rows are ``core.planning.sweeps.cell_record``; the JSON also carries the sweep's own fields. Nothing
secret is written: setting-like keys are dropped and anything shaped like a Replicate API
token is masked, should one ever have reached an error text or a parameter.
"""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Any

from sqlalchemy.orm import Session

from core.errors import InvalidInput, NotFound
from core.data.models import Endpoint, Generation, GenerationState, Sweep
from core.planning.sweeps import cell_record, cells_of, summarize

FORMATS = ("csv", "json")
_TOKEN = re.compile(r"r8_[A-Za-z0-9]{8,}")
_SECRET_KEY = re.compile(r"token|secret|password|api_key|authorization", re.IGNORECASE)


def export_sweep(session: Session, sweep_id: int, fmt: str) -> bytes:
    """UTF-8 bytes of the sweep in ``fmt`` (csv: one row per cell; json: sweep + cells)."""
    if fmt not in FORMATS:
        raise InvalidInput(f"Export format {fmt!r} is not one of {', '.join(FORMATS)}.")
    sweep = session.get(Sweep, sweep_id)
    if sweep is None:
        raise NotFound(f"Sweep {sweep_id} does not exist.")
    cells = [_scrub(cell_record(gen)) for gen in cells_of(session, sweep_id)]
    if fmt == "json":
        payload = {"sweep": _scrub(sweep_header(session, sweep)), "cells": cells}
        return (json.dumps(payload, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    return _csv(sweep_id, cells)


def export_filename(sweep_id: int, fmt: str) -> str:
    return f"sweep-{sweep_id}.{fmt}"


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
        "cells_by_state": summary.by_state, "halted_reason": sweep.halted_reason,
    }


def _csv(sweep_id: int, cells: list[dict[str, Any]]) -> bytes:
    buffer = io.StringIO()
    columns = ["sweep_id", *(cells[0] if cells else _empty_record_keys())]
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for cell in cells:
        writer.writerow({"sweep_id": sweep_id, **cell})
    return buffer.getvalue().encode("utf-8")


def _empty_record_keys() -> list[str]:
    """The columns of a sweep with no cells, from a blank record."""
    return list(cell_record(Generation(state=GenerationState.PENDING, endpoint=Endpoint.EMULATOR)))


def _scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items()
                if not (isinstance(k, str) and _SECRET_KEY.search(k))}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    if isinstance(value, str):
        return _TOKEN.sub("r8_…(masked)", value)
    return value

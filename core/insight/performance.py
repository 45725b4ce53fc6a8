"""Latency, throughput and failures for the Monitoring page, aggregated in SQL.

Ranges are half-open ``[start, end)`` in aware UTC over the time a cell completed, as in
``core.insight.analytics``. Latency is measured on succeeded predictions only: reused cells took no
time and failures stop early, so either would skew the distribution.

Latency components (seconds, columns of ``Generation``):
``queue_s`` our queue (enqueued → a worker claimed it), ``replicate_queue_s`` Replicate's queue
(prediction created → started), ``predict_time_s`` Replicate's billed compute time, and
``latency_s`` the total (enqueued → output stored).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.errors import InvalidInput
from core.data.models import FINAL_STATES, Generation, GenerationState
from core.insight.sqlstats import (Percentiles, as_day, as_hour, check_range, floor_int,
                           grouped_percentiles, time_bucket)

LATENCY_COMPONENTS = ("queue_s", "replicate_queue_s", "predict_time_s", "latency_s")
ERROR_TEXT_CHARS = 300  # errors are grouped by their first characters


def _finished(start: dt.datetime, end: dt.datetime) -> list[Any]:
    check_range(start, end)
    return [Generation.state.in_(list(FINAL_STATES)), Generation.reused_from_id.is_(None),
            Generation.completed_at >= start, Generation.completed_at < end]


def _timed(start: dt.datetime, end: dt.datetime) -> list[Any]:
    check_range(start, end)
    return [Generation.state == GenerationState.SUCCEEDED, Generation.reused_from_id.is_(None),
            Generation.completed_at >= start, Generation.completed_at < end]


def _column(component: str) -> Any:
    if component not in LATENCY_COMPONENTS:
        raise InvalidInput(f"Latency component {component!r} is not one of "
                           f"{', '.join(LATENCY_COMPONENTS)}.")
    return getattr(Generation, component)


# -- latency -------------------------------------------------------------------------------------
def latency_percentiles(session: Session, start: dt.datetime, end: dt.datetime,
                        component: str = "latency_s", ps: Sequence[float] = (0.5, 0.95),
                        ) -> Percentiles | None:
    """Percentiles of one component over the range; None when nothing was measured."""
    result = grouped_percentiles(session, _column(component), _timed(start, end), ps=ps)
    return result.get(None)


def latency_percentiles_per_day(session: Session, start: dt.datetime, end: dt.datetime,
                                components: Sequence[str] = LATENCY_COMPONENTS) -> pd.DataFrame:
    """p50 and p95 of each component per day. Columns: day, component, n, p50_s, p95_s."""
    day = time_bucket(session, Generation.completed_at, "day")
    rows: list[tuple[Any, ...]] = []
    for component in components:
        per_day = grouped_percentiles(session, _column(component), _timed(start, end), group=day)
        rows.extend((as_day(d), component, pc.n, pc[0.5], pc[0.95]) for d, pc in per_day.items())
    frame = pd.DataFrame(rows, columns=["day", "component", "n", "p50_s", "p95_s"])
    return frame.sort_values(["day", "component"], ignore_index=True)


def latency_histogram(session: Session, start: dt.datetime, end: dt.datetime,
                      component: str = "latency_s", bins: int = 20) -> pd.DataFrame:
    """Counts of one component in ``bins`` equal-width bins from its minimum to its maximum
    (the maximum falls in the last bin). Columns: component, bin_start_s, bin_end_s, count."""
    if not 1 <= bins <= 200:
        raise InvalidInput(f"A histogram has 1 to 200 bins, not {bins}.")
    value = _column(component)
    conditions = [value.is_not(None), *_timed(start, end)]
    low, high = session.execute(select(func.min(value), func.max(value)).where(*conditions)).one()
    columns = ["component", "bin_start_s", "bin_end_s", "count"]
    if low is None:
        return pd.DataFrame([], columns=columns)
    low, high = float(low), float(high)
    width = (high - low) / bins or 1.0
    bin_index = floor_int(session, (value - low) / width).label("b")
    binned = select(bin_index).where(*conditions).subquery()
    counts = [0] * bins
    for index, n in session.execute(select(binned.c.b, func.count()).group_by(binned.c.b)):
        counts[min(max(int(index), 0), bins - 1)] += int(n)
    rows = [(component, low + i * width, low + (i + 1) * width, counts[i]) for i in range(bins)]
    return pd.DataFrame(rows, columns=columns)


def latency_histograms(session: Session, start: dt.datetime, end: dt.datetime,
                       components: Sequence[str] = LATENCY_COMPONENTS,
                       bins: int = 20) -> pd.DataFrame:
    """``latency_histogram`` for several components, stacked (same columns)."""
    frames = [latency_histogram(session, start, end, c, bins) for c in components]
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame([], columns=["component", "bin_start_s", "bin_end_s", "count"])
    return pd.concat(frames, ignore_index=True)


# -- throughput and failures ---------------------------------------------------------------------
def throughput(session: Session, start: dt.datetime, end: dt.datetime,
               unit: str = "day") -> pd.DataFrame:
    """Predictions finished per ``day`` or ``hour`` by outcome (only periods with any).

    Columns: period (date for days, aware datetime for hours), succeeded, failed, canceled,
    total."""
    bucket = time_bucket(session, Generation.completed_at, unit)
    convert = as_day if unit == "day" else as_hour
    periods: dict[Any, dict[str, int]] = {}
    for period, state, n in session.execute(
            select(bucket, Generation.state, func.count()).where(*_finished(start, end))
            .group_by(bucket, Generation.state)):
        periods.setdefault(convert(period), {})[GenerationState(state).value] = int(n)
    rows = []
    for period in sorted(periods):
        counts = periods[period]
        ok, bad, stopped = (counts.get(s, 0) for s in ("succeeded", "failed", "canceled"))
        rows.append((period, ok, bad, stopped, ok + bad + stopped))
    return pd.DataFrame(rows, columns=["period", "succeeded", "failed", "canceled", "total"])


def failure_rate_per_day(session: Session, start: dt.datetime, end: dt.datetime) -> pd.DataFrame:
    """Columns: day, succeeded, failed, canceled, failure_rate (failed / (succeeded + failed),
    None on a day with neither)."""
    frame = throughput(session, start, end, "day").rename(columns={"period": "day"})
    decided = frame["succeeded"] + frame["failed"]
    frame["failure_rate"] = [f / d if d else None for f, d in zip(frame["failed"], decided)]
    return frame.drop(columns=["total"])


@dataclass(frozen=True)
class ErrorCount:
    error: str  # the first ERROR_TEXT_CHARS characters
    count: int
    last_seen: dt.datetime


def failure_count(session: Session, start: dt.datetime, end: dt.datetime) -> int:
    return int(session.scalar(select(func.count()).select_from(Generation).where(
        *_finished(start, end), Generation.state == GenerationState.FAILED)) or 0)


def top_errors(session: Session, start: dt.datetime, end: dt.datetime,
               limit: int = 10) -> list[ErrorCount]:
    """The most common error texts of failed cells in the range, most frequent first."""
    failed = select(func.coalesce(func.substr(Generation.error, 1, ERROR_TEXT_CHARS),
                                  "(no error text)").label("error"),
                    Generation.completed_at.label("at")).where(
        *_finished(start, end), Generation.state == GenerationState.FAILED).subquery()
    query = (select(failed.c.error, func.count().label("n"), func.max(failed.c.at))
             .group_by(failed.c.error).order_by(func.count().desc(), failed.c.error).limit(limit))
    return [ErrorCount(error, int(n), _aware(at))
            for error, n, at in session.execute(query)]


def _aware(value: Any) -> dt.datetime:
    """``max()`` over a subquery column loses the column type on SQLite: parse it back."""
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
    return dt.datetime.fromisoformat(str(value)).replace(tzinfo=dt.timezone.utc)

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
from sqlalchemy import func, select, union_all
from sqlalchemy.orm import Session

from core.errors import InvalidInput
from core.data.models import FINAL_STATES, FailedAttempt, Generation, GenerationState, Sweep
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
# Throughput and generations count what ran: succeeded and failed predictions, not canceled
# cells (they never ran, or were stopped) nor reused ones (nothing ran). Failures count every
# failed attempt: the cells failed now and the attempts kept in ``failed_attempt`` when a
# failed cell was retried (the cell itself may have succeeded since).
def _failed_attempts(start: dt.datetime, end: dt.datetime) -> list[Any]:
    check_range(start, end)
    return [FailedAttempt.failed_at >= start, FailedAttempt.failed_at < end]


def throughput(session: Session, start: dt.datetime, end: dt.datetime,
               unit: str = "day") -> pd.DataFrame:
    """Predictions that ran, per ``day`` or ``hour`` (only periods with any): succeeded,
    failed (every failed attempt, retried ones included), total = the two; canceled cells
    beside them, not in the total.

    Columns: period (date for days, aware datetime for hours), succeeded, failed, canceled,
    total."""
    bucket = time_bucket(session, Generation.completed_at, unit)
    convert = as_day if unit == "day" else as_hour
    periods: dict[Any, dict[str, int]] = {}
    for period, state, n in session.execute(
            select(bucket, Generation.state, func.count()).where(*_finished(start, end))
            .group_by(bucket, Generation.state)):
        periods.setdefault(convert(period), {})[GenerationState(state).value] = int(n)
    kept_bucket = time_bucket(session, FailedAttempt.failed_at, unit)
    for period, n in session.execute(select(kept_bucket, func.count())
                                     .where(*_failed_attempts(start, end)).group_by(kept_bucket)):
        counts = periods.setdefault(convert(period), {})
        counts["failed"] = counts.get("failed", 0) + int(n)
    rows = []
    for period in sorted(periods):
        counts = periods[period]
        ok, bad, stopped = (counts.get(s, 0) for s in ("succeeded", "failed", "canceled"))
        rows.append((period, ok, bad, stopped, ok + bad))
    return pd.DataFrame(rows, columns=["period", "succeeded", "failed", "canceled", "total"])


def failure_rate_per_day(session: Session, start: dt.datetime, end: dt.datetime) -> pd.DataFrame:
    """Columns: day, succeeded, failed, canceled, failure_rate (failed attempts / (succeeded +
    failed attempts), None on a day with neither)."""
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
    """Failed attempts in the range: cells failed now plus retried ones' kept failures."""
    now_failed = session.scalar(select(func.count()).select_from(Generation).where(
        *_finished(start, end), Generation.state == GenerationState.FAILED)) or 0
    kept = session.scalar(select(func.count()).select_from(FailedAttempt)
                          .where(*_failed_attempts(start, end))) or 0
    return int(now_failed) + int(kept)


def _all_failures(start: dt.datetime, end: dt.datetime) -> Any:
    """One row per failed attempt in the range: generation id, error text (shortened), when."""
    text = func.coalesce(func.substr(Generation.error, 1, ERROR_TEXT_CHARS), "(no error text)")
    kept_text = func.coalesce(func.nullif(func.substr(FailedAttempt.error, 1, ERROR_TEXT_CHARS),
                                          ""), "(no error text)")
    return union_all(
        select(Generation.id.label("generation_id"), text.label("error"),
               Generation.completed_at.label("at"))
        .where(*_finished(start, end), Generation.state == GenerationState.FAILED),
        select(FailedAttempt.generation_id.label("generation_id"), kept_text.label("error"),
               FailedAttempt.failed_at.label("at")).where(*_failed_attempts(start, end)),
    ).subquery()


def top_errors(session: Session, start: dt.datetime, end: dt.datetime,
               limit: int = 10) -> list[ErrorCount]:
    """The most common error texts of failed attempts in the range, most frequent first."""
    failed = _all_failures(start, end)
    query = (select(failed.c.error, func.count().label("n"), func.max(failed.c.at))
             .group_by(failed.c.error).order_by(func.count().desc(), failed.c.error).limit(limit))
    return [ErrorCount(error, int(n), _aware(at))
            for error, n, at in session.execute(query)]


BREAKDOWNS = {"strength": Generation.strength, "steps": Generation.steps,
              "prompt": Generation.prompt_label, "model": Sweep.model_ref}


def failures_by(session: Session, start: dt.datetime, end: dt.datetime,
                by: str) -> pd.DataFrame:
    """Failure rate and most common reason per value of ``strength``, ``steps``, ``prompt``
    or ``model``: a safety-filter rate that climbs with strength shows here.

    Columns: <by>, ran (succeeded + failed attempts), failed, failure_rate, top_error,
    top_error_count; sorted by the value."""
    if by not in BREAKDOWNS:
        raise InvalidInput(f"Failures can be broken down by {', '.join(BREAKDOWNS)}, not {by!r}.")
    key = BREAKDOWNS[by]
    failed = _all_failures(start, end)
    fail_rows = session.execute(
        select(key, failed.c.error, func.count())
        .select_from(failed).join(Generation, Generation.id == failed.c.generation_id)
        .join(Sweep, Sweep.id == Generation.sweep_id)
        .group_by(key, failed.c.error)).all()
    ok_rows = session.execute(
        select(key, func.count()).select_from(Generation)
        .join(Sweep, Sweep.id == Generation.sweep_id)
        .where(*_finished(start, end), Generation.state == GenerationState.SUCCEEDED)
        .group_by(key)).all()
    stats: dict[Any, dict[str, Any]] = {}
    for value, n in ok_rows:
        stats.setdefault(value, {"ok": 0, "errors": {}})["ok"] = int(n)
    for value, error, n in fail_rows:
        entry = stats.setdefault(value, {"ok": 0, "errors": {}})
        entry["errors"][error] = entry["errors"].get(error, 0) + int(n)
    rows = []
    for value in sorted(stats, key=lambda v: (v is None, v)):
        entry = stats[value]
        n_failed = sum(entry["errors"].values())
        top = min(entry["errors"].items(), key=lambda kv: (-kv[1], kv[0]), default=(None, 0))
        ran = entry["ok"] + n_failed
        rows.append((value, ran, n_failed, n_failed / ran if ran else None, top[0], top[1]))
    return pd.DataFrame(rows, columns=[by, "ran", "failed", "failure_rate", "top_error",
                                       "top_error_count"])


def _aware(value: Any) -> dt.datetime:
    """``max()`` over a subquery column loses the column type on SQLite: parse it back."""
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
    return dt.datetime.fromisoformat(str(value)).replace(tzinfo=dt.timezone.utc)

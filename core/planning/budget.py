"""Spending caps on real Replicate spend: per sweep, per UTC day and per UTC month.

Emulated generations cost nothing real and never count. A submission that would cross a
cap is refused with the numbers; a running sweep checks before every create and stops
dispatching before it would cross one."""

from __future__ import annotations

import dataclasses
import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.errors import BudgetExceeded
from core.data.models import FINAL_STATES, Endpoint, Generation, GenerationState
from core.planning.pricing import format_usd


@dataclasses.dataclass(frozen=True)
class Caps:
    sweep_usd: float | None
    daily_usd: float
    monthly_usd: float


def day_start(now: dt.datetime) -> dt.datetime:
    return now.astimezone(dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)


def month_start(now: dt.datetime) -> dt.datetime:
    return day_start(now).replace(day=1)


def real_spend_since(session: Session, since: dt.datetime) -> float:
    """Dollars spent on real Replicate since ``since`` (by the time a cell completed)."""
    # Only finished cells have completed_at; saying so lets the query range-scan the
    # (state, completed_at, …) index instead of reading all of it.
    query = select(func.coalesce(func.sum(Generation.cost_usd), 0.0)).where(
        Generation.state.in_(list(FINAL_STATES)), Generation.completed_at >= since,
        Generation.endpoint == Endpoint.REPLICATE)
    return float(session.scalar(query) or 0.0)


def committed_real_spend_since(session: Session, since: dt.datetime,
                               per_cell_estimate: float) -> float:
    """Spent, plus an estimate for real predictions still in flight (not yet billed to us)."""
    in_flight = session.scalar(select(func.count()).select_from(Generation).where(
        Generation.endpoint == Endpoint.REPLICATE,
        Generation.state.in_([GenerationState.SUBMITTING, GenerationState.SUBMITTED])))
    return real_spend_since(session, since) + int(in_flight or 0) * per_cell_estimate


def sweep_spend(session: Session, sweep_id: int) -> float:
    query = select(func.coalesce(func.sum(Generation.cost_usd), 0.0)).where(
        Generation.sweep_id == sweep_id)
    return float(session.scalar(query) or 0.0)


def sweep_committed(session: Session, sweep_id: int, per_cell_estimate: float) -> float:
    """What a sweep has spent plus its unfinished submitted cells at the estimate."""
    in_flight = session.scalar(select(func.count()).select_from(Generation).where(
        Generation.sweep_id == sweep_id,
        Generation.state.in_([GenerationState.SUBMITTING, GenerationState.SUBMITTED])))
    return sweep_spend(session, sweep_id) + int(in_flight or 0) * per_cell_estimate


def check_submission(session: Session, caps: Caps, estimated_usd: float, *,
                     is_real: bool, now: dt.datetime) -> None:
    """Refuse a sweep whose estimate would cross a cap, with the numbers."""
    if caps.sweep_usd is not None and estimated_usd > caps.sweep_usd:
        raise BudgetExceeded(
            f"This sweep is estimated at {format_usd(estimated_usd)}, over its budget of "
            f"{format_usd(caps.sweep_usd)}: remove values from an axis or raise the budget.")
    if not is_real:
        return
    _check_period(session, "daily", day_start(now), caps.daily_usd, estimated_usd)
    _check_period(session, "monthly", month_start(now), caps.monthly_usd, estimated_usd)


def _check_period(session: Session, label: str, since: dt.datetime, cap: float,
                  adding_usd: float) -> None:
    spent = real_spend_since(session, since)
    if spent + adding_usd > cap:
        raise BudgetExceeded(
            f"The {label} budget is {format_usd(cap)}; {format_usd(spent)} is spent and this "
            f"would add {format_usd(adding_usd)}. Wait for the next period or raise the "
            f"{label} budget in Settings.")


def check_before_create(session: Session, caps: Caps, sweep_id: int, per_cell_usd: float, *,
                        is_real: bool, now: dt.datetime) -> None:
    """Called before each create: the sweep stops before it would cross a cap."""
    if caps.sweep_usd is not None:
        committed = sweep_committed(session, sweep_id, per_cell_usd)
        if committed + per_cell_usd > caps.sweep_usd:
            raise BudgetExceeded(
                f"Sweep budget {format_usd(caps.sweep_usd)} reached ({format_usd(committed)} "
                f"spent or in flight); remaining cells were not started.")
    if not is_real:
        return
    for label, since, cap in (("daily", day_start(now), caps.daily_usd),
                              ("monthly", month_start(now), caps.monthly_usd)):
        committed = committed_real_spend_since(session, since, per_cell_usd)
        if committed + per_cell_usd > cap:
            raise BudgetExceeded(
                f"The {label} budget {format_usd(cap)} is reached ({format_usd(committed)} "
                f"spent or in flight); remaining cells were not started.")


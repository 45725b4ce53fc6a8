"""Spending caps on real Replicate spend: per sweep, per UTC day and per UTC month.

Emulated generations cost nothing real and never count toward the day and month. A submission
that would cross a cap is refused with the numbers. A running sweep cannot cross one: before
each create the worker reserves a bound on what that prediction can cost (``reserve``), the
check and the reservation one atomic step (SQLite: the writer lock BEGIN IMMEDIATE takes;
PostgreSQL: a transaction-scoped advisory lock every reservation takes first), and the cell's
true cost replaces its reservation when it ends (``core.engine.lifecycle.finish``).
Committed spend is what finished cells cost plus what unfinished cells hold reserved."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math

from sqlalchemy import case, func, select, text
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


UNFINISHED = (GenerationState.PENDING, GenerationState.SUBMITTING, GenerationState.SUBMITTED)
# Any constant: the key of the PostgreSQL advisory lock that serialises reservations.
_RESERVATION_LOCK_KEY = 0x7475_6E65  # "tune"


def reserved_real(session: Session) -> float:
    """Held by unfinished real cells: bounds on what predictions in flight can still cost."""
    return float(session.scalar(select(func.coalesce(func.sum(Generation.reserved_usd), 0.0))
                                .where(Generation.endpoint == Endpoint.REPLICATE,
                                       Generation.state.in_(UNFINISHED))) or 0.0)


def committed_real_spend_since(session: Session, since: dt.datetime) -> float:
    """Spent since ``since`` plus what real predictions in flight hold reserved."""
    return real_spend_since(session, since) + reserved_real(session)


def sweep_spend(session: Session, sweep_id: int) -> float:
    query = select(func.coalesce(func.sum(Generation.cost_usd), 0.0)).where(
        Generation.sweep_id == sweep_id)
    return float(session.scalar(query) or 0.0)


def sweep_spent_and_held(session: Session, sweep_id: int) -> tuple[float, float]:
    """What a sweep has spent, and what its unfinished cells hold reserved: one pass over
    its cells (every create of a sweep reads this)."""
    held = case((Generation.state.in_(UNFINISHED), Generation.reserved_usd), else_=0.0)
    spent, reserved = session.execute(
        select(func.coalesce(func.sum(Generation.cost_usd), 0.0),
               func.coalesce(func.sum(held), 0.0))
        .where(Generation.sweep_id == sweep_id)).one()
    return float(spent or 0.0), float(reserved or 0.0)


def check_budget_value(value: float | None, what: str = "budget") -> float | None:
    """A cap as given by a person: a finite number of dollars, 0 or more."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value < 0:
        from core.errors import InvalidInput

        raise InvalidInput(f"The {what} must be a finite number of dollars, 0 or more; "
                           f"{value!r} is not. Give e.g. 2 or 0.50.")
    return float(value)


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


@dataclasses.dataclass(frozen=True)
class Reservation:
    """What ``reserve`` decided: ``usd`` reserved (0 when the cell must wait for cells in
    flight to settle before enough budget is free)."""

    usd: float

    @property
    def granted(self) -> bool:
        return self.usd > 0


def lock_reservations(session: Session) -> None:
    """Serialise reservations across workers for the rest of this transaction. SQLite's
    BEGIN IMMEDIATE already holds the one writer lock; PostgreSQL (READ COMMITTED) would
    otherwise let two workers read the same spend and both reserve the last dollar."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                        {"key": _RESERVATION_LOCK_KEY})


def reserve(session: Session, caps: Caps, sweep_id: int, *, wanted_usd: float,
            least_usd: float, is_real: bool, now: dt.datetime) -> Reservation:
    """Decide how much of a cap the next create may hold: ``wanted_usd`` when it fits every
    cap, else as much as fits if that is at least ``least_usd`` (the caller shortens the
    prediction's deadline to match). When even ``least_usd`` does not fit but other cells of
    the binding scope hold reservations, wait (they settle at their true, usually lower,
    cost); when nothing is in flight, the cap is reached: BudgetExceeded with the numbers.

    The caller stores the amount on the cell in the same transaction (``begin_submit``), and
    must have called ``lock_reservations`` first."""
    lock_reservations(session)
    limits: list[tuple[str, float, float, float]] = []  # label, cap, committed, held by others
    if caps.sweep_usd is not None:
        spent, held_here = sweep_spent_and_held(session, sweep_id)
        limits.append(("Sweep", caps.sweep_usd, spent + held_here, held_here))
    if is_real:
        held = reserved_real(session)
        for label, since, cap in (("daily", day_start(now), caps.daily_usd),
                                  ("monthly", month_start(now), caps.monthly_usd)):
            limits.append((label, cap, real_spend_since(session, since) + held, held))
    room = min((cap - committed for _, cap, committed, _ in limits), default=math.inf)
    if room >= wanted_usd:
        return Reservation(wanted_usd)
    if room >= least_usd and room > 0:
        return Reservation(room)
    label, cap, committed, held = min(limits, key=lambda limit: limit[1] - limit[2])
    if held > 0:
        return Reservation(0.0)
    what = "Sweep budget" if label == "Sweep" else f"The {label} budget"
    raise BudgetExceeded(
        f"{what} {format_usd(cap)} reached ({format_usd(committed)} spent or in flight; the "
        f"next prediction could cost up to {format_usd(least_usd)}); remaining cells were not "
        "started.")


# A per-second prediction's deadline (Cancel-After) is its reservation divided by the rate.
DEADLINE_FACTOR = 3.0  # wanted: three times the expected predict time …
MIN_DEADLINE_S = 30.0  # … and at least this long
MAX_DEADLINE_S = 600.0
LEAST_FACTOR = 1.25  # shorter than this is likely canceled before it finishes: not worth paying
CANCEL_MARGIN_S = 2.0  # the cancel is sent this long before the reservation runs out


@dataclasses.dataclass(frozen=True)
class CostBound:
    """The most one create may cost, as a reservation asks for it: ``wanted_usd`` ideally,
    ``least_usd`` at the least. ``usd_per_second`` is set for per-second prices, whose bound
    comes from a deadline (the reservation over the rate); a per-output price is exact."""

    wanted_usd: float
    least_usd: float
    usd_per_second: float | None = None

    @classmethod
    def exact(cls, usd: float) -> CostBound:
        return cls(usd, usd)

    @classmethod
    def per_second(cls, usd_per_second: float, expected_s: float) -> CostBound:
        wanted_s = min(MAX_DEADLINE_S, max(MIN_DEADLINE_S, DEADLINE_FACTOR * expected_s))
        least_s = min(wanted_s, LEAST_FACTOR * expected_s + CANCEL_MARGIN_S)
        return cls(wanted_s * usd_per_second, least_s * usd_per_second, usd_per_second)

    def deadline_s(self, reserved_usd: float) -> float | None:
        """How long a prediction holding ``reserved_usd`` may run before it is canceled
        (None: a per-output price, no deadline needed)."""
        if not self.usd_per_second:
            return None
        return max(1.0, reserved_usd / self.usd_per_second - CANCEL_MARGIN_S)

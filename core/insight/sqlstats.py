"""SQL building blocks for charts that must work on SQLite and PostgreSQL alike.

Time buckets and percentiles are written differently on each backend; these helpers pick by
dialect so analytics code states what it wants once. Aggregation stays in the database: only
one row per bucket (or a few rows per group, for percentiles) comes back to Python.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (ColumnElement, Float, Integer, cast, func, literal, literal_column, or_,
                        select)
from sqlalchemy.orm import Session

from core.errors import InvalidInput


def dialect_name(session: Session) -> str:
    return session.get_bind().dialect.name


def check_range(start: dt.datetime, end: dt.datetime) -> None:
    """Chart ranges are half-open ``[start, end)`` in aware UTC."""
    if start.tzinfo is None or end.tzinfo is None:
        raise InvalidInput("Date range bounds must be timezone-aware (UTC).")
    if end <= start:
        raise InvalidInput(f"The date range ends ({end:%Y-%m-%d %H:%M}) before it starts "
                           f"({start:%Y-%m-%d %H:%M}): pick an end after the start.")


def day_range(first_day: dt.date, last_day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The half-open UTC range covering whole days ``first_day`` … ``last_day`` inclusive."""
    start = dt.datetime.combine(first_day, dt.time(), tzinfo=dt.timezone.utc)
    end = dt.datetime.combine(last_day, dt.time(), tzinfo=dt.timezone.utc) + dt.timedelta(days=1)
    check_range(start, end)
    return start, end


def time_bucket(session: Session, column: Any, unit: str = "day") -> ColumnElement[Any]:
    """The UTC day or hour a timestamp falls in, as a SQL expression to GROUP BY.

    SQLite stores UTC text, so ``date()`` / ``strftime()`` bucket it directly; PostgreSQL's
    ``date_trunc`` works in the session time zone, so the value is moved to UTC first. The
    constants are literal SQL, not bound parameters, so the expression in SELECT and GROUP BY
    is textually identical (PostgreSQL requires that)."""
    if unit not in ("day", "hour"):
        raise InvalidInput(f"Time bucket {unit!r} is not day or hour.")
    if dialect_name(session) == "postgresql":
        utc = func.timezone(literal_column("'UTC'"), column)
        return func.date_trunc(literal_column(f"'{unit}'"), utc)
    if unit == "day":
        return func.date(column)
    return func.strftime(literal_column("'%Y-%m-%d %H:00:00'"), column)


def as_day(value: Any) -> dt.date:
    """A day bucket as returned by either backend (text on SQLite), as a date."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def as_hour(value: Any) -> dt.datetime:
    """An hour bucket from either backend, as an aware UTC datetime."""
    if not isinstance(value, dt.datetime):
        value = dt.datetime.fromisoformat(str(value))
    return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value


@dataclass(frozen=True)
class Percentiles:
    n: int
    values: dict[float, float]  # p (0–1) → value, interpolated like percentile_cont

    def __getitem__(self, p: float) -> float:
        return self.values[p]


def grouped_percentiles(session: Session, value: Any, where: Sequence[Any],
                        group: Any = None, ps: Sequence[float] = (0.5, 0.95),
                        ) -> dict[Hashable, Percentiles]:
    """Continuous percentiles of ``value`` per ``group`` (or overall, under key None).

    PostgreSQL computes ``percentile_cont`` itself. SQLite has no percentile aggregate, so a
    window query numbers the rows of each group in order and returns only the one or two
    rows around each wanted rank; the interpolation is then the same as PostgreSQL's. NULL
    values are ignored on both."""
    for p in ps:
        if not 0 <= p <= 1:
            raise InvalidInput(f"Percentile {p} is not between 0 and 1.")
    conditions = [value.is_not(None), *where]
    if dialect_name(session) == "postgresql":
        return _percentiles_postgresql(session, value, conditions, group, ps)
    return _percentiles_sqlite(session, value, conditions, group, ps)


def _percentiles_postgresql(session: Session, value: Any, conditions: list[Any], group: Any,
                            ps: Sequence[float]) -> dict[Hashable, Percentiles]:
    key = group.label("g") if group is not None else literal(None).label("g")
    query = select(key, func.count(value),
                   *[func.percentile_cont(p).within_group(value) for p in ps]).where(*conditions)
    if group is not None:
        query = query.group_by(group)
    result: dict[Hashable, Percentiles] = {}
    for row in session.execute(query):
        if row[1]:
            result[row[0]] = Percentiles(int(row[1]), {p: float(v) for p, v in zip(ps, row[2:])})
    return result


def _percentiles_sqlite(session: Session, value: Any, conditions: list[Any], group: Any,
                        ps: Sequence[float]) -> dict[Hashable, Percentiles]:
    partition = [group] if group is not None else None
    ranked = select(
        (group if group is not None else literal(None)).label("g"), value.label("v"),
        func.row_number().over(partition_by=partition, order_by=value).label("rn"),
        func.count().over(partition_by=partition).label("n"),
    ).where(*conditions).subquery()
    wanted = []
    for p in ps:  # 1-based rank of the lower neighbour: floor((n - 1) * p) + 1
        low = cast(cast(ranked.c.n - 1, Float) * p, Integer) + 1
        wanted.append(ranked.c.rn.between(low, low + 1))
    rows = session.execute(select(ranked.c.g, ranked.c.v, ranked.c.rn, ranked.c.n)
                           .where(or_(*wanted)))
    by_group: dict[Hashable, tuple[int, dict[int, float]]] = {}
    for g, v, rn, n in rows:
        by_group.setdefault(g, (int(n), {}))[1][int(rn)] = float(v)
    result: dict[Hashable, Percentiles] = {}
    for g, (n, ranks) in by_group.items():
        result[g] = Percentiles(n, {p: _interpolate(ranks, n, p) for p in ps})
    return result


def _interpolate(ranks: dict[int, float], n: int, p: float) -> float:
    position = float(n - 1) * p
    low = math.floor(position)
    below = ranks[low + 1]
    above = ranks.get(low + 2, below)
    return below + (position - low) * (above - below)


def floor_int(session: Session, expr: Any) -> ColumnElement[int]:
    """``floor(expr)`` as an integer; SQLite's CAST truncates, which is floor for x ≥ 0."""
    if dialect_name(session) == "postgresql":
        return cast(func.floor(expr), Integer)
    return cast(expr, Integer)

"""Spend, cost and usage numbers for the Overview and Monitoring pages.

Conventions shared by every function here:

- a date range is half-open ``[start, end)`` in aware UTC (``sqlstats.day_range`` builds one
  from the dates a person picks);
- a generation belongs to the moment it *completed* (when its cost became known), as the
  budget checks count it; only finished cells (succeeded, failed, canceled) have one;
- real spend is endpoint ``replicate`` only; emulated cost is reported beside it, never in it;
- a "prediction" is a finished cell that was not served from an earlier identical output
  (reused cells cost nothing and would flatter the averages);
- a "generation" is a prediction that ran: succeeded or failed, never canceled (it did not
  run, or was stopped) nor reused (shown apart, as money saved); failures count every failed
  attempt, those of cells retried since included (``failed_attempt``).

Everything is aggregated in SQL; what comes back is one row per day, scenario, model or person.
Latency, throughput and failures are in ``core.insight.performance``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from core.insight import performance
from core.planning.budget import day_start, month_start
from core.errors import InvalidInput
from core.data.models import FINAL_STATES, Endpoint, Generation, GenerationState, Scenario, Sweep, utcnow
from core.insight.sqlstats import as_day, check_range, time_bucket

NO_SCENARIO = "(no scenario)"
PROJECTION_USERS = (50, 100, 500, 1000, 5000)
# The production team's cost table: users per month → jobs per month (2–2.5 jobs a user).
PRODUCTION_JOBS_PER_MONTH = {50: 100, 100: 250, 500: 1_000, 1000: 2_500, 5000: 10_000}
IMAGES_PER_JOB = 2  # a production job renders a rear and a side view


def finished_between(start: dt.datetime, end: dt.datetime) -> list[Any]:
    """Cells that finished in ``[start, end)``; the state filter lets the
    (state, completed_at) index serve the range."""
    check_range(start, end)
    return [Generation.state.in_(list(FINAL_STATES)),
            Generation.completed_at >= start, Generation.completed_at < end]


def _is_prediction() -> Any:
    return Generation.reused_from_id.is_(None)


def _real_cost() -> Any:
    return func.coalesce(func.sum(case((Generation.endpoint == Endpoint.REPLICATE,
                                        Generation.cost_usd), else_=0.0)), 0.0)


def _emulated_cost() -> Any:
    return func.coalesce(func.sum(case((Generation.endpoint == Endpoint.EMULATOR,
                                        Generation.cost_usd), else_=0.0)), 0.0)


# -- overview ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Spend:
    real_usd: float
    emulated_usd: float


@dataclass(frozen=True)
class Overview:
    spend_today: Spend
    spend_month: Spend
    generations: int  # predictions that ran in the range: succeeded + failed attempts
    succeeded: int
    failed: int  # failed attempts, retried ones included
    canceled: int  # beside, never in generations
    reused: int  # served from an earlier output: nothing ran
    saved_usd: float  # what the reused outputs cost when they were made
    success_rate: float | None  # succeeded / (succeeded + failed); canceled cells are neither
    latency_p50_s: float | None  # total latency of succeeded predictions
    latency_p95_s: float | None
    failures_24h: int
    top_errors_24h: list[performance.ErrorCount]


def spend(session: Session, start: dt.datetime, end: dt.datetime) -> Spend:
    """Real and emulated dollars of cells that finished in the range."""
    row = session.execute(select(_real_cost(), _emulated_cost())
                          .where(*finished_between(start, end))).one()
    return Spend(real_usd=float(row[0]), emulated_usd=float(row[1]))


def overview(session: Session, start: dt.datetime, end: dt.datetime, *,
             now: dt.datetime | None = None) -> Overview:
    """The Overview page's headline numbers: spend today and this month (by ``now``),
    outcomes and latency over the range, and what failed in the last 24 hours."""
    now = now or utcnow()
    counts = dict(session.execute(
        select(Generation.state, func.count())
        .where(*finished_between(start, end), _is_prediction())
        .group_by(Generation.state)).all())
    succeeded = counts.get(GenerationState.SUCCEEDED, 0)
    failed = performance.failure_count(session, start, end)
    reused, saved = reused_outputs(session, start, end)
    latency = performance.latency_percentiles(session, start, end, "latency_s")
    day_ago = now - dt.timedelta(days=1)
    return Overview(
        spend_today=spend(session, day_start(now), now + dt.timedelta(microseconds=1)),
        spend_month=spend(session, month_start(now), now + dt.timedelta(microseconds=1)),
        generations=succeeded + failed, succeeded=succeeded, failed=failed,
        canceled=counts.get(GenerationState.CANCELED, 0), reused=reused, saved_usd=saved,
        success_rate=succeeded / (succeeded + failed) if succeeded + failed else None,
        latency_p50_s=latency[0.5] if latency else None,
        latency_p95_s=latency[0.95] if latency else None,
        failures_24h=performance.failure_count(session, day_ago, now),
        top_errors_24h=performance.top_errors(session, day_ago, now, limit=5),
    )


def reused_outputs(session: Session, start: dt.datetime, end: dt.datetime) -> tuple[int, float]:
    """(cells served from an earlier identical output in the range, what those outputs cost
    when they were made: the money reuse saved)."""
    from sqlalchemy.orm import aliased

    source = aliased(Generation)
    n, saved = session.execute(
        select(func.count(), func.coalesce(func.sum(source.cost_usd), 0.0))
        .select_from(Generation).join(source, source.id == Generation.reused_from_id)
        .where(*finished_between(start, end), Generation.reused_from_id.is_not(None))).one()
    return int(n or 0), float(saved or 0.0)


# -- cost ----------------------------------------------------------------------------------------
def cost_per_day(session: Session, start: dt.datetime, end: dt.datetime,
                 by: str = "scenario") -> pd.DataFrame:
    """Cost per day stacked by ``scenario`` (name, or "(no scenario)") or ``model`` (ref).

    Columns: day (date), scenario|model, endpoint, predictions, cost_usd."""
    day = time_bucket(session, Generation.completed_at, "day")
    key: ColumnElement[str] | InstrumentedAttribute[str]
    if by == "scenario":
        key = func.coalesce(Scenario.name, NO_SCENARIO)
    elif by == "model":
        key = Sweep.model_ref
    else:
        raise InvalidInput(f"Cost can be split by scenario or model, not {by!r}.")
    query = (select(day, key, Generation.endpoint, func.count(), func.sum(Generation.cost_usd))
             .join(Sweep, Sweep.id == Generation.sweep_id)
             .outerjoin(Scenario, Scenario.id == Sweep.scenario_id)
             .where(*finished_between(start, end), _is_prediction())
             .group_by(day, key, Generation.endpoint).order_by(day, key))
    rows = [(as_day(d), k, Endpoint(e).value, int(n), float(c or 0.0))
            for d, k, e, n, c in session.execute(query)]
    return pd.DataFrame(rows, columns=["day", by, "endpoint", "predictions", "cost_usd"])


def cost_per_generation(session: Session, start: dt.datetime, end: dt.datetime) -> pd.DataFrame:
    """Mean cost of a generation that ran (succeeded or failed; its earlier failed attempts'
    cost is in its own) per day and endpoint; canceled and reused cells are not generations.
    Columns: day, endpoint, predictions, cost_usd, cost_per_prediction_usd."""
    day = time_bucket(session, Generation.completed_at, "day")
    query = (select(day, Generation.endpoint, func.count(), func.sum(Generation.cost_usd))
             .where(*finished_between(start, end), _is_prediction(),
                    Generation.state.in_([GenerationState.SUCCEEDED, GenerationState.FAILED]))
             .group_by(day, Generation.endpoint).order_by(day, Generation.endpoint))
    rows = [(as_day(d), Endpoint(e).value, int(n), float(c or 0.0), float(c or 0.0) / n)
            for d, e, n, c in session.execute(query)]
    return pd.DataFrame(rows, columns=["day", "endpoint", "predictions", "cost_usd",
                                       "cost_per_prediction_usd"])


def cumulative_real_spend(session: Session, start: dt.datetime, end: dt.datetime,
                          monthly_budget_usd: float) -> pd.DataFrame:
    """Real spend per day and its running total within each calendar month, against the
    monthly budget; every day of the range has a row. A range starting mid-month carries
    what that month had spent before the range began.

    Columns: day, spend_usd, cumulative_usd, budget_usd, budget_used (fraction)."""
    day = time_bucket(session, Generation.completed_at, "day")
    daily = {as_day(d): float(c or 0.0) for d, c in session.execute(
        select(day, func.sum(Generation.cost_usd))
        .where(*finished_between(start, end), Generation.endpoint == Endpoint.REPLICATE)
        .group_by(day))}
    first_month = month_start(start)
    running = spend(session, first_month, start).real_usd if first_month < start else 0.0
    rows = []
    current = start.date()
    last = (end - dt.timedelta(microseconds=1)).date()
    while current <= last:
        if current.day == 1 and current != start.date():
            running = 0.0
        running += daily.get(current, 0.0)
        used = running / monthly_budget_usd if monthly_budget_usd > 0 else None
        rows.append((current, daily.get(current, 0.0), running, monthly_budget_usd, used))
        current += dt.timedelta(days=1)
    return pd.DataFrame(rows, columns=["day", "spend_usd", "cumulative_usd", "budget_usd",
                                       "budget_used"])


# -- people --------------------------------------------------------------------------------------
def usage_per_person(session: Session, start: dt.datetime, end: dt.datetime) -> pd.DataFrame:
    """Sweeps started in the range and cells finished in it, per person who started them.

    Columns: person, sweeps, generations, real_cost_usd, emulated_cost_usd; most spend first."""
    check_range(start, end)
    sweeps = dict(session.execute(
        select(Sweep.created_by, func.count())
        .where(Sweep.created_at >= start, Sweep.created_at < end)
        .group_by(Sweep.created_by)).all())
    cells = {person: (int(n), float(real), float(emulated)) for person, n, real, emulated in
             session.execute(select(Sweep.created_by, func.count(), _real_cost(), _emulated_cost())
                             .join(Sweep, Sweep.id == Generation.sweep_id)
                             .where(*finished_between(start, end))
                             .group_by(Sweep.created_by))}
    rows = [(person, int(sweeps.get(person, 0)), *cells.get(person, (0, 0.0, 0.0)))
            for person in set(sweeps) | set(cells)]
    frame = pd.DataFrame(rows, columns=["person", "sweeps", "generations", "real_cost_usd",
                                       "emulated_cost_usd"])
    return frame.sort_values(["real_cost_usd", "emulated_cost_usd", "person"],
                             ascending=[False, False, True], ignore_index=True)


# -- projection ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class CostBasis:
    """What one delivered image cost: every prediction's cost over the successful ones."""

    cost_per_image_usd: float | None  # None when nothing succeeded in the range
    images: int  # succeeded predictions
    predictions: int
    cost_usd: float
    endpoint: str | None  # the endpoint measured, None for both


def measured_cost_per_image(session: Session, start: dt.datetime, end: dt.datetime,
                            endpoint: str | None = None) -> CostBasis:
    """Average cost per successful image over the range; failures' cost is spread over the
    successes, as it would be in production."""
    conditions = [*finished_between(start, end), _is_prediction()]
    if endpoint is not None:
        conditions.append(Generation.endpoint == Endpoint(endpoint))
    succeeded = func.sum(case((Generation.state == GenerationState.SUCCEEDED, 1), else_=0))
    n, images, cost = session.execute(
        select(func.count(), succeeded, func.coalesce(func.sum(Generation.cost_usd), 0.0))
        .where(*conditions)).one()
    images = int(images or 0)
    return CostBasis(cost_per_image_usd=float(cost) / images if images else None, images=images,
                     predictions=int(n), cost_usd=float(cost), endpoint=endpoint)


def projection_table(cost_per_image_usd: float, users: Sequence[int] = PROJECTION_USERS, *,
                     jobs_per_user: float | None = None,
                     images_per_job: int = IMAGES_PER_JOB) -> pd.DataFrame:
    """The production team's monthly cost table for a cost per image.

    Jobs per month come from their table (``PRODUCTION_JOBS_PER_MONTH``) unless
    ``jobs_per_user`` is given. Columns: users_per_month, jobs_per_month, images_per_month,
    cost_per_month_usd."""
    if cost_per_image_usd < 0 or images_per_job < 1:
        raise InvalidInput("The cost per image must be 0 or more and a job at least one image.")
    rows = []
    for n_users in users:
        if jobs_per_user is not None:
            jobs = round(n_users * jobs_per_user)
        elif n_users in PRODUCTION_JOBS_PER_MONTH:
            jobs = PRODUCTION_JOBS_PER_MONTH[n_users]
        else:
            raise InvalidInput(f"No production job count for {n_users} users: give jobs_per_user.")
        images = jobs * images_per_job
        rows.append((n_users, jobs, images, images * cost_per_image_usd))
    return pd.DataFrame(rows, columns=["users_per_month", "jobs_per_month", "images_per_month",
                                       "cost_per_month_usd"])


@dataclass(frozen=True)
class Projection:
    basis: CostBasis
    table: pd.DataFrame  # empty when there is no measured cost yet


def monthly_projection(session: Session, start: dt.datetime, end: dt.datetime, *,
                       users: Sequence[int] = PROJECTION_USERS, jobs_per_user: float | None = None,
                       images_per_job: int = IMAGES_PER_JOB) -> Projection:
    """The cost table from the measured cost per image: real predictions when there are any
    in the range, emulated ones otherwise (``basis.endpoint`` says which)."""
    basis = _average_basis(session, start, end)
    if basis.cost_per_image_usd is None:
        return Projection(basis, projection_table(0.0, users, jobs_per_user=jobs_per_user,
                                                  images_per_job=images_per_job).iloc[0:0])
    return Projection(basis, projection_table(basis.cost_per_image_usd, users,
                                              jobs_per_user=jobs_per_user,
                                              images_per_job=images_per_job))


# -- projection at each scenario's chosen setting ------------------------------------------------
@dataclass(frozen=True)
class ScenarioProjection:
    """One scenario's monthly cost at the setting it ships: its production version's, else
    (not in production yet) its current version's."""

    scenario: str
    version: int
    in_production: bool  # the version is the approved one production reads
    setting: dict[str, Any]  # model and the axes the version sets (strength, steps, guidance)
    cost_per_image_usd: float | None  # None: neither the setting nor the average is measured
    images: int  # succeeded predictions behind the cost
    endpoint: str | None  # whose predictions: "replicate" (real) or "emulator"
    measured: bool  # False: no prediction of this setting succeeded, the average stands in

    def counts(self) -> str:
        """What the cost per image counts, in one line."""
        which = f"{'production' if self.in_production else 'current (not in production)'} " \
                f"v{self.version}"
        source = {"replicate": "real", "emulator": "emulated"}.get(self.endpoint or "", "")
        if self.measured:
            return (f"{which}: {self.images} {source} image(s) of this setting, every sweep "
                    "of the scenario")
        if self.cost_per_image_usd is None:
            return f"{which}: nothing measured yet, neither this setting nor any prediction"
        return (f"{which}: this setting never ran — average of every prediction in the range "
                f"({self.images} {source} image(s)) instead")


def setting_cells(session: Session, scenario_id: int, setting: dict[str, Any]) -> pd.DataFrame:
    """The finished cells of a scenario's sweeps that ran ``setting`` (model, strength, steps,
    guidance; prompt and seed left out: they do not change what a prediction costs), as the
    columns of ``core.insight.evidence`` that costs are computed from."""
    conditions = [Sweep.scenario_id == scenario_id, Generation.state.in_(list(FINAL_STATES))]
    if setting.get("model"):
        conditions.append(Sweep.model_ref == setting["model"])
    columns = {"strength": Generation.strength, "steps": Generation.steps,
               "guidance": Generation.guidance}
    for axis, column in columns.items():
        if axis in setting:
            value = float(setting[axis])
            conditions.append(column.between(value - 1e-9, value + 1e-9))
    rows = session.execute(
        select(Generation.state, Generation.cost_usd, Generation.reused_from_id.is_not(None),
               Generation.endpoint)
        .join(Sweep, Sweep.id == Generation.sweep_id).where(*conditions)).all()
    return pd.DataFrame([(GenerationState(s).value, c, bool(r), Endpoint(e).value)
                         for s, c, r, e in rows],
                        columns=["state", "cost_usd", "reused", "endpoint"])


def chosen_setting(session: Session, scenario: Scenario) -> tuple[int, bool, dict[str, Any]]:
    """The version a scenario ships (production, else its current one), whether it is the
    production one, and its setting: model (without a pinned version) and the axes it sets."""
    from core.planning.presets import axis_values
    from core.scenarios.gate import production_version, version_snapshot

    production = production_version(session, scenario)
    if production is not None:
        snapshot = version_snapshot(session, scenario, production)
        params, model, version = snapshot.get("params") or {}, snapshot.get("model_ref"), production
    else:
        params, model, version = scenario.params or {}, scenario.model_ref, scenario.version
    setting: dict[str, Any] = {"model": model.split(":", 1)[0]} if model else {}
    setting.update({axis: value for axis, value in axis_values(params).items()
                    if axis != "seed" and isinstance(value, (int, float))})
    return version, production is not None, setting


def scenario_projections(session: Session, start: dt.datetime,
                         end: dt.datetime) -> list[ScenarioProjection]:
    """Every scenario's cost per image at its chosen setting (``chosen_setting``), measured
    with ``core.insight.evidence.cost_per_image`` as Decide measures a setting: real
    predictions where the setting has any, emulated ones otherwise. A scenario whose setting
    never ran falls back to the average over every prediction in ``[start, end)`` and says so
    (``measured`` False)."""
    from core.insight.evidence import cost_per_image

    average: CostBasis | None = None
    out = []
    for scenario in session.scalars(select(Scenario).order_by(Scenario.name)):
        version, in_production, setting = chosen_setting(session, scenario)
        cells = setting_cells(session, scenario.id, setting)
        cost, images, endpoint = None, 0, None
        for kind in (Endpoint.REPLICATE.value, Endpoint.EMULATOR.value):
            mine = cells[cells["endpoint"] == kind]
            cost = cost_per_image(mine)
            if cost is not None:
                images = int(((mine["state"] == "succeeded") & ~mine["reused"]).sum())
                endpoint = kind
                break
        measured = cost is not None
        if not measured:
            if average is None:
                average = _average_basis(session, start, end)
            cost, images, endpoint = (average.cost_per_image_usd, average.images,
                                      average.endpoint)
        out.append(ScenarioProjection(scenario.name, version, in_production, setting, cost,
                                      images, endpoint, measured))
    return out


def _average_basis(session: Session, start: dt.datetime, end: dt.datetime) -> CostBasis:
    """The average cost per image over the range: real predictions, else emulated ones."""
    basis = measured_cost_per_image(session, start, end, Endpoint.REPLICATE.value)
    if basis.cost_per_image_usd is None:
        basis = measured_cost_per_image(session, start, end, Endpoint.EMULATOR.value)
    return basis


def projection_by_scenario(projections: Sequence[ScenarioProjection],
                           users: Sequence[int] = PROJECTION_USERS, *,
                           jobs_per_user: float | None = None,
                           images_per_job: int = IMAGES_PER_JOB) -> pd.DataFrame:
    """One row per scenario: its cost per image, what that counts, and the monthly cost at
    each number of users (``projection_table``'s jobs and images per month). Columns:
    scenario, version, counts, cost_per_image_usd, then ``usd_per_month_<N>_users``."""
    rows = []
    for p in projections:
        row: dict[str, Any] = {"scenario": p.scenario, "version": p.version,
                               "counts": p.counts(), "cost_per_image_usd": p.cost_per_image_usd}
        if p.cost_per_image_usd is not None:
            table = projection_table(p.cost_per_image_usd, users, jobs_per_user=jobs_per_user,
                                     images_per_job=images_per_job)
            row.update({f"usd_per_month_{n}_users": cost for n, cost in
                        zip(table["users_per_month"], table["cost_per_month_usd"])})
        rows.append(row)
    columns = ["scenario", "version", "counts", "cost_per_image_usd",
               *(f"usd_per_month_{n}_users" for n in users)]
    return pd.DataFrame(rows, columns=columns)

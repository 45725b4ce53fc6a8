"""Runs the cells of one chunk concurrently on one event loop.

Replicate does the heavy work; a cell here only creates a prediction, waits for it and stores
the output, so one process keeps many predictions in flight. A cell's journey is three steps
that each return what happened — ``_submit`` → ``_wait`` → ``_store`` — and a step that ends
the cell returns ``Ended`` instead of the next step's input. Database calls run in threads
(they may wait on SQLite's lock); so do Redis calls, so a hung Redis never stalls the loop.

One create per cell: the worker creates only while it owns the cell (its fencing token,
checked in the same UPDATE as each write, see core.engine.lifecycle); a create whose reply
was lost is looked for by its exact input back to the cell's first create, however long ago;
a created prediction's id is recorded whatever the database does meanwhile, never followed
by a second create.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import dataclasses
import datetime as dt
import functools
import io
import logging
import random
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from redis import Redis
from replicate.exceptions import ReplicateError
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from core.data import keys, library, redisio
from core.data.db import session_scope
from core.data.images import decode_rgb, image_size, thumbnail_of
from core.insight import measured
from core.insight.metrics import NORMALISED_PX
from core.data.models import Endpoint as EndpointKind
from core.data.models import GenerationState, utcnow
from core.data.storage import MediaStore
from core.engine import lifecycle as cells
from core.engine.cell_loop import image_executor
from core.engine.limits import CellLeases, CreateRateLimiter, InflightSlots
from core.engine.polling import MAX_SAMPLES, PredictionTiming, PredictTimeEstimate, next_poll_in
from core.engine.replicate_api import (CREATE_REPLY_BOUND_S, FINAL_STATUSES, CreateTarget, Endpoint,
                                       Failure, aclose_client, build_async_client, classify,
                                       create_prediction, file_id, get_prediction, output_urls,
                                       tls_context)
from core.errors import BudgetExceeded, NotFound, RedisUnavailable, StorageError
from core.planning.budget import Caps, CostBound, reserve
from core.planning.pricing import Pricing, cost_of, max_cost
from core.planning.timing import PRIOR
from core.timeutil import parse_replicate_time, seconds_between

log = logging.getLogger(__name__)

MAX_CREATE_ATTEMPTS = 6
MAX_THROTTLED_WAITS = 60
POLL_GIVE_UP_S = 15 * 60  # this long without one good poll answer: the cell fails
DOWNLOAD_ATTEMPTS = 4
# A lost create is looked for among predictions created since the cell's first create,
# less this much for clocks (ours, Replicate's) that disagree. Not a window: the walk goes
# back as far as the cell's own first create, however long ago that was.
CLOCK_SKEW_S = 60
LIST_GIVE_UP_S = 15 * 60  # cannot list predictions this long: fail rather than risk a 2nd create
FILE_URL_TTL_S = 6 * 3600
PREDICT_HISTORY = dt.timedelta(days=7)  # older predict times say little about today's
OUTAGE_TOLERANCE_S = 300  # Redis or the database away this long: the cell fails, saying so
STORE_KEEP_TRYING_S = 55 * 60  # Replicate keeps outputs an hour after they are made
REDIS_THREADS = 4
# A worker that lost a cell after creating its prediction waits this long to learn whether the
# new owner adopted it (that owner waits CREATE_REPLY_BOUND_S, then lists predictions).
TAKEOVER_OUTCOME_WAIT_S = 2 * CREATE_REPLY_BOUND_S + 60
BUDGET_WAIT_S = 1.0  # a cell waiting for budget held by cells in flight asks again this often


@dataclasses.dataclass
class ExecutionContext:
    engine: Engine
    redis: Redis
    store: MediaStore
    endpoint: Endpoint
    caps: Caps
    default_inflight_cap: int
    create_rate_per_minute: int
    poll_interval_s: float
    lease_s: float
    thumbnail_max_px: int
    worker_name: str
    deployment: str  # the database's id: Redis keys of its cells and sweeps carry it
    outage_tolerance_s: float = OUTAGE_TOLERANCE_S
    store_keep_trying_s: float = STORE_KEEP_TRYING_S


@dataclasses.dataclass(frozen=True)
class Ended:
    """A step's answer when the cell needs nothing more from this runner: its final state is
    written, or another worker owns the cell now."""

    why: str


@dataclasses.dataclass(frozen=True)
class Created:
    """The cell's prediction, its id committed. ``answer``: the prediction as its create
    answered (None when found again or resumed); ``deadline_s``: cancel it after running this
    long (its cost reservation runs out then; None for per-output prices)."""

    prediction_id: str
    answer: dict[str, Any] | None = None
    deadline_s: float | None = None


LOST = Ended("another worker owns the cell now")
FINISHED = Ended("final state written")


def backoff_s(attempt: int, cap: float = 30.0) -> float:
    return min(cap, 0.5 * 2 ** attempt) * random.uniform(0.75, 1.25)


class ChunkRunner:
    def __init__(self, ctx: ExecutionContext, generation_ids: list[int]) -> None:
        self.ctx = ctx
        self.ids = list(generation_ids)
        self._leases = CellLeases(ctx.redis, ctx.deployment, ctx.worker_name, ctx.lease_s)
        self._held_leases: set[int] = set()
        self._tasks: dict[int, cells.CellTask] = {}
        self._past_deadline: set[int] = set()  # cells this runner canceled at their deadline
        self._slots: dict[str, InflightSlots] = {}
        self._slot_of: dict[int, InflightSlots] = {}  # only the slots this runner acquired
        # One cell per model asks Redis for a slot at a time; the rest wait their turn here,
        # woken early when a cell of this runner gives its slot back.
        self._slot_turn: dict[str, asyncio.Lock] = {}
        self._slot_freed = asyncio.Event()
        self._estimates: dict[str, asyncio.Future[PredictTimeEstimate]] = {}  # by version
        self._uploads: dict[str, asyncio.Future[str]] = {}  # image sha → its upload
        self._fresh_uploads: set[int] = set()  # cells created again after a stale upload URL
        self._earlier_cost: dict[int, float] = {}  # what such a cell's failed create cost
        # Redis calls run on threads of their own, so lease and slot renewals never queue
        # behind database calls waiting on SQLite's lock in the default pool.
        self._redis_threads = concurrent.futures.ThreadPoolExecutor(
            REDIS_THREADS, thread_name_prefix="redis")
        self._cancels = CancelFlags(ctx.redis, ctx.deployment, self._off_loop)
        self._rate = CreateRateLimiter(ctx.redis, ctx.endpoint.name, ctx.create_rate_per_minute)
        self._client = build_async_client(ctx.endpoint)
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(60.0, connect=10.0),
                                       follow_redirects=True, verify=tls_context())
        # Set once every cell has its prediction created (or has ended): what is left is
        # waiting on Replicate and storing, so the worker may take its next chunk meanwhile
        # (core.engine.cell_loop) and no slot sits idle behind this chunk's stragglers.
        self.handed_off = threading.Event()
        self._not_created = set(self.ids)

    async def run(self) -> None:
        self._held_leases.update(self.ids)
        await self._best_effort(self._leases.take, self.ids)
        helpers = [asyncio.create_task(self._heartbeat()),
                   asyncio.create_task(self._cancels.watch(self.ctx.poll_interval_s))]
        try:
            claimed = await self._claim_all()
            await asyncio.gather(*(self._run_cell_guarded(gid, claimed.get(gid))
                                   for gid in self.ids))
        finally:
            self.handed_off.set()
            for helper in helpers:
                helper.cancel()
            await self._http.aclose()
            await aclose_client(self._client)
            self._redis_threads.shutdown(wait=False)

    async def _claim_all(self) -> dict[int, cells.CellTask]:
        """The chunk's cells start together, so they are picked up in one transaction. If
        that fails past the outage tolerance, none is run here: their leases are released
        below and the reaper sends them again, as it would any cell no live job holds."""
        try:
            return await self._db(cells.claim_many, self.ids, utcnow())
        except Exception:  # an outage we did not foresee: the cells are not lost
            log.exception("picking up cells %s…%s failed", self.ids[0], self.ids[-1])
            return {}

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.ctx.lease_s / 3)
            held: dict[InflightSlots, list[str]] = {}
            for gid, slots in list(self._slot_of.items()):
                held.setdefault(slots, []).append(keys.slot_holder(self.ctx.deployment, gid))
            await self._best_effort(self._leases.take, list(self._held_leases))
            for slots, holders in held.items():
                await self._best_effort(slots.renew, holders)

    # -- one cell ----------------------------------------------------------------------------
    async def _run_cell_guarded(self, gid: int, task: cells.CellTask | None) -> None:
        try:
            await self._run_cell(task)
        except Exception as exc:  # a bug or an outage we did not foresee: say so on the cell
            log.exception("cell %s crashed", gid)
            task = self._tasks.get(gid)
            if task is not None:
                await self._finish(task, GenerationState.FAILED,
                                   error=f"Internal error while running this cell: {exc!r}")
        finally:
            self._created(gid)
            await self._give_slot_back(gid)  # a succeeded cell gave it back before storing
            self._held_leases.discard(gid)
            await self._best_effort(self._leases.release, gid)

    async def _give_slot_back(self, gid: int) -> None:
        """The cell's in-flight slot to the next cell, if it still holds one."""
        slots = self._slot_of.pop(gid, None)
        if slots is not None:
            await self._best_effort(slots.release, keys.slot_holder(self.ctx.deployment, gid))
            self._slot_freed.set()

    async def _run_cell(self, task: cells.CellTask | None) -> None:
        """The cell's journey, from its pick-up (None: the cell is gone): submit → wait →
        store, each step returning what happened."""
        if task is None or task.state.is_final:
            return
        gid = task.id
        self._tasks[gid] = task
        if (refusal := self._endpoint_refusal(task)) is not None:
            await self._finish(task, GenerationState.FAILED, error=refusal)
            return
        await self._cancels.track(task.sweep_id)
        if task.sweep_canceled or self._cancels.is_set(task.sweep_id):
            await self._cancel(task, task.prediction_id)
            return
        created = await self._submit(task)
        self._created(gid)
        if isinstance(created, Ended):
            return
        prediction = await self._wait(task, created)
        if isinstance(prediction, Ended):
            return
        if await self._input_file_gone(task, prediction):  # a stale cached upload: once
            created = await self._create_with_fresh_upload(task, prediction, created)
            if isinstance(created, Ended):
                return
            prediction = await self._wait(task, created)
            if isinstance(prediction, Ended):
                return
        # The prediction has ended on Replicate: its in-flight slot goes to the next cell now,
        # not after the download, decode and metrics of the store step.
        await self._give_slot_back(gid)
        await self._store(task, prediction)

    def _created(self, gid: int) -> None:
        self._not_created.discard(gid)
        if not self._not_created:
            self.handed_off.set()

    def _endpoint_refusal(self, task: cells.CellTask) -> str | None:
        """The sweep runs where it was submitted to run, or not at all."""
        mine = self.ctx.endpoint
        kind_differs = task.endpoint.value != mine.name
        url_differs = task.base_url is not None and task.base_url.rstrip("/") != mine.base_url
        if not (kind_differs or url_differs):
            return None
        where = f"{task.endpoint.value} at {task.base_url}" if task.base_url \
            else task.endpoint.value
        return (f"Not run: this sweep was submitted to run on {where}, but the worker that "
                f"picked it up is configured for {mine.name} at {mine.base_url}. Start a "
                "worker with the same REPLICATE_BASE_URL and REPLICATE_API_TOKEN as the "
                "dashboard, then retry the sweep's failed cells.")

    # -- step 1: submit ------------------------------------------------------------------------
    async def _submit(self, task: cells.CellTask) -> Created | Ended:
        """The cell's prediction, created once: an id already recorded is resumed, a create
        whose reply was lost is found again, and a create is only sent while this worker owns
        the cell (its fence)."""
        if task.prediction_id:
            return Created(task.prediction_id, None, await self._deadline_of_resumed(task))
        if task.state == GenerationState.SUBMITTING:
            # A worker sent a create and lost the cell before recording the answer. Its
            # request may still be on its way: look once it has surely landed or failed (the
            # claim moved the fence, so that worker sends no further create).
            await self._until_a_sent_create_has_landed(task)
            found = await self._find_lost_create(task)
            if found is not None:
                return found
            await self._acquire_slot(task)
            bound = await self._cost_bound(task)
            deadline = bound.deadline_s(task.reserved_usd)
            if not await self._db(cells.begin_create_attempt, task.id, task.fence, utcnow()):
                return LOST
        else:
            await self._acquire_slot(task)
            began = await self._begin_submit(task)
            if isinstance(began, Ended):
                return began
            deadline = began
        return await self._create(task, deadline)

    async def _until_a_sent_create_has_landed(self, task: cells.CellTask) -> None:
        sent = task.create_sent_at or task.submitting_at
        if sent is not None:
            left = CREATE_REPLY_BOUND_S - (utcnow() - sent).total_seconds()
            if left > 0:
                log.info("cell %s: waiting %.0f s for a create sent elsewhere to land",
                         task.id, left)
                await asyncio.sleep(left)

    async def _create(self, task: cells.CellTask, deadline_s: float | None) -> Created | Ended:
        model_input = await self._model_input(task)
        if model_input is None:
            log.info("cell %s: its photo was deleted; nothing to create", task.id)
            return LOST
        return await self._create_until_answered(task, model_input, deadline_s)

    async def _create_until_answered(self, task: cells.CellTask, model_input: dict[str, Any],
                                     deadline_s: float | None) -> Created | Ended:
        """Send the create, waiting out throttling and retrying what provably never reached
        Replicate (a lost reply is looked for first), while the cell is still ours."""
        attempts, throttled = 1, 0
        while True:
            await self._wait_for_rate()
            answer = await self._send_create(task, model_input)
            if isinstance(answer, dict):  # created: nothing may lead to a second create now
                return await self._record(task, answer, deadline_s)
            failure = answer
            if failure.kind == Failure.REJECTED:
                return await self._finish(task, GenerationState.FAILED, error=failure.message)
            if failure.kind == Failure.THROTTLED:
                throttled += 1
                if throttled > MAX_THROTTLED_WAITS:
                    return await self._finish(task, GenerationState.FAILED, error=(
                        f"Still throttled after {throttled} waits: {failure.message}"))
                await asyncio.sleep(failure.retry_after_s or backoff_s(throttled))
            else:
                if attempts >= MAX_CREATE_ATTEMPTS:
                    return await self._finish(task, GenerationState.FAILED, error=(
                        f"Gave up creating the prediction after {attempts} attempts: "
                        f"{failure.message}"))
                await asyncio.sleep(backoff_s(attempts))
                if failure.kind == Failure.AMBIGUOUS:
                    found = await self._find_lost_create(task, model_input, deadline_s)
                    if found is not None:
                        return found
                attempts += 1
            # Another worker may have taken the cell while this one slept (a lapsed lease,
            # Redis restarted): create again only while it is still ours.
            if not await self._db(cells.begin_create_attempt, task.id, task.fence, utcnow(),
                                  failure.message):
                log.warning("cell %s: another worker owns it now; not creating again", task.id)
                return LOST

    async def _send_create(self, task: cells.CellTask,
                           model_input: dict[str, Any]) -> dict[str, Any] | Any:
        """One create request: the prediction as answered, or the classified failure. Only
        the API call is inside the ``try``."""
        try:  # the model's own endpoint, with the sweep's Cancel-After (replicate_api)
            return await create_prediction(self._client, _target(task), model_input,
                                           cancel_after_s=task.cancel_after_s)
        except Exception as exc:  # noqa: BLE001 - classified by the caller's rules
            return classify(exc)

    async def _record(self, task: cells.CellTask, prediction: dict[str, Any],
                      deadline_s: float | None) -> Created | Ended:
        """Commit a created prediction's id. Waits through a database outage however long
        it lasts (the id is only in memory until then). If another worker took the cell
        meanwhile, this prediction is a duplicate: it is canceled, and that worker goes on."""
        recorded = await self._db(cells.record_prediction, task.id, task.fence, prediction,
                                  utcnow(), _forever=True)
        if recorded:
            return Created(prediction["id"], prediction, deadline_s)
        if await self._is_duplicate(task, prediction["id"]):
            log.warning("cell %s was taken over or deleted; canceling its prediction %s",
                        task.id, prediction["id"])
            await self._send_cancel(prediction["id"])
        return LOST

    async def _is_duplicate(self, task: cells.CellTask, prediction_id: str) -> bool:
        """Whether a prediction this worker created but could not record (the cell was taken
        over) is a duplicate. The new owner looks for a lost create before creating one, so it
        may be adopting this very prediction: until the cell holds a prediction or has ended,
        nothing is known, and canceling would cancel the adopted one (a cell seen ending
        "canceled on Replicate" under load). Waits for the owner's outcome; when it never comes
        (that owner died too), the prediction is left running for the next owner to adopt."""
        deadline = time.monotonic() + TAKEOVER_OUTCOME_WAIT_S
        while True:
            now = await self._db(cells.current_state, task.id, _forever=True)
            if now is None:
                return True  # the cell was deleted (its photo with it): nobody will adopt it
            state, held = now
            if held is not None:
                return held != prediction_id
            if state.is_final:
                return True  # ended without it (canceled, failed): nobody will adopt it
            if time.monotonic() > deadline:
                log.warning("cell %s: taken over and still without a prediction after %.0f s; "
                            "leaving %s for its owner to adopt", task.id,
                            TAKEOVER_OUTCOME_WAIT_S, prediction_id)
                return False
            await asyncio.sleep(1.0)

    async def _find_lost_create(self, task: cells.CellTask,
                                model_input: dict[str, Any] | None = None,
                                deadline_s: float | None = None) -> Created | Ended | None:
        """After a create whose fate is unknown, look for it among the predictions created
        since the cell's first create (the seed is always fixed, so an identical input no
        other cell holds is this cell's) and adopt it. None: provably never created. When
        the list cannot be read, wait and read again; never create blind."""
        want = {k: v for k, v in (model_input or task.model_input).items()
                if k != task.image_input}
        since = (task.submitting_at or utcnow()).timestamp() - CLOCK_SKEW_S
        started, attempt = time.monotonic(), 0
        while True:
            try:
                candidates = await self._predictions_since(since, _listed_as(task), want,
                                                           task.image_input)
                break
            except Exception as exc:  # noqa: BLE001 - cannot see: do not create blind
                attempt += 1
                if time.monotonic() - started > LIST_GIVE_UP_S:
                    return await self._finish(task, GenerationState.FAILED, error=(
                        "Could not check whether the prediction was created (listing "
                        f"predictions failed for {LIST_GIVE_UP_S // 60} minutes: {exc}); not "
                        "created again, so as not to pay twice. Retry the cell."))
                log.warning("could not list predictions for cell %s; retrying", task.id)
                await asyncio.sleep(backoff_s(attempt))
        known = await self._db(cells.known_prediction_ids, [p["id"] for p in candidates])
        for prediction in candidates:
            if prediction["id"] not in known:
                if deadline_s is None and task.reserved_usd:
                    deadline_s = (await self._cost_bound(task)).deadline_s(task.reserved_usd)
                return await self._record(task, prediction, deadline_s)
        return None

    async def _predictions_since(self, since: float, version_id: str, want: dict[str, Any],
                                 image_input: str) -> list[dict[str, Any]]:
        """Predictions of ``version_id`` with input ``want`` (the image aside) created at or
        after ``since``, oldest first; walks the list (newest first) back to ``since``."""
        found: list[dict[str, Any]] = []
        cursor: Any = ...
        while True:
            page = await self._client.predictions.async_list(cursor)
            for p in page.results:
                created = parse_replicate_time(p.created_at)
                if created and created.timestamp() < since:
                    return found[::-1]
                got = {k: v for k, v in (p.input or {}).items() if k != image_input}
                if version_id in (p.version, getattr(p, "model", None)) and got == want:
                    found.append(p.dict())
            if not page.next:
                return found[::-1]
            cursor = page.next

    async def _acquire_slot(self, task: cells.CellTask) -> None:
        cap = task.inflight_cap or self.ctx.default_inflight_cap
        slots = self._slots.setdefault(
            task.model_ref, InflightSlots(self.ctx.redis, task.model_ref, cap, self.ctx.lease_s))
        async with self._slot_turn.setdefault(task.model_ref, asyncio.Lock()):
            waited = 0
            while True:
                self._slot_freed.clear()
                if await self._redis(slots.try_acquire, keys.slot_holder(self.ctx.deployment, task.id)):
                    break
                waited += 1
                # Slots freed on other machines are only seen by asking again.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._slot_freed.wait(), min(0.5, 0.05 * waited))
            self._slot_of[task.id] = slots

    async def _begin_submit(self, task: cells.CellTask) -> float | None | Ended:
        """pending → submitting, holding a bound on the prediction's cost against the caps,
        in one transaction. Returns the prediction's deadline (None for per-output prices).
        Waits while the budget is held by cells in flight; over a cap the sweep halts and
        the cell is canceled with the numbers."""
        caps = dataclasses.replace(self.ctx.caps, sweep_usd=task.sweep_budget_usd)
        bound = await self._cost_bound(task)
        is_real = not self.ctx.endpoint.is_emulator
        while True:
            try:
                reserved = await self._db(_reserve_and_begin, task, caps, bound, is_real,
                                          utcnow())
            except BudgetExceeded as exc:
                await self._db(_halt_sweep, task.sweep_id, str(exc))
                return await self._finish(task, GenerationState.CANCELED, error=str(exc))
            if reserved is None:
                return LOST
            if reserved > 0 or (bound.wanted_usd == 0):
                return bound.deadline_s(reserved)
            if self._cancels.is_set(task.sweep_id):
                return await self._cancel(task, None)
            await asyncio.sleep(BUDGET_WAIT_S)  # budget held by cells in flight: wait

    async def _cost_bound(self, task: cells.CellTask) -> CostBound:
        """The most this cell's create may cost (exact for per-output prices; per-second:
        a deadline from the expected predict time). The price table feeds this number."""
        if not task.pricing:  # planning refuses unpriced models; a price cleared since: free
            return CostBound.exact(0.0)
        pricing = Pricing(**task.pricing)
        if pricing.kind != "per_second":  # every output the input allows, at the table's rate
            return CostBound.exact(max_cost(pricing, task.model_input,
                                            task.cancel_after_s or 0))
        expected = (await self._estimate(task)).expected_s(task.steps)
        if expected is None:
            expected = PRIOR.predict_s(task.steps)
        return CostBound.per_second(pricing.usd_per_second or 0.0, expected)

    async def _deadline_of_resumed(self, task: cells.CellTask) -> float | None:
        if not task.reserved_usd:
            return None
        return (await self._cost_bound(task)).deadline_s(task.reserved_usd)

    # -- step 2: wait ----------------------------------------------------------------------------
    async def _wait(self, task: cells.CellTask, created: Created) -> dict[str, Any] | Ended:
        """Poll until the prediction is final. The first wait uses the create's answer; a
        prediction still running at its deadline is canceled (its reservation ends there)."""
        prediction_id, pending = created.prediction_id, created.answer
        last_ok = time.monotonic()
        errors = 0
        cancel_sent = False
        latest: dict[str, Any] | None = None
        estimate = await self._estimate(task)
        while True:
            if not cancel_sent:
                cancel_sent = await self._cancel_if_due(task, prediction_id, latest,
                                                        created.deadline_s)
            try:
                if pending is not None:
                    data, pending = pending, None
                else:
                    data = await get_prediction(self._client, prediction_id)
                last_ok, errors = time.monotonic(), 0
            except Exception as exc:  # noqa: BLE001 - classified below
                failure = classify(exc)
                if failure.kind == Failure.REJECTED:  # 404: the prediction is gone
                    return await self._finish(task, GenerationState.FAILED,
                                              error=failure.message)
                errors += 1
                if time.monotonic() - last_ok > POLL_GIVE_UP_S:
                    return await self._finish(task, GenerationState.FAILED, error=(
                        f"Lost contact with the prediction {prediction_id} for "
                        f"{POLL_GIVE_UP_S // 60} minutes: {failure.message}"))
                await asyncio.sleep(failure.retry_after_s or backoff_s(errors))
                continue
            latest = data
            if data["status"] in FINAL_STATUSES:
                if data["status"] == "succeeded":
                    estimate.note(_timing(data, task.steps))
                return data
            if not cancel_sent and _past_deadline(data, created.deadline_s):
                continue  # cancel it now, then ask how it ended
            await self._sleep_until_worth_polling(task, data, estimate, created.deadline_s)

    async def _cancel_if_due(self, task: cells.CellTask, prediction_id: str,
                             latest: dict[str, Any] | None, deadline_s: float | None) -> bool:
        """Cancel the prediction if its sweep was canceled or it ran to its deadline; True
        once a cancel was sent."""
        if self._cancels.is_set(task.sweep_id):
            return await self._send_cancel(prediction_id)
        if _past_deadline(latest, deadline_s):
            self._past_deadline.add(task.id)
            return await self._send_cancel(prediction_id)
        return False

    async def _estimate(self, task: cells.CellTask) -> PredictTimeEstimate:
        """The chunk's predict-time estimate for the cell's model version, seeded once from
        the database."""
        return await _shared(self._estimates, task.version_id,
                             lambda: self._load_estimate(task.version_id))

    async def _load_estimate(self, version_id: str) -> PredictTimeEstimate:
        """One try, not ``_db``'s wait through an outage: only pacing depends on it, and
        without history the cells poll as they would for a new model."""
        try:
            return PredictTimeEstimate(await self._db_once(
                cells.recent_timings, version_id, EndpointKind(self.ctx.endpoint.name),
                utcnow() - PREDICT_HISTORY, limit=MAX_SAMPLES))
        except DBAPIError:
            log.warning("could not read recent predict times of %s", version_id)
            return PredictTimeEstimate()

    async def _sleep_until_worth_polling(self, task: cells.CellTask, data: dict[str, Any],
                                         estimate: PredictTimeEstimate,
                                         deadline_s: float | None) -> None:
        """Wait until the prediction is worth asking about again; a cancel of the sweep is
        still noticed within the poll interval, and a deadline is not slept past."""
        status = data["status"]
        since = parse_replicate_time(data.get("started_at" if status == "processing"
                                              else "created_at"))
        waited = (utcnow() - since).total_seconds() if since else 0.0
        wait = next_poll_in(status, waited, self.ctx.poll_interval_s,
                            estimate.expected_s(task.steps), estimate.expected_queue_s())
        if deadline_s is not None and status == "processing":
            wait = max(0.0, min(wait, deadline_s - waited))
        deadline = time.monotonic() + wait
        while (left := deadline - time.monotonic()) > 0:
            if self._cancels.is_set(task.sweep_id):
                return
            await asyncio.sleep(min(left, self.ctx.poll_interval_s))

    # -- step 3: store ---------------------------------------------------------------------------
    async def _store(self, task: cells.CellTask, prediction: dict[str, Any]) -> Ended:
        """Record how the prediction ended and keep its output. A billed output is never
        thrown away for an outage of ours: while storage is down or full the cell waits
        (saying so) and storing is retried, for as long as Replicate keeps the output."""
        metrics = prediction.get("metrics") or {}
        predict_time = metrics.get("predict_time")
        outputs = output_urls(prediction.get("output"))  # a string, a list, data URIs
        status = prediction["status"]
        timing = {
            "replicate_status": status,
            "predict_time_s": predict_time,
            "started_at": parse_replicate_time(prediction.get("started_at")),
            "replicate_completed_at": parse_replicate_time(prediction.get("completed_at")),
        }
        created = parse_replicate_time(prediction.get("created_at"))
        timing["replicate_queue_s"] = seconds_between(created, timing["started_at"])
        billed = (_billed(task, predict_time, outputs if status == "succeeded" else [])
                  + self._earlier_cost.get(task.id, 0.0))
        if status == "aborted":  # Cancel-After passed before it started: never billed
            return await self._finish(task, GenerationState.FAILED, cost_usd=0.0,
                                      error=_aborted_reason(task, prediction), **timing)
        if status == "failed":
            return await self._finish(task, GenerationState.FAILED, cost_usd=billed,
                                      error=prediction.get("error") or "The prediction "
                                      "failed on Replicate without an error message.",
                                      **timing)
        if status == "canceled":
            return await self._finish(task, GenerationState.CANCELED, cost_usd=billed,
                                      error=self._cancel_reason(task), **timing)
        if not outputs:
            # The client's Prediction model drops data_removed; a success with no output
            # can only mean Replicate already deleted it.
            reason = ("The prediction succeeded but its output is gone (data_removed): Replicate "
                      "deletes outputs an hour after completion, before this cell stored it.")
            return await self._finish(task, GenerationState.FAILED, cost_usd=billed,
                                      error=reason, **timing)
        return await self._keep_outputs(task, outputs, billed, timing)

    async def _keep_outputs(self, task: cells.CellTask, outputs: list[str], billed: float,
                            timing: dict[str, Any]) -> Ended:
        """Store a succeeded prediction's outputs and finish the cell; a cell deleted
        meanwhile (its photo with it) keeps no file."""
        if await self._db(cells.current_state, task.id) is None:
            log.warning("cell %s was deleted (its photo with it); its output is not kept",
                        task.id)
            return LOST
        started = time.monotonic()
        stored = await self._keep_output(task, outputs[0])
        extra: list[dict[str, Any]] = []
        for url in outputs[1:] if isinstance(stored, dict) else ():
            # several images for one cell: the first is the cell's, every one is kept
            more = await self._keep_output(task, url, measure=False)
            if not isinstance(more, dict):
                stored = more
                break
            extra.append({"output_key": more["output_key"], "thumbnail_key": more["thumbnail_key"],
                          "width": more["output_width"], "height": more["output_height"]})
        if isinstance(stored, Ended):
            return stored
        if isinstance(stored, str):
            return await self._finish(task, GenerationState.FAILED, cost_usd=billed,
                                      error=stored, overhead_s=time.monotonic() - started,
                                      **timing)
        if extra:
            stored = {**stored, "extra_outputs": extra}
        now = utcnow()
        ended = await self._finish(task, GenerationState.SUCCEEDED, cost_usd=billed, error=None,
                                   overhead_s=time.monotonic() - started, completed_at=now,
                                   latency_s=seconds_between(task.enqueued_at, now),
                                   **stored, **timing)
        if ended is LOST:  # deleted while storing (or taken over): keep no file without a row
            await self._drop_unreferenced(stored)
        return ended

    async def _drop_unreferenced(self, stored: dict[str, Any]) -> None:
        written = {stored["output_key"], stored["thumbnail_key"]}
        for more in stored.get("extra_outputs", ()):
            written.update((more["output_key"], more["thumbnail_key"]))
        doomed = await self._db(library.unreferenced, written)
        await asyncio.to_thread(library.purge, self.ctx.store, doomed)

    async def _keep_output(self, task: cells.CellTask, url: str, *,
                           measure: bool = True) -> dict[str, Any] | str | Ended:
        """The stored output's columns, or why it cannot be had (expired, unreadable). A
        storage outage is waited out with backoff, the cell saying it is waiting."""
        started, attempt, said = time.monotonic(), 0, False
        while True:
            try:
                return await self._store_output(url, task, measure=measure)
            except _DownloadFailed as exc:
                return str(exc)
            except StorageError as exc:
                attempt += 1
                if time.monotonic() - started > self.ctx.store_keep_trying_s:
                    return (f"The output could not be stored ({exc}) before Replicate "
                            "deleted it.")
                if not said:  # visible on the cell while it waits
                    said = True
                    if not await self._db(cells.note_waiting, task.id, task.fence,
                                          f"Waiting to store the output: {exc} Retrying; "
                                          "the prediction is kept."):
                        return LOST
                log.warning("storing the output of cell %s failed (%s); retrying", task.id, exc)
                await asyncio.sleep(backoff_s(attempt, cap=30))

    # -- helpers --------------------------------------------------------------------------------
    async def _store_output(self, url: str, task: cells.CellTask, *,
                            measure: bool = True) -> dict[str, Any]:
        data = await self._download(url)
        return await asyncio.get_running_loop().run_in_executor(
            image_executor(), self._store_sync, data, task, measure)

    def _store_sync(self, data: bytes, task: cells.CellTask,
                    measure: bool = True) -> dict[str, Any]:
        try:
            # Decoded once, for the thumbnail and the image metrics below.
            decoded = decode_rgb(data, at_least_px=max(self.ctx.thumbnail_max_px,
                                                       NORMALISED_PX))
            thumb, thumb_type = thumbnail_of(decoded, max_px=self.ctx.thumbnail_max_px)
            width, height = image_size(data)
        except Exception as exc:
            raise _DownloadFailed(f"The output image could not be read ({exc}); it was "
                                  "probably truncated in transfer.") from exc
        content_type = _sniff_content_type(data)
        stored = {
            "output_key": self.ctx.store.put(data, kind="outputs", content_type=content_type),
            "thumbnail_key": self.ctx.store.put(thumb, kind="thumbnails", content_type=thumb_type),
            "output_width": width, "output_height": height,
        }
        # Similarity, change, sharpness, identity against the input (never fails the cell);
        # measured on the cell's own output, not the further images of a list output.
        if measure:
            measured.record_output(self.ctx.engine, self.ctx.store, task.id, task.image_key,
                                   task.image_sha256, decoded)
        return stored

    async def _download(self, url: str) -> bytes:
        if url.startswith("data:"):
            return base64.b64decode(url.split(",", 1)[1])
        last_error = ""
        for attempt in range(DOWNLOAD_ATTEMPTS):
            try:
                response = await self._http.get(url)
                response.raise_for_status()
                expected = response.headers.get("content-length")
                if expected is not None and int(expected) != len(response.content):
                    raise _DownloadFailed(f"got {len(response.content)} of {expected} bytes")
                return response.content
            except (httpx.HTTPError, _DownloadFailed) as exc:
                last_error = f"{type(exc).__name__}: {exc}"
                if isinstance(exc, httpx.HTTPStatusError) and exc.response.status_code == 404:
                    raise _DownloadFailed("The output had expired on Replicate (HTTP 404) "
                                          "before it could be stored.") from exc
                await asyncio.sleep(backoff_s(attempt, cap=5))
        raise _DownloadFailed(f"Downloading the output failed: {last_error}")

    async def _model_input(self, task: cells.CellTask) -> dict[str, Any] | None:
        """The create's input; None when the photo was deleted meanwhile (the cell with it)."""
        model_input = dict(task.model_input)
        if task.image_key and task.image_input:  # the schema's image input: one URL or a list
            url = await self._input_file_url(task)
            if url is None:
                return None
            model_input[task.image_input] = [url] if task.image_is_list else url
        return model_input

    async def _input_file_url(self, task: cells.CellTask) -> str | None:
        """Upload each input image once per endpoint (Files API) and reuse its URL. The
        cells of a chunk start together, so they share one upload instead of racing."""
        return await _shared(self._uploads, task.image_sha256 or "",
                             lambda: self._upload_input(task))

    async def _upload_input(self, task: cells.CellTask) -> str | None:
        """The photo's Files-API URL (cached per endpoint), else the photo inlined; None when
        the photo was deleted before or while it was uploaded (no copy is left behind)."""
        cache_key = keys.file_url(self.ctx.endpoint.base_url, task.image_sha256 or "")
        cached = await self._redis(self.ctx.redis.get, cache_key)
        if cached:
            return cached.decode()
        try:
            data = await asyncio.to_thread(self.ctx.store.get, task.image_key or "")
        except NotFound:
            return None
        for attempt in range(MAX_CREATE_ATTEMPTS):
            try:
                uploaded = await self._client.files.async_create(
                    io.BytesIO(data), metadata={"sha256": task.image_sha256})
            except Exception as exc:  # noqa: BLE001 - classified below
                failure = classify(exc)
                if failure.kind == Failure.REJECTED:
                    break
                await asyncio.sleep(failure.retry_after_s or backoff_s(attempt))
                continue
            url = uploaded.urls["get"]
            if not await self._db(cells.image_exists, task.image_sha256 or ""):
                # deleted while it was being uploaded: the copy goes too, and no URL is kept
                with contextlib.suppress(Exception):
                    await self._client.files.async_delete(uploaded.id)
                return None
            await self._best_effort(self.ctx.redis.set, cache_key, url, ex=FILE_URL_TTL_S)
            return url
        # Fall back to inlining the image: always accepted, just a larger request.
        return "data:image/png;base64," + base64.b64encode(data).decode()

    async def _input_file_gone(self, task: cells.CellTask, prediction: dict[str, Any]) -> bool:
        """Whether the prediction failed because its input, a Files-API upload whose URL was
        cached, is gone from Replicate (deleted, expired). Asked of the Files API itself, not
        read from the error text; only once per cell."""
        if (prediction.get("status") != "failed" or not task.image_input
                or task.id in self._fresh_uploads):
            return False
        uploaded = file_id(_image_url_given(task, prediction), self.ctx.endpoint.base_url)
        if uploaded is None:
            return False
        try:
            await self._client.files.async_get(uploaded)
        except ReplicateError as exc:
            return exc.status == 404
        except Exception:  # noqa: BLE001 - cannot tell: the failure stands as it is
            return False
        return False

    async def _create_with_fresh_upload(self, task: cells.CellTask, failed: dict[str, Any],
                                        created: Created) -> Created | Ended:
        """Drop the stale URL (Redis and this runner), upload the photo again and create the
        cell's prediction once more under its existing reservation; the failed prediction
        never ran (no charge) and is kept as a failed attempt."""
        self._fresh_uploads.add(task.id)
        stale = _image_url_given(task, failed)
        cache_key = keys.file_url(self.ctx.endpoint.base_url, task.image_sha256 or "")
        cached = await self._redis(self.ctx.redis.get, cache_key)
        if cached is not None and cached.decode() == stale:
            await self._best_effort(self.ctx.redis.delete, cache_key)
        upload = self._uploads.get(task.image_sha256 or "")
        if upload is not None and upload.done() and not upload.cancelled() \
                and upload.exception() is None and upload.result() == stale:
            del self._uploads[task.image_sha256 or ""]  # cells failing together share one
        self._earlier_cost[task.id] = _billed(task, (failed.get("metrics") or {})
                                              .get("predict_time"), [])
        log.warning("cell %s: its input file had gone from Replicate (%s); uploading it again "
                    "and creating once more", task.id, stale)
        error = (f"Retried with the photo uploaded again: the cached upload {stale} had gone "
                 f"from Replicate ({failed.get('error') or 'the prediction failed'}).")
        if not await self._db(cells.retry_with_fresh_input, task.id, task.fence, failed["id"],
                              error, utcnow()):
            return LOST
        return await self._create(task, created.deadline_s)

    async def _wait_for_rate(self) -> None:
        wait = await self._redis(self._rate.reserve)
        if wait > 0:
            await asyncio.sleep(wait)

    def _cancel_reason(self, task: cells.CellTask) -> str:
        if self._cancels.is_set(task.sweep_id):
            return "Canceled: the sweep was canceled."
        if task.id in self._past_deadline:
            return ("Canceled at its deadline: the budget left room for no longer a run "
                    "(its cost was reserved before the create). Raise the budget to let "
                    "predictions run longer.")
        return "Canceled on Replicate (not by this dashboard)."

    async def _send_cancel(self, prediction_id: str) -> bool:
        try:
            await self._client.predictions.async_cancel(prediction_id)
            return True
        except Exception:  # noqa: BLE001 - try again at the next poll
            log.warning("cancel of %s failed; will retry", prediction_id)
            return False

    async def _cancel(self, task: cells.CellTask, prediction_id: str | None) -> Ended:
        if prediction_id:
            await self._send_cancel(prediction_id)
        return await self._finish(task, GenerationState.CANCELED,
                                  error="Canceled: the sweep was canceled.")

    async def _finish(self, task: cells.CellTask, state: GenerationState,
                      **values: Any) -> Ended:
        """Write the cell's final state (settling its reservation), if it is still ours."""
        done = await self._db(cells.finish, task.id, task.fence, state, **values)
        return FINISHED if done else LOST

    async def _db_once(self, fn, *args: Any, **kwargs: Any) -> Any:  # noqa: ANN001
        """``fn(session, …)`` as one transaction in a thread."""
        def call() -> Any:
            with session_scope(self.ctx.engine) as session:
                return fn(session, *args, **kwargs)

        return await asyncio.to_thread(call)

    async def _db(self, fn, *args: Any, _forever: bool = False,  # noqa: ANN001
                  **kwargs: Any) -> Any:
        """``_db_once``, with a lost connection or a locked SQLite file retried (every
        transition is conditional, so running one twice is harmless); for as long as the
        outage tolerance, or without end when ``_forever`` (a created prediction's id)."""
        started, attempt = time.monotonic(), 0
        while True:
            try:
                return await self._db_once(fn, *args, **kwargs)
            except DBAPIError as exc:
                if not _is_transient(exc) or (
                        not _forever
                        and time.monotonic() - started > self.ctx.outage_tolerance_s):
                    raise
                attempt += 1
                log.warning("database unavailable (%s); retrying", type(exc.orig).__name__)
                await asyncio.sleep(backoff_s(attempt, cap=5))

    async def _redis(self, fn, *args: Any, **kwargs: Any) -> Any:  # noqa: ANN001
        """A Redis call that must succeed, off the event loop: waits out a restart instead
        of failing the cell (RedisUnavailable after the outage tolerance)."""
        started, attempt = time.monotonic(), 0
        while True:
            try:
                return await self._off_loop(redisio.call, fn, *args, **kwargs)
            except RedisUnavailable:
                if time.monotonic() - started > self.ctx.outage_tolerance_s:
                    raise
                attempt += 1
                log.warning("Redis unavailable; retrying")
                await asyncio.sleep(backoff_s(attempt, cap=5))

    async def _off_loop(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)`` on one of the runner's Redis threads."""
        return await asyncio.get_running_loop().run_in_executor(
            self._redis_threads, functools.partial(fn, *args, **kwargs))

    async def _best_effort(self, fn, *args: Any, **kwargs: Any) -> None:  # noqa: ANN001
        """Lease and slot bookkeeping, off the event loop: losing one only delays a resume,
        so a Redis outage never fails a cell."""
        try:
            await self._off_loop(redisio.call, fn, *args, **kwargs)
        except RedisUnavailable:
            log.warning("Redis unavailable for %s; continuing", getattr(fn, "__name__", fn))


class _DownloadFailed(Exception):
    pass


class CancelFlags:
    """The sweeps' cancel flags as this runner last read them. One task reads the flags of
    every sweep the runner works on once a poll interval (in a thread), instead of every
    waiting cell asking Redis each interval (the sweep's cancel is seen as soon as before)."""

    def __init__(self, redis: Redis, deployment: str,
                 off_loop: Callable[..., Awaitable[Any]] | None = None) -> None:
        self._redis = redis
        self._deployment = deployment
        self._off_loop = off_loop or asyncio.to_thread
        self._canceled: dict[int, bool] = {}

    async def track(self, sweep_id: int) -> None:
        """Read a sweep's flag now if it is new to this runner."""
        if sweep_id not in self._canceled:
            self._canceled[sweep_id] = (await self._off_loop(self._read, [sweep_id]))[0]

    def is_set(self, sweep_id: int) -> bool:
        return self._canceled.get(sweep_id, False)

    async def watch(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            await self.refresh()

    async def refresh(self) -> None:
        """Read every tracked sweep's flag again (one pipeline, in a thread)."""
        sweep_ids = list(self._canceled)
        if sweep_ids:
            flags = await self._off_loop(self._read, sweep_ids)
            self._canceled.update(zip(sweep_ids, flags))

    def _read(self, sweep_ids: list[int]) -> list[bool]:
        try:
            with redisio.redis_errors():
                pipe = self._redis.pipeline(transaction=False)
                for sweep_id in sweep_ids:
                    pipe.exists(keys.sweep_cancel(self._deployment, sweep_id))
                return [bool(n) for n in pipe.execute()]
        except RedisUnavailable:  # keep what was known; the database check at pick-up and
            # the reaper's re-raised flags stand
            return [self._canceled.get(sweep_id, False) for sweep_id in sweep_ids]


def _shared(futures: dict[str, asyncio.Future[Any]], key: str,
            start: Callable[[], Awaitable[Any]]) -> Awaitable[Any]:
    """One run of ``start()`` per key, awaited by every cell that asks for it (the cells of a
    chunk start together, so they would otherwise all do the same work at once)."""
    if key not in futures:
        futures[key] = asyncio.ensure_future(start())
    return asyncio.shield(futures[key])


def _is_transient(exc: DBAPIError) -> bool:
    if exc.connection_invalidated:
        return True
    text = str(exc.orig).lower()
    return any(sign in text for sign in ("database is locked", "connection", "server closed",
                                         "terminating", "could not connect", "timeout"))


def _reserve_and_begin(session, task: cells.CellTask, caps: Caps,  # noqa: ANN001
                       bound: CostBound, is_real: bool, now: dt.datetime) -> float | None:
    """Reserve a bound on the create's cost within every cap and move the cell to
    submitting, one transaction. Returns what was reserved (0: wait for budget), None when
    the cell is no longer this worker's to submit; BudgetExceeded over a cap."""
    reservation = reserve(session, caps, task.sweep_id, wanted_usd=bound.wanted_usd,
                          least_usd=bound.least_usd, is_real=is_real, now=now)
    if not reservation.granted and bound.wanted_usd > 0:
        return 0.0
    if not cells.begin_submit(session, task.id, task.fence, now, reservation.usd):
        return None
    return reservation.usd


def _past_deadline(prediction: dict[str, Any] | None, deadline_s: float | None) -> bool:
    """A prediction that has run longer than its reservation allows (started_at + deadline)."""
    if prediction is None or deadline_s is None or prediction.get("status") != "processing":
        return False
    started = parse_replicate_time(prediction.get("started_at"))
    return started is not None and (utcnow() - started).total_seconds() >= deadline_s


def _timing(prediction: dict[str, Any], steps: int | None) -> PredictionTiming:
    predict_s = (prediction.get("metrics") or {}).get("predict_time") or 0.0
    queued_s = seconds_between(parse_replicate_time(prediction.get("created_at")),
                               parse_replicate_time(prediction.get("started_at")))
    return PredictionTiming(predict_s=float(predict_s), steps=steps, queue_s=queued_s)


def _listed_as(task: cells.CellTask) -> str:
    """What a listed prediction of this cell's model shows: its version, or for an official
    model or a deployment (version hidden) the model's name."""
    return task.version_id if task.create_via == "versioned" else task.model_ref


def _image_url_given(task: cells.CellTask, prediction: dict[str, Any]) -> str:
    """The photo's URL in a prediction's input (the schema's image input, one or a list)."""
    given = (prediction.get("input") or {}).get(task.image_input or "")
    given = given[0] if isinstance(given, list) and given else given
    return given if isinstance(given, str) else ""


def _target(task: cells.CellTask) -> CreateTarget:
    return CreateTarget(task.create_via, task.model_ref, task.version_id, task.deployment)


def _billed(task: cells.CellTask, predict_time: float | None, outputs: list[str]) -> float:
    """The estimate of what Replicate billed (the API returns no price). Nothing for a cell
    retried to store an output it already paid for (its cost was counted then)."""
    if not task.pricing or task.replicate_status == "succeeded":
        return 0.0
    return cost_of(Pricing(**task.pricing), predict_time, len(outputs))


def _aborted_reason(task: cells.CellTask, prediction: dict[str, Any]) -> str:
    detail = prediction.get("error")
    deadline = f"{task.cancel_after_s} s " if task.cancel_after_s else ""
    return (f"Aborted by Replicate: the Cancel-After deadline {deadline}passed before the "
            "prediction started, so it never ran and was not billed"
            + (f" ({detail})." if detail else ". Retry it, or allow a longer deadline."))


def _halt_sweep(session, sweep_id: int, reason: str) -> None:  # noqa: ANN001
    from core.data.models import Sweep

    sweep = session.get(Sweep, sweep_id)
    if sweep is not None and not sweep.halted_reason:
        sweep.halted_reason = reason


def _sniff_content_type(data: bytes) -> str:
    if data.startswith(b"\x89PNG"):
        return "image/png"
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return "application/octet-stream"


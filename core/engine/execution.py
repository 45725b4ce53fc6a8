"""Runs the cells of one chunk concurrently on one event loop.

Replicate does the heavy work; a cell here only creates a prediction, polls it and stores
the output, so one process keeps many predictions in flight. Database calls run in threads
(they may wait on SQLite's lock); Redis calls are short and run inline.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import datetime as dt
import io
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn

import httpx
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from core.engine import lifecycle as cells

from core.data import keys
from core.planning.budget import Caps, check_before_create
from core.data.db import session_scope
from core.errors import BudgetExceeded, StorageError
from core.data.images import decode_rgb, image_size, thumbnail_of
from core.insight import measured
from core.insight.metrics import NORMALISED_PX
from core.engine.limits import CellLeases, CreateRateLimiter, InflightSlots
from core.data.models import Endpoint as EndpointKind
from core.data.models import GenerationState, utcnow
from core.engine.polling import MAX_SAMPLES, PredictionTiming, PredictTimeEstimate, next_poll_in
from core.planning.pricing import Pricing, cost_of
from core.engine.replicate_api import Endpoint, Failure, build_async_client, classify, tls_context
from core.data.storage import MediaStore
from core.timeutil import parse_replicate_time, seconds_between

log = logging.getLogger(__name__)

MAX_CREATE_ATTEMPTS = 6
MAX_THROTTLED_WAITS = 60
POLL_GIVE_UP_S = 15 * 60  # this long without one good poll answer: the cell fails
DOWNLOAD_ATTEMPTS = 4
RECONCILE_WINDOW_S = 120
FILE_URL_TTL_S = 6 * 3600
PREDICT_HISTORY = dt.timedelta(days=7)  # older predict times say little about today's
OUTAGE_TOLERANCE_S = 300  # Redis or the database away this long: the cell fails, saying so
REDIS_ERRORS = (RedisConnectionError, RedisTimeoutError)


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


class _CellFinished(Exception):
    """Raised inside a cell's flow once its final state is written (or another worker's is)."""


def backoff_s(attempt: int, cap: float = 30.0) -> float:
    return min(cap, 0.5 * 2 ** attempt) * random.uniform(0.75, 1.25)


class ChunkRunner:
    def __init__(self, ctx: ExecutionContext, generation_ids: list[int]) -> None:
        self.ctx = ctx
        self.ids = list(generation_ids)
        self._leases = CellLeases(ctx.redis, ctx.worker_name, ctx.lease_s)
        self._held_leases: set[int] = set()
        self._slots: dict[str, InflightSlots] = {}
        self._slot_of: dict[int, InflightSlots] = {}  # only the slots this runner acquired
        # One cell per model asks Redis for a slot at a time; the rest wait their turn here,
        # woken early when a cell of this runner gives its slot back.
        self._slot_turn: dict[str, asyncio.Lock] = {}
        self._slot_freed = asyncio.Event()
        self._estimates: dict[str, asyncio.Future[PredictTimeEstimate]] = {}  # by version
        self._uploads: dict[str, asyncio.Future[str]] = {}  # image sha → its upload
        self._cancels = CancelFlags(ctx.redis)
        self._rate = CreateRateLimiter(ctx.redis, ctx.endpoint.name, ctx.create_rate_per_minute)
        self._client = build_async_client(ctx.endpoint)
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(60.0, connect=10.0),
                                       follow_redirects=True, verify=tls_context())

    async def run(self) -> None:
        self._held_leases.update(self.ids)
        _best_effort(self._leases.take, self.ids)
        helpers = [asyncio.create_task(self._heartbeat()),
                   asyncio.create_task(self._cancels.watch(self.ctx.poll_interval_s))]
        try:
            await asyncio.gather(*(self._run_cell_guarded(gid) for gid in self.ids))
        finally:
            for helper in helpers:
                helper.cancel()
            await self._http.aclose()

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.ctx.lease_s / 3)
            try:
                self._leases.take(list(self._held_leases))
                held: dict[InflightSlots, list[str]] = {}
                for gid, slots in list(self._slot_of.items()):
                    held.setdefault(slots, []).append(keys.slot_holder(gid))
                for slots, holders in held.items():
                    slots.renew(holders)
            except REDIS_ERRORS:  # Redis restarting: keep working; the reaper copes
                log.warning("lease heartbeat failed; retrying")

    # -- one cell ----------------------------------------------------------------------------
    async def _run_cell_guarded(self, gid: int) -> None:
        try:
            await self._run_cell(gid)
        except _CellFinished:
            pass
        except Exception as exc:  # a bug or an outage we did not foresee: say so on the cell
            log.exception("cell %s crashed", gid)
            await self._finish(gid, GenerationState.FAILED,
                               error=f"Internal error while running this cell: {exc!r}")
        finally:
            slots = self._slot_of.pop(gid, None)
            if slots is not None:
                _best_effort(slots.release, keys.slot_holder(gid))
                self._slot_freed.set()
            self._held_leases.discard(gid)
            _best_effort(self._leases.release, gid)

    async def _run_cell(self, gid: int) -> None:
        task = await self._db(cells.claim, gid, utcnow())
        if task is None or task.state.is_final:
            return
        if task.sweep_canceled or self._cancel_requested(task.sweep_id):
            await self._cancel(task, task.prediction_id)
        prediction_id, created = task.prediction_id, None
        if prediction_id is None:
            await self._acquire_slot(task)
            prediction_id, created = await self._submit(task)
        prediction = await self._poll(task, prediction_id, created)
        await self._complete(task, prediction)

    async def _acquire_slot(self, task: cells.CellTask) -> None:
        cap = task.inflight_cap or self.ctx.default_inflight_cap
        slots = self._slots.setdefault(
            task.model_ref, InflightSlots(self.ctx.redis, task.model_ref, cap, self.ctx.lease_s))
        async with self._slot_turn.setdefault(task.model_ref, asyncio.Lock()):
            waited = 0
            while True:
                if self._cancel_requested(task.sweep_id):
                    await self._cancel(task, None)
                self._slot_freed.clear()
                if await self._redis(slots.try_acquire, keys.slot_holder(task.id)):
                    break
                waited += 1
                # Slots freed on other machines are only seen by asking again.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._slot_freed.wait(), min(0.5, 0.05 * waited))
            self._slot_of[task.id] = slots

    async def _submit(self, task: cells.CellTask) -> tuple[str, dict[str, Any] | None]:
        """Create the prediction exactly once; its id is committed before anything else.
        Returns the id, and the prediction as the create answered (None when adopted)."""
        if task.state == GenerationState.SUBMITTING:
            adopted = await self._reconcile(task)
            if adopted:
                return adopted, None
        else:
            if not await self._begin_submit(task):
                state, pid = await self._db(cells.current_state, task.id)
                if pid:
                    return pid, None
                raise _CellFinished  # another worker owns the create now
        model_input = await self._model_input(task)
        attempts, throttled = 1, 0
        while True:
            await self._wait_for_rate()
            try:
                prediction = await self._client.predictions.async_create(
                    version=task.version_id, input=model_input)
                data = prediction.dict() if hasattr(prediction, "dict") else vars(prediction)
                await self._db(cells.record_prediction, task.id, data, utcnow())
                return prediction.id, data
            except Exception as exc:  # noqa: BLE001 - classified below
                failure = classify(exc)
            if failure.kind == Failure.REJECTED:
                await self._finish(task.id, GenerationState.FAILED, error=failure.message)
            if failure.kind == Failure.THROTTLED:
                throttled += 1
                if throttled > MAX_THROTTLED_WAITS:
                    await self._finish(task.id, GenerationState.FAILED, error=(
                        f"Still throttled after {throttled} waits: {failure.message}"))
                await asyncio.sleep(failure.retry_after_s or backoff_s(throttled))
                continue  # a 429 was never created: retrying cannot double-charge
            if attempts >= MAX_CREATE_ATTEMPTS:
                await self._finish(task.id, GenerationState.FAILED, error=(
                    f"Gave up creating the prediction after {attempts} attempts: "
                    f"{failure.message}"))
            await asyncio.sleep(backoff_s(attempts))
            if failure.kind == Failure.AMBIGUOUS:
                adopted = await self._reconcile(task, model_input)
                if adopted:
                    return adopted, None
            attempts += 1
            await self._db(cells.note_create_retry, task.id, utcnow(), failure.message)

    async def _reconcile(self, task: cells.CellTask,
                         model_input: dict[str, Any] | None = None) -> str | None:
        """After a create whose fate is unknown, look for it among recent predictions (the
        seed is always fixed, so an identical input is this cell's) and adopt it."""
        want = {k: v for k, v in (model_input or task.model_input).items() if k != task.image_input}
        cutoff = time.time() - RECONCILE_WINDOW_S
        cursor: Any = ...
        for _ in range(5):
            try:
                page = await self._client.predictions.async_list(cursor)
            except Exception:  # noqa: BLE001 - cannot see: treat as not found, retry create
                log.warning("could not list predictions to reconcile cell %s", task.id)
                return None
            for p in page.results:
                created = parse_replicate_time(p.created_at)
                if created and created.timestamp() < cutoff:
                    return None
                got = {k: v for k, v in (p.input or {}).items() if k != task.image_input}
                if p.version == task.version_id and got == want:
                    await self._db(cells.record_prediction, task.id, p.dict(), utcnow())
                    return p.id
            if not page.next:
                return None
            cursor = page.next
        return None

    async def _poll(self, task: cells.CellTask, prediction_id: str,
                    created: dict[str, Any] | None = None) -> dict[str, Any]:
        """Poll until the prediction is final. ``created``: the prediction as its create
        answered, so the first wait needs no request of its own."""
        last_ok = time.monotonic()
        errors = 0
        cancel_sent = False
        estimate = await self._estimate(task)
        while True:
            if not cancel_sent and self._cancel_requested(task.sweep_id):
                cancel_sent = await self._send_cancel(prediction_id)
            try:
                if created is not None:
                    data, created = created, None
                else:
                    data = (await self._client.predictions.async_get(prediction_id)).dict()
                last_ok, errors = time.monotonic(), 0
            except Exception as exc:  # noqa: BLE001
                failure = classify(exc)
                if failure.kind == Failure.REJECTED:  # 404: the prediction is gone
                    await self._finish(task.id, GenerationState.FAILED, error=failure.message)
                errors += 1
                if time.monotonic() - last_ok > POLL_GIVE_UP_S:
                    await self._finish(task.id, GenerationState.FAILED, error=(
                        f"Lost contact with the prediction {prediction_id} for "
                        f"{POLL_GIVE_UP_S // 60} minutes: {failure.message}"))
                await asyncio.sleep(failure.retry_after_s or backoff_s(errors))
                continue
            if data["status"] in ("succeeded", "failed", "canceled"):
                if data["status"] == "succeeded":
                    estimate.note(_timing(data, task.steps))
                return data
            await self._sleep_until_worth_polling(task, data, estimate)

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
                                         estimate: PredictTimeEstimate) -> None:
        """Wait until the prediction is worth asking about again; a cancel of the sweep is
        still noticed within the poll interval."""
        status = data["status"]
        since = parse_replicate_time(data.get("started_at" if status == "processing"
                                              else "created_at"))
        waited = (utcnow() - since).total_seconds() if since else 0.0
        wait = next_poll_in(status, waited, self.ctx.poll_interval_s,
                            estimate.expected_s(task.steps), estimate.expected_queue_s())
        deadline = time.monotonic() + wait
        while (left := deadline - time.monotonic()) > 0:
            if self._cancel_requested(task.sweep_id):
                return
            await asyncio.sleep(min(left, self.ctx.poll_interval_s))

    async def _complete(self, task: cells.CellTask, prediction: dict[str, Any]) -> None:
        metrics = prediction.get("metrics") or {}
        predict_time = metrics.get("predict_time")
        pricing = Pricing(**task.pricing)
        outputs = prediction.get("output") or []
        if isinstance(outputs, str):
            outputs = [outputs]
        timing = {
            "replicate_status": prediction["status"],
            "predict_time_s": predict_time,
            "started_at": parse_replicate_time(prediction.get("started_at")),
            "replicate_completed_at": parse_replicate_time(prediction.get("completed_at")),
        }
        created = parse_replicate_time(prediction.get("created_at"))
        timing["replicate_queue_s"] = seconds_between(created, timing["started_at"])
        billed = cost_of(pricing, predict_time, len(outputs) if prediction["status"] == "succeeded" else 0)
        status = prediction["status"]
        if status == "failed":
            await self._finish(task.id, GenerationState.FAILED, cost_usd=billed,
                               error=prediction.get("error") or "The prediction failed "
                               "on Replicate without an error message.", **timing)
        if status == "canceled":
            await self._finish(task.id, GenerationState.CANCELED, cost_usd=billed,
                               error=self._cancel_reason(task), **timing)
        if not outputs:
            # The client's Prediction model drops data_removed; a success with no output
            # can only mean Replicate already deleted it.
            reason = ("The prediction succeeded but its output is gone (data_removed): Replicate "
                      "deletes outputs an hour after completion, before this cell stored it.")
            await self._finish(task.id, GenerationState.FAILED, cost_usd=billed, error=reason,
                               **timing)
        started = time.monotonic()
        try:
            stored = await self._store_output(outputs[0], task)
        except (StorageError, _DownloadFailed) as exc:
            await self._finish(task.id, GenerationState.FAILED, cost_usd=billed, error=str(exc),
                               overhead_s=time.monotonic() - started, **timing)
        now = utcnow()
        await self._finish(task.id, GenerationState.SUCCEEDED, cost_usd=billed,
                           overhead_s=time.monotonic() - started, completed_at=now,
                           latency_s=seconds_between(task.enqueued_at, now), **stored, **timing)

    # -- helpers --------------------------------------------------------------------------------
    async def _store_output(self, url: str, task: cells.CellTask) -> dict[str, Any]:
        data = await self._download(url)
        return await asyncio.to_thread(self._store_sync, data, task)

    def _store_sync(self, data: bytes, task: cells.CellTask) -> dict[str, Any]:
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
        # Similarity, change, sharpness, identity against the input (never fails the cell).
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

    async def _model_input(self, task: cells.CellTask) -> dict[str, Any]:
        model_input = dict(task.model_input)
        if task.image_key:
            model_input[task.image_input] = await self._input_file_url(task)
        return model_input

    async def _input_file_url(self, task: cells.CellTask) -> str:
        """Upload each input image once per endpoint (Files API) and reuse its URL. The
        cells of a chunk start together, so they share one upload instead of racing."""
        return await _shared(self._uploads, task.image_sha256 or "",
                             lambda: self._upload_input(task))

    async def _upload_input(self, task: cells.CellTask) -> str:
        cache_key = keys.file_url(self.ctx.endpoint.base_url, task.image_sha256 or "")
        cached = await self._redis(self.ctx.redis.get, cache_key)
        if cached:
            return cached.decode()
        data = await asyncio.to_thread(self.ctx.store.get, task.image_key)
        for attempt in range(MAX_CREATE_ATTEMPTS):
            try:
                uploaded = await self._client.files.async_create(
                    io.BytesIO(data), metadata={"sha256": task.image_sha256})
                url = uploaded.urls["get"]
                _best_effort(self.ctx.redis.set, cache_key, url, ex=FILE_URL_TTL_S)
                return url
            except Exception as exc:  # noqa: BLE001
                failure = classify(exc)
                if failure.kind == Failure.REJECTED:
                    break
                await asyncio.sleep(failure.retry_after_s or backoff_s(attempt))
        # Fall back to inlining the image: always accepted, just a larger request.
        return "data:image/png;base64," + base64.b64encode(data).decode()

    async def _wait_for_rate(self) -> None:
        wait = await self._redis(self._rate.reserve)
        if wait > 0:
            await asyncio.sleep(wait)

    async def _begin_submit(self, task: cells.CellTask) -> bool:
        """pending → submitting if no cap would be crossed, in one transaction; over a cap
        the sweep halts and the cell is canceled with the numbers."""
        caps = dataclasses.replace(self.ctx.caps, sweep_usd=task.sweep_budget_usd)
        try:
            return await self._db(_begin_submit_within_caps, task, caps,
                                  not self.ctx.endpoint.is_emulator, utcnow())
        except BudgetExceeded as exc:
            await self._db(_halt_sweep, task.sweep_id, str(exc))
            await self._finish(task.id, GenerationState.CANCELED, error=str(exc))

    def _cancel_requested(self, sweep_id: int) -> bool:
        return self._cancels.is_set(sweep_id)

    def _cancel_reason(self, task: cells.CellTask) -> str:
        if self._cancel_requested(task.sweep_id):
            return "Canceled: the sweep was canceled."
        return "Canceled on Replicate (not by this dashboard)."

    async def _send_cancel(self, prediction_id: str) -> bool:
        try:
            await self._client.predictions.async_cancel(prediction_id)
            return True
        except Exception:  # noqa: BLE001 - try again at the next poll
            log.warning("cancel of %s failed; will retry", prediction_id)
            return False

    async def _cancel(self, task: cells.CellTask, prediction_id: str | None) -> None:
        if prediction_id:
            await self._send_cancel(prediction_id)
        await self._finish(task.id, GenerationState.CANCELED,
                           error="Canceled: the sweep was canceled.")

    async def _finish(self, gid: int, state: GenerationState, **values: Any) -> NoReturn:
        await self._db(cells.finish, gid, state, **values)
        raise _CellFinished

    async def _db_once(self, fn, *args: Any, **kwargs: Any) -> Any:  # noqa: ANN001
        """``fn(session, …)`` as one transaction in a thread."""
        def call() -> Any:
            with session_scope(self.ctx.engine) as session:
                return fn(session, *args, **kwargs)

        return await asyncio.to_thread(call)

    async def _db(self, fn, *args: Any, **kwargs: Any) -> Any:  # noqa: ANN001
        """``_db_once``, with a lost connection or a locked SQLite file retried (every
        transition is conditional, so running one twice is harmless)."""
        started, attempt = time.monotonic(), 0
        while True:
            try:
                return await self._db_once(fn, *args, **kwargs)
            except DBAPIError as exc:
                if not _is_transient(exc) or time.monotonic() - started > OUTAGE_TOLERANCE_S:
                    raise
                attempt += 1
                log.warning("database unavailable (%s); retrying", type(exc.orig).__name__)
                await asyncio.sleep(backoff_s(attempt, cap=5))

    async def _redis(self, fn, *args: Any, **kwargs: Any) -> Any:  # noqa: ANN001
        """A Redis call that must succeed: waits out a restart instead of failing the cell."""
        started, attempt = time.monotonic(), 0
        while True:
            try:
                return fn(*args, **kwargs)
            except REDIS_ERRORS:
                if time.monotonic() - started > OUTAGE_TOLERANCE_S:
                    raise
                attempt += 1
                log.warning("Redis unavailable; retrying")
                await asyncio.sleep(backoff_s(attempt, cap=5))


class _DownloadFailed(Exception):
    pass


class CancelFlags:
    """The sweeps' cancel flags as this runner last read them. One task reads the flags of
    every sweep the runner works on once a poll interval, instead of every waiting cell
    asking Redis each interval (the sweep's cancel is seen as soon as before)."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._canceled: dict[int, bool] = {}

    def is_set(self, sweep_id: int) -> bool:
        if sweep_id not in self._canceled:  # a sweep seen for the first time: ask now
            self._canceled[sweep_id] = self._read([sweep_id])[0]
        return self._canceled[sweep_id]

    async def watch(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            sweep_ids = list(self._canceled)
            if sweep_ids:
                self._canceled.update(zip(sweep_ids, self._read(sweep_ids)))

    def _read(self, sweep_ids: list[int]) -> list[bool]:
        try:
            pipe = self._redis.pipeline(transaction=False)
            for sweep_id in sweep_ids:
                pipe.exists(keys.sweep_cancel(sweep_id))
            return [bool(n) for n in pipe.execute()]
        except RedisError:  # Redis away: keep what was known; the database check at
            # pick-up and the reaper's re-raised flags stand
            return [self._canceled.get(sweep_id, False) for sweep_id in sweep_ids]


def _shared(futures: dict[str, asyncio.Future[Any]], key: str,
            start: Callable[[], Awaitable[Any]]) -> Awaitable[Any]:
    """One run of ``start()`` per key, awaited by every cell that asks for it (the cells of a
    chunk start together, so they would otherwise all do the same work at once)."""
    if key not in futures:
        futures[key] = asyncio.ensure_future(start())
    return asyncio.shield(futures[key])


def _best_effort(fn, *args: Any, **kwargs: Any) -> None:  # noqa: ANN001
    """Lease and slot bookkeeping: losing one only delays a resume, so never fail a cell."""
    try:
        fn(*args, **kwargs)
    except REDIS_ERRORS:
        log.warning("Redis unavailable for %s; continuing", getattr(fn, "__name__", fn))


def _is_transient(exc: DBAPIError) -> bool:
    if exc.connection_invalidated:
        return True
    text = str(exc.orig).lower()
    return any(sign in text for sign in ("database is locked", "connection", "server closed",
                                         "terminating", "could not connect", "timeout"))


def _begin_submit_within_caps(session, task: cells.CellTask, caps: Caps,  # noqa: ANN001
                              is_real: bool, now: dt.datetime) -> bool:
    check_before_create(session, caps, task.sweep_id, task.estimated_cell_usd,
                        is_real=is_real, now=now)
    return cells.begin_submit(session, task.id, now)


def _timing(prediction: dict[str, Any], steps: int | None) -> PredictionTiming:
    predict_s = (prediction.get("metrics") or {}).get("predict_time") or 0.0
    queued_s = seconds_between(parse_replicate_time(prediction.get("created_at")),
                               parse_replicate_time(prediction.get("started_at")))
    return PredictionTiming(predict_s=float(predict_s), steps=steps, queue_s=queued_s)


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


"""The Replicate-compatible HTTP API (``/v1/...``) as a Starlette app."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from core.emulator import admin, bodies
from core.emulator.config import EmulatorConfig
from core.emulator.faults import FaultInjector, FaultMiddleware
from core.emulator.schema import Catalog, InvalidField, ModelInfo, validate_input
from core.emulator.store import Prediction, Store
from core.emulator.throttle import CreateThrottle

TERMINAL = ("succeeded", "failed", "canceled", "aborted")
_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s?)?$")
_PREFER_WAIT = re.compile(r"^\s*wait(?:\s*=\s*(\d+))?\s*$")
Handler = Callable[[Request], Awaitable[Response]]


class Emulator:
    """Everything the routes share: config, state, throttle and faults."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.catalog = Catalog(deployments=config.deployments)
        self.store = Store(config)
        self.throttle = CreateThrottle(config)
        self.faults = FaultInjector()
        self.cancel_events: dict[str, asyncio.Event] = {}

    def reset(self) -> None:
        self.store.reset()
        self.throttle.reset()
        self.faults.clear()


class EmulatorApp(Starlette):
    """A Starlette app whose outermost layer is the fault injector."""

    emulator: Emulator

    def build_middleware_stack(self) -> ASGIApp:
        return FaultMiddleware(super().build_middleware_stack(), self.emulator.faults, self.emulator.store)


def problem(status: int, detail: str, title: str | None = None, headers: dict[str, str] | None = None,
            **extra: Any) -> JSONResponse:
    return JSONResponse(bodies.problem(status, detail, title, **extra), status_code=status,
                        headers=headers, media_type="application/problem+json")


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _emulator(request: Request) -> Emulator:
    return request.app.emulator


def _token(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() in ("bearer", "token") else ""


# Every API reply says it comes from the emulator: a client decides "emulated, never real
# spend" from this header, never from where the server runs.
EMULATOR_HEADER = "X-Replicate-Emulator"


def api(handler: Handler) -> Handler:
    """Authenticate, and add the rate-limit headers Replicate sends on every reply."""

    async def wrapped(request: Request) -> Response:
        token = _token(request)
        valid = _emulator(request).config.valid_tokens
        if not token or (valid is not None and token not in valid):
            refused = problem(401, "You did not pass a valid authentication token",
                              "Unauthenticated")
            refused.headers[EMULATOR_HEADER] = "1"
            return refused
        response = await handler(request)
        response.headers[EMULATOR_HEADER] = "1"
        response.headers.setdefault("ratelimit-remaining", "2999")
        response.headers.setdefault("ratelimit-reset", "1")
        return response

    return wrapped


def _not_found(detail: str = "Not found.") -> JSONResponse:
    return problem(404, detail)


def _validation_failed(fields: list[InvalidField]) -> JSONResponse:
    detail = "".join(f"- {f.field}: {f.description}\n" for f in fields)
    return problem(422, detail, "Input validation failed", invalid_fields=[f.as_json() for f in fields])


async def _json_body(request: Request) -> dict[str, Any] | JSONResponse:
    try:
        body = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError):
        return problem(400, "The request body is not valid JSON.", "Bad Request")
    if not isinstance(body, dict):
        return problem(400, "The request body must be a JSON object.", "Bad Request")
    return body


@api
async def create_prediction(request: Request) -> Response:
    body = await _json_body(request)
    if isinstance(body, Response):
        return body
    version_ref = body.get("version")
    if not isinstance(version_ref, str) or not version_ref:
        return _validation_failed([InvalidField("required", "version", "version is required")])
    resolved = _emulator(request).catalog.resolve_version(version_ref)
    if resolved is None:
        return _not_found("The specified version does not exist (or perhaps you don't have "
                          "permission to use it?)")
    return await _create(request, body, *resolved, via="versioned")


@api
async def create_model_prediction(request: Request) -> Response:
    return await _create_by_name(request, "model", via="official")


@api
async def create_deployment_prediction(request: Request) -> Response:
    return await _create_by_name(request, "deployment", via="deployment")


async def _create_by_name(request: Request, kind: str, *, via: str) -> Response:
    """``POST /v1/{models|deployments}/{owner}/{name}/predictions``: the model or deployment
    named in the path, at its latest version."""
    body = await _json_body(request)
    if isinstance(body, Response):
        return body
    p = request.path_params
    catalog = _emulator(request).catalog
    model = (catalog.model if kind == "model" else catalog.deployment)(p["owner"], p["name"])
    if model is None:
        return _not_found(f"The requested {kind} does not exist (or perhaps you don't have "
                          "permission to use it?)")
    return await _create(request, body, model, model.latest_version_id, via=via)


def parse_cancel_after(text: str) -> float | None:
    """``Cancel-After: 30s | 5m | 1h30m45s | 90`` (bare numbers are seconds) → seconds."""
    match = _DURATION.match(text.strip().lower())
    if not text.strip() or match is None or not any(match.groups()):
        return None
    hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


async def _create(request: Request, body: dict[str, Any], model: ModelInfo, version_id: str,
                  *, via: str) -> Response:
    emu = _emulator(request)
    values = body.get("input", {})
    invalid = validate_input(model.versions[version_id], values)
    if invalid:
        return _validation_failed(invalid)
    cancel_after = None
    if "cancel-after" in request.headers:
        cancel_after = parse_cancel_after(request.headers["cancel-after"])
        if cancel_after is None or cancel_after < 5:
            return problem(400, "Cancel-After must be a duration of at least 5 seconds, such as "
                                "30s, 5m or 1h30m.", "Bad Request")
    now = time.time()
    retry_after = emu.throttle.try_acquire(now)
    if retry_after is not None:
        emu.store.counters["throttled_total"] += 1
        detail = f"Request was throttled. Your rate limit resets in ~{retry_after}s."
        return problem(429, detail, "Request was throttled", retry_after=retry_after,
                       headers={"Retry-After": str(retry_after), "ratelimit-remaining": "0",
                                "ratelimit-reset": str(retry_after)})
    pred = emu.store.create(model, version_id, values, now, own_host=request.headers.get("host", ""),
                            cancel_after_s=cancel_after)
    emu.store.creates_by_endpoint[f"{via} {model.ref}"] += 1
    headers = {"ratelimit-remaining": str(emu.throttle.remaining()), "ratelimit-reset": "1"}
    prefer = _PREFER_WAIT.match(request.headers.get("prefer", ""))
    if prefer is None:
        return JSONResponse(_body(request, pred, now), status_code=201, headers=headers)
    headers["Preference-Applied"] = request.headers["prefer"].strip()
    wait_s = min(float(prefer[1]) if prefer[1] else 60.0, emu.config.max_wait_s)
    finished = await _wait(emu, pred, wait_s)
    reply = _body(request, pred, time.time())
    return JSONResponse(reply if finished else bodies.as_starting(reply), status_code=201, headers=headers)


async def _wait(emu: Emulator, pred: Prediction, seconds: float) -> bool:
    """Block until the prediction is terminal (True) or ``seconds`` pass (False)."""
    deadline = time.time() + seconds
    event = emu.cancel_events.setdefault(pred.id, asyncio.Event())
    try:
        while (now := time.time()) < deadline:
            if pred.status(now) in TERMINAL:
                return True
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(event.wait(), min(deadline, pred.ends) - now + 0.001)
        return pred.status(time.time()) in TERMINAL
    finally:
        emu.cancel_events.pop(pred.id, None)


def _body(request: Request, pred: Prediction, now: float) -> dict[str, Any]:
    return bodies.prediction(pred, now, _base(request), _emulator(request).config.retention_s)


@api
async def get_prediction(request: Request) -> Response:
    pred = _emulator(request).store.predictions.get(request.path_params["id"])
    if pred is None:
        return _not_found()
    return JSONResponse(_body(request, pred, time.time()))


@api
async def cancel_prediction(request: Request) -> Response:
    emu = _emulator(request)
    pred = emu.store.predictions.get(request.path_params["id"])
    if pred is None:
        return _not_found()
    now = time.time()
    emu.store.counters["cancels_total"] += 1
    emu.store.cancel(pred, now)
    if pred.id in emu.cancel_events:
        emu.cancel_events[pred.id].set()
    return JSONResponse(_body(request, pred, now))


@api
async def list_predictions(request: Request) -> Response:
    cursor_text = request.query_params.get("cursor")
    cursor = int(cursor_text) if cursor_text and cursor_text.isdigit() else None
    items, older, newer = _emulator(request).store.page(cursor)
    now, url = time.time(), f"{_base(request)}/v1/predictions?cursor="
    return JSONResponse({
        "previous": f"{url}{newer}" if newer is not None else None,
        "next": f"{url}{older}" if older is not None else None,
        "results": [_body(request, p, now) for p in items],
    })


@api
async def get_model(request: Request) -> Response:
    p = request.path_params
    model = _emulator(request).catalog.model(p["owner"], p["name"])
    return JSONResponse(model.as_json()) if model else _not_found()


@api
async def get_version(request: Request) -> Response:
    p = request.path_params
    model = _emulator(request).catalog.model(p["owner"], p["name"])
    version = model.versions.get(p["id"]) if model else None
    return JSONResponse(version) if version else _not_found()


async def get_output(request: Request) -> Response:
    """Output files: unauthenticated, like replicate.delivery URLs."""
    p = request.path_params
    store = _emulator(request).store
    png = await run_in_threadpool(store.output_png, p["id"], int(p["index"]), time.time())
    if png is None:
        return Response("Not found", status_code=404, media_type="text/plain")
    return Response(png, media_type="image/png", headers={"cache-control": "public, max-age=3600"})


def create_app(config: EmulatorConfig | None = None) -> Starlette:
    """A new emulator app with its own in-memory state."""
    from core.emulator import files

    routes = [
        Route("/v1/predictions", create_prediction, methods=["POST"]),
        Route("/v1/predictions", list_predictions, methods=["GET"]),
        Route("/v1/predictions/{id}", get_prediction, methods=["GET"]),
        Route("/v1/predictions/{id}/cancel", cancel_prediction, methods=["POST"]),
        Route("/v1/models/{owner}/{name}", get_model, methods=["GET"]),
        Route("/v1/models/{owner}/{name}/predictions", create_model_prediction, methods=["POST"]),
        Route("/v1/deployments/{owner}/{name}/predictions", create_deployment_prediction,
              methods=["POST"]),
        Route("/v1/models/{owner}/{name}/versions/{id}", get_version, methods=["GET"]),
        Route("/_emulator/outputs/{id}/out-{index:int}.png", get_output, methods=["GET"]),
        *files.routes(api),
        *admin.routes(),
    ]
    app = EmulatorApp(routes=routes)
    app.emulator = Emulator(config or EmulatorConfig())
    return app

"""Unauthenticated control routes under ``/_emulator/`` for tests and demos.

POST   /_emulator/faults   add a fault, e.g. {"route": "create", "status": 503, "count": 2}
GET    /_emulator/faults   list pending faults
DELETE /_emulator/faults   clear them
GET    /_emulator/stats    counters (creates, per-input-hash creates, statuses, requests)
POST   /_emulator/reset    forget everything: predictions, files, counters, faults, throttle
POST   /_emulator/config   change numeric settings at runtime, e.g. {"failure_rate": 0.5}
POST   /_emulator/age      make every prediction and file N seconds older: {"seconds": 300}
GET    /_emulator/health   {"ok": true}
"""

from __future__ import annotations

import json
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from core.emulator.faults import Fault

RUNTIME_SETTINGS = {
    "queue_delay_s", "predict_time_s", "predict_time_sigma", "failure_rate", "server_error_rate",
    "rate_limit_per_minute", "burst", "retention_s", "max_wait_s", "fault_hang_s", "cold_boot_share",
}


def _emulator(request: Request) -> Any:
    return request.app.emulator


def _bad(detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail, "status": 400}, status_code=400,
                        media_type="application/problem+json")


async def _json(request: Request) -> Any:
    raw = await request.body()
    return json.loads(raw) if raw.strip() else {}


async def add_fault(request: Request) -> Response:
    try:
        fault = Fault.from_json(await _json(request))
    except (ValueError, TypeError) as exc:
        return _bad(str(exc))
    faults = _emulator(request).faults
    faults.add(fault)
    return JSONResponse({"faults": [f.as_json() for f in faults.faults]}, status_code=201)


async def list_faults(request: Request) -> Response:
    return JSONResponse({"faults": [f.as_json() for f in _emulator(request).faults.faults]})


async def clear_faults(request: Request) -> Response:
    _emulator(request).faults.clear()
    return JSONResponse({"faults": []})


async def stats(request: Request) -> Response:
    return JSONResponse(_emulator(request).store.stats(time.time()))


async def reset(request: Request) -> Response:
    _emulator(request).reset()
    return JSONResponse({"ok": True})


async def update_config(request: Request) -> Response:
    try:
        changes = await _json(request)
    except ValueError as exc:
        return _bad(str(exc))
    if not isinstance(changes, dict) or set(changes) - RUNTIME_SETTINGS:
        return _bad(f"settings that can change at runtime: {sorted(RUNTIME_SETTINGS)}")
    for name, value in changes.items():
        if value is not None and not isinstance(value, (int, float)):
            return _bad(f"{name} must be a number")
    config = _emulator(request).config
    for name, value in changes.items():
        setattr(config, name, value)
    return JSONResponse({name: getattr(config, name) for name in sorted(RUNTIME_SETTINGS)})


async def age(request: Request) -> Response:
    try:
        seconds = (await _json(request)).get("seconds")
    except (ValueError, AttributeError) as exc:
        return _bad(str(exc))
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
        return _bad("give {\"seconds\": N}, N a number of seconds, 0 or more")
    _emulator(request).store.age(float(seconds))
    return JSONResponse({"aged_s": seconds})


async def health(request: Request) -> Response:
    return JSONResponse({"ok": True})


def routes() -> list[Route]:
    return [
        Route("/_emulator/faults", add_fault, methods=["POST"]),
        Route("/_emulator/faults", list_faults, methods=["GET"]),
        Route("/_emulator/faults", clear_faults, methods=["DELETE"]),
        Route("/_emulator/stats", stats, methods=["GET"]),
        Route("/_emulator/reset", reset, methods=["POST"]),
        Route("/_emulator/config", update_config, methods=["POST"]),
        Route("/_emulator/age", age, methods=["POST"]),
        Route("/_emulator/health", health, methods=["GET"]),
    ]

"""Fault injection: errors, dropped connections, hangs and cut-off bodies, set at runtime.

Faults live in an ASGI layer outside Starlette's own middleware, so that they see uvicorn's
``send`` and can reach the connection to drop it without a reply.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import socket
import struct
from dataclasses import asdict, dataclass
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.emulator import bodies
from core.emulator.store import Store

ROUTES = ("create", "get", "list", "cancel", "output", "files", "models", "*")
ACTIONS = ("reset", "timeout", "truncate")
STATUSES = (429, 500, 502, 503, 504)
_TITLES = {429: "Request was throttled", 500: "Internal Server Error", 502: "Bad Gateway",
           503: "Service Unavailable", 504: "Gateway Timeout"}
_PREDICTION = re.compile(r"^/v1/predictions/[^/]+$")
_CANCEL = re.compile(r"^/v1/predictions/[^/]+/cancel$")
_MODEL_CREATE = re.compile(r"^/v1/models/[^/]+/[^/]+/predictions$")


@dataclass
class Fault:
    route: str
    count: int = 1
    status: int | None = None
    action: str | None = None
    after: bool = False
    """Run the real handler first (a create really happens), then lose its reply."""
    retry_after: int = 1

    @classmethod
    def from_json(cls, spec: Any) -> Fault:
        if not isinstance(spec, dict):
            raise ValueError("a fault is a JSON object")
        unknown = set(spec) - {"route", "count", "status", "action", "after", "retry_after"}
        if unknown:
            raise ValueError(f"unknown fault keys: {sorted(unknown)}")
        fault = cls(**spec)
        if fault.route not in ROUTES:
            raise ValueError(f"route must be one of {ROUTES}, not {fault.route!r}")
        if (fault.status is None) == (fault.action is None):
            raise ValueError("give exactly one of 'status' or 'action'")
        if fault.status is not None and fault.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}")
        if fault.action is not None and fault.action not in ACTIONS:
            raise ValueError(f"action must be one of {ACTIONS}")
        if not isinstance(fault.count, int) or fault.count < 1:
            raise ValueError("count must be a positive integer")
        return fault

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def classify(method: str, path: str) -> str | None:
    """The fault route a request belongs to; None for admin and unknown paths."""
    if path.startswith("/_emulator/outputs/"):
        return "output"
    if not path.startswith("/v1/"):
        return None
    if method == "POST" and (path == "/v1/predictions" or _MODEL_CREATE.match(path)):
        return "create"
    if path == "/v1/predictions":
        return "list"
    if _CANCEL.match(path):
        return "cancel"
    if _PREDICTION.match(path):
        return "get"
    if path.startswith("/v1/files"):
        return "files"
    return "models"


class FaultInjector:
    def __init__(self) -> None:
        self.faults: list[Fault] = []

    def add(self, fault: Fault) -> None:
        self.faults.append(fault)

    def clear(self) -> None:
        self.faults.clear()

    def take(self, route: str) -> Fault | None:
        for fault in self.faults:
            if fault.route in (route, "*") and (route != "output" or fault.route == "output"):
                fault.count -= 1
                if fault.count <= 0:
                    self.faults.remove(fault)
                return fault
        return None


async def abort_connection(send: Send) -> bool:
    """Drop the TCP connection with a reset, without any reply. False if not possible."""
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is None:
        return False
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
    # Let connection_lost run, so uvicorn knows the client is gone and sends no 500.
    for _ in range(2):
        await asyncio.sleep(0)
    return True


async def _wait_for_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


class FaultMiddleware:
    def __init__(self, app: ASGIApp, injector: FaultInjector, store: Store) -> None:
        self.app = app
        self.injector = injector
        self.store = store

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = classify(scope["method"], scope["path"])
        if route is None:
            await self.app(scope, receive, send)
            return
        self.store.counters["requests_total"] += 1
        fault = self.injector.take(route)
        rate = self.store.config.server_error_rate
        if fault is None and rate and route != "output" and random.random() < rate:
            fault = Fault(route=route, status=random.choice((500, 502, 503)))
        if fault is None:
            await self.app(scope, receive, send)
            return
        self.store.counters["faults_injected_total"] += 1
        captured: list[Message] = []
        if fault.after or fault.action == "truncate":
            async def capture(message: Message) -> None:
                captured.append(message)
            await self.app(scope, receive, capture)
        await self._apply(fault, captured, receive, send)

    async def _apply(self, fault: Fault, captured: list[Message], receive: Receive, send: Send) -> None:
        if fault.status is not None:
            await _send_problem(send, fault)
        elif fault.action == "truncate" and captured:
            start, body = captured[0], b"".join(m.get("body", b"") for m in captured[1:])
            await send(start)
            await send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})
            await asyncio.sleep(0.05)  # let the partial body reach the socket before the reset
            await abort_connection(send)
        elif fault.action == "timeout":
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(_wait_for_disconnect(receive), self.store.config.fault_hang_s)
            await abort_connection(send)
        else:
            await abort_connection(send)


async def _send_problem(send: Send, fault: Fault) -> None:
    import json

    status = fault.status or 500
    headers = [(b"content-type", b"application/problem+json")]
    if status == 429:
        detail = f"Request was throttled. Your rate limit resets in ~{fault.retry_after}s."
        body = bodies.problem(429, detail, _TITLES[429], retry_after=fault.retry_after)
        headers.append((b"retry-after", str(fault.retry_after).encode()))
    else:
        body = bodies.problem(status, f"Injected fault: HTTP {status}", _TITLES[status])
    payload = json.dumps(body).encode()
    headers.append((b"content-length", str(len(payload)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})

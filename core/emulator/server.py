"""Running the emulator: blocking (CLI) or in a background thread (tests, demos)."""

from __future__ import annotations

import socket
import sys
import threading
import time
from types import TracebackType

import uvicorn

from core.emulator.app import create_app
from core.emulator.config import EmulatorConfig


def _uvicorn_config(config: EmulatorConfig) -> uvicorn.Config:
    return uvicorn.Config(
        create_app(config),
        http="auto",  # httptools when installed, else h11
        lifespan="off",
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=1,
        timeout_keep_alive=30,
    )


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on accepted sockets whose
    # proto says TCP, and without it Nagle + delayed ACK cap each connection at ~25 req/s.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def serve(host: str = "127.0.0.1", port: int = 8787, config: EmulatorConfig | None = None) -> None:
    """Serve until interrupted; prints the base URL once listening (port 0 picks one)."""
    sock = _bind(host, port)
    server = uvicorn.Server(_uvicorn_config(config or EmulatorConfig()))
    print(f"Replicate emulator listening on {_url(host, sock.getsockname()[1])}", flush=True)
    server.run(sockets=[sock])


class EmulatorServer:
    """The emulator on a loopback port in a background thread.

    with EmulatorServer(EmulatorConfig.fast()) as server:
        client = replicate.Client(api_token="r8_test", base_url=server.base_url)
    """

    def __init__(self, config: EmulatorConfig | None = None, host: str = "127.0.0.1",
                 port: int = 0) -> None:
        self.config = config or EmulatorConfig()
        self._sock = _bind(host, port)
        self.host, self.port = host, self._sock.getsockname()[1]
        self.base_url = _url(host, self.port)
        self._server = uvicorn.Server(_uvicorn_config(self.config))
        self.app = self._server.config.app
        self._thread: threading.Thread | None = None

    def start(self, timeout: float = 10.0) -> EmulatorServer:
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]},
                                        name=f"emulator:{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"emulator did not start on {self.base_url}")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self._thread is None:
            self._sock.close()
            return
        self._server.should_exit = True
        self._thread.join(timeout)
        if self._thread.is_alive():  # pragma: no cover - only when a handler ignores cancellation
            print(f"emulator thread on port {self.port} did not stop", file=sys.stderr)
        self._thread = None
        self._sock.close()

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

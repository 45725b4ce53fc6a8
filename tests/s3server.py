"""A real S3 endpoint for tests: moto's server on loopback, in a thread of the test process.

Every server started in one process shares moto's in-memory backend, so tests should use
their own bucket names (``unique_bucket_name``) rather than expect an empty account.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

from moto.server import ThreadedMotoServer

DUMMY_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
# Variables that could make boto3 reach for a real account from a developer's machine.
REAL_AWS_ENV = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ENDPOINT_URL")


def start_moto_server(port: int = 0) -> tuple[str, Callable[[], None]]:
    """Start moto on 127.0.0.1 and ``port`` (a free one when 0); return (endpoint_url, stop).
    Started again on the same port after a stop, it serves the same buckets (the backend
    lives in this process), as an S3 outage that ends would."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one log line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    stopped = []

    def stop() -> None:  # idempotent, so a test's cleanup may call it again
        if stopped:
            return
        stopped.append(True)
        server.stop()
        # moto's stop() ends serve_forever() but leaves the listening socket open, so a
        # client would hang instead of being refused; close it to release the port.
        if server._server is not None:
            server._server.server_close()

    return f"http://{host}:{port}", stop


def unique_bucket_name(label: str = "media") -> str:
    return f"{label}-{uuid.uuid4().hex[:12]}"

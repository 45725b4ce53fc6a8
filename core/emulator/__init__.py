"""A local Replicate-compatible API emulator (real HTTP on loopback).

Point the official client at it: ``replicate.Client(api_token=..., base_url=server.base_url)``.
It follows the recorded api.replicate.com behaviour for stability-ai/sdxl: predictions walking
starting → processing → succeeded/failed/canceled, ``Prefer: wait``, the Files API, problem+json
errors (401/404/422/429), throttling, output retention, and procedural deterministic images.
Admin routes under ``/_emulator/`` inject faults and expose counters (see ``admin.py``).
"""

from core.emulator.app import create_app
from core.emulator.config import EmulatorConfig, add_cli_arguments, config_from_args
from core.emulator.server import EmulatorServer, serve

__all__ = [
    "EmulatorConfig",
    "EmulatorServer",
    "add_cli_arguments",
    "config_from_args",
    "create_app",
    "serve",
]

"""The Files API: upload, fetch metadata, download, list, delete."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from core.emulator import bodies


def _emulator(request: Request) -> Any:
    return request.app.emulator


def _problem(status: int, detail: str) -> JSONResponse:
    return JSONResponse(bodies.problem(status, detail), status_code=status,
                        media_type="application/problem+json")


async def create_file(request: Request) -> Response:
    try:
        form = await request.form()
    except Exception as exc:  # noqa: BLE001 - malformed multipart: report it instead of a 500
        return _problem(400, f"Could not parse the multipart body: {exc}")
    try:
        content = form.get("content")
        if not isinstance(content, UploadFile):
            return _problem(422, "The multipart field 'content' with the file is required.")
        try:
            metadata = json.loads(form.get("metadata") or "{}")  # type: ignore[arg-type]
        except ValueError:
            metadata = None
        if not isinstance(metadata, dict):
            return _problem(422, "The field 'metadata' must be a JSON object.")
        data = await content.read()
        record = _emulator(request).store.add_file(
            name=content.filename or "file",
            content_type=content.content_type or "application/octet-stream",
            data=data, metadata=metadata, now=time.time())
    finally:
        await form.close()
    return JSONResponse(bodies.file(record, _base(request)), status_code=201)


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


async def get_file(request: Request) -> Response:
    record = _emulator(request).store.files.get(request.path_params["id"])
    if record is None:
        return _problem(404, "Not found.")
    return JSONResponse(bodies.file(record, _base(request)))


async def download_file(request: Request) -> Response:
    store = _emulator(request).store
    record = store.files.get(request.path_params["id"])
    if record is None:
        return _problem(404, "Not found.")
    return Response(store.file_bytes(record), media_type=record.content_type,
                    headers={"content-disposition": f'attachment; filename="{record.name}"'})


async def list_files(request: Request) -> Response:
    base = _base(request)
    records = reversed(list(_emulator(request).store.files.values()))
    return JSONResponse({"previous": None, "next": None,
                         "results": [bodies.file(r, base) for r in records]})


async def delete_file(request: Request) -> Response:
    store = _emulator(request).store
    if store.files.pop(request.path_params["id"], None) is None:
        return _problem(404, "Not found.")
    store.counters["files_deleted_total"] += 1
    return Response(status_code=204)


def routes(api: Callable[..., Any]) -> list[Route]:
    """The routes, each wrapped in the caller's authentication decorator."""
    return [
        Route("/v1/files", api(create_file), methods=["POST"]),
        Route("/v1/files", api(list_files), methods=["GET"]),
        Route("/v1/files/{id}", api(get_file), methods=["GET"]),
        Route("/v1/files/{id}", api(delete_file), methods=["DELETE"]),
        Route("/v1/files/{id}/download", api(download_file), methods=["GET"]),
    ]

"""Deleting a photo everywhere it went: its rows and files here (``core.data.library``), its
predictions still running on Replicate, and the copy uploaded to Replicate's Files API with
the URL cached for it in Redis.

The rows go first, in one transaction; everything after is best effort and said in the
result. A worker whose cell went meanwhile keeps nothing (``core.engine.execution``: a
prediction it creates or finds afterwards is canceled, an output that arrives is not stored,
an upload racing the delete is removed), so nothing survives a failed cancel but its bill.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.data import keys, redisio
from core.data.db import session_scope
from core.data.library import delete_image, purge
from core.data.models import FINAL_STATES, Generation, InputImage
from core.engine.replicate_api import build_client, file_id, uploaded_files
from core.errors import NotFound, RedisUnavailable, TunerError

if TYPE_CHECKING:
    from core.runtime import Runtime

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class PhotoDeleted:
    generations: int  # rows made from the photo, deleted with it
    predictions_canceled: int  # still running on Replicate when it was deleted
    uploads_deleted: int  # copies on Replicate's Files API
    problems: tuple[str, ...] = ()  # what could not be cleaned up on Replicate or in Redis


def delete_photo(runtime: Runtime, image_id: int, *, actor: str) -> PhotoDeleted:
    """Delete the photo and everything made from it (audited), then cancel its running
    predictions and remove its Files-API copy and cached URL."""
    with session_scope(runtime.engine) as session:
        sha256, running = _photo_and_running(session, image_id)
        generations, doomed = delete_image(session, image_id, actor=actor)
    purge(runtime.store, doomed)
    problems: list[str] = []
    try:
        client = build_client(runtime.endpoint)
    except TunerError as exc:  # no Replicate configured: nothing of it can be there
        return PhotoDeleted(generations, 0, 0, (f"Replicate not reached: {exc}",))
    canceled = 0
    for prediction_id in running:
        try:
            client.predictions.cancel(prediction_id)
            canceled += 1
        except Exception as exc:  # noqa: BLE001 - said in the result; its worker stores nothing
            problems.append(f"Could not cancel prediction {prediction_id}: {exc}")
    uploads = forget_upload(runtime, client, sha256, problems)
    for problem in problems:
        log.warning("deleting photo %s: %s", image_id, problem)
    return PhotoDeleted(generations, canceled, uploads, tuple(problems))


def _photo_and_running(session: Session, image_id: int) -> tuple[str, list[str]]:
    image = session.get(InputImage, image_id)
    if image is None:
        raise NotFound(f"Input image {image_id} does not exist (already deleted?).")
    running = session.scalars(select(Generation.prediction_id).where(
        Generation.input_image_id == image_id, Generation.prediction_id.is_not(None),
        Generation.state.not_in(FINAL_STATES)))
    return image.sha256, [p for p in running if p]


def forget_upload(runtime: Runtime, client, sha256: str,  # noqa: ANN001 - a replicate.Client
                  problems: list[str]) -> int:
    """Delete the photo's copies on the Files API (the cached one, and any other listed
    with its checksum or our metadata) and its cached URL; returns how many went."""
    cache_key = keys.file_url(runtime.endpoint.base_url, sha256)
    file_ids: set[str] = set()
    try:
        cached = redisio.call(runtime.redis.get, cache_key)
        if cached:
            found = file_id(cached.decode() if isinstance(cached, bytes) else cached,
                            runtime.endpoint.base_url)
            if found is not None:
                file_ids.add(found)
        redisio.call(runtime.redis.delete, cache_key)
    except RedisUnavailable as exc:
        problems.append(f"Could not drop the cached upload URL: {exc}")
    try:
        file_ids.update(f["id"] for f in uploaded_files(client)
                        if (f.get("checksums") or {}).get("sha256") == sha256
                        or (f.get("metadata") or {}).get("sha256") == sha256)
    except Exception as exc:  # noqa: BLE001 - the cached copy is still deleted below
        problems.append(f"Could not list the uploaded files: {exc}")
    deleted = 0
    for doomed_id in sorted(file_ids):
        try:
            deleted += bool(client.files.delete(doomed_id))
        except Exception as exc:  # noqa: BLE001 - said in the result
            if getattr(exc, "status", None) == 404:  # already gone
                continue
            problems.append(f"Could not delete the uploaded copy {doomed_id}: {exc}")
    return deleted


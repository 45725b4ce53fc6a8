"""The library of input images: stored once by content hash, deletable with all they made."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.data.audit import record
from core.config import Settings
from core.errors import NotFound
from core.data.images import make_thumbnail, validate_upload
from core.data.models import Generation, InputImage
from core.data.storage import MediaStore


def add_image(session: Session, store: MediaStore, settings: Settings, data: bytes, *,
              filename: str | None, uploaded_by: str) -> InputImage:
    """Validate, normalise and store an upload; the same picture twice is one image."""
    info = validate_upload(data, max_bytes=settings.upload_max_bytes,
                           max_pixels=settings.upload_max_pixels, filename=filename)
    existing = session.scalar(select(InputImage).where(InputImage.sha256 == info.sha256))
    if existing is not None:
        return existing
    key = store.put(info.data, kind="inputs", content_type=info.content_type)
    thumb, thumb_type = make_thumbnail(info.data, max_px=settings.thumbnail_max_px)
    image = InputImage(
        sha256=info.sha256, storage_key=key,
        thumbnail_key=store.put(thumb, kind="thumbnails", content_type=thumb_type),
        content_type=info.content_type, width=info.width, height=info.height,
        size_bytes=len(info.data), label=(filename or "")[:200], uploaded_by=uploaded_by,
    )
    session.add(image)
    session.flush()
    record(session, uploaded_by, "upload_image", "input_image", image.id,
           {"sha256": info.sha256, "label": image.label})
    return image


def list_images(session: Session, limit: int = 200) -> list[InputImage]:
    return list(session.scalars(select(InputImage).order_by(InputImage.created_at.desc())
                                .limit(limit)))


def delete_image(session: Session, image_id: int, *, actor: str) -> tuple[int, set[str]]:
    """Delete an input image and every generation made from it; audit who did it.

    Returns how many generations went and the storage keys no row refers to any more: the
    caller deletes those (``purge``) after its transaction commits, so a rollback never
    leaves rows pointing at deleted files."""
    image = session.get(InputImage, image_id)
    if image is None:
        raise NotFound(f"Input image {image_id} does not exist (already deleted?).")
    from core.scenarios.testsets import drop_image  # a higher layer's rows that name the photo

    sets_changed = drop_image(session, image_id, actor=actor)
    generations = list(session.scalars(select(Generation).where(Generation.input_image_id == image_id)))
    doomed_keys = {key for key in (image.storage_key, image.thumbnail_key) if key}
    for gen in generations:
        doomed_keys.update(key for key in (gen.output_key, gen.thumbnail_key) if key)
        session.delete(gen)
    record(session, actor, "delete_image", "input_image", image_id,
           {"sha256": image.sha256, "label": image.label, "generations_deleted": len(generations),
            "test_sets_changed": sets_changed})
    session.delete(image)
    session.flush()
    return len(generations), unreferenced(session, doomed_keys)


def purge(store: MediaStore, keys: set[str]) -> None:
    for key in sorted(keys):
        store.delete(key)


def unreferenced(session: Session, keys: set[str]) -> set[str]:
    """The storage keys among ``keys`` that no row refers to (safe to ``purge``)."""
    return set(keys) - _keys_in_use(session, keys)


def _keys_in_use(session: Session, keys: set[str]) -> set[str]:
    if not keys:
        return set()
    used: set[str] = set()
    for column in (Generation.output_key, Generation.thumbnail_key):
        used.update(session.scalars(select(column).where(column.in_(keys))))
    for column in (InputImage.storage_key, InputImage.thumbnail_key):
        used.update(session.scalars(select(column).where(column.in_(keys))))
    return used

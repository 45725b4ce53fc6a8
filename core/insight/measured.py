"""Output metrics in the database: measured when an output is stored, backfilled for older
outputs, read back per sweep. The measuring itself is ``core.insight.metrics``."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable, Sequence

from sqlalchemy import Engine, delete, func, or_, select
from sqlalchemy.orm import Session

from core.data.db import session_scope
from core.data.models import Generation, GenerationState, InputImage, OutputMetrics, utcnow
from core.data.storage import MediaStore
from core.errors import InvalidInput
from core.insight.metrics import METRICS_VERSION, ImageLike, Metrics, ReferenceCache, measure

log = logging.getLogger(__name__)
_REFERENCES = ReferenceCache()  # one per process: a worker's cells share their input's decode


def save(session: Session, generation_id: int, metrics: Metrics) -> None:
    """Store (or replace) the metrics of one generation."""
    session.execute(delete(OutputMetrics).where(OutputMetrics.generation_id == generation_id))
    session.add(OutputMetrics(generation_id=generation_id, **_columns(metrics),
                              measured_at=utcnow()))


def record_output(engine: Engine, store: MediaStore, generation_id: int, image_key: str | None,
                  image_sha256: str | None, output: ImageLike) -> Metrics | None:
    """Measure a just-stored output against its input and save the metrics, in one
    transaction of its own. The store step's hook: it never fails the cell — a metric that
    could not be measured or saved is logged and left to ``backfill``."""
    if not image_key:
        return None
    try:
        reference = _REFERENCES.get(image_sha256 or image_key, lambda: store.get(image_key))
        metrics = measure(reference, output)
        with session_scope(engine) as session:
            save(session, generation_id, metrics)
        return metrics
    except Exception:
        log.warning("could not measure the output of generation %s", generation_id,
                    exc_info=True)
        return None


@dataclasses.dataclass(frozen=True)
class BackfillResult:
    measured: int
    failed: list[tuple[int, str]]  # generation id, why
    remaining: int  # still without current metrics (over the limit)


def missing(session: Session, *, sweep_id: int | None = None, redo: bool = False) -> list[int]:
    """Succeeded generations with an output and an input but no metrics of the current
    version (all of them with ``redo``), oldest first."""
    query = (select(Generation.id)
             .outerjoin(OutputMetrics, OutputMetrics.generation_id == Generation.id)
             .where(Generation.state == GenerationState.SUCCEEDED,
                    Generation.output_key.is_not(None), Generation.input_image_id.is_not(None),
                    Generation.reused_from_id.is_(None))  # a reused output is measured once
             .order_by(Generation.id))
    if not redo:
        query = query.where(or_(OutputMetrics.generation_id.is_(None),
                                OutputMetrics.version < METRICS_VERSION))
    if sweep_id is not None:
        query = query.where(Generation.sweep_id == sweep_id)
    return list(session.scalars(query))


def backfill(engine: Engine, store: MediaStore, *, sweep_id: int | None = None,
             limit: int | None = None, redo: bool = False,
             progress: Callable[[int, int], None] | None = None) -> BackfillResult:
    """Measure every stored output that has no (current) metrics; one transaction per
    output, so an interrupted backfill keeps what it measured and resumes where it stopped."""
    if limit is not None and limit < 1:
        raise InvalidInput(f"--limit must be 1 or more, not {limit}.")
    with session_scope(engine) as session:
        ids = missing(session, sweep_id=sweep_id, redo=redo)
    todo = ids if limit is None else ids[:limit]
    done, failed = 0, []
    for n, generation_id in enumerate(todo, 1):
        with session_scope(engine) as session:
            row = session.execute(
                select(Generation.output_key, InputImage.storage_key, InputImage.sha256)
                .join(InputImage, InputImage.id == Generation.input_image_id)
                .where(Generation.id == generation_id)).one_or_none()
        try:
            if row is None:
                raise InvalidInput("the generation or its input image is gone")
            output_key, input_key, sha256 = row
            if output_key is None:
                raise InvalidInput("its output was deleted after the list was made")
            reference = _REFERENCES.get(sha256, lambda: store.get(input_key))  # noqa: B023 - called at once
            metrics = measure(reference, store.get(output_key))
            with session_scope(engine) as session:
                save(session, generation_id, metrics)
            done += 1
        except Exception as exc:  # noqa: BLE001 - report it and go on with the others
            failed.append((generation_id, f"{type(exc).__name__}: {exc}"))
        if progress is not None:
            progress(n, len(todo))
    return BackfillResult(measured=done, failed=failed, remaining=len(ids) - len(todo))


def metrics_version(session: Session, sweep_id: int) -> tuple:
    """What changes whenever an output of the sweep is measured (saving replaces the row and
    stamps ``measured_at``): a cache keyed by it holds the sweep's metrics until then."""
    count, last = session.execute(
        select(func.count(), func.max(OutputMetrics.measured_at))
        .join(Generation, OutputMetrics.generation_id == Generation.id)
        .where(Generation.sweep_id == sweep_id)).one()
    return count, str(last)


def metrics_by_generation(session: Session, generation_ids: Iterable[int] | None = None, *,
                          sweep_ids: Sequence[int] | None = None) -> dict[int, Metrics]:
    """Stored metrics by generation id, for some generations or every cell of some sweeps."""
    query = select(OutputMetrics)
    if sweep_ids is not None:
        query = query.join(Generation, Generation.id == OutputMetrics.generation_id).where(
            Generation.sweep_id.in_(list(sweep_ids)))
    if generation_ids is not None:
        query = query.where(OutputMetrics.generation_id.in_(list(generation_ids)))
    return {row.generation_id: _metrics(row) for row in session.scalars(query)}


def _columns(metrics: Metrics) -> dict[str, object]:
    return dataclasses.asdict(metrics)


def _metrics(row: OutputMetrics) -> Metrics:
    return Metrics(similarity=row.similarity, phash_distance=row.phash_distance,
                   change=row.change, sharpness=row.sharpness, identity=row.identity,
                   identity_distance=row.identity_distance, face_in_input=row.face_in_input,
                   version=row.version)

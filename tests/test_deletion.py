"""Deleting a photo while its sweep runs (issue 16, reproduction 6): its predictions are
canceled on Replicate, outputs that arrive afterwards are not kept, and its Files-API copy and
cached URL go. Real worker process, the emulator over HTTP, Redis, SQLite, media on disk."""

from __future__ import annotations

from pathlib import Path

from rq.job import Job

from core.config import Settings
from core.data import keys
from core.data.db import session_scope
from core.data.models import InputImage
from core.engine.deletion import delete_photo
from core.runtime import open_runtime
from core.planning.sweeps import SweepRequest
from tests.services import wait_for
from tests.test_execution import GRID, configure, emulator_stats, inject, submit
from tests.test_faults import cells

SIX = SweepRequest(**{**GRID.__dict__, "steps": "20"})


def _files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def _running_sweep(runtime, emulator, processes, tuner_env, tmp_path):
    """A 6-cell sweep whose predictions all exist; its photo id, sha256 and chunk job ids."""
    sweep_id = submit(runtime, SIX)
    processes.python(["core", "worker"], tuner_env, tmp_path / "worker.log")
    wait_for(lambda: all(c.prediction_id for c in cells(runtime, sweep_id)), 30,
             "every cell's prediction to be created")
    running = cells(runtime, sweep_id)
    image_id = running[0].input_image_id
    with session_scope(runtime.engine) as session:
        sha256 = session.get(InputImage, image_id).sha256
    return image_id, sha256, {c.job_id for c in running}


def _until_the_worker_let_go(runtime, job_ids) -> None:
    wait_for(lambda: all(Job.fetch(j, connection=runtime.redis).get_status() == "finished"
                         for j in job_ids), 60, "the worker to finish the chunk")


def test_deleting_a_photo_mid_sweep_cancels_its_predictions_and_removes_its_upload(
        tuner_env, emulator, processes, tmp_path):
    configure(emulator, predict_time_s=30)
    runtime = open_runtime(Settings())
    image_id, sha256, job_ids = _running_sweep(runtime, emulator, processes, tuner_env,
                                               tmp_path)
    cache_key = keys.file_url(runtime.endpoint.base_url, sha256)
    assert runtime.redis.get(cache_key) and emulator_stats(emulator)["files_total"] == 1

    deleted = delete_photo(runtime, image_id, actor="tester")

    assert (deleted.generations, deleted.predictions_canceled, deleted.uploads_deleted,
            deleted.problems) == (6, 6, 1, ())
    stats = emulator_stats(emulator)
    assert stats["cancels_total"] == 6 and stats["predictions"]["canceled"] == 6
    assert stats["files_deleted_total"] == 1 and stats["files_total"] == 0
    assert runtime.redis.get(cache_key) is None
    _until_the_worker_let_go(runtime, job_ids)
    assert _files_under(tmp_path / "media") == []  # the photo, its thumbnail, no output
    assert emulator_stats(emulator)["creates_total"] == 6  # nothing created after


def test_outputs_arriving_after_the_photo_was_deleted_are_not_stored(
        tuner_env, emulator, processes, tmp_path):
    """The cancels fail (Replicate answers 500), so the predictions run on and succeed: the
    worker finds its cells gone and keeps none of their outputs."""
    configure(emulator, predict_time_s=3)
    runtime = open_runtime(Settings())
    image_id, _, job_ids = _running_sweep(runtime, emulator, processes, tuner_env, tmp_path)
    inject(emulator, route="cancel", status=500, count=100)

    deleted = delete_photo(runtime, image_id, actor="tester")

    assert deleted.predictions_canceled == 0 and len(deleted.problems) == 6
    wait_for(lambda: emulator_stats(emulator)["predictions"]["succeeded"] == 6, 60,
             "the predictions to succeed on Replicate")
    log = tmp_path / "worker.log"
    wait_for(lambda: log.read_text().count("its output is not kept") == 6, 60,
             "the worker to see each cell gone when its output arrived")
    _until_the_worker_let_go(runtime, job_ids)
    assert _files_under(tmp_path / "media") == []  # no file without a row
    assert emulator_stats(emulator)["creates_total"] == 6


def test_an_upload_whose_cached_url_expired_is_found_in_the_files_list_and_deleted(
        tuner_env, emulator):
    """The cached URL lives 6 h, the copy on Replicate longer: a photo deleted after the
    cache expired still has its copy found (by its checksum) and deleted; others stay."""
    import io

    from core.engine.replicate_api import build_client
    from tests.test_execution import png_bytes, run_queue

    runtime = open_runtime(Settings())
    sweep_id = submit(runtime, SweepRequest(**{**SIX.__dict__, "strength": "0.5",
                                               "prompts": ["a portrait"]}))
    run_queue(runtime.settings.redis_url)
    [cell] = cells(runtime, sweep_id)
    client = build_client(runtime.endpoint)
    [ours] = client.files.list()
    runtime.redis.delete(keys.file_url(runtime.endpoint.base_url, ours.metadata["sha256"]))
    someone_elses = client.files.create(io.BytesIO(png_bytes(seed=7)))

    deleted = delete_photo(runtime, cell.input_image_id, actor="tester")

    assert (deleted.generations, deleted.uploads_deleted, deleted.problems) == (1, 1, ())
    assert [f.id for f in client.files.list()] == [someone_elses.id]


def test_a_photo_deleted_while_it_uploads_leaves_no_copy_and_creates_nothing(
        tuner_env, emulator, monkeypatch, tmp_path):
    """The delete ran (and listed the Files API) just before the worker's upload of the photo
    landed: the worker removes the copy it made, caches no URL, and creates nothing."""
    import asyncio

    from replicate.file import Files

    from core.data.library import delete_image, purge
    from core.engine.execution import ChunkRunner
    from tests.test_faults import _runner

    runtime = open_runtime(Settings())
    sweep_id = submit(runtime, SweepRequest(**{**SIX.__dict__, "strength": "0.3, 0.6",
                                               "prompts": ["a portrait"]}))
    running = cells(runtime, sweep_id)
    real_upload = Files.async_create

    async def upload_while_the_photo_is_deleted(self, *args, **kwargs):
        uploaded = await real_upload(self, *args, **kwargs)
        with session_scope(runtime.engine) as session:
            _, doomed = delete_image(session, running[0].input_image_id, actor="tester")
        purge(runtime.store, doomed)
        return uploaded

    monkeypatch.setattr(Files, "async_create", upload_while_the_photo_is_deleted)
    asyncio.run(ChunkRunner(_runner(runtime, "w").ctx, [c.id for c in running]).run())

    stats = emulator_stats(emulator)
    assert (stats["files_total"], stats["files_deleted_total"], stats["creates_total"]) == (0, 1, 0)
    assert list(runtime.redis.scan_iter(keys.file_url(runtime.endpoint.base_url, "*"))) == []
    assert cells(runtime, sweep_id) == [] and _files_under(tmp_path / "media") == []

"""Image metrics: values computed by hand on images whose answer is known, a real face photo
(scikit-image's bundled astronaut) for identity, and the store hook and backfill against a real
sweep on the emulator."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata
from sqlalchemy import select

from core.config import Settings
from core.data.db import session_scope
from core.data.models import Generation, OutputMetrics
from core.errors import InvalidInput
from core.insight import measured
from core.insight.metrics import SAME_PERSON_DISTANCE, ReferenceCache, measure, prepare
from core.planning.sweeps import SweepRequest
from core.runtime import open_runtime
from tests.test_execution import png_bytes, run_queue, submit


def flat(value: int, size: int = 64) -> np.ndarray:
    return np.full((size, size, 3), value, dtype=np.uint8)


def encoded(array: np.ndarray, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt)
    return buffer.getvalue()


def test_an_image_against_itself_is_identical():
    photo = skdata.coffee()
    m = measure(encoded(photo), encoded(photo))
    assert m.similarity == pytest.approx(1.0)
    assert m.change == 0 and m.phash_distance == 0
    assert not m.face_in_input and m.identity is None


def test_ssim_of_two_flat_images_is_the_luminance_term():
    # Constant images: every window has σ = 0, so SSIM = (2ab + C1) / (a² + b² + C1),
    # C1 = (0.01 · 255)².
    c1 = (0.01 * 255) ** 2
    expected = (2 * 100 * 150 + c1) / (100 ** 2 + 150 ** 2 + c1)
    assert measure(flat(100), flat(150)).similarity == pytest.approx(expected, abs=1e-4)


def test_change_is_the_mean_absolute_difference_scaled_to_one():
    assert measure(flat(100), flat(150)).change == pytest.approx(50 / 255)
    half = flat(0)
    half[:32] = 255  # half the pixels differ by 255, the rest by 0
    assert measure(flat(0), half).change == pytest.approx(0.5)


def test_sharpness_is_the_variance_of_the_laplacian():
    assert measure(flat(0), flat(128)).sharpness == 0
    # A 0/255 checkerboard: every pixel's four neighbours are its opposite (the border is
    # reflected), so the Laplacian is ±4 · 255 everywhere with mean 0: variance 1020².
    board = ((np.indices((64, 64)).sum(axis=0) % 2) * 255).astype(np.uint8)
    rgb = np.stack([board] * 3, axis=-1)
    assert measure(flat(0), rgb).sharpness == pytest.approx(1020.0 ** 2)
    blurred = np.asarray(Image.fromarray(skdata.coffee()).resize((150, 100)).resize((600, 400)))
    assert measure(skdata.coffee(), blurred).sharpness < measure(skdata.coffee(),
                                                                  skdata.coffee()).sharpness


def test_perceptual_hash_tolerates_resizing_but_not_another_picture():
    photo = skdata.coffee()
    smaller = np.asarray(Image.fromarray(photo).resize((300, 200)))
    assert measure(photo, smaller).phash_distance <= 4
    assert measure(photo, skdata.astronaut()).phash_distance > 20


def test_outputs_of_another_size_and_format_are_compared_on_the_same_grid():
    photo = skdata.coffee()  # 600×400
    jpeg = encoded(np.asarray(Image.fromarray(photo).resize((1200, 800))), "JPEG")
    m = measure(encoded(photo), jpeg)
    assert m.similarity > 0.9 and m.change < 0.03


def test_identity_is_measured_where_the_input_has_a_face():
    face = skdata.astronaut()
    reference = prepare(face)
    assert reference.face_box is not None
    same = measure(reference, face)
    assert same.face_in_input and same.identity == pytest.approx(1.0)
    noisy = np.clip(face + np.random.default_rng(0).normal(0, 12, face.shape), 0, 255)
    kept = measure(reference, noisy.astype(np.uint8))
    assert kept.identity_distance < SAME_PERSON_DISTANCE  # dlib: the same person
    gone = measure(reference, np.asarray(Image.fromarray(skdata.coffee()).resize((512, 512))))
    assert gone.identity_distance > SAME_PERSON_DISTANCE and gone.identity < kept.identity


def test_identity_runs_on_a_blas_build_of_dlib_with_one_thread():
    # What keeps identity inside the metric budget (bench/metrics.py): dlib built against
    # OpenBLAS by .ci/install (a descriptor costs ~5x more in the BLAS-less dlib-bin wheels)
    # and OpenBLAS on one thread (more threads spin on every core for a 150 px chip).
    import os

    from core.insight.metrics import identity_unavailable_reason

    assert identity_unavailable_reason() is None
    import dlib

    assert dlib.DLIB_USE_BLAS, "dlib was built without BLAS: run bash .ci/install"
    assert os.environ["OPENBLAS_NUM_THREADS"] == "1"


def _with_face(photo: np.ndarray, box: tuple[int, int, int, int], face: np.ndarray) -> np.ndarray:
    """``photo`` with ``face`` (grey, any size) resized into ``box`` and a margin around it."""
    left, top, right, bottom = box
    margin = round((right - left) * 0.15)
    left, top, right, bottom = left - margin, top - margin, right + margin, bottom + margin
    out = photo.copy()
    grey = Image.fromarray(face).convert("L").resize((right - left, bottom - top),
                                                     Image.Resampling.BICUBIC)
    out[top:bottom, left:right] = np.asarray(grey.convert("RGB"))
    return out


def test_identity_tells_the_same_face_from_other_peoples_faces():
    # The astronaut's own face, reduced to 25 px and grey, put back in its place, against 20
    # other people's faces (scikit-image's bundled LFW crops, also 25 px and grey) in the same
    # place: the same degradation, so only who it is differs.
    photo = skdata.astronaut()
    reference = prepare(photo)
    height, width = photo.shape[:2]
    left, top, right, bottom = reference.face_box
    box = (round(left * width), round(top * height), round(right * width),
           round(bottom * height))
    margin = round((box[2] - box[0]) * 0.15)
    own = photo[box[1] - margin:box[3] + margin, box[0] - margin:box[2] + margin]
    own_small = np.asarray(Image.fromarray(own).resize((25, 25), Image.Resampling.BICUBIC))
    same = measure(reference, _with_face(photo, box, own_small)).identity_distance
    faces = (skdata.lfw_subset()[:20] * 255).astype(np.uint8)  # the first 100 are faces
    others = [measure(reference, _with_face(photo, box, f)).identity_distance for f in faces]
    assert same < SAME_PERSON_DISTANCE  # dlib: the same person, even degraded
    assert min(others) > same and np.median(others) > SAME_PERSON_DISTANCE + 0.1


def test_concurrent_outputs_of_one_photo_prepare_it_once():
    cache = ReferenceCache()
    photo = encoded(skdata.astronaut())
    loads: list[str] = []
    second_started = threading.Event()
    results: dict[str, object] = {}

    def second() -> None:
        second_started.set()
        results["second"] = cache.get("sha", lambda: loads.append("second") or photo)

    def first_load() -> bytes:
        # The second output arrives while the first is still preparing the photo.
        thread = threading.Thread(target=second)
        results["thread"] = thread
        thread.start()
        assert second_started.wait(timeout=30)
        loads.append("first")
        return photo

    results["first"] = cache.get("sha", first_load)
    results["thread"].join(timeout=60)
    assert loads == ["first"] and cache.prepared == 1
    assert results["second"] is results["first"]
    assert cache.get("sha", lambda: pytest.fail("cached")) is results["first"]


def test_bad_images_are_refused_with_what_to_fix():
    with pytest.raises(InvalidInput, match="output image is not a readable image"):
        measure(flat(0), b"not an image")
    with pytest.raises(InvalidInput, match="H×W×3"):
        measure(np.zeros((4, 4, 7), np.uint8), flat(0))


def test_every_stored_output_of_a_sweep_is_measured_and_similarity_falls_with_strength(
        tuner_env, emulator):
    runtime = open_runtime(Settings())
    grid = SweepRequest(model_ref="stability-ai/sdxl", image_ids=[], strength="0.2, 0.9",
                        steps="20", prompts=["a portrait"], seed="1, 2")
    sweep_id = submit(runtime, grid, image=png_bytes(seed=3, size=256))
    run_queue(runtime.settings.redis_url)
    with session_scope(runtime.engine) as session:
        rows = session.execute(select(Generation.strength, OutputMetrics)
                               .join(OutputMetrics, OutputMetrics.generation_id == Generation.id)
                               .where(Generation.sweep_id == sweep_id)).all()
    assert len(rows) == 4
    low = [m.similarity for s, m in rows if s == 0.2]
    high = [m.similarity for s, m in rows if s == 0.9]
    assert min(low) > max(high)
    assert all(m.version == 1 and m.identity is None for _, m in rows)  # noise has no face


def test_backfill_measures_what_is_missing_once_and_reports_what_it_cannot(
        tuner_env, emulator):
    runtime = open_runtime(Settings())
    grid = SweepRequest(model_ref="stability-ai/sdxl", image_ids=[], strength="0.3, 0.6",
                        steps="20", prompts=["a portrait"], seed="7")
    sweep_id = submit(runtime, grid)
    run_queue(runtime.settings.redis_url)
    with session_scope(runtime.engine) as session:
        ids = sorted(session.scalars(select(Generation.id).where(Generation.sweep_id == sweep_id)))
        before = {m.generation_id: m.similarity for m in session.scalars(select(OutputMetrics))}
        session.query(OutputMetrics).delete()  # as for outputs stored before metrics existed
        lost = session.get(Generation, ids[1])
        runtime.store.delete(lost.output_key)

    command = [sys.executable, "-m", "core", "metrics", "backfill", "--json"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    report = json.loads(result.stdout)
    assert result.returncode == 1, result.stderr  # one output could not be read
    assert report["measured"] == 1 and [f["id"] for f in report["failed"]] == [ids[1]]
    with session_scope(runtime.engine) as session:
        after = {m.generation_id: m.similarity for m in session.scalars(select(OutputMetrics))}
        assert after == {ids[0]: pytest.approx(before[ids[0]])}
        assert measured.missing(session, sweep_id=sweep_id) == [ids[1]]
    again = measured.backfill(runtime.engine, runtime.store, sweep_id=sweep_id)
    assert again.measured == 0 and len(again.failed) == 1


def test_backfill_says_an_output_was_deleted_after_the_list_was_made(db_url, tmp_path):
    """The list of outputs to measure is read once; an output deleted while the backfill runs
    (a person deleting a sweep's images) is reported by name, not as a store error."""
    from core.data.db import create_db_engine
    from core.data.storage import open_media_store
    from tests.factories import make_generation, make_image, make_sweep

    engine = create_db_engine(db_url)
    store = open_media_store(Settings(media_url=f"file://{tmp_path / 'media'}"))
    photo = png_bytes()
    with session_scope(engine) as session:
        image = make_image(session, storage_key=store.put(photo, kind="inputs",
                                                          content_type="image/png"))
        output_key = store.put(photo, kind="outputs", content_type="image/png")
        sweep = make_sweep(session)
        ids = [make_generation(session, sweep, input_image_id=image.id, output_key=output_key).id
               for _ in range(2)]

    def delete_the_second(done: int, total: int) -> None:
        if done == 1:
            with session_scope(engine) as session:
                session.get(Generation, ids[1]).output_key = None

    try:
        result = measured.backfill(engine, store, progress=delete_the_second)
    finally:
        engine.dispose()
    assert result.measured == 1
    assert result.failed == [(ids[1], "InvalidInput: its output was deleted after the list "
                                      "was made")]

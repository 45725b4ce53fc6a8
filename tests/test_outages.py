"""Outages on our side: Redis restarts, the database drops out, many SQLite writers, a full
media disk, a submission while Redis is down, and a killed worker detected within 60 s."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time

import pytest

from core.config import Settings
from core.data.db import session_scope
from core.data.models import GenerationState
from core.runtime import open_runtime
from core.planning.submit import submit_sweep
from core.planning.sweeps import SweepRequest
from tests.services import TcpProxy, fresh_postgres_database, wait_for
from tests.test_execution import GRID, configure, emulator_stats, png_bytes, submit
from tests.test_faults import cells
from tests.test_resume import states

TWELVE = SweepRequest(**{**GRID.__dict__, "strength": "0.2, 0.4, 0.6", "steps": "20, 30"})


def assert_all_succeeded_once(runtime, sweep_id: int, emulator, n: int) -> None:
    assert states(runtime, sweep_id) == {"succeeded": n}
    stats = emulator_stats(emulator)
    assert stats["creates_total"] == n
    assert set(stats["creates_by_input_hash"].values()) == {1}


def wait_to_store(runtime, sweep_id: int, what: str) -> list:
    """Storage is away: a cell says it waits to store; none failed; every waiting cell keeps
    its (billed) prediction. Returns the waiting cells."""
    wait_for(lambda: any((c.error or "").startswith("Waiting to store")
                         for c in cells(runtime, sweep_id)), 60, f"a cell to wait for {what}")
    assert not any(c.state == GenerationState.FAILED for c in cells(runtime, sweep_id))
    waiting = [c for c in cells(runtime, sweep_id) if (c.error or "").startswith("Waiting")]
    assert all(c.state == GenerationState.SUBMITTED and c.prediction_id for c in waiting)
    return waiting


def all_stored_once(runtime, sweep_id: int, emulator, n: int, what: str) -> None:
    """Storage is back: every cell stores its output, each created once."""
    wait_for(lambda: states(runtime, sweep_id) == {"succeeded": n}, 120, what)
    assert all(runtime.store.exists(c.output_key) and c.error is None
               for c in cells(runtime, sweep_id))
    assert_all_succeeded_once(runtime, sweep_id, emulator, n)


def test_redis_restarting_mid_sweep_loses_no_cell(tuner_env, emulator, processes,
                                                  redis_server, tmp_path):
    configure(emulator, predict_time_s=2.0)
    runtime = open_runtime(Settings())
    sweep_id = submit(runtime, TWELVE)
    processes.python(["core", "worker"], tuner_env, tmp_path / "worker.log")
    wait_for(lambda: states(runtime, sweep_id).get("submitted", 0) >= 4, 30, "work in flight")
    redis_server.stop()  # in-memory Redis: the queue, leases and slots are all gone
    redis_server.start()
    wait_for(lambda: states(runtime, sweep_id) == {"succeeded": 12}, 120, "the sweep to finish")
    assert_all_succeeded_once(runtime, sweep_id, emulator, 12)


def test_the_database_dropping_out_for_a_while_loses_no_cell(tuner_env, emulator, processes,
                                                             monkeypatch, tmp_path):
    configure(emulator, predict_time_s=1.0)
    with fresh_postgres_database() as direct_url:
        proxy = TcpProxy("127.0.0.1", 5432)
        try:
            proxied = direct_url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
            monkeypatch.setenv("DATABASE_URL", direct_url)
            runtime = open_runtime(Settings())
            sweep_id = submit(runtime, TWELVE)
            log = tmp_path / "worker.log"
            processes.python(["core", "worker"], {**tuner_env, "DATABASE_URL": proxied}, log)
            wait_for(lambda: states(runtime, sweep_id).get("submitted", 0) >= 4, 30, "work in flight")
            proxy.cut()
            wait_for(lambda: "database unavailable" in log.read_text(), 30,
                     "the worker to notice the outage")
            proxy.restore()
            wait_for(lambda: states(runtime, sweep_id) == {"succeeded": 12}, 120,
                     "the sweep to finish")
            assert_all_succeeded_once(runtime, sweep_id, emulator, 12)
            runtime.engine.dispose()
        finally:
            proxy.close()


def test_sqlite_with_eight_workers_writing_at_once(tuner_env, emulator, processes, tmp_path):
    runtime = open_runtime(Settings(chunk_size=6))
    request = SweepRequest(**{**GRID.__dict__, "strength": "0.1-0.8 (+0.1)", "steps": "20, 25, 30"})
    sweep_id = submit(runtime, request)  # 8 × 3 × 2 = 48 cells in 8 chunks of 6: one a worker
    processes.python(["core", "worker", "--concurrency", "8"], tuner_env, tmp_path / "w.log")
    # Eight interpreters start on two cores before the first claim: the bound is generous,
    # what is tested is that every write lands, none lost to SQLite's lock.
    wait_for(lambda: states(runtime, sweep_id) == {"succeeded": 48}, 240, "48 cells to succeed")
    assert all(c.error is None for c in cells(runtime, sweep_id))


def test_a_full_media_disk_keeps_the_billed_outputs_until_there_is_room(
        tuner_env, emulator, processes, monkeypatch, tmp_path):
    """Reproduction 5: with the media disk full, cells whose predictions Replicate billed
    wait (saying so on the cell) and store once there is room: none fails, none is created
    again."""
    media = tmp_path / "small-disk"
    media.mkdir()
    if shutil.which("mount") is None or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(media)]).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        monkeypatch.setenv("MEDIA_URL", f"file://{media}")
        env = {**tuner_env, "MEDIA_URL": f"file://{media}"}
        runtime = open_runtime(Settings())
        sweep_id = submit(runtime, SweepRequest(**{**TWELVE.__dict__}), image=png_bytes(size=200))
        processes.python(["core", "worker"], env, tmp_path / "worker.log")
        waiting = wait_to_store(runtime, sweep_id, "room on the disk")
        assert "disk is full" in waiting[0].error
        subprocess.run(["mount", "-o", "remount,size=50m", str(media)], check=True)
        all_stored_once(runtime, sweep_id, emulator, 12, "every cell to be stored once there is room")
    finally:
        processes.stop_all()
        subprocess.run(["umount", "-l", str(media)], check=False)


def test_s3_down_mid_sweep_keeps_the_billed_outputs_until_it_is_back(
        tuner_env, emulator, processes, monkeypatch, tmp_path):
    """Reproduction 5: media on S3 (moto over HTTP); S3 stops answering once every cell's
    prediction was created. The cells wait, saying so, keep their predictions, and store
    once S3 answers again: every cell succeeds, none is created twice."""
    import boto3
    from urllib.parse import urlsplit

    from tests.s3server import DUMMY_AWS_ENV, REAL_AWS_ENV, start_moto_server, unique_bucket_name

    endpoint, stop = start_moto_server()
    try:
        aws = {**DUMMY_AWS_ENV, "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
               "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials")}
        for name in REAL_AWS_ENV:
            monkeypatch.delenv(name, raising=False)
        bucket = unique_bucket_name()
        media = {"MEDIA_URL": f"s3://{bucket}/tuner", "S3_ENDPOINT_URL": endpoint}
        for name, value in {**aws, **media}.items():
            monkeypatch.setenv(name, value)
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
        env = {**{k: v for k, v in tuner_env.items() if k not in REAL_AWS_ENV}, **aws, **media}
        configure(emulator, predict_time_s=3.0)
        runtime = open_runtime(Settings())
        sweep_id = submit(runtime, TWELVE)
        processes.python(["core", "worker"], env, tmp_path / "worker.log")
        wait_for(lambda: all(c.prediction_id for c in cells(runtime, sweep_id)), 30,
                 "every cell's prediction to be created")
        stop()  # S3 is down while the predictions run
        waiting = wait_to_store(runtime, sweep_id, "S3")
        assert "S3" in waiting[0].error or "s3://" in waiting[0].error
        _, stop = start_moto_server(port=urlsplit(endpoint).port or 0)  # S3 is back
        all_stored_once(runtime, sweep_id, emulator, 12, "every cell to be stored once S3 is back")
    finally:
        processes.stop_all()
        stop()


def test_a_sweep_submitted_while_redis_is_down_is_sent_when_it_is_back(
        tuner_env, emulator, processes, redis_server, tmp_path):
    runtime = open_runtime(Settings())
    redis_server.stop()
    with session_scope(runtime.engine) as session:
        from core.data.library import add_image

        image_id = add_image(session, runtime.store, runtime.settings, png_bytes(),
                             filename="face.png", uploaded_by="tester").id
    submitted = submit_sweep(runtime, SweepRequest(**{**TWELVE.__dict__, "image_ids": [image_id]}),
                             actor="tester")
    assert not submitted.queued and "queued when Redis is back" in submitted.message()
    sweep_id = submitted.sweep_id
    assert all(c.job_id is None for c in cells(runtime, sweep_id))
    assert states(runtime, sweep_id) == {"pending": 12}  # kept, nothing lost
    redis_server.start()
    processes.python(["core", "worker"], tuner_env, tmp_path / "worker.log")
    wait_for(lambda: states(runtime, sweep_id) == {"succeeded": 12}, 60,
             "the reaper to send the saved sweep")
    assert_all_succeeded_once(runtime, sweep_id, emulator, 12)


def test_abandoned_work_is_resumed_within_60_seconds_with_default_leases(
        tuner_env, emulator, processes, tmp_path):
    env = {**tuner_env, "CELL_LEASE_S": "30"}  # the shipped default
    configure(emulator, predict_time_s=2.0)
    runtime = open_runtime(Settings())
    sweep_id = submit(runtime, TWELVE)
    first = processes.python(["core", "worker"], env, tmp_path / "w1.log")
    wait_for(lambda: states(runtime, sweep_id).get("submitted", 0) >= 4, 30, "work in flight")
    processes.kill(first, signal.SIGKILL)
    killed_at = time.monotonic()
    # Attempts as the dead worker left them: a cell of its chunk it had not yet claimed
    # (still waiting for SQLite's lock) has none, and is abandoned all the same.
    abandoned = {c.id: c.attempts for c in cells(runtime, sweep_id) if not c.state.is_final}
    processes.python(["core", "worker"], env, tmp_path / "w2.log")
    wait_for(lambda: all(c.attempts > abandoned[c.id] for c in cells(runtime, sweep_id)
                         if c.id in abandoned), 60, "every abandoned cell to be picked up again")
    assert time.monotonic() - killed_at < 60
    wait_for(lambda: states(runtime, sweep_id) == {"succeeded": 12}, 60, "the sweep to finish")
    assert_all_succeeded_once(runtime, sweep_id, emulator, 12)


def test_two_first_migrations_at_once_on_postgresql_both_succeed():
    """Issue 16 (rough edges): two processes migrating an empty PostgreSQL database at once
    used to crash one of them; the advisory lock makes the second wait, then find it done."""
    import sys

    from tests.services import PROJECT_ROOT

    with fresh_postgres_database() as url:
        env = {**__import__("os").environ, "DATABASE_URL": url}
        runs = [subprocess.Popen([sys.executable, "-m", "core", "migrate"], env=env,
                                 cwd=PROJECT_ROOT, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True) for _ in range(3)]
        results = [(run.wait(timeout=120), run.stderr.read()) for run in runs]
        for run in runs:
            run.stdout.close()
            run.stderr.close()
        assert [code for code, _ in results] == [0, 0, 0], [err[-500:] for _, err in results]

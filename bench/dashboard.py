"""Dashboard at scale: the AppTest run time of every page with 100,000 generations.

    python3 bench/dashboard.py [--quick] [--backend sqlite|postgresql] [--profile DIR]

For each backend (a SQLite file, and a fresh PostgreSQL database on the local server that is
dropped afterwards) the database is migrated (``core.data.db.upgrade``) and seeded in bulk with
generations spread over 90 days: several scenarios, two models, six people, mostly succeeded
cells with some failed, canceled and reused ones, real and emulator endpoints, costs,
latencies and reviews, and — newest — one sweep of 1,000 cells (10 strengths × 100 seeds)
whose thumbnails are real WebP files in the media directory (a few distinct images, their
bytes and keys shared by many cells), so the Gallery's first view loads real images.

Each page runs the way tests/pages runs it: ``AppTest.from_file("streamlit_app.py")`` once,
then ``switch_page("pages/<name>.py").run()``, with a private redis-server, the in-thread
emulator and DATABASE_URL / MEDIA_URL / REDIS_URL / REPLICATE_BASE_URL in the environment.
Measured per page, median of a few repeats:

- cold: every cache cleared (settings, ``st.cache_resource``, ``st.cache_data``) just before
  the page runs, as in a fresh server process — the targets are on this number;
- warm: the same page run again at once (every read served from the caches);
- data-cold: only ``st.cache_data`` cleared (the engine, Redis client and migrations kept),
  what a user sees once the few-second TTLs of the reads have expired.

Baseline, in the same run: the same pages on an empty database; ratio = seeded ÷ empty.
Then one more cold run per page records every SQL statement (with the function that issued
it); each distinct SELECT is re-run alone (time, rows returned) and EXPLAINed (EXPLAIN QUERY
PLAN on SQLite, EXPLAIN on PostgreSQL); the plans go into the JSON. A statement that scans the
whole generation table, or brings back thousands of rows, is flagged.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import logging
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from sqlalchemy import Engine, event, text

from common import (PROJECT_ROOT, RedisServer, machine_info, start_process,
                    stop_process, table, verdict, write_results)

import streamlit as st
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1 import app_test as app_test_module

from core.scenarios import versions as core_scenarios
from core.auth import local_user
from core.planning.catalog import SDXL_REF, SDXL_VERSION
from core.data.db import create_db_engine, session_scope, upgrade
from core.emulator import EmulatorConfig, EmulatorServer
from core.data.images import make_thumbnail
from core.data.models import (Endpoint, Generation, GenerationState, InputImage, ModelSpec,
                         Review, Sweep)
from core.insight.review import PRESET_TAGS
from core.planning.schema import load_bundled_version
from core.data.storage import LocalMediaStore
from tests.pages.conftest import APP, ServerLikePagesManager, clear_caches

PG_SERVER_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
PAGES = ["overview", "new_sweep", "runs", "gallery", "review", "monitoring", "scenarios",
         "settings"]
TARGETS_S = {"monitoring": 1.0, "overview": 0.5, "gallery": 1.0, "review": 0.5}  # cold
GALLERY_CELLS = 1000
UNEXPECTED = "Something went wrong"  # dashboard.errors' words for an unexpected exception
MANY_ROWS = 2000  # a statement bringing back more rows than this is flagged
OTHER_MODEL = "black-forest-labs/flux-schnell"
PEOPLE = [local_user(), "alice", "bob", "chen", "dana", "emeka"]  # the first is "you"
ERRORS = ["NSFW content detected. Try running it again, or try a different prompt.",
          "CUDA out of memory. Tried to allocate 2.00 GiB",
          "Prediction failed: the model timed out after 300 s",
          "Output could not be downloaded: 502 Bad Gateway",
          "Prediction interrupted; please retry (code: PA)"]
PROMPTS = ["a portrait, studio light", "a person standing, rear view, photo",
           "a person, side view, natural light", "full body, plain background",
           "a portrait, film grain, 35mm"]


# -- media: a few real images, their keys shared by many rows -----------------------------------
def photo_like(size: int, seed: int, fmt: str = "PNG") -> bytes:
    rng = np.random.default_rng(seed)
    coarse = (rng.random((8, 8, 3)) * 255).astype("uint8")
    field = np.asarray(Image.fromarray(coarse).resize((size, size), Image.Resampling.BICUBIC),
                       np.float32) + rng.normal(0, 6, (size, size, 3)).astype(np.float32)
    out = io.BytesIO()
    Image.fromarray(np.clip(field, 0, 255).astype("uint8")).save(out, fmt)
    return out.getvalue()


def store_media(media_url: str) -> dict[str, list[str]]:
    """Inputs (PNG + thumbnail), 1024² outputs and their 400 px WebP thumbnails, made once."""
    store = LocalMediaStore(Path(media_url.removeprefix("file://")))
    keys: dict[str, list[str]] = {"input": [], "input_thumb": [], "output": [], "thumb": []}
    for n in range(3):
        data = photo_like(768, 100 + n)
        keys["input"].append(store.put(data, kind="inputs", content_type="image/png"))
        thumb, kind = make_thumbnail(data)
        keys["input_thumb"].append(store.put(thumb, kind="thumbnails", content_type=kind))
    for n in range(8):
        data = photo_like(1024, n)
        keys["output"].append(store.put(data, kind="outputs", content_type="image/png"))
        thumb, kind = make_thumbnail(data)
        keys["thumb"].append(store.put(thumb, kind="thumbnails", content_type=kind))
    return keys


# -- seeding -------------------------------------------------------------------------------------
class Seeder:
    """Rows for one database; ids are given explicitly so reused cells can point back."""

    def __init__(self, generations: int, media: dict[str, list[str]], now: dt.datetime,
                 seed: int = 5) -> None:
        self.total = generations
        self.media = media
        self.now = now
        self.rng = random.Random(seed)
        self.gen_id = 0
        self.succeeded: list[tuple[int, dict[str, Any]]] = []  # (id, row) of recent successes

    def sweeps(self, models: dict[str, tuple[int, str]], scenario_ids: list[int],
               images: list[int]) -> list[tuple[dict[str, Any], list[float], list[int]]]:
        """(sweep row, strengths, seeds) in creation order; the last is the 1,000-cell one."""
        rng, plans, cells = self.rng, [], 0
        sizes = [4, 8, 12, 20, 24, 30, 40, 50, 60, 80, 100, 120, 150, 200, 300]
        starts = []
        while cells < self.total - GALLERY_CELLS:
            size = min(rng.choice(sizes), self.total - GALLERY_CELLS - cells)
            starts.append(size)
            cells += size
        times = sorted(self.now - dt.timedelta(days=90) + dt.timedelta(
            seconds=rng.uniform(0, 90 * 86400 - 3 * 3600)) for _ in starts)
        for sweep_id, (size, created) in enumerate(zip(starts, times), start=1):
            strengths = [round(0.2 + 0.1 * i, 2) for i in range(min(size, rng.choice([2, 3, 4, 5])))]
            seeds = list(range(1, -(-size // len(strengths)) + 1))
            plans.append((self._sweep(sweep_id, size, created, models, scenario_ids, images,
                                      strengths, seeds), strengths, seeds))
        big = self._sweep(len(plans) + 1, GALLERY_CELLS, self.now - dt.timedelta(minutes=40),
                          models, scenario_ids, images, [round(0.1 * i, 1) for i in range(1, 11)],
                          list(range(1, 101)), kind="gallery")
        plans.append((big, big["axes"]["strength"], big["axes"]["seed"]))
        return plans

    def _sweep(self, sweep_id: int, size: int, created: dt.datetime,
               models: dict[str, tuple[int, str]], scenario_ids: list[int], images: list[int],
               strengths: list[float], seeds: list[int], kind: str | None = None) -> dict[str, Any]:
        rng = self.rng
        ref = SDXL_REF if kind == "gallery" or rng.random() < 0.8 else OTHER_MODEL
        kind = kind or rng.choices(["clean", "failing", "canceled"], [0.86, 0.09, 0.05])[0]
        endpoint = Endpoint.EMULATOR if kind == "gallery" or rng.random() < 0.4 else Endpoint.REPLICATE
        return {"id": sweep_id, "name": f"{ref.split('/')[1]} {len(strengths)} × {len(seeds)}",
                "scenario_id": rng.choice(scenario_ids) if rng.random() < 0.7 else None,
                "model_id": models[ref][0], "model_ref": ref, "version_id": models[ref][1],
                "axes": {"image": [rng.choice(images)], "prompt": ["P1"], "seed": seeds,
                         "guidance": [7.5], "steps": [25], "strength": strengths},
                "fixed_params": {"negative_prompt": "blurry"}, "endpoint": endpoint,
                "created_by": rng.choices(PEOPLE, [3, 3, 2, 2, 1, 1])[0], "created_at": created,
                "budget_usd": 5.0, "estimated_cost_usd": round(size * 0.0045, 4),
                "fresh_run": False, "cancel_requested_at": None, "halted_reason": None,
                "_size": size, "_kind": kind}

    def cells(self, sweep: dict[str, Any], strengths: list[float],
              seeds: list[int]) -> Iterator[dict[str, Any]]:
        rng, size, kind = self.rng, sweep["_size"], sweep["_kind"]
        image_id, t0 = sweep["axes"]["image"][0], sweep["created_at"]
        per_image = sweep["model_ref"] == OTHER_MODEL
        cancel_from = int(size * rng.uniform(0.5, 0.9)) if kind == "canceled" else size
        if kind == "canceled":
            sweep["cancel_requested_at"] = t0 + dt.timedelta(seconds=cancel_from / 10 + 5)
        prompt_n = rng.randrange(len(PROMPTS))
        for index in range(size):
            self.gen_id += 1
            gid = self.gen_id
            strength, seed = strengths[index % len(strengths)], seeds[index // len(strengths)]
            enqueued = t0 + dt.timedelta(seconds=1 + index / 10)
            row: dict[str, Any] = dict(
                id=gid, sweep_id=sweep["id"], cell_index=index, input_image_id=image_id,
                strength=strength, steps=25, guidance=7.5, seed=seed, prompt=PROMPTS[prompt_n],
                prompt_label="P1", negative_prompt="blurry",
                model_input={"prompt": PROMPTS[prompt_n], "prompt_strength": strength,
                             "num_inference_steps": 25, "guidance_scale": 7.5, "seed": seed},
                request_hash=f"{gid:064x}", endpoint=sweep["endpoint"], replicate_status=None,
                prediction_id=None, job_id=f"job-{sweep['id']}-{index // 32}", attempts=1,
                create_attempts=1, reused_from_id=None, created_at=t0, enqueued_at=enqueued,
                claimed_at=None, submitting_at=None, submitted_at=None,
                replicate_created_at=None, started_at=None, replicate_completed_at=None,
                completed_at=None, predict_time_s=None, queue_s=None, replicate_queue_s=None,
                overhead_s=None, latency_s=None, cost_usd=0.0, output_key=None,
                thumbnail_key=None, output_width=None, output_height=None, error=None)
            failing = {"clean": 0.02, "failing": 0.25, "canceled": 0.02, "gallery": 0.015}[kind]
            if index >= cancel_from:
                row.update(state=GenerationState.CANCELED, replicate_status="canceled",
                           completed_at=sweep["cancel_requested_at"],
                           error=f"Canceled by {sweep['created_by']} before it started.")
            elif kind != "gallery" and self.succeeded and rng.random() < 0.03:
                source_id, source = self.succeeded[-rng.randrange(1, min(len(self.succeeded), 500) + 1)]
                row.update(state=GenerationState.SUCCEEDED, reused_from_id=source_id,
                           endpoint=source["endpoint"], output_key=source["output_key"],
                           thumbnail_key=source["thumbnail_key"], output_width=1024,
                           output_height=1024, predict_time_s=source["predict_time_s"],
                           latency_s=0.0, completed_at=t0)
            else:
                self._run(row, enqueued, per_image, failed=rng.random() < failing)
            if row["state"] == GenerationState.SUCCEEDED and row["reused_from_id"] is None:
                self.succeeded.append((gid, row))
            yield row
        del self.succeeded[:-1000]

    def _run(self, row: dict[str, Any], enqueued: dt.datetime, per_image: bool, *,
             failed: bool) -> None:
        rng = self.rng
        queue_s = rng.expovariate(2.0)
        replicate_queue_s = rng.lognormvariate(-0.5, 0.9)
        predict_s = max(1.0, rng.gauss(2.5 if per_image else 6.0, 1.2))
        overhead_s = rng.uniform(0.1, 0.6)
        if failed:
            predict_s *= rng.uniform(0.1, 1.0)
        claimed = enqueued + dt.timedelta(seconds=queue_s)
        started = claimed + dt.timedelta(seconds=0.2 + replicate_queue_s)
        finished = started + dt.timedelta(seconds=predict_s)
        completed = finished + dt.timedelta(seconds=overhead_s)
        row.update(claimed_at=claimed, submitting_at=claimed, prediction_id=f"p{row['id']:012d}",
                   submitted_at=claimed + dt.timedelta(seconds=0.2),
                   replicate_created_at=claimed + dt.timedelta(seconds=0.2), started_at=started,
                   replicate_completed_at=finished, completed_at=completed,
                   predict_time_s=round(predict_s, 3), queue_s=round(queue_s, 3),
                   replicate_queue_s=round(replicate_queue_s, 3),
                   latency_s=round((completed - enqueued).total_seconds(), 3),
                   cost_usd=round(0.003 if per_image else predict_s * 0.000725, 6))
        if failed:
            row.update(state=GenerationState.FAILED, replicate_status="failed",
                       attempts=rng.choice([1, 2, 3]), error=rng.choice(ERRORS),
                       cost_usd=0.0 if per_image else row["cost_usd"], overhead_s=None)
        else:
            n = rng.randrange(len(self.media["output"]))
            row.update(state=GenerationState.SUCCEEDED, replicate_status="succeeded",
                       overhead_s=round(overhead_s, 3), output_key=self.media["output"][n],
                       thumbnail_key=self.media["thumb"][n], output_width=1024,
                       output_height=1024)

    def reviews(self, generations: list[tuple[int, int, dt.datetime]],
                gallery_sweep: int) -> list[dict[str, Any]]:
        """~6 % of succeeded cells reviewed by one to three people, 15 % of the big sweep's;
        "you" have done part of the first 100."""
        rng, rows = self.rng, []
        for n, (gid, sweep_id, completed) in enumerate(generations):
            share = 0.15 if sweep_id == gallery_sweep else 0.06
            if n < 100:
                share = 0.4
            if rng.random() >= share:
                continue
            for reviewer in rng.sample(PEOPLE[:4], rng.choice([1, 1, 2, 3])):
                at = min(completed + dt.timedelta(hours=rng.uniform(0.1, 48)), self.now)
                rows.append(dict(
                    generation_id=gid, reviewer=reviewer,
                    rating=rng.randint(1, 5) if rng.random() < 0.85 else None,
                    thumbs=rng.choice([1, -1, None]), note="" if rng.random() < 0.9 else "hands",
                    tags=rng.sample(PRESET_TAGS, rng.choice([0, 0, 0, 1, 2])),
                    seconds_spent=round(rng.uniform(2, 40), 1), created_at=at, updated_at=at))
        return rows


def seed_database(url: str, generations: int, media: dict[str, list[str]]) -> dict[str, Any]:
    """Migrate, then insert sweeps, generations and reviews in batches (Core inserts)."""
    started = time.monotonic()
    upgrade(url)
    engine = create_db_engine(url)
    now = dt.datetime.now(dt.timezone.utc)
    seeder = Seeder(generations, media, now)
    try:
        with session_scope(engine) as session:
            sdxl = ModelSpec(ref=SDXL_REF, version_id=SDXL_VERSION, strength_input="prompt_strength",
                             input_schema=load_bundled_version(SDXL_REF)["openapi_schema"],
                             pricing_kind="per_second", hardware="Nvidia A40 (Large) GPU",
                             usd_per_second=0.000725)
            other = ModelSpec(ref=OTHER_MODEL, version_id="f" * 64, pricing_kind="per_image",
                              usd_per_image=0.003)
            session.add_all([sdxl, other])
            images = [InputImage(sha256=f"{n:064x}", storage_key=media["input"][n % 3],
                                 thumbnail_key=media["input_thumb"][n % 3],
                                 content_type="image/png", width=768, height=768,
                                 size_bytes=1_200_000, label=f"test person {n + 1}",
                                 uploaded_by=PEOPLE[n % len(PEOPLE)]) for n in range(12)]
            session.add_all(images)
            session.flush()
            scenario_ids = [core_scenarios.create_scenario(
                session, name, actor="alice", prompt_template=PROMPTS[n], model_ref=SDXL_REF,
                params={"strength": round(0.3 + 0.1 * n, 2), "num_inference_steps": 25}).id
                for n, name in enumerate(["projection-level-1", "projection-level-2",
                                          "rear-view", "side-view", "full-body"])]
            models = {SDXL_REF: (sdxl.id, sdxl.version_id), OTHER_MODEL: (other.id, other.version_id)}
            plans = seeder.sweeps(models, scenario_ids, [i.id for i in images])
        finished: list[tuple[int, int, dt.datetime]] = []
        batch: list[dict[str, Any]] = []
        for sweep, strengths, seeds in plans:
            cells = list(seeder.cells(sweep, strengths, seeds))
            with session_scope(engine) as session:
                session.execute(Sweep.__table__.insert(),
                                [{k: v for k, v in sweep.items() if not k.startswith("_")}])
            batch += cells
            finished += [(c["id"], c["sweep_id"], c["completed_at"]) for c in cells
                         if c["state"] == GenerationState.SUCCEEDED]
            if len(batch) >= 5000 or sweep is plans[-1][0]:
                with session_scope(engine) as session:
                    session.execute(Generation.__table__.insert(), batch)
                batch = []
        finished.sort(key=lambda f: (f[2], f[0]))
        reviews = seeder.reviews(finished, plans[-1][0]["id"])
        with session_scope(engine) as session:
            for start in range(0, len(reviews), 5000):
                session.execute(Review.__table__.insert(), reviews[start:start + 5000])
        if engine.dialect.name == "postgresql":
            with engine.connect() as conn, conn.begin():
                for name in ("sweep", "generation"):  # explicit ids: move the sequences on
                    conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                                      f"(SELECT max(id) FROM {name}))"))
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("VACUUM ANALYZE"))  # what autovacuum would have done by now
        with engine.connect() as conn:
            states = dict(conn.execute(text("SELECT state, count(*) FROM generation GROUP BY state")).all())
            endpoints = dict(conn.execute(text("SELECT endpoint, count(*) FROM generation GROUP BY endpoint")).all())
            reused = conn.execute(text("SELECT count(*) FROM generation WHERE reused_from_id IS NOT NULL")).scalar()
    finally:
        engine.dispose()
    return {"generations": seeder.gen_id, "sweeps": len(plans), "reviews": len(reviews),
            "gallery_sweep_id": plans[-1][0]["id"], "states": states, "endpoints": endpoints,
            "reused": reused, "people": len(PEOPLE), "scenarios": 5, "models": 2,
            "days": 90, "seed_s": round(time.monotonic() - started, 1)}


# The tests' helpers: a fresh PostgreSQL database per run, dropped afterwards.
from tests.services import fresh_postgres_database as postgres_database  # noqa: E402
from tests.services import postgres_available as postgres_answers  # noqa: E402


# -- pages ---------------------------------------------------------------------------------------
@contextlib.contextmanager
def product_env(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in [*values, "AUTH_USERS_FILE", "REPLICATE_API_TOKEN"]}
    os.environ.pop("AUTH_USERS_FILE", None)
    os.environ.pop("REPLICATE_API_TOKEN", None)
    os.environ.update(values)
    clear_caches()
    try:
        yield
    finally:
        clear_caches()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class ArrowFallbacks(logging.Filter):
    """Counts (and keeps off stderr) Streamlit's "Serialization of dataframe to Arrow table
    was unsuccessful" tracebacks: a frame with a mixed-type column, converted twice."""

    count = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if "Arrow table was unsuccessful" in record.getMessage():
            ArrowFallbacks.count += 1
            return False
        return True


def _timed_run(app: AppTest) -> float:
    started = time.perf_counter()
    app.run()
    return time.perf_counter() - started


def open_app() -> AppTest:
    clear_caches()
    return AppTest.from_file(APP, default_timeout=120).run()


def run_page(page: str) -> dict[str, Any]:
    """One repeat: cold, warm and data-cold times of a page, and what it showed."""
    app = open_app()
    clear_caches()  # the first run drew Overview: start the page from nothing
    app.switch_page(f"pages/{page}.py")
    fallbacks = ArrowFallbacks.count
    cold = _timed_run(app)
    fallbacks = ArrowFallbacks.count - fallbacks
    shown = [e.value for e in app.error]  # e.g. a failing health check: reported, not fatal
    problems = [e.value for e in app.exception] + [m for m in shown if m.startswith(UNEXPECTED)]
    images = len(app.image)
    warm = _timed_run(app)
    st.cache_data.clear()
    data_cold = _timed_run(app)
    return {"cold": cold, "warm": warm, "data_cold": data_cold, "problems": problems,
            "errors_shown": shown, "images": images, "arrow_fallbacks": fallbacks}


def measure_pages(repeats: int) -> dict[str, dict[str, Any]]:
    results = {}
    for page in PAGES:
        runs = [run_page(page) for _ in range(repeats)]
        results[page] = {kind: round(statistics.median(r[kind] for r in runs), 3)
                         for kind in ("cold", "warm", "data_cold")}
        results[page].update(problems=sorted({p for r in runs for p in r["problems"]}),
                             errors_shown=sorted({e for r in runs for e in r["errors_shown"]}),
                             images=runs[0]["images"], repeats=repeats,
                             arrow_fallbacks=runs[0]["arrow_fallbacks"],
                             cold_all=[round(r["cold"], 3) for r in runs])
        print(f"    {page}: cold {results[page]['cold']} s, warm {results[page]['warm']} s",
              file=sys.stderr, flush=True)
    return results


# -- SQL: capture, re-run, EXPLAIN ---------------------------------------------------------------
class StatementLog:
    """Every statement any engine runs while active, with the core/dashboard function that
    issued it and its time."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []
        self.page = ""
        self._local = threading.local()

    def _before(self, conn, cursor, statement, parameters, context, executemany):
        self._local.started = time.perf_counter()

    def _after(self, conn, cursor, statement, parameters, context, executemany):
        took = time.perf_counter() - getattr(self._local, "started", time.perf_counter())
        self.entries.append({"page": self.page, "sql": statement, "params": parameters,
                             "ms": took * 1000, "origin": _origin()})

    def __enter__(self) -> StatementLog:
        event.listen(Engine, "before_cursor_execute", self._before)
        event.listen(Engine, "after_cursor_execute", self._after)
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(Engine, "before_cursor_execute", self._before)
        event.remove(Engine, "after_cursor_execute", self._after)


def _origin() -> str:
    frame = sys._getframe(2)
    while frame is not None:
        path = Path(frame.f_code.co_filename)
        if (path.is_relative_to(PROJECT_ROOT / "core") or path.is_relative_to(PROJECT_ROOT / "dashboard")) \
                and path.name not in ("db.py", "sqlstats.py"):
            return f"{path.parent.name}/{path.name}:{frame.f_code.co_name}"
        frame = frame.f_back
    return "?"


def _is_app_select(sql: str) -> bool:
    head = sql.lstrip().upper()
    return (head.startswith(("SELECT", "WITH")) and "ALEMBIC_VERSION" not in head
            and "SQLITE_MASTER" not in head and "PG_CATALOG" not in head
            and head.strip() != "SELECT 1")


def capture_sql() -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """One cold run per page with every statement recorded."""
    per_page: dict[str, dict[str, Any]] = {}
    with StatementLog() as log:
        for page in PAGES:
            app = open_app()
            clear_caches()
            log.page, first = page, len(log.entries)
            app.switch_page(f"pages/{page}.py").run()
            mine = [e for e in log.entries[first:] if _is_app_select(e["sql"])]
            per_page[page] = {"statements": len(log.entries) - first, "selects": len(mine),
                              "sql_ms": round(sum(e["ms"] for e in log.entries[first:]), 1)}
            log.page = ""
    return per_page, [e for e in log.entries if e["page"] and _is_app_select(e["sql"])]


def explain_all(url: str, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each distinct SELECT re-run alone (median of 3, rows back) and EXPLAINed."""
    engine = create_db_engine(url)
    sqlite = engine.dialect.name == "sqlite"
    seen: dict[str, dict[str, Any]] = {}
    try:
        with engine.connect() as conn:
            for entry in entries:
                key = " ".join(entry["sql"].split())
                if key in seen:
                    seen[key]["pages"] = sorted({*seen[key]["pages"], entry["page"]})
                    continue
                params = entry["params"]
                times, rows = [], 0
                for _ in range(3):
                    started = time.perf_counter()
                    rows = len(conn.exec_driver_sql(entry["sql"], params).fetchall())
                    times.append(time.perf_counter() - started)
                prefix = "EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN "
                plan = conn.exec_driver_sql(prefix + entry["sql"], params).fetchall()
                lines = _sqlite_plan(plan) if sqlite else [r[0] for r in plan]
                seen[key] = {"origin": entry["origin"], "pages": [entry["page"]],
                             "ms": round(statistics.median(times) * 1000, 2), "rows": rows,
                             "sql": key, "params": repr(params)[:300], "plan": lines,
                             "flags": _flags(lines, rows, sqlite)}
    finally:
        engine.dispose()
    return sorted(seen.values(), key=lambda s: -s["ms"])


def _sqlite_plan(rows: list[Any]) -> list[str]:
    depth: dict[int, int] = {0: -1}
    lines = []
    for node, parent, _, detail in rows:
        depth[node] = depth.get(parent, -1) + 1
        lines.append("  " * depth[node] + detail)
    return lines


def _flags(plan: list[str], rows: int, sqlite: bool) -> list[str]:
    flags = []
    for line in plan:
        words = line.strip()
        if sqlite and words.startswith("SCAN generation") or not sqlite and "Seq Scan on generation" in words:
            flags.append("full scan of generation")
            break
    if rows > MANY_ROWS:
        flags.append(f"{rows} rows back")
    return flags


# -- profiling -----------------------------------------------------------------------------------
@contextlib.contextmanager
def profiling(path: Path | None) -> Iterator[None]:
    """py-spy on this process (AppTest runs the page in its own thread): collapsed stacks."""
    if path is None:
        yield
        return
    spy = start_process(["py-spy", "record", "--nonblocking", "-r", "250", "-f", "raw",
                         "-p", str(os.getpid()), "-o", str(path)])
    try:
        time.sleep(1.0)  # py-spy attaches
        yield
    finally:
        spy.send_signal(2)
        try:
            spy.wait(30)
        except Exception:  # noqa: BLE001 - a stuck py-spy is stopped below
            stop_process(spy)


def profile_pages(profile_dir: Path, backend: str, repeats: int = 3) -> None:
    for page in PAGES:
        with profiling(profile_dir / f"{backend}-{page}-cold.txt"):
            for _ in range(repeats):
                app = open_app()
                clear_caches()
                app.switch_page(f"pages/{page}.py").run()


# -- one backend ---------------------------------------------------------------------------------
@contextlib.contextmanager
def database(backend: str, folder: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{folder / 'tuner.db'}"
    else:
        with postgres_database() as url:
            yield url


def run_backend(backend: str, generations: int, repeats: int, tmp: Path, redis_url: str,
                emulator_url: str, media: dict[str, list[str]], media_url: str,
                profile_dir: Path | None) -> dict[str, Any]:
    result: dict[str, Any] = {"backend": backend}
    env = {"REDIS_URL": redis_url, "REPLICATE_BASE_URL": emulator_url}
    (tmp / backend / "empty").mkdir(parents=True)
    (tmp / backend / "seeded").mkdir(parents=True)
    print(f"… {backend}: empty database (baseline)", file=sys.stderr, flush=True)
    with database(backend, tmp / backend / "empty") as url:
        upgrade(url)
        with product_env({**env, "DATABASE_URL": url,
                          "MEDIA_URL": f"file://{tmp / backend / 'empty-media'}"}):
            open_app()  # imports and first-run set-up, not measured
            result["empty"] = measure_pages(repeats)
    print(f"… {backend}: seeding {generations:,} generations", file=sys.stderr, flush=True)
    with database(backend, tmp / backend / "seeded") as url:
        result["seed"] = seed_database(url, generations, media)
        print(f"  seeded in {result['seed']['seed_s']} s", file=sys.stderr, flush=True)
        with product_env({**env, "DATABASE_URL": url, "MEDIA_URL": media_url}):
            open_app()
            result["seeded"] = measure_pages(repeats)
            per_page, entries = capture_sql()
            result["sql_per_page"] = per_page
            result["statements"] = explain_all(url, entries)
            if profile_dir is not None:
                profile_pages(profile_dir, backend)
    return result


# -- report --------------------------------------------------------------------------------------
def rows_for(result: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for page in PAGES:
        empty, seeded = result["empty"][page], result["seeded"][page]
        sql = result["sql_per_page"][page]
        target = TARGETS_S.get(page)
        rows.append({
            "backend": result["backend"], "page": page, "empty_cold_s": empty["cold"],
            "cold_s": seeded["cold"], "warm_s": seeded["warm"],
            "data_cold_s": seeded["data_cold"],
            "ratio": round(seeded["cold"] / empty["cold"], 2) if empty["cold"] else None,
            "sql": f"{sql['sql_ms']} ms / {sql['statements']}", "images": seeded["images"],
            "arrow_fallbacks": seeded["arrow_fallbacks"],
            "target_s": target, "problems": seeded["problems"],
            "result": verdict(seeded["cold"] <= target and not seeded["problems"]) if target else "-",
        })
    return rows


COLUMNS = [("backend", "backend"), ("page", "page"), ("empty_cold_s", "empty cold s"),
           ("cold_s", "cold s"), ("warm_s", "warm s"), ("data_cold_s", "data-cold s"),
           ("ratio", "cold ÷ empty"), ("sql", "SQL exec ms / statements"), ("images", "images"),
           ("arrow_fallbacks", "Arrow fallbacks"),
           ("target_s", "target s"), ("result", "result")]
STATEMENT_COLUMNS = [("backend", "backend"), ("origin", "issued by"), ("pages", "pages"),
                     ("ms", "ms alone"), ("rows", "rows"), ("flags", "flags")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="20,000 generations and 3 repeats instead of 100,000 and 5.")
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], action="append",
                        help="Only this backend (repeatable); both by default.")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="Also record py-spy profiles (collapsed stacks) of 3 cold runs of "
                             "each seeded page into DIR (after the measurements).")
    args = parser.parse_args(argv)
    generations, repeats = (20_000, 3) if args.quick else (100_000, 5)
    backends = args.backend or ["sqlite", "postgresql"]
    if "postgresql" in backends and not postgres_answers():
        print(f"PostgreSQL does not answer at {PG_SERVER_URL}: skipping it", file=sys.stderr)
        backends = [b for b in backends if b != "postgresql"]
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    info = machine_info()
    # AppTest's runs would otherwise treat pages/ as an old-style multipage app (see
    # tests/pages/conftest.py): decide it as the server does, for this process.
    app_test_module.PagesManager = ServerLikePagesManager
    logging.getLogger("streamlit.dataframe_util").addFilter(ArrowFallbacks())
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-dashboard-") as tmp_name:
        tmp = Path(tmp_name)
        redis = RedisServer(tmp / "redis")
        try:
            with EmulatorServer(EmulatorConfig.fast()) as emulator:
                media_url = f"file://{tmp / 'media'}"
                media = store_media(media_url)
                for backend in backends:
                    results.append(run_backend(backend, generations, repeats, tmp, redis.url,
                                               emulator.base_url, media, media_url,
                                               args.profile))
        finally:
            redis.stop()
    rows = [row for result in results for row in rows_for(result)]
    statements = [{"backend": r["backend"], **s} for r in results for s in r["statements"]]
    print(f"\nDashboard at scale — {info['date']}, {info['nproc']} CPUs ({info['cpu_model']}), "
          f"{info['memory_gb']} GB, Python {info['python']}; {generations:,} generations over 90 "
          f"days; median of {repeats}; baseline = the same pages on an empty database\n")
    print(table(rows, COLUMNS))
    targets = {f"{r['backend']}: {r['page']} cold ≤ {r['target_s']} s": {
        "value": r["cold_s"], "result": r["result"]} for r in rows if r["target_s"]}
    for result in results:
        pulled = [s for s in result["statements"] if any("rows back" in f for f in s["flags"])
                  and "gallery" not in s["pages"]]
        targets[f"{result['backend']}: no chart query brings back > {MANY_ROWS} rows"] = {
            "value": ", ".join(s["origin"] for s in pulled) or "none",
            "result": verdict(not pulled)}
        problems = {r["page"]: r["problems"] for r in rows
                    if r["backend"] == result["backend"] and r["problems"]}
        targets[f"{result['backend']}: every page runs without an error"] = {
            "value": problems or "none", "result": verdict(not problems)}
    print()
    print(table([{"target": k, **v} for k, v in targets.items()],
                [("target", "target"), ("value", "measured"), ("result", "result")]))
    print("\nSlowest SELECTs re-run alone (all of them, with plans, are in the JSON):\n")
    print(table([{**s, "pages": ",".join(s["pages"]), "flags": "; ".join(s["flags"])}
                 for s in sorted(statements, key=lambda s: -s["ms"])[:20]], STATEMENT_COLUMNS))
    path = write_results("dashboard", {
        "machine": info, "quick": args.quick, "generations": generations, "repeats": repeats,
        "pages": rows, "targets": targets,
        "backends": [{k: v for k, v in r.items() if k != "statements"} for r in results],
        "statements": statements})
    print(f"\nwrote {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")
    return 0 if all(v["result"] == "PASS" for v in targets.values()) else 1


if __name__ == "__main__":
    sys.exit(main())

"""The benchmarks' database at scale: one way to seed it, shared by bench/dashboard.py and
bench/browser.py.

The database is migrated (``core.data.db.upgrade``) and seeded in bulk with generations spread
over 90 days: several scenarios, two models, six people, mostly succeeded cells with some
failed, canceled and reused ones, real and emulator endpoints, costs, latencies and reviews,
and — newest — one sweep of 1,000 cells (10 strengths × 100 seeds) whose thumbnails are real
files in the media directory (a few distinct images, their bytes and keys shared by many
cells), so the Gallery's first view loads real images.
"""

from __future__ import annotations

import datetime as dt
import io
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from sqlalchemy import text

import common  # noqa: F401 - puts the project root on sys.path

from core.auth import local_user
from core.data.db import create_db_engine, session_scope, upgrade
from core.data.images import make_thumbnail
from core.data.models import (Endpoint, Generation, GenerationState, InputImage,
                              ModelSpec, Review, Sweep)
from core.data.storage import LocalMediaStore
from core.insight.review import PRESET_TAGS
from core.planning.catalog import SDXL_REF, SDXL_VERSION
from core.planning.known_models import KNOWN_MODELS
from core.planning.schema import load_bundled_version
from core.scenarios import versions as core_scenarios

SDXL_USD_PER_SECOND = KNOWN_MODELS[SDXL_REF].price.usd  # the price table's one home

GALLERY_CELLS = 1000
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
                   cost_usd=round(0.003 if per_image else predict_s * SDXL_USD_PER_SECOND, 6))
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
                             usd_per_second=SDXL_USD_PER_SECOND)
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

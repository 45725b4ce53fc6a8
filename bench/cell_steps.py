"""Where a sweep cell's CPU goes: each step of a cell timed alone, beside the unavoidable work.

    python3 bench/cell_steps.py [--repeats N]

bench/sweep.py reports the workers' CPU per cell as a whole (user + system seconds ÷ cells)
and as a multiple of the unavoidable work of a cell (download the output, hash it, write it
and its thumbnail durably, decode it and make the thumbnail). This benchmark times the steps
the worker runs for a cell, one at a time in this process, with the same code and libraries
(median CPU of ``--repeats``; process time, so waits do not count):

- the create and one poll through the official client, and the output downloaded the way the
  worker downloads it (httpx.AsyncClient on uvloop) and, for comparison, with the synchronous
  client the unavoidable work uses, against the emulator over loopback;
- decode + thumbnail (core.data.images.decode_rgb + thumbnail_of, as the store step) and the
  image metrics against a prepared input (core.insight.measured.record_output: measure and
  save, in its own transaction);
- each database transaction of a cell (core.engine.lifecycle and core.planning.budget) on a
  temporary SQLite database holding a 200-cell sweep, as in bench/sweep.py's 200-cell run;
  the pick-up as a cell's share of a chunk of 32 claimed at once, as the worker does, and
  for comparison one cell claimed alone.

What the steps do not add up to, against bench/sweep.py's CPU per cell, is the rest of a
cell's life: Redis (leases, slots, the create-rate limit), the event loop, the thread pools,
the heartbeats and RQ's job bookkeeping.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from common import RedisServer, machine_info, table, write_results
from sweep import (emulator_output, grid_for, photo_like_png, submit, unavoidable_cpu_ms,
                   wait_until)

from sqlalchemy import select

from core.config import Settings
from core.data.db import session_scope
from core.data.images import decode_rgb, thumbnail_of
from core.data.library import add_image
from core.data.models import Generation, GenerationState
from core.engine import lifecycle
from core.engine.replicate_api import (CreateTarget, Endpoint, aclose_client, build_async_client,
                                       create_prediction, get_prediction)
from core.insight import measured
from core.insight.metrics import NORMALISED_PX, ReferenceCache
from core.planning import budget
from core.planning.catalog import SDXL_VERSION
from core.runtime import open_runtime

CELLS = 200
CHUNK = 32  # the chunk size of bench/sweep.py's 200-cell run


def cpu_ms(step: Callable[[], Any], repeats: int) -> float:
    """Median process-time ms of ``step`` (after one untimed call)."""
    step()
    times = []
    for _ in range(repeats):
        started = time.process_time()
        step()
        times.append(time.process_time() - started)
    return round(statistics.median(times) * 1000, 2)


def download_steps(image: bytes, repeats: int) -> tuple[dict[str, float], bytes]:
    import httpx
    import uvloop

    with emulator_output(image) as (client, url, _):
        output = client.get(url).content
        rows = {"download, synchronous client (as the unavoidable work)":
                cpu_ms(lambda: client.get(url).content, repeats)}
        endpoint = Endpoint(base_url=str(client.base_url).rstrip("/"), token="bench",
                            is_emulator=True)
        target = CreateTarget(create_via="versioned", model_ref="stability-ai/sdxl",
                              version_id=SDXL_VERSION)

        async def timed(step: Callable[[], Awaitable[Any]]) -> float:
            await step()
            times = []
            for _ in range(repeats):
                started = time.process_time()
                await step()
                times.append(time.process_time() - started)
            return round(statistics.median(times) * 1000, 2)

        async def asynchronous() -> None:
            api = build_async_client(endpoint)
            async with httpx.AsyncClient(timeout=60) as http:
                rows["download, httpx.AsyncClient on uvloop (as the worker)"] = await timed(
                    lambda: http.get(url))
                # The photo as the worker sends it: uploaded once (Files API), then its URL.
                upload = await api.files.async_create(io.BytesIO(image))
                model_input = {"image": upload.urls["get"], "prompt": "p", "seed": 1}
                created: list[str] = []

                async def create() -> None:
                    answer = await create_prediction(api, target, model_input, cancel_after_s=60)
                    created.append(answer["id"])

                rows["API: create a prediction (the official client)"] = await timed(create)
                wait_until(lambda: client.get(f"/v1/predictions/{created[-1]}").json()["status"]
                           == "succeeded", 30, "the created prediction", interval=0.05)
                rows["API: poll it once (succeeded)"] = await timed(
                    lambda: get_prediction(api, created[-1]))
            await aclose_client(api)

        uvloop.run(asynchronous())
    return rows, output


def store_and_database_steps(image: bytes, output: bytes, repeats: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-steps-") as tmp_name:
        tmp = Path(tmp_name)
        redis = RedisServer(tmp / "redis")
        try:
            settings = Settings(database_url=f"sqlite:///{tmp / 'tuner.db'}",
                                media_url=f"file://{tmp / 'media'}", redis_url=redis.url,
                                replicate_base_url="http://127.0.0.1:9", sweep_budget_usd=1000,
                                replicate_api_token=None)
            runtime = open_runtime(settings)
            with session_scope(runtime.engine) as session:
                photo = add_image(session, runtime.store, settings, image, filename="face.png",
                                  uploaded_by="bench")
                image_id, image_key, image_sha = photo.id, photo.storage_key, photo.sha256
            sweep_id = submit(runtime, grid_for(CELLS), image_id, chunk_size=CHUNK)
            with session_scope(runtime.engine) as session:
                ids = list(session.scalars(select(Generation.id)
                                           .where(Generation.sweep_id == sweep_id)))
            rows: dict[str, float] = {}
            px = settings.thumbnail_max_px
            decoded = decode_rgb(output, at_least_px=max(px, NORMALISED_PX))
            rows["decode + thumbnail (as the store step)"] = cpu_ms(
                lambda: thumbnail_of(decode_rgb(output, at_least_px=max(px, NORMALISED_PX)),
                                     max_px=px), repeats)
            measured._REFERENCES = ReferenceCache()  # the input prepared once, as in a sweep
            rows["image metrics: measure + save (one transaction)"] = cpu_ms(
                lambda: measured.record_output(runtime.engine, runtime.store, ids[0], image_key,
                                               image_sha, decoded), repeats)
            rows.update(database_steps(runtime, sweep_id, ids, repeats))
            runtime.engine.dispose()
            return rows
        finally:
            redis.stop()


def database_steps(runtime: Any, sweep_id: int, ids: list[int],
                   repeats: int) -> dict[str, float]:
    """Each transaction of a cell's life, in order, on cells of the sweep (one cell each
    time round, so every UPDATE finds its cell in the state it expects)."""
    caps = budget.Caps(sweep_usd=1000.0, daily_usd=1e9, monthly_usd=1e9)
    now = lambda: dt.datetime.now(dt.timezone.utc)  # noqa: E731
    steps: dict[str, Callable[[Any, int, int], Any]] = {
        "claim one cell alone (for comparison)": lambda s, gid, _fence: lifecycle.claim(
            s, gid, now()),
        "reserve against the caps": lambda s, _gid, _fence: budget.reserve(
            s, caps, sweep_id, wanted_usd=0.01, least_usd=0.001, is_real=False, now=now()),
        "begin submit": lambda s, gid, fence: lifecycle.begin_submit(s, gid, fence, now(), 0.01),
        "record the prediction": lambda s, gid, fence: lifecycle.record_prediction(
            s, gid, fence, {"id": f"p{gid}", "status": "starting",
                            "created_at": "2026-12-02T10:00:00.000000Z"}, now()),
        "read the state before storing": lambda s, gid, _fence: lifecycle.current_state(s, gid),
        "finish": lambda s, gid, fence: lifecycle.finish(
            s, gid, fence, GenerationState.SUCCEEDED, cost_usd=0.01, error=None),
    }
    times: dict[str, list[float]] = {name: [] for name in steps}
    for gid in ids[: repeats + 1]:
        fence = 0
        for name, step in steps.items():
            started = time.process_time()
            with session_scope(runtime.engine) as session:
                result = step(session, gid, fence)
            times[name].append(time.process_time() - started)
            if isinstance(result, lifecycle.CellTask):
                fence = result.fence
    # The worker picks a chunk's cells up in one transaction: its share of one, on cells
    # the steps above did not touch.
    rest = ids[repeats + 1:]
    chunks = [rest[i:i + CHUNK] for i in range(0, len(rest) - CHUNK + 1, CHUNK)]
    shares = []
    for chunk in chunks:
        started = time.process_time()
        with session_scope(runtime.engine) as session:
            lifecycle.claim_many(session, chunk, now())
        shares.append((time.process_time() - started) / len(chunk))
    rows = {f"database: claim, a cell's share of a chunk of {CHUNK} picked up at once":
            round(statistics.median(shares) * 1000, 2)}
    return rows | {f"database: {name}": round(statistics.median(t[1:]) * 1000, 2)
                   for name, t in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=20, help="Timed runs of each step.")
    args = parser.parse_args(argv)
    if args.repeats < 2 or args.repeats > CELLS - 1 - 2 * CHUNK:
        parser.error(f"--repeats must be from 2 to {CELLS - 1 - 2 * CHUNK}")
    info = machine_info()
    image = photo_like_png()
    floor = round(unavoidable_cpu_ms(image, args.repeats), 2)
    steps, output = download_steps(image, args.repeats)
    steps.update(store_and_database_steps(image, output, args.repeats))
    rows = [{"step": "the unavoidable work of a cell (bench/sweep.py's floor)", "cpu_ms": floor,
             "ratio": 1.0}]
    rows += [{"step": name, "cpu_ms": ms, "ratio": round(ms / floor, 2)}
             for name, ms in steps.items()]
    worker = {k: v for k, v in steps.items()
              if "synchronous" not in k and "for comparison" not in k}
    total = round(sum(worker.values()), 2)
    rows.append({"step": "the worker's steps above (without the rows for comparison)",
                 "cpu_ms": total, "ratio": round(total / floor, 2)})
    print(f"\nA cell's steps — {info['date']}, {info['nproc']} CPUs ({info['cpu_model']}), "
          f"Python {info['python']}; median CPU of {args.repeats}; output "
          f"{len(output) / 1e6:.2f} MB PNG\n")
    print(table(rows, [("step", "step"), ("cpu_ms", "CPU ms"), ("ratio", "÷ unavoidable")]))
    path = write_results("cell-steps", {"machine": info, "repeats": args.repeats,
                                        "output_bytes": len(output), "rows": rows})
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

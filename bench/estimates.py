"""Estimates that learn: cost and duration shown before submit against what the sweep did.

    python3 bench/estimates.py [--cells 60]

A private redis-server, a temp SQLite database, the emulator with its default latency model
(predict time uniform 2–6 s whatever the steps, a queue delay) and real worker processes.
One earlier sweep runs first (so the model version has a history); then, for each case, a
sweep is planned and submitted the way the dashboard does it (``core.planning.submit``: the
endpoint, the live
workers and the chunk size), submitted and run, and its estimate compared with the actual:
cost = the cells' billed cost, duration = submit → the last stored output. Baseline in the
same run: the estimate the same plan gets with no history (the price table and the prior).
Target: after one earlier sweep, the estimate within ±15% of actual for both.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from pathlib import Path
from typing import Any

from common import (EmulatorProcess, RedisServer, clean_env, machine_info, start_python,
                    stop_process, table, verdict, wait_until, write_results)

from core.config import Settings
from core.data.db import session_scope
from core.data.library import add_image
from core.data.models import Sweep
from core.engine.worker import live_workers
from core.insight.evidence import load_cells
from core.insight.report import actual
from core.planning import submit as submission
from core.planning.sweeps import SweepRequest
from core.runtime import open_runtime

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sweep import all_final, photo_like_png

TOLERANCE = 0.15
CHUNK_SIZE = 16
INFLIGHT_CAP = 32


def grid(cells: int, steps: str, first_seed: int) -> SweepRequest:
    seeds = cells // 10
    return SweepRequest(model_ref="stability-ai/sdxl", image_ids=[], strength="0.1-0.9 [10]",
                        steps=steps, prompts=["a portrait, studio light"],
                        seed=f"{first_seed}-{first_seed + seeds - 1}", fresh_run=True)


def run_sweep(runtime, request: SweepRequest, image_id: int) -> dict[str, Any]:
    request = dataclasses.replace(request, image_ids=[image_id])
    workers = len(live_workers(runtime.redis)) or None
    # The estimate a person sees before submitting, then the product's one submit path.
    plan = submission.plan(runtime, request)
    submitted = submission.submit_sweep(runtime, request, actor="bench")
    if not submitted.queued:
        raise SystemExit(submitted.message())
    sweep_id = submitted.sweep_id
    wait_until(lambda: all_final(runtime, sweep_id, len(plan.cells)), 600,
               f"sweep {sweep_id} to finish")
    with session_scope(runtime.engine) as session:
        done = actual(session.get(Sweep, sweep_id), load_cells(session, sweep_ids=[sweep_id]))
    return {"sweep_id": sweep_id, "cells": len(plan.cells), "workers": workers,
            "estimate_cost_usd": plan.estimated_cost_usd,
            "estimate_duration_s": plan.estimated_duration_s,
            "basis": plan.estimate.basis if plan.estimate else "",
            "actual_cost_usd": done["cost_usd"], "actual_duration_s": done["duration_s"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=60, help="cells per sweep (a multiple of 10)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-estimates-") as tmp_name:
        tmp = Path(tmp_name)
        redis = RedisServer(tmp / "redis")
        emulator = EmulatorProcess(["--rate-limit", "0"], log=tmp / "emulator.log")
        started = []
        try:
            env = clean_env(DATABASE_URL=f"sqlite:///{tmp / 'tuner.db'}",
                            MEDIA_URL=f"file://{tmp / 'media'}", REDIS_URL=redis.url,
                            REPLICATE_BASE_URL=emulator.base_url, INFLIGHT_CAP=str(INFLIGHT_CAP),
                            CHUNK_SIZE=str(CHUNK_SIZE), SWEEP_BUDGET_USD="1000")
            settings = Settings(database_url=env["DATABASE_URL"], media_url=env["MEDIA_URL"],
                                redis_url=redis.url, replicate_base_url=emulator.base_url,
                                inflight_cap=INFLIGHT_CAP, chunk_size=CHUNK_SIZE,
                                sweep_budget_usd=1000, replicate_api_token=None)
            runtime = open_runtime(settings)
            with session_scope(runtime.engine) as session:
                image_id = add_image(session, runtime.store, settings, photo_like_png(512),
                                     filename="bench.png", uploaded_by="bench").id
            started.append(start_python(["core", "worker", "--concurrency", "2"], env,
                                        tmp / "worker.log"))
            wait_until(lambda: len(live_workers(runtime.redis)) == 2, 60, "two workers")
            cases = [("earlier sweep, steps 20/30/40 (no history yet)",
                      grid(args.cells // 3, "20, 30, 40", 1)),
                     ("same grid, new seeds", grid(args.cells // 3, "20, 30, 40", 1000)),
                     ("steps 25 only", grid(args.cells, "25", 2000))]
            rows = []
            for name, request in cases:
                result = run_sweep(runtime, request, image_id)
                result["case"] = name
                rows.append(result)
        finally:
            for process in started:
                stop_process(process)
            emulator.stop()
            redis.stop()

    shown, ok = [], True
    for row in rows:
        cost_error = row["estimate_cost_usd"] / row["actual_cost_usd"] - 1
        duration_error = row["estimate_duration_s"] / row["actual_duration_s"] - 1
        row["cost_error"], row["duration_error"] = cost_error, duration_error
        learned = row["case"] != cases[0][0]
        if learned:
            ok = ok and abs(cost_error) <= TOLERANCE and abs(duration_error) <= TOLERANCE
        shown.append({"case": row["case"], "cells": row["cells"],
                      "est_cost": f"${row['estimate_cost_usd']:.4f}",
                      "act_cost": f"${row['actual_cost_usd']:.4f}",
                      "cost_err": f"{cost_error:+.0%}",
                      "est_s": f"{row['estimate_duration_s']:.1f}",
                      "act_s": f"{row['actual_duration_s']:.1f}",
                      "dur_err": f"{duration_error:+.0%}",
                      "target": verdict(abs(cost_error) <= TOLERANCE
                                        and abs(duration_error) <= TOLERANCE)
                      if learned else "baseline (prior)"})
    print(table(shown, [("case", "sweep"), ("cells", "cells"), ("est_cost", "estimated cost"),
                        ("act_cost", "actual cost"), ("cost_err", "error"),
                        ("est_s", "estimated s"), ("act_s", "actual s"), ("dur_err", "error"),
                        ("target", "±15%")]))
    print(f"\nEstimates after one earlier sweep within ±{TOLERANCE:.0%}: {verdict(ok)}")
    path = write_results("estimates", {"machine": machine_info(), "cells": args.cells,
                                       "chunk_size": CHUNK_SIZE, "inflight_cap": INFLIGHT_CAP,
                                       "rows": rows, "pass": ok})
    print(f"Results: {path}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

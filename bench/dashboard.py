"""Dashboard at scale: the AppTest run time of every page with 100,000 generations.

    python3 bench/dashboard.py [--quick] [--backend sqlite|postgresql] [--profile DIR]

For each backend (a SQLite file, and a fresh PostgreSQL database on the local server that is
dropped afterwards) the database is migrated (``core.data.db.upgrade``) and seeded in bulk with
generations by bench/seeding.py (the one seeding bench/browser.py uses too): 90 days of
sweeps, people, reviews, and a 1,000-cell sweep with real thumbnails for the Gallery.

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
import logging
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event

from common import (PROJECT_ROOT, RedisServer, machine_info, start_process,
                    stop_process, table, verdict, write_results)
from seeding import GALLERY_CELLS, seed_database, store_media  # noqa: F401 - one seeding for all

import streamlit as st
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1 import app_test as app_test_module

from core.data.db import create_db_engine, upgrade
from core.emulator import EmulatorConfig, EmulatorServer
from tests.pages.conftest import APP, ServerLikePagesManager, clear_caches, grid_cells
# The tests' helpers: a fresh PostgreSQL database per run, dropped afterwards.
from tests.services import fresh_postgres_database as postgres_database
from tests.services import postgres_available as postgres_answers

PG_SERVER_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
PAGES = ["overview", "new_sweep", "runs", "gallery", "review", "monitoring", "scenarios",
         "settings"]
TARGETS_S = {"monitoring": 1.0, "overview": 0.5, "gallery": 1.0, "review": 0.5}  # cold
UNEXPECTED = "Something went wrong"  # dashboard.errors' words for an unexpected exception
MANY_ROWS = 2000  # a statement bringing back more rows than this is flagged



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


def shown_images(app: AppTest) -> int:
    """Images the page sends: st.image elements and the thumbnails of the Gallery's grid
    component."""
    return len(app.image) + sum(1 for cell in grid_cells(app) if cell["src"])


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
    images = shown_images(app)
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

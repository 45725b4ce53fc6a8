"""``python -m core``: thin commands over core functions; errors become one clear line."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any


from core.config import Settings
from core.data.redisio import redis_errors
from core.errors import InvalidInput, RedisUnavailable, TunerError

log = logging.getLogger("core.cli")


def _settings() -> Settings:
    from core.launcher import discover_local_services

    return discover_local_services(Settings())


def cmd_up(args: argparse.Namespace) -> int:
    from core.launcher import run_up

    settings = Settings()
    return run_up(settings, workers=args.workers, address=args.address or settings.dashboard_address,
                  port=args.port or settings.dashboard_port)


def cmd_worker(args: argparse.Namespace) -> int:
    from core.engine.worker import run_worker

    return run_worker(_settings(), concurrency=args.concurrency, burst=args.burst)


def cmd_emulator(args: argparse.Namespace) -> int:
    from core.emulator import config_from_args, serve

    serve(args.host, args.port, config_from_args(args))
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from core.data.db import upgrade

    upgrade(_settings().database_url)
    emit(args, {"migrated": True}, "Database is at the latest schema.")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from core.health import run_all

    results = run_all(_settings())
    if args.json:
        print(json.dumps([r.__dict__ for r in results], indent=2, default=str))
    else:
        for r in results:
            print(f"{'✓' if r.ok else '✗'} {r.name}: {r.detail}")
            if not r.ok:
                print(f"    fix: {r.fix}")
    return 0 if all(r.ok for r in results) else 1


def emit(args: argparse.Namespace, data: Any, text: str | None = None) -> None:
    """One result: JSON on stdout with ``--json``, else ``text`` (default: the JSON)."""
    if getattr(args, "json", False) or text is None:
        print(json.dumps(data, indent=2, default=str, ensure_ascii=False))
    else:
        print(text)


def cmd_sweep_run(args: argparse.Namespace) -> int:
    from core.auth import local_user
    from core.data.db import session_scope
    from core.planning.submit import submit_sweep
    from core.planning.sweeps import SweepRequest
    from core.runtime import open_runtime

    runtime = open_runtime(_settings())
    user = local_user()
    uploads = _checked_photos(runtime.settings, args.image)  # every file, before storing any
    with session_scope(runtime.engine) as session:
        scenario_id = _scenario_id(session, args.scenario)
    stored: dict[int, set[str]] = {}
    try:
        with session_scope(runtime.engine) as session:
            image_ids = _store_photos(session, runtime, uploads, user, stored)
        models = args.model or ["stability-ai/sdxl"]
        request = SweepRequest(
            model_ref=models[0], extra_models=models[1:], image_ids=image_ids,
            strength=args.strength, steps=args.steps, guidance=args.guidance, seed=args.seed,
            prompts=args.prompt, prompt_sr=args.prompt_sr or "",
            negative_prompt=args.negative_prompt or "",
            axes=_name_values(args.axis, "--axis"), fixed=_name_values(args.set, "--set"),
            cancel_after_s=args.cancel_after, scenario_id=scenario_id, budget_usd=args.budget,
            fresh_run=args.fresh, name=args.name or "")
        submitted = submit_sweep(runtime, request, actor=user)
    except BaseException:
        _forget_photos(runtime, stored, user)  # a refused submission keeps no photo
        raise
    if not submitted.queued:
        print(submitted.message(), file=sys.stderr)
        if args.json:
            emit(args, submitted.as_dict())
        return 3
    if not args.json:
        print(submitted.message() + f" ({runtime.endpoint.name}; costs are estimates from "
              "the price table: Replicate returns no price)")
        for ref, names in submitted.not_applied.items():
            print(f"  {ref} has no {', '.join(names)}: its cells leave that out.")
    if args.wait:
        _wait_for(runtime, submitted.sweep_id, quiet=args.json)
    return _print_status(runtime, submitted.sweep_id, as_json=args.json, with_cells=args.wait)


def _name_values(items: list[str] | None, flag: str) -> dict[str, str]:
    """``NAME=VALUES`` pairs of a repeatable flag, by name."""
    pairs: dict[str, str] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise TunerError(f"{flag} {item!r} is not NAME=VALUE: e.g. {flag} aspect_ratio=1:1")
        if name.strip() in pairs:
            raise TunerError(f"{flag} {name.strip()} is given twice: give it once")
        pairs[name.strip()] = value.strip()
    return pairs


def cmd_pricing_set(args: argparse.Namespace) -> int:
    from core.auth import local_user
    from core.data.db import session_scope
    from core.engine.replicate_api import build_client
    from core.planning.catalog import replicate_schema_fetcher, set_price
    from core.planning.pricing import Pricing
    from core.runtime import open_runtime

    given = [flag for flag in ("per_second", "per_image", "per_megapixel", "per_run")
             if getattr(args, flag) is not None]
    if len(given) != 1:
        raise TunerError("Give exactly one of --per-second, --per-image, --per-megapixel, "
                         "--per-run.")
    kind = given[0]
    if args.hardware and kind != "per_second":
        raise TunerError("--hardware goes with --per-second only.")
    if args.per_input_megapixel is not None and kind != "per_megapixel":
        raise TunerError("--per-input-megapixel goes with --per-megapixel only.")
    pricing = Pricing.for_kind(kind, getattr(args, kind), hardware=args.hardware,
                               as_of=args.as_of, usd_per_input_megapixel=args.per_input_megapixel)
    runtime = open_runtime(_settings())
    fetcher = replicate_schema_fetcher(build_client(runtime.endpoint))
    with session_scope(runtime.engine) as session:
        spec, diff = set_price(session, args.model, pricing, actor=local_user(),
                               fetch_schema=fetcher)
        described = Pricing.of(spec).describe()
    print(f"{spec.ref}: {described}" + ("" if diff else " (unchanged)"))
    return 0


def cmd_pricing_show(args: argparse.Namespace) -> int:
    from core.data.db import session_scope
    from core.planning.catalog import CREATE_VIA, list_models
    from core.planning.pricing import MissingPrice, Pricing
    from core.runtime import open_runtime

    runtime = open_runtime(_settings())
    rows: list[dict[str, Any]] = []
    with session_scope(runtime.engine) as session:
        for spec in list_models(session):
            try:
                pricing: Pricing | None = Pricing.of(spec)
            except MissingPrice:
                pricing = None
            rows.append({"model": spec.ref, "create_via": spec.create_via,
                         "deployment": spec.deployment,
                         "pricing_kind": pricing.kind if pricing else None,
                         "rate_usd": pricing.rate if pricing else None,
                         "hardware": spec.hardware,
                         "usd_per_input_megapixel": spec.usd_per_input_megapixel,
                         "as_of": spec.price_as_of,
                         "price": pricing.describe() if pricing else "no price yet"})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("No models yet: plan a sweep or `pricing set MODEL ...` to add one.")
    for row in rows:
        print(f"{row['model']}: {row['price']} — created via {CREATE_VIA[row['create_via']]}"
              + (f" ({row['deployment']})" if row["deployment"] else ""))
    print("Costs are estimates from this table: Replicate's API returns no price.")
    return 0


def cmd_model_set(args: argparse.Namespace) -> int:
    from core.auth import local_user
    from core.data.db import session_scope
    from core.planning.catalog import set_create_via
    from core.runtime import open_runtime

    runtime = open_runtime(_settings())
    with session_scope(runtime.engine) as session:
        spec = set_create_via(session, args.model, args.create_via, actor=local_user(),
                              deployment=args.deployment)
        print(f"{spec.ref}: predictions are created via {spec.create_via}"
              + (f" {spec.deployment}" if spec.deployment else "") + ".")
    return 0


def _scenario_id(session, name: str | None) -> int | None:  # noqa: ANN001
    if not name:
        return None
    from sqlalchemy import select

    from core.errors import NotFound
    from core.data.models import Scenario

    scenario = session.scalar(select(Scenario).where(Scenario.name == name))
    if scenario is None:
        raise NotFound(f"Scenario {name!r} does not exist: create it on the Scenarios page first.")
    return scenario.id


def _checked_photos(settings: Settings, paths: list[str]) -> list[tuple[bytes, str, str]]:
    """(data, label, sha256) of each photo file, every one read within the upload limit and
    checked before any is stored: a bad second file leaves nothing of the first behind."""
    from core.data.images import validate_upload

    checked = []
    for path in paths:
        data, label = _read_file(path, settings.upload_max_bytes), _file_label(path)
        info = validate_upload(data, max_bytes=settings.upload_max_bytes,
                               max_pixels=settings.upload_max_pixels, filename=label)
        checked.append((data, label, info.sha256))
    return checked


def _store_photos(session, runtime, uploads: list[tuple[bytes, str, str]], user: str,  # noqa: ANN001
                  stored: dict[int, set[str]]) -> list[int]:
    """Add checked photos to the library; ``stored`` gets the files of the ones that were new
    (id -> storage keys), so a refusal later can take exactly those away again."""
    from sqlalchemy import select

    from core.data.library import add_image
    from core.data.models import InputImage

    known = set(session.scalars(select(InputImage.sha256).where(
        InputImage.sha256.in_([sha for _, _, sha in uploads]))))
    ids = []
    for data, label, sha in uploads:
        image = add_image(session, runtime.store, runtime.settings, data, filename=label,
                          uploaded_by=user)
        if sha not in known:
            known.add(sha)
            stored[image.id] = {k for k in (image.storage_key, image.thumbnail_key) if k}
        ids.append(image.id)
    return ids


def _forget_photos(runtime, stored: dict[int, set[str]], user: str) -> None:  # noqa: ANN001
    """Take away the photos a refused command added (rows and files), unless something was
    made from them after all; the files of rows that were rolled back go too."""
    from sqlalchemy import select

    from core.data.db import session_scope
    from core.data.library import delete_image, purge
    from core.data.models import Generation, InputImage

    if not stored:
        return
    with session_scope(runtime.engine) as session:
        used = set(session.scalars(select(Generation.input_image_id).where(
            Generation.input_image_id.in_(list(stored)))))
        present = set(session.scalars(select(InputImage.id).where(InputImage.id.in_(list(stored)))))
        for image_id in present - used:
            delete_image(session, image_id, actor=user)
    purge(runtime.store, {key for image_id, keys in stored.items() if image_id not in used
                          for key in keys})


def _file_label(path: str) -> str:
    """A file's name as text: a name that is not UTF-8 still opens, and is shown with \ufffd."""
    return Path(path).name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _write_out(path: str, data: bytes, flag: str = "--out") -> None:
    """Write a file the user asked for; a folder, a missing folder or a full disk is one clear
    line, and a half-written file is removed."""
    import errno

    target, shown = Path(path), _shown(path)
    try:
        target.write_bytes(data)
    except OSError as exc:
        if exc.errno == errno.EISDIR or target.is_dir():
            raise TunerError(f"{flag} {shown} is a folder: give a file name in it, e.g. "
                             f"{_shown(str(target / 'export.csv'))}") from exc
        if exc.errno == errno.ENOENT:
            raise TunerError(f"{flag} {shown}: the folder {_shown(str(target.parent))} does "
                             "not exist: create it or give another path") from exc
        if target.is_file():
            target.unlink(missing_ok=True)  # a partial export is worse than none
        if exc.errno == errno.ENOSPC:
            raise TunerError(f"Cannot write {shown}: the disk is full: free some space or "
                             f"give {flag} on another disk") from exc
        raise TunerError(f"Cannot write {shown}: {exc.strerror}") from exc


def _shown(text: str) -> str:
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _read_file(path: str, max_bytes: int) -> bytes:
    """At most ``max_bytes`` of the file: ``--image /dev/zero`` is refused, not read until
    memory runs out."""
    try:
        with Path(path).open("rb") as file:
            data = file.read(max_bytes + 1)
    except OSError as exc:
        raise TunerError(f"Cannot read {_shown(path)}: {exc.strerror}") from exc
    if len(data) > max_bytes:
        raise InvalidInput(f"{_shown(path)} is larger than the upload limit of {max_bytes:,} bytes "
                           "(UPLOAD_MAX_BYTES): give a smaller image.")
    return data


def _wait_for(runtime, sweep_id: int, *, quiet: bool) -> None:  # noqa: ANN001
    """Until every cell has ended; with no worker running, run one here until then."""
    from core.data.db import session_scope
    from core.planning.sweeps import summarize
    from core.engine.worker import live_workers

    if not live_workers(runtime.redis, runtime.deployment):
        if not quiet:
            print("No worker is running; running the sweep in this process.", file=sys.stderr)
        from core.engine.worker import run_worker

        run_worker(runtime.settings, burst=True)
    last = None
    while True:
        with session_scope(runtime.engine) as session:
            counts = summarize(session, [sweep_id])[0].counts
        if not quiet and counts != last:
            print(f"  {counts.describe()}", file=sys.stderr)
            last = counts
        if counts.finished:
            return
        time.sleep(1)  # progress display cadence; the condition is re-checked each round


def sweep_status_record(summary) -> dict[str, Any]:  # noqa: ANN001 - a SweepSummary
    """A sweep's status as the CLI's JSON gives it (the exports use the same fields)."""
    return {"sweep_id": summary.id, "status": summary.status, "endpoint": summary.endpoint,
            "total_cost_usd": summary.cost_usd, "cell_counts": summary.counts.as_dict(),
            "by_state": summary.by_state, "halted_reason": summary.halted_reason}


def _print_status(runtime, sweep_id: int, *, as_json: bool, with_cells: bool) -> int:  # noqa: ANN001
    from core.data.db import session_scope
    from core.planning.sweeps import cell_record, cells_of, summarize

    with session_scope(runtime.engine) as session:
        summaries = summarize(session, [sweep_id])
        if not summaries:
            raise TunerError(f"Sweep {sweep_id} does not exist.")
        summary = summaries[0]
        cells = [cell_record(g) for g in cells_of(session, sweep_id)] if with_cells else None
    if as_json:
        out = sweep_status_record(summary)
        if cells is not None:
            out["cells"] = cells
        print(json.dumps(out, indent=2, default=str))
    else:
        print(f"Sweep {sweep_id} [{summary.status}] {summary.counts.describe()}; "
              f"cost {summary.cost_usd:.4f} USD ({summary.endpoint})")
        if summary.halted_reason:
            print(f"  halted: {summary.halted_reason}")
    return 0


def cmd_sweep_status(args: argparse.Namespace) -> int:
    from core.runtime import open_runtime

    return _print_status(open_runtime(_settings()), args.id, as_json=args.json, with_cells=args.json)


def cmd_sweep_list(args: argparse.Namespace) -> int:
    from core.data.db import session_scope
    from core.planning.sweeps import summarize
    from core.runtime import open_runtime

    with session_scope(open_runtime(_settings()).engine) as session:
        summaries = summarize(session, limit=args.limit)
    lines = [f"#{s.id:<5} {s.status:<22} {s.counts.describe()}  {s.name}" for s in summaries]
    emit(args, [{**sweep_status_record(s), "name": s.name, "created_by": s.created_by,
                 "created_at": s.created_at} for s in summaries],
         "\n".join(lines) or "No sweeps yet.")
    return 0


def cmd_sweep_cancel(args: argparse.Namespace) -> int:
    import dataclasses

    from core.auth import local_user
    from core.planning.submit import cancel
    from core.runtime import open_runtime

    outcome = cancel(open_runtime(_settings()), args.id, actor=local_user())
    emit(args, {**dataclasses.asdict(outcome), "message": outcome.message()}, outcome.message())
    return 0


def _requeue(args: argparse.Namespace, kind: str) -> int:
    from core.auth import local_user
    from core.planning.submit import requeue
    from core.runtime import open_runtime

    runtime = open_runtime(_settings())
    done = requeue(runtime, args.id, kind, actor=local_user(),  # type: ignore[arg-type]
                   budget_usd=getattr(args, "budget", None))
    if not done.queued:
        print(done.message(), file=sys.stderr)
        if args.json:
            emit(args, done.as_dict())
        return 3
    if not args.json:
        print(done.message())
    if args.wait:
        _wait_for(runtime, args.id, quiet=args.json)
        return _print_status(runtime, args.id, as_json=args.json, with_cells=False)
    if args.json:
        emit(args, done.as_dict())
    else:
        from core.engine.worker import live_workers

        if not live_workers(runtime.redis, runtime.deployment):
            print("No worker is running: start `python -m core worker` (or add --wait to run "
                  "them here).", file=sys.stderr)
    return 0


def cmd_sweep_retry(args: argparse.Namespace) -> int:
    return _requeue(args, "failed")


def cmd_sweep_resume(args: argparse.Namespace) -> int:
    return _requeue(args, "canceled")


def cmd_export(args: argparse.Namespace) -> int:
    from core.data.db import session_scope
    from core.insight.export import export_sweep
    from core.runtime import open_runtime

    runtime = open_runtime(_settings())
    with session_scope(runtime.engine) as session:
        data = export_sweep(session, args.id, args.format, runtime.store)
    _write_out(args.out, data)
    emit(args, {"sweep_id": args.id, "format": args.format, "out": _shown(args.out),
                "bytes": len(data)}, f"Wrote sweep {args.id} as {args.format} to {_shown(args.out)}.")
    return 0


def cmd_metrics_backfill(args: argparse.Namespace) -> int:
    from core.insight.measured import backfill
    from core.runtime import open_runtime

    runtime = open_runtime(_settings())

    def progress(n: int, total: int) -> None:
        if not args.json and (n == total or n % 25 == 0):
            print(f"  {n}/{total}", file=sys.stderr)

    result = backfill(runtime.engine, runtime.store, sweep_id=args.sweep, limit=args.limit,
                      redo=args.redo, progress=progress)
    if args.json:
        print(json.dumps({"measured": result.measured, "remaining": result.remaining,
                          "failed": [{"id": i, "error": e} for i, e in result.failed]}, indent=2))
    else:
        print(f"Measured {result.measured} output(s); {len(result.failed)} failed; "
              f"{result.remaining} left for another run.")
        for generation_id, error in result.failed:
            print(f"  generation {generation_id}: {error}")
    return 1 if result.failed else 0


def cmd_report(args: argparse.Namespace) -> int:
    from core.data.db import session_scope
    from core.insight.recommend import Constraints
    from core.insight.report import sweep_report
    from core.runtime import open_runtime

    constraints = Constraints(min_similarity=args.min_similarity, min_identity=args.min_identity,
                              max_failure_rate=args.max_failure_rate,
                              max_cost_usd=args.max_cost, min_rating=args.min_rating)
    runtime = open_runtime(_settings())
    with session_scope(runtime.engine) as session:
        report = sweep_report(session, args.id, objective=args.objective, constraints=constraints)
    if args.json:
        print(json.dumps(report, indent=2, default=str))
        return 0
    rec, est, act = report["recommendation"], report["estimate"], report["actual"]
    print(f"Sweep {args.id} ({report['sweep']['model']}, {len(report['cells'])} cells)")
    for axis, values in report["by_parameter"].items():
        for value, s in values.items():
            ci = f"[{s['ci_low']:.2f}, {s['ci_high']:.2f}] ({s['method']})" if s["ci_low"] is not None else ""
            print(f"  {axis}={value}: n={s['n']} mean={s['mean']:.2f} {ci}")
    if rec["parameters"]:
        setting = ", ".join(f"{k}={v}" for k, v in rec["parameters"].items())
        ci = (f" [{rec['ci_low']:.2f}, {rec['ci_high']:.2f}]" if rec["ci_low"] is not None
              else "")
        print(f"Recommended: {setting}: n={rec['n']} {rec['objective']} mean={rec['mean']:.2f}{ci}")
    print(f"  {rec['message']}")
    took = "still running" if act["duration_s"] is None else f"{act['duration_s']:.0f} s"
    print(f"Estimate: ${est['cost_usd'] or 0:.4f}, {est['duration_s'] or 0:.0f} s; "
          f"actual: ${act['cost_usd']:.4f}, {took}")
    return 0


def cmd_users_add(args: argparse.Namespace) -> int:
    import getpass

    from core.auth import add_user

    settings = Settings()
    path = Path(settings.auth_users_file or "var/users.toml")
    add_user(path, args.name, getpass.getpass(f"Password for {args.name}: "))
    emit(args, {"user": args.name, "file": str(path)},
         f"User {args.name} saved in {path}; set AUTH_USERS_FILE={path} to require sign-in.")
    return 0


def _json_out(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str))


def cmd_gate_run(args: argparse.Namespace) -> int:
    from core.auth import local_user
    from core.runtime import open_runtime
    from core.scenarios.gate import GateRequest, start_gate

    runtime = open_runtime(_settings())
    request = GateRequest(args.scenario, args.candidate, args.set, seeds=args.seeds,
                          reviewers_per_pair=args.reviewers, budget_usd=args.budget,
                          fresh_run=args.fresh, production_version=args.production)
    started = start_gate(runtime, request, actor=local_user())
    if not started.dispatched:
        print(f"Redis does not answer: gate run {started.gate_run_id} is saved and its cells "
              "will be sent when Redis is back (a worker's reaper does it).", file=sys.stderr)
    elif not args.json:
        print(f"Gate run {started.gate_run_id}: {started.cells} cells ({started.reused} reused), "
              f"estimated {started.estimated_cost_usd:.4f} USD on {runtime.endpoint.name}. "
              f"Review its pairs on the Gate page; `python -m core gate report "
              f"{started.gate_run_id}` for the verdict.")
    if args.wait and started.dispatched:
        from core.data.db import session_scope
        from core.scenarios.gate import gate_run

        with session_scope(runtime.engine) as session:
            run = gate_run(session, started.gate_run_id)
            sweeps = [s for s in (run.candidate_sweep_id, run.production_sweep_id) if s is not None]
        for sweep_id in sweeps:
            _wait_for(runtime, sweep_id, quiet=args.json)
    if args.json:
        _json_out(dataclasses.asdict(started))
    return 0 if started.dispatched else 3


def cmd_gate_report(args: argparse.Namespace) -> int:
    from core.data.db import session_scope
    from core.runtime import open_runtime
    from core.scenarios.verdict import gate_result

    runtime = open_runtime(_settings())
    with session_scope(runtime.engine) as session:
        result = gate_result(session, args.id)
    if args.html:
        from core.scenarios.gate_report import render_html

        _write_out(args.html, render_html(result, runtime.store.get).encode("utf-8"), "--html")
        if not args.json:
            print(f"Wrote the report of gate run {args.id} to {_shown(args.html)}.")
    if args.json:
        _json_out(result.as_dict())
    elif not args.html:
        wr = result.preference.win_rate
        print(f"Gate run {result.gate_run_id}: {result.scenario_name} v{result.candidate_version} "
              f"against v{result.production_version} on {result.test_set!r} — "
              f"{result.status.upper()}")
        if wr.estimate is not None:
            print(f"  candidate win rate {wr.estimate:.0%} (95% CI {wr.low:.0%}–{wr.high:.0%}, "
                  f"{wr.n} decisive pairs), ties {result.preference.ties}")
        for reason in result.reasons:
            print(f"  - {reason}")
    return 0


def cmd_gate_set_create(args: argparse.Namespace) -> int:
    from core.auth import local_user
    from core.data.db import session_scope
    from core.runtime import open_runtime
    from core.scenarios.testsets import create_test_set

    runtime = open_runtime(_settings())
    user = local_user()
    uploads = _checked_photos(runtime.settings, args.image or [])
    notes = {}
    for item in args.note or []:
        key, sep, text = item.partition("=")
        if not sep or not key.strip().isdigit():
            raise TunerError(f"--note {item!r}: write it as IMAGE_ID=text, e.g. "
                             "--note '12=side view, low light'.")
        notes[int(key)] = text
    stored: dict[int, set[str]] = {}
    try:
        with session_scope(runtime.engine) as session:
            ids = [*(args.image_id or []),
                   *_store_photos(session, runtime, uploads, user, stored)]
            info = create_test_set(session, args.name, ids, actor=user, notes=notes,
                                   scenario=args.scenario, description=args.description or "")
    except BaseException:
        _forget_photos(runtime, stored, user)  # rolled back: their files go too
        raise
    if args.json:
        _json_out(dataclasses.asdict(info))
    else:
        print(f"Test set {info.name!r} (id {info.id}, version {info.version}): "
              f"{len(info.photos)} photo(s) {info.image_ids}.")
    return 0


def cmd_gate_set_list(args: argparse.Namespace) -> int:
    from core.data.db import session_scope
    from core.runtime import open_runtime
    from core.scenarios.testsets import list_test_sets

    runtime = open_runtime(_settings())
    with session_scope(runtime.engine) as session:
        sets = list_test_sets(session)
    if args.json:
        _json_out([dataclasses.asdict(t) for t in sets])
    else:
        for t in sets:
            owner = t.scenario_name or "shared"
            print(f"{t.id}\t{t.name}\tv{t.version}\t{len(t.photos)} photos\t{owner}")
    return 0


def cmd_gate_rules(args: argparse.Namespace) -> int:
    from core.auth import local_user
    from core.data.db import session_scope
    from core.runtime import open_runtime
    from core.scenarios.gate import scenario_row
    from core.scenarios.verdict import get_rules, set_rules

    runtime = open_runtime(_settings())
    with session_scope(runtime.engine) as session:
        scenario = scenario_row(session, args.scenario)
        rules = get_rules(session, scenario.id)
        if args.values:
            changes = dataclasses.asdict(rules)
            for item in args.values:
                key, sep, value = item.partition("=")
                if not sep:
                    raise TunerError(f"{item!r}: write a rule as NAME=VALUE, e.g. "
                                     "min_win_rate_low=0.5 (an empty value turns a check off).")
                changes[key.strip()] = value.strip() or None
            rules = set_rules(session, scenario.id, changes, actor=local_user())
    values = dataclasses.asdict(rules)
    if args.json:
        _json_out(values)
    else:
        for key, value in values.items():
            print(f"{key} = {'off' if value is None else value}")
    return 0

def cmd_settings_show(args: argparse.Namespace) -> int:
    import dataclasses

    from core.data.db import session_scope
    from core.data.settings_store import describe_settings
    from core.runtime import open_runtime

    runtime = open_runtime(_settings())
    with session_scope(runtime.engine) as session:
        rows = describe_settings(session, runtime.settings)
    width = max(len(r.name) for r in rows)
    lines = [f"{r.name:<{width}}  {r.value!s:<28} {r.source}"
             + (f" by {r.updated_by} (environment: {r.environment_value})" if r.source == "stored"
                else "") + ("" if r.editable else "  [environment only]") for r in rows]
    emit(args, [dataclasses.asdict(r) for r in rows], "\n".join(lines))
    return 0


def cmd_settings_set(args: argparse.Namespace) -> int:
    from core.auth import local_user
    from core.data.db import session_scope
    from core.data.settings_store import set_setting
    from core.runtime import open_runtime

    runtime = open_runtime(_settings())
    with session_scope(runtime.engine) as session:
        value = set_setting(session, runtime.settings, args.name, args.value, actor=local_user())
    emit(args, {"name": args.name.lower(), "value": value, "source": "stored"},
         f"{args.name.lower()} = {value} (stored; overrides the environment).")
    return 0


Command = tuple[str, Any, str]  # name, handler, help


def build_parser() -> argparse.ArgumentParser:
    """Every command and subcommand; each leaf gets ``--json`` (added at the end), so a new
    subcommand is one ``add_parser`` + ``set_defaults(func=...)`` in its group."""
    from core.emulator import add_cli_arguments

    parser = argparse.ArgumentParser(prog="python -m core", description="Scenario Tuner")
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="Run the whole product (Redis, emulator, workers, dashboard).")
    up.add_argument("--workers", type=int, default=2, help="Worker processes (default 2).")
    up.add_argument("--address", help="Dashboard address (default 127.0.0.1).")
    up.add_argument("--port", type=int, help="Dashboard port (default 8501).")
    up.set_defaults(func=cmd_up)

    worker = sub.add_parser("worker", help="Run queue workers.")
    worker.add_argument("--concurrency", type=int, default=1, help="Worker processes to run.")
    worker.add_argument("--burst", action="store_true", help="Exit when the queue is empty.")
    worker.set_defaults(func=cmd_worker)

    emulator = sub.add_parser("emulator", help="Run the local Replicate-compatible emulator.")
    add_cli_arguments(emulator)
    emulator.set_defaults(func=cmd_emulator)

    sub.add_parser("migrate", help="Apply database migrations.").set_defaults(func=cmd_migrate)
    sub.add_parser("check", help="Check configuration, Redis, database, storage, Replicate.") \
        .set_defaults(func=cmd_check)

    sweep = sub.add_parser("sweep", help="Run and manage sweeps.").add_subparsers(
        dest="sweep_command", required=True)
    run = sweep.add_parser("run", help="Submit a grid.")
    run.add_argument("--model", action="append", metavar="OWNER/NAME[:VERSION]",
                     help="Repeat for a model axis (default stability-ai/sdxl).")
    run.add_argument("--image", action="append", required=True, metavar="PATH")
    run.add_argument("--scenario")
    run.add_argument("--axis", action="append", metavar="NAME=VALUES",
                     help="Sweep any input of the model(s): a comma list, or a range for "
                          "numbers, e.g. --axis aspect_ratio=1:1,16:9 --axis guidance=2-4 [3]")
    run.add_argument("--set", action="append", metavar="NAME=VALUE",
                     help="Fix any input, e.g. --set scheduler=K_EULER --set width=768")
    run.add_argument("--strength", help="Shorthand for each model's strength input "
                     "(prompt_strength or strength), e.g. '0.3, 0.45, 0.6' or '0.3-0.6 (+0.1)'")
    run.add_argument("--steps", help="Shorthand for num_inference_steps or steps, e.g. '20-40 [3]'")
    run.add_argument("--guidance", help="Shorthand for guidance_scale or guidance")
    run.add_argument("--seed", default="-1", help="-1 picks a random fixed seed")
    run.add_argument("--cancel-after", type=int, default=300, metavar="SECONDS",
                     help="Cancel-After sent with every create: a prediction not started by "
                          "then ends aborted, unbilled (default 300).")
    run.add_argument("--prompt", action="append", required=True)
    run.add_argument("--prompt-sr", help="Prompt S/R: 'term, replacement1, replacement2'")
    run.add_argument("--negative-prompt")
    run.add_argument("--budget", type=float, help="Cap for this sweep in USD.")
    run.add_argument("--name")
    run.add_argument("--fresh", action="store_true", help="Run again even where an identical output exists.")
    run.add_argument("--wait", action="store_true")
    run.set_defaults(func=cmd_sweep_run)
    listing = sweep.add_parser("list", help="The newest sweeps with their status.")
    listing.add_argument("--limit", type=int, default=20)
    listing.set_defaults(func=cmd_sweep_list)
    by_id: list[Command] = [
        ("status", cmd_sweep_status, "Show a sweep's progress."),
        ("cancel", cmd_sweep_cancel, "Cancel a sweep (a finished one is left as it is)."),
        ("retry", cmd_sweep_retry, "Run a sweep's failed cells again (failed ones only)."),
        ("resume", cmd_sweep_resume, "Run a sweep's canceled cells after all.")]
    for name, func, text in by_id:
        p = sweep.add_parser(name, help=text)
        p.add_argument("id", type=int)
        if name in ("retry", "resume"):
            p.add_argument("--wait", action="store_true",
                           help="Wait until they have ended (runs a worker here if none runs).")
        if name == "resume":
            p.add_argument("--budget", type=float, help="A new budget for this sweep in USD.")
        p.set_defaults(func=func)

    pricing = sub.add_parser("pricing", help="The price table (costs are estimates).") \
        .add_subparsers(dest="pricing_command", required=True)
    show = pricing.add_parser("show", help="Every model's price, unit and date.")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=cmd_pricing_show)
    price = pricing.add_parser("set", help="Set a model's price (adds the model when new).")
    price.add_argument("model", metavar="MODEL")
    price.add_argument("--per-second", type=float, metavar="USD")
    price.add_argument("--hardware", metavar="SKU", help="With --per-second, e.g. 'Nvidia A40 (Large) GPU'")
    price.add_argument("--per-image", type=float, metavar="USD")
    price.add_argument("--per-megapixel", type=float, metavar="USD")
    price.add_argument("--per-input-megapixel", type=float, metavar="USD")
    price.add_argument("--per-run", type=float, metavar="USD")
    price.add_argument("--as-of", metavar="YYYY-MM-DD", help="When the price was read (default today)")
    price.set_defaults(func=cmd_pricing_set)

    model = sub.add_parser("model", help="How a model's predictions are created.") \
        .add_subparsers(dest="model_command", required=True)
    via = model.add_parser("set", help="Create by version, through the models endpoint, or a deployment.")
    via.add_argument("model", metavar="MODEL")
    via.add_argument("--via", dest="create_via", required=True,
                     choices=["versioned", "official", "deployment"])
    via.add_argument("--deployment", metavar="OWNER/NAME")
    via.set_defaults(func=cmd_model_set)

    export = sub.add_parser("export", help="Export a sweep as CSV or JSON.")
    export.add_argument("id", type=int)
    export.add_argument("--format", choices=["csv", "json"], required=True)
    export.add_argument("--out", required=True)
    export.set_defaults(func=cmd_export)

    report = sub.add_parser("report", help="Metrics, rating statistics, recommendation and "
                                           "estimate vs actual of a sweep.")
    report.add_argument("id", type=int)
    report.add_argument("--json", action="store_true")
    report.add_argument("--objective", default="rating",
                        choices=["rating", "similarity", "identity", "sharpness"])
    report.add_argument("--min-similarity", type=float)
    report.add_argument("--min-identity", type=float)
    report.add_argument("--max-failure-rate", type=float)
    report.add_argument("--max-cost", type=float, help="USD per delivered image")
    report.add_argument("--min-rating", type=float)
    report.set_defaults(func=cmd_report)

    metrics = sub.add_parser("metrics", help="Image metrics of stored outputs.").add_subparsers(
        dest="metrics_command", required=True)
    fill = metrics.add_parser("backfill", help="Measure stored outputs that have no metrics yet.")
    fill.add_argument("--sweep", type=int, help="only this sweep's outputs")
    fill.add_argument("--limit", type=int, help="measure at most this many outputs")
    fill.add_argument("--redo", action="store_true", help="measure again those already measured")
    fill.add_argument("--json", action="store_true")
    fill.set_defaults(func=cmd_metrics_backfill)

    gate = sub.add_parser("gate", help="Check a candidate version against production.").add_subparsers(
        dest="gate_command", required=True)
    grun = gate.add_parser("run", help="Run candidate and production on a test set, same seeds.")
    grun.add_argument("scenario")
    grun.add_argument("--candidate", type=int, required=True, metavar="VERSION")
    grun.add_argument("--set", required=True, metavar="TESTSET", help="Test set name or id.")
    grun.add_argument("--seeds", type=int, default=2, help="Seeds per photo (default 2).")
    grun.add_argument("--reviewers", type=int, default=1, help="Reviewers each pair needs.")
    grun.add_argument("--budget", type=float, help="Cap for the whole gate in USD.")
    grun.add_argument("--production", type=int, metavar="VERSION",
                      help="Compare against this version instead of the production one.")
    grun.add_argument("--fresh", action="store_true", help="Run again even where an identical output exists.")
    grun.add_argument("--wait", action="store_true")
    grun.add_argument("--json", action="store_true")
    grun.set_defaults(func=cmd_gate_run)
    greport = gate.add_parser("report", help="A gate run's verdict and evidence.")
    greport.add_argument("id", type=int)
    greport.add_argument("--json", action="store_true")
    greport.add_argument("--html", metavar="PATH", help="Write the self-contained HTML report.")
    greport.set_defaults(func=cmd_gate_report)
    grules = gate.add_parser("rules", help="Show or set a scenario's pass rules.")
    grules.add_argument("scenario")
    grules.add_argument("values", nargs="*", metavar="NAME=VALUE")
    grules.add_argument("--json", action="store_true")
    grules.set_defaults(func=cmd_gate_rules)
    gset = gate.add_parser("set", help="Test sets of photos.").add_subparsers(
        dest="set_command", required=True)
    gcreate = gset.add_parser("create", help="A new test set from library ids or files.")
    gcreate.add_argument("name")
    gcreate.add_argument("--image-id", type=int, action="append")
    gcreate.add_argument("--image", action="append", metavar="PATH")
    gcreate.add_argument("--note", action="append", metavar="IMAGE_ID=TEXT")
    gcreate.add_argument("--scenario", help="The scenario it belongs to (default: shared).")
    gcreate.add_argument("--description")
    gcreate.add_argument("--json", action="store_true")
    gcreate.set_defaults(func=cmd_gate_set_create)
    glist = gset.add_parser("list", help="Every test set.")
    glist.add_argument("--json", action="store_true")
    glist.set_defaults(func=cmd_gate_set_list)

    settings = sub.add_parser("settings", help="Read and change the stored settings "
                              "(the Settings page's).").add_subparsers(
        dest="settings_command", required=True)
    settings.add_parser("show", help="Every setting, its value and where it comes from.") \
        .set_defaults(func=cmd_settings_show)
    change = settings.add_parser("set", help="Store a setting (e.g. max_cells_per_sweep 500).")
    change.add_argument("name", help="As in the README's configuration table, lower case.")
    change.add_argument("value")
    change.set_defaults(func=cmd_settings_set)

    users = sub.add_parser("users", help="Manage dashboard users.").add_subparsers(
        dest="users_command", required=True)
    add = users.add_parser("add", help="Add or reset a user (asks for the password).")
    add.add_argument("name")
    add.set_defaults(func=cmd_users_add)
    _add_json_everywhere(parser)
    return parser


def _add_json_everywhere(parser: argparse.ArgumentParser) -> None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _add_json_everywhere(child)
            return
    if "--json" not in parser._option_string_actions:
        parser.add_argument("--json", action="store_true",
                            help="Machine-readable output (JSON; services log JSON lines).")


class _JsonLogFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps({"level": record.levelname.lower(), "logger": record.name,
                           "message": record.getMessage(), "time": record.created})


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    undecodable = _not_utf8(argv)
    if undecodable:
        return _error(argparse.Namespace(json="--json" in argv), undecodable)
    args = build_parser().parse_args(argv)
    handler = logging.StreamHandler()
    handler.setFormatter(_JsonLogFormatter() if args.json else
                         logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    try:
        with redis_errors():
            code = args.func(args)
        sys.stdout.flush()  # a closed pipe shows up here, inside the handler below
        return code
    except BrokenPipeError:
        return _quiet_broken_pipe()
    except RedisUnavailable:
        return _error(args, "Redis does not answer: start it (`python -m core up` does) or set "
                            "REDIS_URL to one that answers.")
    except TunerError as exc:
        return _error(args, str(exc))
    except KeyboardInterrupt:
        return 130


PATH_FLAGS = ("--image", "--out", "--html")  # a file's name need not be UTF-8 to open it


def _not_utf8(argv: list[str]) -> str | None:
    """What to say about the first argument that is not UTF-8 text (Python hands such bytes
    over as lone surrogates, which no database, file or terminal takes), paths aside."""
    for n, arg in enumerate(argv):
        flag, eq, value = arg.partition("=") if arg.startswith("--") else ("", "", arg)
        if not eq:
            flag, value = (argv[n - 1] if n and argv[n - 1].startswith("-") else ""), arg
        if flag in PATH_FLAGS:
            continue
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return (f"{flag or 'An argument'} {_shown(value)!r} is not valid UTF-8 text: "
                    "retype it, or save the file it came from as UTF-8")
    return None


def _error(args: argparse.Namespace, message: str) -> int:
    """One clear line on stderr (a JSON object with ``--json``), exit status 2."""
    message = " ".join(message.split("\n"))
    if args.json:
        print(json.dumps({"error": message}), file=sys.stderr)
    else:
        print(f"error: {message}", file=sys.stderr)
    return 2


def _quiet_broken_pipe() -> int:
    """The reader (``head``) went away: stop quietly, as `yes | head` does. stdout is pointed
    at /dev/null so the interpreter's final flush does not complain either."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 141  # 128 + SIGPIPE, what a shell reports for a writer killed by a closed pipe

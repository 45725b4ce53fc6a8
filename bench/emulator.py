"""Emulator request rate on loopback, against a trivial Starlette app in the same run.

    python3 bench/emulator.py [--duration S] [--connections N]

The emulator (``python -m core emulator``, throttling off) and a hello-world Starlette app
served by uvicorn with the same settings each run in their own process; the load comes
from ``wrk`` (apt-get install wrk) in another process, or, without wrk, from a raw-socket
asyncio load generator in two processes. Measured: requests/s and latency percentiles of

- GET  /v1/predictions/{id}  (the poll every worker makes for every prediction),
- POST /v1/predictions       (create, schema-validated input, no throttling),
- GET  /                     on the hello app (the baseline: what uvicorn itself allows),

and the ratio of each emulator route to the baseline. Target: ≥ 1,000 requests/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from common import (LOOPBACK, EmulatorProcess, clean_env, free_port, http_ready, machine_info,
                    start_process, stop_process, table, verdict, wait_until, write_results)

from core.engine.replicate_api import EMULATOR_TOKEN
from core.planning.schema import SDXL_VERSION_IDS

TARGET_RPS = 1000
VERSION_ID = sorted(SDXL_VERSION_IDS)[0]
CREATE_BODY = json.dumps({"version": VERSION_ID,
                          "input": {"prompt": "a portrait, studio light", "seed": 42,
                                    "num_inference_steps": 25}})
AUTH = f"Bearer {EMULATOR_TOKEN}"


# -- the baseline server --------------------------------------------------------------------
def serve_hello(port: int) -> None:
    """A one-route Starlette app on uvicorn, configured as the emulator's server is."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def hello(request: Any) -> JSONResponse:
        return JSONResponse({"hello": "world"})

    app = Starlette(routes=[Route("/", hello)])
    uvicorn.run(app, host=LOOPBACK, port=port, http="auto", lifespan="off", access_log=False,
                log_level="warning", timeout_keep_alive=30)


class HelloProcess:
    def __init__(self) -> None:
        self.port = free_port()
        self.base_url = f"http://{LOOPBACK}:{self.port}"
        self.process = start_process([sys.executable, str(Path(__file__).resolve()),
                                      "--serve-hello", str(self.port)], clean_env())
        try:
            wait_until(http_ready(f"{self.base_url}/"), 30, "the hello app to answer")
        except AssertionError:  # wait_until timed out
            self.stop()
            raise

    def stop(self) -> None:
        stop_process(self.process)


# -- load generators ------------------------------------------------------------------------
def run_wrk(url: str, *, method: str, body: str | None, connections: int, duration: int,
            workdir: Path) -> dict[str, Any]:
    script = workdir / f"{method.lower()}.lua"
    lines = [f'wrk.method = "{method}"',
             f'wrk.headers["Authorization"] = "{AUTH}"']
    if body is not None:
        lines += ['wrk.headers["Content-Type"] = "application/json"',
                  f"wrk.body = [[{body}]]"]
    script.write_text("\n".join(lines) + "\n")
    threads = 2
    args = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency",
            "--timeout", "10s", "-s", str(script), url]
    out = subprocess_output(args, timeout=duration + 30)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])
    total = int(re.search(r"(\d+) requests in", out)[1])
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    latency = {p: _ms(m) for p, m in re.findall(r"^\s+(50|90|99)%\s+([\d.]+\w+)", out, re.M)}
    failed = (int(errors[1]) if errors else 0) + (
        sum(map(int, socket_errors.groups())) if socket_errors else 0)
    return {"rps": round(rps), "requests": total, "errors": failed,
            "p50_ms": latency.get("50"), "p99_ms": latency.get("99"), "generator": "wrk"}


def subprocess_output(args: list[str], timeout: float) -> str:
    import subprocess

    # wrk writes its report to stdout; run it in its own session like every child here.
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               start_new_session=True, text=True)
    try:
        out, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop_process(process)
        raise
    if process.returncode != 0:
        raise RuntimeError(f"{args[0]} failed: {out}")
    return out


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()
    return round(float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit], 2)


def _raw_request(method: str, path: str, host: str, body: str | None) -> bytes:
    head = [f"{method} {path} HTTP/1.1", f"Host: {host}", f"Authorization: {AUTH}"]
    if body is not None:
        head += ["Content-Type: application/json", f"Content-Length: {len(body.encode())}"]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + (body or "").encode()


async def _connection(host: str, port: int, request: bytes, until: float,
                      latencies: list[float], errors: list[int]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.monotonic() < until:
            started = time.monotonic()
            writer.write(request)
            status_line = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            if not status_line.split(b" ")[1].startswith(b"2"):
                errors.append(1)
            latencies.append(time.monotonic() - started)
    finally:
        writer.close()


def _generator_process(args: tuple) -> tuple[list[float], int]:  # pragma: no cover - child
    host, port, request, connections, duration = args

    async def main() -> tuple[list[float], int]:
        latencies: list[float] = []
        errors: list[int] = []
        until = time.monotonic() + duration
        await asyncio.gather(*(_connection(host, port, request, until, latencies, errors)
                               for _ in range(connections)))
        return latencies, len(errors)

    return asyncio.run(main())


def run_python_generator(url: str, *, method: str, body: str | None, connections: int,
                         duration: int, workdir: Path) -> dict[str, Any]:
    parsed = httpx.URL(url)
    request = _raw_request(method, parsed.raw_path.decode(), f"{parsed.host}:{parsed.port}", body)
    processes = 2
    job = (parsed.host, parsed.port, request, max(1, connections // processes), duration)
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        parts = pool.map(_generator_process, [job] * processes)
    latencies = sorted(x for lat, _ in parts for x in lat)
    errors = sum(e for _, e in parts)
    pick = lambda q: round(latencies[int(q * (len(latencies) - 1))] * 1000, 2)  # noqa: E731
    return {"rps": round(len(latencies) / duration), "requests": len(latencies), "errors": errors,
            "p50_ms": pick(0.5), "p99_ms": pick(0.99), "generator": "python (2 processes)"}


# -- output downloads: the one route that renders ------------------------------------------
def measure_outputs(emulator: EmulatorProcess, *, count: int, concurrency: int) -> dict[str, Any]:
    """Create ``count`` img2img predictions that finish at once, then fetch each output once
    (the first fetch renders the 1024×1024 PNG): outputs/s and emulator CPU per output."""
    import psutil

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from sweep import photo_like_png

    headers = {"Authorization": AUTH}
    with httpx.Client(base_url=emulator.base_url, headers=headers, timeout=60) as client:
        client.post("/_emulator/config", json={"predict_time_s": 0}).raise_for_status()
        upload = client.post("/v1/files", files={"content": ("face.png", photo_like_png(),
                                                             "image/png")})
        upload.raise_for_status()
        image_url = upload.json()["urls"]["get"]
        ids = []
        for seed in range(count):
            body = {"version": VERSION_ID, "input": {"prompt": "a portrait", "seed": seed,
                                                     "image": image_url, "prompt_strength": 0.5}}
            created = client.post("/v1/predictions", json=body)
            created.raise_for_status()
            ids.append(created.json()["id"])
        urls = []
        for prediction_id in ids:
            done = wait_until(lambda pid=prediction_id: _finished(client, pid), 30, "a prediction")
            urls.append(done["output"][0])
    process = psutil.Process(emulator.process.pid)
    cpu_before = sum(process.cpu_times()[:2])

    async def fetch_all() -> list[int]:
        gate = asyncio.Semaphore(concurrency)
        async with httpx.AsyncClient(timeout=120) as client:
            async def fetch(url: str) -> int:
                async with gate:
                    response = await client.get(url)
                    response.raise_for_status()
                    return len(response.content)
            return await asyncio.gather(*(fetch(u) for u in urls))

    started = time.monotonic()
    sizes = asyncio.run(fetch_all())
    wall = time.monotonic() - started
    cpu = sum(process.cpu_times()[:2]) - cpu_before
    return {"server": "emulator", "route": "GET output PNG (first fetch renders)",
            "rps": round(count / wall, 1), "requests": count, "errors": 0,
            "p50_ms": None, "p99_ms": None, "generator": f"httpx, {concurrency} at a time",
            "emulator_cpu_ms_per_request": round(cpu / count * 1000, 1),
            "mb_per_output": round(sum(sizes) / count / 2**20, 2)}


def _finished(client: httpx.Client, prediction_id: str) -> dict[str, Any] | None:
    body = client.get(f"/v1/predictions/{prediction_id}").json()
    return body if body["status"] == "succeeded" else None


# -- the benchmark --------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="Seconds per measurement.")
    parser.add_argument("--connections", type=int, default=64, help="Concurrent connections.")
    parser.add_argument("--outputs", type=int, default=40,
                        help="Distinct 1024×1024 outputs to render and fetch.")
    parser.add_argument("--serve-hello", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_hello:
        serve_hello(args.serve_hello)
        return 0
    info = machine_info()
    load = run_wrk if shutil.which("wrk") else run_python_generator
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-emulator-") as tmp_name:
        tmp = Path(tmp_name)
        hello = HelloProcess()
        try:
            print("… baseline: hello app, GET /", file=sys.stderr, flush=True)
            rows.append({"server": "hello app (baseline)", "route": "GET /",
                         **load(f"{hello.base_url}/", method="GET", body=None,
                                connections=args.connections, duration=args.duration,
                                workdir=tmp)})
        finally:
            hello.stop()
        emulator = EmulatorProcess(["--rate-limit", "0", "--queue-delay", "0",
                                    "--predict-time", "fixed", "--predict-seconds", "3600"],
                                   log=tmp / "emulator.log")
        try:
            created = httpx.post(f"{emulator.base_url}/v1/predictions", content=CREATE_BODY,
                                 headers={"Authorization": AUTH,
                                          "Content-Type": "application/json"}, timeout=10)
            created.raise_for_status()
            prediction_id = created.json()["id"]
            print("… emulator: GET /v1/predictions/{id}", file=sys.stderr, flush=True)
            rows.append({"server": "emulator", "route": "GET /v1/predictions/{id}",
                         **load(f"{emulator.base_url}/v1/predictions/{prediction_id}",
                                method="GET", body=None, connections=args.connections,
                                duration=args.duration, workdir=tmp)})
            print("… emulator: POST /v1/predictions", file=sys.stderr, flush=True)
            before = emulator.stats()["creates_total"]
            rows.append({"server": "emulator", "route": "POST /v1/predictions",
                         **load(f"{emulator.base_url}/v1/predictions", method="POST",
                                body=CREATE_BODY, connections=args.connections,
                                duration=args.duration, workdir=tmp)})
            rows[-1]["creates_counted"] = emulator.stats()["creates_total"] - before
            print("… emulator: output downloads", file=sys.stderr, flush=True)
            outputs = measure_outputs(emulator, count=args.outputs, concurrency=8)
        finally:
            emulator.stop()
    baseline = rows[0]["rps"]
    for row in rows:
        row["vs_baseline"] = round(row["rps"] / baseline, 2) if baseline else None
        row["result"] = verdict(row["rps"] >= TARGET_RPS and row["errors"] == 0) \
            if row["server"] == "emulator" else "-"
    # Not a request-rate target: renders must keep up with 10 creates/s with CPU to spare.
    outputs["vs_baseline"] = None
    outputs["result"] = (f"{outputs['emulator_cpu_ms_per_request']} ms CPU each, "
                         f"{outputs['mb_per_output']} MB")
    rows.append(outputs)
    print(f"\nEmulator request rate — {info['date']}, {info['nproc']} CPUs ({info['cpu_model']}), "
          f"{info['memory_gb']} GB, Python {info['python']}; {args.connections} connections, "
          f"{args.duration} s each, load from {rows[0]['generator']}\n")
    print(table(rows, [("server", "server"), ("route", "route"), ("rps", "requests/s"),
                       ("p50_ms", "p50 ms"), ("p99_ms", "p99 ms"), ("errors", "errors"),
                       ("vs_baseline", "× baseline"), ("result", f"≥ {TARGET_RPS}/s")]))
    uvicorn_http = "httptools" if _has("httptools") else "h11"
    path = write_results("emulator", {"machine": info, "connections": args.connections,
                                      "duration_s": args.duration, "uvicorn_http": uvicorn_http,
                                      "event_loop": "uvloop" if _has("uvloop") else "asyncio",
                                      "rows": rows})
    print(f"\nuvicorn HTTP parser: {uvicorn_http}; wrote {path}")
    return 0 if all(r["result"] != "FAIL" for r in rows) else 1  # the outputs row is info


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


if __name__ == "__main__":
    sys.exit(main())

"""JSON bodies in the shapes recorded from api.replicate.com (see shared/replicate-cassettes)."""

from __future__ import annotations

import secrets
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.emulator.store import FileRecord, Prediction

_ID_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
FILE_TTL_S = 24 * 3600


def new_id() -> str:
    """26 lowercase base32 characters, like ``hdwst0bb05rgp0cf0p29mzk2am``."""
    number = secrets.randbits(130)
    return "".join(_ID_ALPHABET[(number >> (5 * i)) & 31] for i in range(26))


def timestamp(epoch: float) -> str:
    """``2024-04-22T11:15:15.504128Z``"""
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def problem(status: int, detail: str, title: str | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if title:
        body["title"] = title
    body["detail"] = detail
    body["status"] = status
    body.update(extra)
    return body


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes:02d}:{secs:02d}"


def _progress_lines(steps: int, fraction: float, predict_s: float) -> list[str]:
    """tqdm-style lines as cog-sdxl prints them, at most ~20 of them."""
    steps = max(1, steps)
    rate = steps / predict_s if predict_s > 0 else float(steps)
    lines = []
    for done in sorted({round(steps * k / 20) for k in range(21)}):
        if done > steps * fraction + 1e-9:
            break
        pct = 100 * done // steps
        bar = ("█" * (pct // 10)).ljust(10)
        timing = (f"[{_clock(done / rate)}<{_clock((steps - done) / rate)}, {rate:.2f}it/s]"
                  if done else "[00:00<?, ?it/s]")
        lines.append(f"{pct:3d}%|{bar}| {done}/{steps} {timing}")
    return lines


def logs(pred: Prediction, fraction: float) -> str:
    params = pred.params
    head = [f"Using seed: {params.seed}", f"Prompt: {params.prompt}",
            "img2img mode" if pred.image_source else "txt2img mode"]
    text = "\n".join(head + _progress_lines(params.steps, fraction, pred.predict_s)) + "\n"
    if pred.error and fraction >= 1:
        text += f"Traceback (most recent call last):\n  File \"predict.py\", line 312, in predict\n{pred.error}\n"
    return text


def _urls(pred: Prediction, base: str) -> dict[str, str]:
    get = f"{base}/v1/predictions/{pred.id}"
    return {"cancel": f"{get}/cancel", "get": get}


def prediction(pred: Prediction, now: float, base: str, retention_s: float) -> dict[str, Any]:
    """The prediction as ``GET /v1/predictions/{id}`` shows it at time ``now``."""
    status = pred.status(now)
    if status in ("canceled", "aborted"):
        return _canceled(pred, base, status)
    body: dict[str, Any] = {"id": pred.id, "model": pred.model, "version": pred.version,
                            "input": pred.input}
    if status == "starting":
        body.update(logs="", error=None, status=status, created_at=timestamp(pred.created))
    elif status == "processing":
        fraction = (now - pred.started) / pred.predict_s if pred.predict_s else 1.0
        body.update(logs=logs(pred, fraction), error=None, status=status,
                    created_at=timestamp(pred.created), started_at=timestamp(pred.started))
    else:
        removed = now >= pred.done + retention_s
        output: list[str] | str | None = None
        if status == "succeeded" and not removed:
            output = [f"{base}/_emulator/outputs/{pred.id}/out-{i}.png" for i in range(pred.num_outputs)]
            if not pred.output_is_list:  # flux-kontext: one image, as a plain string
                output = output[0]
        body.update(
            logs=logs(pred, 1.0), output=output, data_removed=removed, error=pred.error,
            status=status, created_at=timestamp(pred.created), started_at=timestamp(pred.started),
            completed_at=timestamp(pred.done),
            metrics={"predict_time": round(pred.predict_s, 6),
                     "total_time": round(pred.done - pred.created, 6)},
        )
    body["urls"] = _urls(pred, base)
    return body


def _canceled(pred: Prediction, base: str, status: str = "canceled") -> dict[str, Any]:
    # Key order and set as recorded: logs and output null, webhook_completed present. An
    # aborted prediction (Cancel-After passed before it started) has the same shape and
    # never started: no started_at, no predict time.
    ended = pred.canceled if status == "canceled" else pred.aborted_at
    assert ended is not None
    started = ended >= pred.started
    predict_time = ended - pred.started if started else 0.0
    return {
        "completed_at": timestamp(ended),
        "created_at": timestamp(pred.created),
        "error": None,
        "id": pred.id,
        "input": pred.input,
        "logs": None,
        "metrics": ({"predict_time": round(predict_time, 6)} if status == "canceled" else {})
        | {"total_time": round(ended - pred.created, 6)},
        "output": None,
        "started_at": timestamp(pred.started) if started else None,
        "status": status,
        "urls": {"get": f"{base}/v1/predictions/{pred.id}",
                 "cancel": f"{base}/v1/predictions/{pred.id}/cancel"},
        "model": pred.model,
        "version": pred.version,
        "webhook_completed": None,
    }


def as_starting(body: dict[str, Any]) -> dict[str, Any]:
    """A ``Prefer: wait`` reply that ran out of time reports ``starting``, as Replicate does."""
    keep = ("id", "model", "version", "input")
    short = {k: body[k] for k in keep}
    short.update(logs="", error=None, status="starting", created_at=body["created_at"], urls=body["urls"])
    return short


def file(record: FileRecord, base: str) -> dict[str, Any]:
    return {
        "id": record.id,
        "name": record.name,
        "content_type": record.content_type,
        "size": record.size,
        "etag": record.md5,
        "checksums": {"sha256": record.sha256, "md5": record.md5},
        "metadata": record.metadata,
        "created_at": timestamp(record.created),
        "expires_at": timestamp(record.created + FILE_TTL_S),
        "urls": {"get": f"{base}/v1/files/{record.id}"},
    }

"""In-memory state: predictions (status computed from timestamps), files, outputs, counters.

No task runs per prediction: each one is created with its queue delay, predict time and
outcome already drawn, and every read derives the status from the clock. Thousands in flight
cost a dict entry each.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import json
import math
import random
import re
import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from core.emulator import bodies, images
from core.emulator.config import EmulatorConfig
from core.emulator.schema import ModelInfo, with_defaults

MODEL_ERRORS = (
    "CUDA out of memory. Tried to allocate 2.50 GiB (GPU 0; 39.39 GiB total capacity; "
    "35.12 GiB already allocated; 1.71 GiB free; 36.84 GiB reserved in total by PyTorch)",
    "NSFW content detected. Try running it again, or try a different prompt.",
)
_FILE_PATH = re.compile(r"^/v1/files/([0-9a-z]+)(?:/download)?$")
_OUTPUT_PATH = re.compile(r"^/_emulator/outputs/([0-9a-z]+)/out-(\d+)\.png$")
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@dataclass
class Prediction:
    id: str
    model: str
    version: str
    input: dict[str, Any]
    params: images.ImageParams
    num_outputs: int
    created: float
    queue_s: float
    predict_s: float
    error: str | None = None
    image_source: tuple[str, ...] | None = None
    canceled: float | None = None
    aborted_at: float | None = None  # Cancel-After passed before it started
    output_is_list: bool = True

    @property
    def started(self) -> float:
        return self.created + self.queue_s

    @property
    def done(self) -> float:
        return self.started + self.predict_s

    @property
    def ends(self) -> float:
        """When the prediction reaches a terminal status."""
        return min(t for t in (self.canceled, self.aborted_at, self.done) if t is not None)

    def status(self, now: float) -> str:
        if self.canceled is not None and self.canceled <= now:
            return "canceled"
        if self.aborted_at is not None and self.aborted_at <= now:
            return "aborted"
        if now < self.started:
            return "starting"
        if now < self.done:
            return "processing"
        return "failed" if self.error else "succeeded"


@dataclass
class FileRecord:
    id: str
    name: str
    content_type: str
    size: int
    sha256: str
    md5: str
    metadata: dict[str, Any]
    created: float


def _num_outputs(full: dict[str, Any]) -> int:
    """How many images the input asks for: num_outputs, or seedream's max_images when it
    may generate a group."""
    if full.get("sequential_image_generation") == "auto":
        return max(1, int(full.get("max_images", 1)))
    return max(1, int(full.get("num_outputs", 1)))


def input_hash(version: str, values: dict[str, Any]) -> str:
    canonical = json.dumps({"version": version, "input": values}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass
class Store:
    config: EmulatorConfig
    predictions: dict[str, Prediction] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    files: dict[str, FileRecord] = field(default_factory=dict)
    blobs: dict[str, bytes] = field(default_factory=dict)
    counters: Counter[str] = field(default_factory=Counter)
    creates_by_input_hash: Counter[str] = field(default_factory=Counter)
    creates_by_endpoint: Counter[str] = field(default_factory=Counter)  # "official owner/name"

    def __post_init__(self) -> None:
        self.rng = random.Random(self.config.random_seed)
        self._outputs: OrderedDict[tuple[str, int], bytes] = OrderedDict()
        self._outputs_bytes = 0
        self._lock = threading.Lock()

    def reset(self) -> None:
        with self._lock:
            self.predictions.clear()
            self.order.clear()
            self.files.clear()
            self.blobs.clear()
            self.counters.clear()
            self.creates_by_input_hash.clear()
            self.creates_by_endpoint.clear()
            self._outputs.clear()
            self._outputs_bytes = 0

    def age(self, seconds: float) -> None:
        """Make everything held ``seconds`` older, as if that much time had passed since it
        was created (tests of what a client does long after a create, without the wait)."""
        with self._lock:
            for pred in self.predictions.values():
                pred.created -= seconds
                if pred.canceled is not None:
                    pred.canceled -= seconds
            for record in self.files.values():
                record.created -= seconds

    # -- predictions -------------------------------------------------------------------
    def create(self, model: ModelInfo, version_id: str, values: dict[str, Any], now: float,
               own_host: str = "", cancel_after_s: float | None = None) -> Prediction:
        full = with_defaults(model.versions[version_id], values)
        seed = full.get("seed")
        params = images.ImageParams(
            prompt=str(full.get("prompt", "")),
            negative_prompt=str(full.get("negative_prompt") or ""),
            # An editing model without a strength input changes the photo moderately.
            strength=float(full.get(model.strength_input, full.get("strength", 0.6))
                           if model.strength_input else 0.6),
            steps=int(full.get("num_inference_steps", full.get("steps", 28))),
            guidance=float(full.get("guidance_scale", full.get("guidance", 7.5))),
            seed=int(seed) if seed is not None else self.rng.randint(0, 65535),
            width=int(full.get("width", 1024)),
            height=int(full.get("height", 1024)),
        )
        image = full.get(model.image_input) if model.image_input else None
        if isinstance(image, list):  # a list input (seedream): the first image is the photo
            image = image[0] if image else None
        source, error = self._image_source(image, own_host)
        # An input file that cannot be fetched fails the prediction in setup, before the
        # model runs: no predict time to bill.
        predict_s = 0.0 if error is not None else self._predict_time()
        if error is None and self.rng.random() < self.config.failure_rate:
            error = self.rng.choice(MODEL_ERRORS)
        pred = Prediction(
            id=bodies.new_id(), model=model.ref,
            version="hidden" if model.official else version_id, input=values, params=params,
            num_outputs=_num_outputs(full), created=now,
            queue_s=self._queue_time(), predict_s=predict_s,
            error=error, image_source=source, output_is_list=model.output_is_list,
        )
        if cancel_after_s is not None:  # Replicate's deadline, measured from the create
            deadline = now + cancel_after_s
            if deadline < pred.started:
                pred.aborted_at = deadline
            elif deadline < pred.done:
                pred.canceled = deadline
        self.predictions[pred.id] = pred
        self.order.append(pred.id)
        self.counters["creates_total"] += 1
        if self.counters["creates_total"] % 256 == 0:
            self._drop_expired_outputs(now)
        self.creates_by_input_hash[input_hash(version_id, values)] += 1
        drawn = pred.queue_s + pred.predict_s
        self.counters["drawn_latency_ms_total"] += round(drawn * 1000)
        self.counters["drawn_latency_ms_max"] = max(self.counters["drawn_latency_ms_max"],
                                                    round(drawn * 1000))
        return pred

    def _queue_time(self) -> float:
        """Seconds in ``starting``: the queue wait, plus a cold boot for a share of them."""
        c = self.config
        wait = max(0.0, c.queue_delay_s)
        if c.queue_delay_dist == "exponential" and wait > 0:
            wait = self.rng.expovariate(1.0 / wait)
        if c.cold_boot_share > 0 and self.rng.random() < c.cold_boot_share:
            wait += self.rng.uniform(*c.cold_boot_range_s)
            self.counters["cold_boots_total"] += 1
        return wait

    def _predict_time(self) -> float:
        c = self.config
        lo, hi = c.predict_time_range_s
        if c.predict_time_dist == "fixed":
            return max(0.0, c.predict_time_s)
        if c.predict_time_dist == "uniform":
            return self.rng.uniform(lo, hi)
        drawn = self.rng.lognormvariate(math.log(max(c.predict_time_s, 1e-6)), c.predict_time_sigma)
        return min(max(drawn, lo), hi)

    def _image_source(self, value: Any, own_host: str) -> tuple[tuple[str, ...] | None, str | None]:
        """Where the input image comes from, or the error the prediction will fail with."""
        if not value:
            return None, None
        if value.startswith("data:"):
            header, _, payload = value.partition(",")
            try:
                data = base64.b64decode(payload, validate=True) if header.endswith(";base64") else b""
                images.probe(data)
            except (ValueError, binascii.Error) as exc:
                return None, f"Invalid image data URI: {exc}"
            sha = hashlib.sha256(data).hexdigest()
            self.blobs.setdefault(sha, data)
            return ("blob", sha), None
        parts = urlsplit(value)
        if parts.hostname in _LOOPBACK or (own_host and parts.netloc == own_host):
            if (match := _FILE_PATH.match(parts.path)) and match[1] in self.files:
                return ("blob", self.files[match[1]].sha256), None
            if (match := _OUTPUT_PATH.match(parts.path)) and match[1] in self.predictions:
                return ("output", match[1], match[2]), None
        return None, f"Failed to download input file: {value} (the emulator has no such file)"

    def cancel(self, pred: Prediction, now: float) -> None:
        """Cancel unless already terminal; a finished prediction is left unchanged."""
        if pred.status(now) in ("starting", "processing"):
            pred.canceled = now

    def page(self, cursor: int | None) -> tuple[list[Prediction], int | None, int | None]:
        """Newest first. ``cursor`` is an exclusive upper index into creation order."""
        total = len(self.order)
        end = total if cursor is None else max(0, min(cursor, total))
        start = max(0, end - self.config.page_size)
        items = [self.predictions[pid] for pid in reversed(self.order[start:end])]
        newer = min(total, end + self.config.page_size) if end < total else None
        return items, (start if start > 0 else None), newer

    # -- outputs -----------------------------------------------------------------------
    def output_png(self, pred_id: str, index: int, now: float) -> bytes | None:
        """The PNG of one output, generated on first use and kept in a bounded LRU."""
        pred = self.predictions.get(pred_id)
        if (pred is None or pred.status(now) != "succeeded" or not 0 <= index < pred.num_outputs
                or now >= pred.done + self.config.retention_s):
            return None
        key = (pred_id, index)
        with self._lock:
            if key in self._outputs:
                self._outputs.move_to_end(key)
                return self._outputs[key]
        source = self._source_bytes(pred.image_source, now)
        if pred.image_source and source is None:
            return None
        params = dataclasses.replace(pred.params, index=index)
        png = images.render(params, source)
        with self._lock:
            self._outputs[key] = png
            self._outputs_bytes += len(png)
            while self._outputs_bytes > self.config.output_cache_bytes and len(self._outputs) > 1:
                _, evicted = self._outputs.popitem(last=False)
                self._outputs_bytes -= len(evicted)
        return png

    def _drop_expired_outputs(self, now: float) -> None:
        """Outputs past retention can no longer be served: free their memory."""
        with self._lock:
            for key in [k for k in self._outputs if now >= self.predictions[k[0]].done
                        + self.config.retention_s]:
                self._outputs_bytes -= len(self._outputs.pop(key))

    def _source_bytes(self, source: tuple[str, ...] | None, now: float) -> bytes | None:
        if source is None:
            return None
        if source[0] == "blob":
            return self.blobs.get(source[1])
        return self.output_png(source[1], int(source[2]), now)

    # -- files -------------------------------------------------------------------------
    def add_file(self, name: str, content_type: str, data: bytes, metadata: dict[str, Any],
                 now: float) -> FileRecord:
        sha = hashlib.sha256(data).hexdigest()
        self.blobs.setdefault(sha, data)
        record = FileRecord(id=bodies.new_id(), name=name, content_type=content_type, size=len(data),
                            sha256=sha, md5=hashlib.md5(data).hexdigest(), metadata=metadata,
                            created=now)
        self.files[record.id] = record
        return record

    def file_bytes(self, record: FileRecord) -> bytes:
        return self.blobs[record.sha256]

    # -- stats -------------------------------------------------------------------------
    def stats(self, now: float) -> dict[str, Any]:
        by_status = Counter(p.status(now) for p in self.predictions.values())
        statuses = ("starting", "processing", "succeeded", "failed", "canceled", "aborted")
        return {
            "creates_total": self.counters["creates_total"],
            "creates_by_input_hash": dict(self.creates_by_input_hash),
            "creates_by_endpoint": dict(self.creates_by_endpoint),
            "predictions": {s: by_status.get(s, 0) for s in statuses},
            "requests_total": self.counters["requests_total"],
            "throttled_total": self.counters["throttled_total"],
            "faults_injected_total": self.counters["faults_injected_total"],
            "files_total": len(self.files),
            "files_deleted_total": self.counters["files_deleted_total"],
            "cancels_total": self.counters["cancels_total"],
            "outputs_cached": len(self._outputs),
            # What the latency model drew (queue + cold boot + predict), for a floor.
            "drawn_latency_s_total": self.counters["drawn_latency_ms_total"] / 1000,
            "drawn_latency_s_max": self.counters["drawn_latency_ms_max"] / 1000,
            "cold_boots_total": self.counters["cold_boots_total"],
        }

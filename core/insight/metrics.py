"""How far an output departs from its input photo, measured on the CPU, offline.

Every metric is computed on a *normalised downscale*: the output reduced to fit
``NORMALISED_PX`` on its long side, and the input resized to exactly the same size, so that
outputs of different models and resolutions are comparable.

- ``similarity``: SSIM of the two grey images reduced to ``SSIM_PX`` (scikit-image,
  Gaussian-weighted as in Wang et al. 2004); 1 is identical, about 0 unrelated.
- ``phash_distance``: Hamming distance between the 64-bit perceptual hashes (imagehash.phash),
  0 (same picture) to 64; under ~10 is usually "the same photo, retouched".
- ``change``: mean absolute per-pixel difference of the RGB images, 0 (none) to 1.
- ``sharpness``: variance of the Laplacian of the grey output (OpenCV, 8-bit scale); blurrier
  outputs score lower. It is measured on the normalised downscale, so it compares across models.
- ``identity``: where dlib finds a frontal face in the input, 1 − the Euclidean distance of
  dlib's 128-d face descriptors (ResNet, the model shipped in the ``face_recognition_models``
  package) of the input face and of the same region of the output, clipped at 0. dlib's
  "same person" threshold, a distance of 0.6, is identity 0.4. None without a face in the input
  or without the face packages installed (``identity_unavailable_reason`` says which).

``measure(input, output)`` takes encoded bytes, PIL images or arrays (and a ``Reference``, the
input prepared once, when many outputs share an input): plain inputs, so the production gate can
use it on any two images.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import cv2
import imagehash
import numpy as np
from PIL import Image
from skimage.metrics import structural_similarity

from core.errors import InvalidInput

METRICS_VERSION = 1  # bump when a metric's definition changes; backfill recomputes older rows
NORMALISED_PX = 512  # long side of the downscale the metrics are computed on
SSIM_PX = 256  # SSIM on a further halving: 9 ms instead of 40 at 512, same ranking
SAME_PERSON_DISTANCE = 0.6  # dlib's threshold for its face descriptors
METRIC_NAMES = ("similarity", "phash_distance", "change", "sharpness", "identity")
METRIC_LABELS = {
    "similarity": "similarity (SSIM, 1 = same)",
    "phash_distance": "perceptual-hash distance (0–64)",
    "change": "change (mean |Δ|, 0–1)",
    "sharpness": "sharpness (Laplacian variance)",
    "identity": "identity (1 − face distance)",
}

ImageLike = bytes | Image.Image | np.ndarray


@dataclasses.dataclass(frozen=True)
class Metrics:
    similarity: float
    phash_distance: int
    change: float
    sharpness: float
    identity: float | None  # None: no face in the input, or identity unavailable
    identity_distance: float | None
    face_in_input: bool
    version: int = METRICS_VERSION

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Reference:
    """An input photo prepared once: decoded at a working size, hashed, its face found."""

    rgb: np.ndarray  # uint8 H×W×3, long side at most 2 × NORMALISED_PX
    phash: imagehash.ImageHash
    face_box: tuple[float, float, float, float] | None  # left, top, right, bottom as fractions
    face_descriptor: np.ndarray | None  # dlib's 128-d descriptor of that face


# -- public entry points --------------------------------------------------------------------------
def prepare(image: ImageLike | Reference) -> Reference:
    """Decode and analyse an input once (its face is looked for here)."""
    if isinstance(image, Reference):
        return image
    rgb = _fit(_rgb_array(image, "The input image"), 2 * NORMALISED_PX)
    normalised = _fit(rgb, NORMALISED_PX)
    box = _find_face(normalised)
    return Reference(rgb=rgb, phash=imagehash.phash(Image.fromarray(normalised)), face_box=box,
                     face_descriptor=None if box is None else _descriptor(normalised, box))


@dataclasses.dataclass(frozen=True)
class Pair:
    """An output and its input on the same normalised grid: what every metric reads."""

    reference: Reference
    out: np.ndarray  # the output fitted into NORMALISED_PX, RGB
    ref: np.ndarray  # the input resized to exactly the output's size, RGB
    out_grey: np.ndarray
    ref_grey: np.ndarray


def pair(input_image: ImageLike | Reference, output_image: ImageLike) -> Pair:
    """Decode and normalise an output against its (prepared) input."""
    reference = prepare(input_image)
    out = _fit(_rgb_array(output_image, "The output image"), NORMALISED_PX)
    height, width = out.shape[:2]
    ref = cv2.resize(reference.rgb, (width, height), interpolation=cv2.INTER_AREA)
    return Pair(reference, out, ref, cv2.cvtColor(out, cv2.COLOR_RGB2GRAY),
                cv2.cvtColor(ref, cv2.COLOR_RGB2GRAY))


def measure(input_image: ImageLike | Reference, output_image: ImageLike) -> Metrics:
    """Every metric of ``output_image`` against ``input_image`` (see the module doc)."""
    p = pair(input_image, output_image)
    values = {name: step(p) for name, step in METRIC_STEPS.items()}
    distance = values.pop("identity_distance")
    identity = None if distance is None else max(0.0, 1.0 - distance)
    return Metrics(**values, identity=identity, identity_distance=distance,
                   face_in_input=p.reference.face_box is not None)


def _similarity(p: Pair) -> float:
    return _ssim(_fit(p.ref_grey, SSIM_PX), _fit(p.out_grey, SSIM_PX))


def _phash_distance(p: Pair) -> int:
    return int(p.reference.phash - imagehash.phash(Image.fromarray(p.out)))


def _change(p: Pair) -> float:
    return float(cv2.absdiff(p.ref, p.out).mean() / 255.0)


def _sharpness(p: Pair) -> float:
    return float(cv2.Laplacian(p.out_grey, cv2.CV_64F).var())


def _identity_distance(p: Pair) -> float | None:
    """Distance between the input face's descriptor (computed once, in ``prepare``) and the
    descriptor of the same region of the output; None where the input has no face."""
    reference = p.reference
    if reference.face_box is None or reference.face_descriptor is None:
        return None
    return float(np.linalg.norm(reference.face_descriptor - _descriptor(p.out,
                                                                         reference.face_box)))


# Each metric as one step over a Pair: ``measure`` runs them all; bench/metrics.py times each.
METRIC_STEPS: dict[str, Callable[[Pair], Any]] = {
    "similarity": _similarity, "phash_distance": _phash_distance, "change": _change,
    "sharpness": _sharpness, "identity_distance": _identity_distance,
}


class ReferenceCache:
    """Prepared inputs by content hash, so the cells of a sweep share one decode of their
    photo and one face descriptor. Thread-safe; keeps the ``size`` most recently used. Outputs
    of one photo stored at the same moment (the store step runs in threads) wait for the one
    preparation under way instead of each preparing the photo again."""

    def __init__(self, size: int = 16) -> None:
        self._size = size
        self._items: OrderedDict[str, Reference] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}  # one lock per photo being prepared
        self.prepared = 0  # how many times an input was prepared (each miss)

    def get(self, key: str, load: Any) -> Reference:
        """The prepared input for ``key``, calling ``load()`` for its bytes when not cached."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            flight = self._loading.setdefault(key, threading.Lock())
        with flight:  # a second caller waits here for the first one's preparation
            with self._lock:
                if key in self._items:
                    self._items.move_to_end(key)
                    return self._items[key]
            try:
                reference = prepare(load())
            except BaseException:
                with self._lock:
                    self._loading.pop(key, None)
                raise
            with self._lock:
                self._loading.pop(key, None)
                self.prepared += 1
                self._items[key] = reference
                while len(self._items) > self._size:
                    self._items.popitem(last=False)
        return reference


def identity_unavailable_reason() -> str | None:
    """Why identity cannot be measured here, or None when it can."""
    return _face_models()[1]


# -- the pieces -----------------------------------------------------------------------------------
def _rgb_array(image: ImageLike, name: str) -> np.ndarray:
    if isinstance(image, np.ndarray):
        array = image
        if array.ndim == 2:
            array = np.stack([array] * 3, axis=-1)
        if array.ndim != 3 or array.shape[2] not in (3, 4):
            raise InvalidInput(f"{name} must be an H×W×3 array, not shape {array.shape}.")
        return np.ascontiguousarray(array[:, :, :3].astype(np.uint8, copy=False))
    if isinstance(image, (bytes, bytearray, memoryview)):
        try:
            pil = Image.open(io.BytesIO(image))
            pil.draft("RGB", (NORMALISED_PX, NORMALISED_PX))  # JPEG: decode at a reduced scale
            pil.load()
        except Exception as exc:
            raise InvalidInput(f"{name} is not a readable image ({exc}).") from exc
        image = pil
    if not isinstance(image, Image.Image):
        raise InvalidInput(f"{name} must be image bytes, a PIL image or an array, "
                           f"not {type(image).__name__}.")
    if image.mode != "RGB":
        image = image.convert("RGBA").convert("RGB") if "A" in image.mode else image.convert("RGB")
    return np.asarray(image)


def _fit(rgb: np.ndarray, max_px: int) -> np.ndarray:
    """Downscale (area averaging) to fit ``max_px`` on the long side; never upscale."""
    height, width = rgb.shape[:2]
    scale = max_px / max(height, width)
    if scale >= 1:
        return rgb
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def _ssim(a: np.ndarray, b: np.ndarray) -> float:
    if min(a.shape) < 7:  # SSIM's window does not fit; a tiny image is compared pixelwise
        return float(1.0 - np.abs(a.astype(np.float32) - b).mean() / 255.0)
    # float32 in, so scikit-image filters in float32 rather than float64: a third less CPU,
    # the same index to 1e-7
    return float(structural_similarity(a.astype(np.float32), b.astype(np.float32),
                                       data_range=255, gaussian_weights=True, sigma=1.5,
                                       use_sample_covariance=False))


# -- faces (dlib, with the models shipped in face_recognition_models) ----------------------------
_FACE_LOCK = threading.Lock()  # dlib's objects are not documented as thread-safe


@functools.cache
def _face_models() -> tuple[Any, str | None]:
    # dlib's network runs on OpenBLAS, whose threads would spin on every core for a 150 px
    # face chip: one thread costs half the CPU (14 ms a descriptor instead of 22). Read when
    # the library loads, so before dlib is first imported; a value already set is kept.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    try:
        import dlib
        import face_recognition_models as models
    except ImportError as exc:
        return None, (f"Identity is not measured: {exc.name} is not installed "
                      "(bash .ci/install builds dlib and installs face_recognition_models).")
    return (dlib.get_frontal_face_detector(),
            dlib.shape_predictor(models.pose_predictor_five_point_model_location()),
            dlib.face_recognition_model_v1(models.face_recognition_model_location()),
            dlib.rectangle), None


def _find_face(rgb: np.ndarray) -> tuple[float, float, float, float] | None:
    """The largest frontal face, as fractions of the image, or None."""
    models, _ = _face_models()
    if models is None:
        return None
    detector = models[0]
    with _FACE_LOCK:
        faces = list(detector(rgb, 1 if max(rgb.shape[:2]) < 400 else 0))
    if not faces:
        return None
    face = max(faces, key=lambda r: r.width() * r.height())
    height, width = rgb.shape[:2]
    return (face.left() / width, face.top() / height, face.right() / width,
            face.bottom() / height)


def _descriptor(rgb: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """dlib's descriptor of the face in ``box`` (fractions). The output is read in the input
    face's box: an img2img output keeps the composition, and a face that is gone should
    count as gone rather than be looked for elsewhere."""
    models, _ = _face_models()
    _, predictor, recognizer, rectangle = models
    height, width = rgb.shape[:2]
    rect = rectangle(round(box[0] * width), round(box[1] * height),
                     round(box[2] * width), round(box[3] * height))
    with _FACE_LOCK:
        return np.asarray(recognizer.compute_face_descriptor(rgb, predictor(rgb, rect)))

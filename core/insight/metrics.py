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
import threading
from collections import OrderedDict
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


def measure(input_image: ImageLike | Reference, output_image: ImageLike) -> Metrics:
    """Every metric of ``output_image`` against ``input_image`` (see the module doc)."""
    reference = prepare(input_image)
    out = _fit(_rgb_array(output_image, "The output image"), NORMALISED_PX)
    height, width = out.shape[:2]
    ref = cv2.resize(reference.rgb, (width, height), interpolation=cv2.INTER_AREA)
    ref_grey = cv2.cvtColor(ref, cv2.COLOR_RGB2GRAY)
    out_grey = cv2.cvtColor(out, cv2.COLOR_RGB2GRAY)
    similarity = _ssim(_fit(ref_grey, SSIM_PX), _fit(out_grey, SSIM_PX))
    change = float(cv2.absdiff(ref, out).mean() / 255.0)
    sharpness = float(cv2.Laplacian(out_grey, cv2.CV_64F).var())
    phash_distance = int(reference.phash - imagehash.phash(Image.fromarray(out)))
    distance = None
    if reference.face_box is not None and reference.face_descriptor is not None:
        out_descriptor = _descriptor(out, reference.face_box)
        distance = float(np.linalg.norm(reference.face_descriptor - out_descriptor))
    identity = None if distance is None else max(0.0, 1.0 - distance)
    return Metrics(similarity=similarity, phash_distance=phash_distance, change=change,
                   sharpness=sharpness, identity=identity, identity_distance=distance,
                   face_in_input=reference.face_box is not None)


class ReferenceCache:
    """Prepared inputs by content hash, so the cells of a sweep share one decode of their
    photo. Thread-safe; keeps the ``size`` most recently used."""

    def __init__(self, size: int = 16) -> None:
        self._size = size
        self._items: OrderedDict[str, Reference] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str, load: Any) -> Reference:
        """The prepared input for ``key``, calling ``load()`` for its bytes when not cached."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        reference = prepare(load())
        with self._lock:
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
    return float(structural_similarity(a, b, data_range=255, gaussian_weights=True, sigma=1.5,
                                       use_sample_covariance=False))


# -- faces (dlib, with the models shipped in face_recognition_models) ----------------------------
_FACE_LOCK = threading.Lock()  # dlib's objects are not documented as thread-safe


@functools.cache
def _face_models() -> tuple[Any, str | None]:
    try:
        import dlib
        import face_recognition_models as models
    except ImportError as exc:
        return None, (f"Identity is not measured: {exc.name} is not installed "
                      "(pip install dlib-bin face_recognition_models).")
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

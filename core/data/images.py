"""Checking uploads and making thumbnails.

An upload is accepted only if it is a real, still PNG, JPEG, WebP or GIF image within the size
and pixel limits. Accepted images are normalised before anything stores them: turned upright
from their EXIF orientation, converted to 8-bit RGB, and re-encoded without metadata. The
photos are of real people, so dropping EXIF (GPS position, camera serial, comments) matters.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

from PIL import Image, ImageFile, ImageOps

from core.errors import InvalidInput

# Multi-picture JPEGs (format "MPO") come through the JPEG opener.
ACCEPTED_FORMATS = ("PNG", "JPEG", "WEBP", "GIF")
MAX_SIDE_PX = 8192
JPEG_QUALITY = 95
THUMBNAIL_QUALITY = 80
_ORIENTATION_TAG = 0x0112
_SWAPPING_ORIENTATIONS = (5, 6, 7, 8)


@dataclass(frozen=True)
class ImageInfo:
    """A normalised upload: ``data`` is what gets stored, ``sha256`` is of ``data``."""

    data: bytes
    sha256: str
    width: int
    height: int
    format: str
    content_type: str


def validate_upload(
    data: bytes,
    *,
    max_bytes: int,
    max_pixels: int,
    filename: str | None = None,
    max_side: int = MAX_SIDE_PX,
) -> ImageInfo:
    """Check an upload and return it normalised; InvalidInput says what is wrong with it."""
    name = filename or "The upload"
    if len(data) > max_bytes:
        raise InvalidInput(
            f"{name} is {_megabytes(len(data))} MB; the limit is {_megabytes(max_bytes)} MB. "
            "Resize or re-export it and upload it again."
        )
    if not data:
        raise InvalidInput(f"{name} is empty; upload a PNG, JPEG or WebP image.")
    image = _open(data, name)
    _check_still(image, name)
    _check_dimensions(image.size, name, max_pixels=max_pixels, max_side=max_side)
    try:
        image.load()  # decode everything now, so a truncated file fails here and not later
        upright = ImageOps.exif_transpose(image)
    except Exception as exc:
        raise _unreadable(name) from exc
    rgb = _to_rgb(upright)
    # Always re-encode: it is the only way to be sure no metadata survives, and it gives one
    # canonical byte string per picture, so the content hash de-duplicates re-uploads.
    # JPEGs stay JPEG at quality 95 (a PNG of a photo would be several times larger and
    # invisibly better); everything else, already lossless or palette-based, becomes PNG.
    is_jpeg = image.format in ("JPEG", "MPO")
    # An RGB source's colour profile still describes the pixels; a CMYK or grey one would not.
    icc = image.info.get("icc_profile") if image.mode in ("RGB", "RGBA") else None
    rgb.info.clear()  # Pillow copies comment, transparency and profile from info on save
    out = io.BytesIO()
    if is_jpeg:
        rgb.save(out, "JPEG", quality=JPEG_QUALITY, icc_profile=icc)
    else:
        rgb.save(out, "PNG", icc_profile=icc)
    normalised = out.getvalue()
    return ImageInfo(
        data=normalised,
        sha256=hashlib.sha256(normalised).hexdigest(),
        width=rgb.width,
        height=rgb.height,
        format="JPEG" if is_jpeg else "PNG",
        content_type="image/jpeg" if is_jpeg else "image/png",
    )


def make_thumbnail(data: bytes, *, max_px: int = 400) -> tuple[bytes, str]:
    """A JPEG no larger than ``max_px`` on either side, upright and on white; (bytes, type)."""
    return thumbnail_of(decode_rgb(data, at_least_px=max_px), max_px=max_px, in_place=True)


def decode_rgb(data: bytes, *, at_least_px: int | None = None) -> Image.Image:
    """The image decoded, upright, as 8-bit RGB on white. A JPEG is decoded at a reduced scale
    that still has ``at_least_px`` on each side (libjpeg's 1/2, 1/4, 1/8: most of the speed
    for large JPEGs); other formats in full. The store step decodes an output once with this
    and hands it to both the thumbnail and the image metrics."""
    image = _open(data, "The image")
    try:
        if at_least_px and image.format in ("JPEG", "MPO"):
            image.draft("RGB", (at_least_px, at_least_px))
        # exif_transpose copies the whole image; generated outputs have no orientation.
        rotated = image.getexif().get(_ORIENTATION_TAG, 1) != 1
        upright = ImageOps.exif_transpose(image) if rotated else image
        upright.load()
    except Exception as exc:
        raise _unreadable("The image") from exc
    return _to_rgb(upright)


def thumbnail_of(rgb: Image.Image, *, max_px: int = 400, in_place: bool = False
                 ) -> tuple[bytes, str]:
    """The JPEG thumbnail of a decoded image; ``in_place`` lets it shrink ``rgb`` itself
    instead of a copy (when nothing else needs the full image)."""
    if not in_place:
        rgb = rgb.copy()
    # Box-reduce by a whole factor first, then bicubic (Pillow's own choice for thumbnails):
    # a third of the time of Lanczos, and no visible difference at thumbnail size.
    rgb.thumbnail((max_px, max_px), Image.Resampling.BICUBIC, reducing_gap=1.0)
    out = io.BytesIO()
    # JPEG, not WebP: browsers and Streamlit take JPEG bytes as they are, where st.image
    # re-encodes every WebP on every run (a third of the Gallery's time at 1,000 cells).
    rgb.save(out, "JPEG", quality=THUMBNAIL_QUALITY, optimize=False)
    return out.getvalue(), "image/jpeg"


def fit_width(jpeg: bytes, width_px: int) -> bytes:
    """A JPEG no wider than ``width_px`` (the bytes as they are when already narrow enough)."""
    image = Image.open(io.BytesIO(jpeg))
    if image.width <= width_px:
        return jpeg
    image.draft("RGB", (width_px, width_px * image.height // image.width))
    height = max(1, round(image.height * width_px / image.width))
    out = io.BytesIO()
    image.convert("RGB").resize((width_px, height), Image.Resampling.BICUBIC).save(
        out, "JPEG", quality=THUMBNAIL_QUALITY)
    return out.getvalue()


def image_size(data: bytes) -> tuple[int, int]:
    """(width, height) as displayed, read from the header only."""
    image = _open(data, "The image")
    width, height = image.size
    # Only where EXIF sits before the pixels: Pillow decodes a whole PNG to look for eXIf.
    if image.format not in ("JPEG", "MPO", "WEBP"):
        return width, height
    if image.getexif().get(_ORIENTATION_TAG) in _SWAPPING_ORIENTATIONS:
        return height, width
    return width, height


def _open(data: bytes, name: str) -> ImageFile.ImageFile:
    # Image.MAX_IMAGE_PIXELS is process-wide and shared with every other thread, so it is
    # left alone. Pillow refuses images over twice that limit at open (and warns above it,
    # an error when warnings are errors); our lower max_pixels check, with the dimensions in
    # the message, runs on everything else before any pixel is decoded. Pillow discards the
    # image when it refuses, so that message can only give the limit that was crossed.
    try:
        return Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        crossed = (Image.MAX_IMAGE_PIXELS or 0) / 1e6
        if isinstance(exc, Image.DecompressionBombError):
            crossed *= 2
        raise InvalidInput(
            f"{name} declares more than {crossed:.0f} megapixels, far too large to decode "
            "safely (it may be a decompression bomb). Upload an ordinary photo."
        ) from exc
    except Exception as exc:
        # Pillow's parsers raise many types on hostile input (OSError, SyntaxError,
        # ValueError, struct.error, EOFError…); each one means "not a readable image".
        raise _unreadable(name) from exc


def _unreadable(name: str) -> InvalidInput:
    return InvalidInput(
        f"{name} is not a readable PNG, JPEG, WebP or GIF image (it may be truncated or "
        "corrupt). Export it again as PNG or JPEG and upload that."
    )


def _check_still(image: Image.Image, name: str) -> None:
    # MPO is how Pillow opens many phone JPEGs: frame 2 is a preview or depth map, not an
    # animation, and the first frame is the photo.
    if image.format != "MPO" and getattr(image, "n_frames", 1) > 1:
        raise InvalidInput(f"{name} is animated; upload a still image.")


def _check_dimensions(
    size: tuple[int, int], name: str, *, max_pixels: int, max_side: int
) -> None:
    width, height = size
    if width * height > max_pixels or max(width, height) > max_side:
        raise InvalidInput(
            f"{name} is {width}×{height} pixels ({width * height / 1e6:.1f} megapixels); the "
            f"limit is {max_pixels / 1e6:g} megapixels and {max_side} pixels a side. "
            "Downscale it and upload it again."
        )


def _band_max(image: Image.Image) -> float:
    """The largest value of a one-band image."""
    low_high = image.getextrema()
    assert isinstance(low_high, tuple) and not isinstance(low_high[0], tuple)
    return low_high[1]


def _to_rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB: 16-bit scaled down (not clipped), transparency composited on white.
    An RGB image without transparency is returned as it is, not copied."""
    if image.mode == "RGB" and "transparency" not in image.info:
        return image
    if image.mode.startswith("I;16") or (image.mode == "I" and _band_max(image) > 255):
        # Pillow's I;16 → L conversion clips at 255, turning everything above 1/256 white.
        image = image.convert("I").point(lambda value: value * (1 / 256)).convert("L")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def _megabytes(size: int) -> str:
    return f"{size / 2**20:.1f}".removesuffix(".0")

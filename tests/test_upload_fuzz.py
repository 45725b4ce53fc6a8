"""Fuzzing the upload path: whatever bytes arrive, the answer is a normalised image or an
InvalidInput that says what is wrong — never another exception, never a stored file."""

from __future__ import annotations

import io

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from core.errors import InvalidInput
from core.data.images import validate_upload

LIMITS = dict(max_bytes=2_000_000, max_pixels=4_000_000)


def _encoded(fmt: str) -> bytes:
    image = Image.new("RGB", (48, 32), (10, 120, 200))
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


SEEDS = [_encoded("PNG"), _encoded("JPEG"), _encoded("WEBP"), _encoded("GIF")]


@st.composite
def mutated_images(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 8))):
        position = draw(st.integers(0, len(data) - 1))
        data[position] = draw(st.integers(0, 255))
    cut = draw(st.integers(1, len(data)))
    return bytes(data[:cut]) + draw(st.binary(max_size=64))


def _check(data: bytes) -> None:
    try:
        info = validate_upload(data, filename="fuzz.png", **LIMITS)
    except InvalidInput as exc:
        assert "fuzz.png" in str(exc) or "upload" in str(exc).lower()
        return
    assert info.width > 0 and info.height > 0
    reopened = Image.open(io.BytesIO(info.data))
    reopened.load()
    assert reopened.mode in ("RGB", "L")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_images())
def test_mutated_images_are_normalised_or_refused_clearly(data: bytes) -> None:
    _check(data)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=4096))
def test_arbitrary_bytes_are_refused_clearly(data: bytes) -> None:
    _check(data)

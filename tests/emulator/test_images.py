"""Procedural outputs: deterministic, and strength controls the distance from the input."""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import pytest
from PIL import Image

from core.emulator.images import ImageParams, encode_png, output_size, probe, render

BASE = ImageParams(prompt="a portrait, projection level 1", negative_prompt="", strength=0.5,
                   steps=30, guidance=7.5, seed=42, width=1024, height=1024)


def photo(width: int = 160, height: int = 120) -> bytes:
    y, x = np.mgrid[0:height, 0:width]
    pixels = np.stack([x * 255 // width, y * 255 // height, (x + y) % 256], axis=2).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buffer, "PNG")
    return buffer.getvalue()


def pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), np.float32)


def with_(**changes: object) -> ImageParams:
    return dataclasses.replace(BASE, **changes)


def test_same_input_gives_identical_bytes() -> None:
    source = photo()
    assert render(BASE, source) == render(BASE, source)
    assert render(with_(width=64, height=64), None) == render(with_(width=64, height=64), None)


@pytest.mark.parametrize("change", [{"seed": 43}, {"prompt": "another prompt"},
                                    {"negative_prompt": "blurry"}, {"steps": 5}, {"guidance": 20.0},
                                    {"strength": 0.6}, {"index": 1}])
def test_each_parameter_changes_the_output(change: dict[str, object]) -> None:
    source = photo()
    assert render(BASE, source) != render(with_(**change), source)


def test_distance_from_input_grows_with_strength() -> None:
    source = photo()
    original = pixels(source)
    distances = [float(np.abs(pixels(render(with_(strength=s), source)) - original).mean())
                 for s in (0.0, 0.2, 0.35, 0.5, 0.8, 1.0)]
    assert distances[0] < 0.5  # strength 0 is the input
    assert all(a < b for a, b in zip(distances, distances[1:])), distances
    assert distances[-1] > 30  # strength 1 is unrelated to the input


def test_strength_one_ignores_the_input() -> None:
    dark = io.BytesIO()
    Image.new("RGB", (160, 120), (0, 0, 0)).save(dark, "PNG")
    assert render(with_(strength=1.0), photo()) == render(with_(strength=1.0), dark.getvalue())


def test_output_size_follows_input_within_bounds() -> None:
    assert output_size(with_(width=1024, height=1024), (640, 480)) == (640, 480)
    assert output_size(with_(width=512, height=512), (2048, 1024)) == (512, 256)
    assert output_size(with_(width=768, height=512), None) == (768, 512)
    assert Image.open(io.BytesIO(render(with_(width=96, height=64), None))).size == (96, 64)
    assert Image.open(io.BytesIO(render(BASE, photo()))).size == (160, 120)


def test_probe_reads_size_or_refuses() -> None:
    assert probe(photo(30, 20)) == (30, 20)
    with pytest.raises(ValueError, match="cannot identify image file"):
        probe(b"not an image")


def test_the_fast_png_encoder_is_lossless() -> None:
    pixels = (np.random.default_rng(3).random((37, 53, 3)) * 255).astype(np.uint8)
    decoded = Image.open(io.BytesIO(encode_png(pixels)))
    assert decoded.format == "PNG" and decoded.size == (53, 37)
    assert (np.asarray(decoded.convert("RGB")) == pixels).all()

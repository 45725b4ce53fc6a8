"""Input validation against the recorded sdxl Cog schema."""

from __future__ import annotations

import pytest

from core.emulator.schema import SDXL_2023, SDXL_LATEST, Catalog, validate_input, with_defaults

VERSION = Catalog().models["stability-ai/sdxl"].versions[SDXL_LATEST]


def problems(values: object) -> list[tuple[str, str]]:
    return [(p.type, p.field) for p in validate_input(VERSION, values)]


def test_valid_input_passes() -> None:
    assert problems({"prompt": "x", "num_inference_steps": 30, "prompt_strength": 0.35,
                     "guidance_scale": 7, "scheduler": "DDIM", "refine": "no_refiner",
                     "image": "data:image/png;base64,AAAA", "apply_watermark": False}) == []


def test_unknown_keys_are_ignored_like_cog() -> None:
    assert problems({"prompt": "x", "strength": 0.5}) == []


@pytest.mark.parametrize(("values", "expected"), [
    ({"prompt": 3}, ("invalid_type", "input.prompt")),
    ({"num_inference_steps": "30"}, ("invalid_type", "input.num_inference_steps")),
    ({"num_inference_steps": 2.5}, ("invalid_type", "input.num_inference_steps")),
    ({"seed": True}, ("invalid_type", "input.seed")),
    ({"num_inference_steps": 501}, ("number_lte", "input.num_inference_steps")),
    ({"prompt_strength": -0.1}, ("number_gte", "input.prompt_strength")),
    ({"scheduler": "FAST"}, ("enum", "input.scheduler")),
    ({"image": "not a uri"}, ("format", "input.image")),
])
def test_invalid_values_name_the_field(values: dict[str, object], expected: tuple[str, str]) -> None:
    assert problems(values) == [expected]


def test_every_invalid_field_is_reported() -> None:
    assert len(problems({"num_outputs": 9, "guidance_scale": 0, "refine": "x"})) == 3


def test_input_must_be_an_object() -> None:
    assert problems(["x"]) == [("invalid_type", "input")]


def test_defaults_fill_missing_keys() -> None:
    full = with_defaults(VERSION, {"prompt": "x"})
    assert full["prompt"] == "x" and full["num_inference_steps"] == 50 and full["prompt_strength"] == 0.8


def test_catalog_resolves_version_refs() -> None:
    catalog = Catalog()
    assert catalog.resolve_version(SDXL_LATEST)[1] == SDXL_LATEST
    assert catalog.resolve_version(f"stability-ai/sdxl:{SDXL_2023}")[1] == SDXL_2023
    assert catalog.resolve_version("stability-ai/sdxl") is None
    assert catalog.resolve_version(f"someone/else:{SDXL_LATEST}") is None

"""Models this project knows without asking Replicate: their input schemas, how they are
created and their published price, each with the public source it was taken from.

Replicate returns no price through its API, so these prices are what the model pages said
on the date given; they can be changed (Settings, ``python -m core pricing set``). Schemas
are in the shape of a version's ``openapi_schema`` (``components.schemas.Input``); for
official models Replicate publishes the same object on the model's API page. SDXL's is the
real recorded version (``sdxl_version.json``, shared/replicate-cassettes).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from typing import Any

from core.planning.schema import SDXL_MODEL, load_bundled_version

SDXL_REF = SDXL_MODEL
SDXL_VERSION = "7762fd07cf82c948538e41f63f77d685e02b063e37e496e96eefd46c929f9bdc"  # the bundled one
FLUX_DEV_REF = "black-forest-labs/flux-dev"
FLUX_KONTEXT_PRO_REF = "black-forest-labs/flux-kontext-pro"
SEEDREAM_4_REF = "bytedance/seedream-4"

# Official models have no public version id; the API reports ``"version": "hidden"``
# (see the flux-kontext prediction body quoted below). The emulator needs one to address
# the schema, so it uses these stand-ins; they are never sent to api.replicate.com.
FLUX_DEV_VERSION = "f1a5c0de" * 8
FLUX_KONTEXT_PRO_VERSION = "c0a7e77f" * 8
SEEDREAM_4_VERSION = "5eed4ea4" * 8


def _input(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    for order, prop in enumerate(properties.values()):
        prop.setdefault("x-order", order)
        prop.setdefault("title", "")
    return {"openapi": "3.0.2", "info": {"title": "Cog", "version": "0.1.0"},
            "components": {"schemas": {"Input": {"type": "object", "title": "Input",
                                                 "required": required,
                                                 "properties": properties}}}}


_ASPECTS_FLUX = ["1:1", "16:9", "21:9", "3:2", "2:3", "4:5", "5:4", "3:4", "4:3", "9:16", "9:21"]

# black-forest-labs/flux-dev (official, img2img through `image` + `prompt_strength`).
# Sources: the model's predictor, replicate/cog-flux predict.py (DevPredictor: image,
# prompt_strength 0..1 default 0.8, guidance 0..10, num_outputs 1..4, output_format
# webp/jpg/png, output_quality 0..100, disable_safety_checker); the model's API page as
# reproduced in public code that calls it (vinay-airmeet/Director
# backend/spielberg/tools/replicate.py and Himanshu-Tagde/GEN_image test.py: go_fast,
# megapixels "1", num_inference_steps 28, guidance 3.5); current defaults (guidance 3,
# steps 1..50 default 28) per replicate.com/black-forest-labs/flux-dev/api/schema.
FLUX_DEV_SCHEMA = _input({
    "prompt": {"type": "string", "description": "Prompt for generated image"},
    "aspect_ratio": {"type": "string", "enum": _ASPECTS_FLUX, "default": "1:1",
                     "description": "Aspect ratio for the generated image"},
    "image": {"type": "string", "format": "uri",
              "description": "Input image for image to image mode. The aspect ratio of your "
                             "output will match this image"},
    "prompt_strength": {"type": "number", "minimum": 0, "maximum": 1, "default": 0.8,
                        "description": "Prompt strength when using img2img. 1.0 corresponds "
                                       "to full destruction of information in image"},
    "num_outputs": {"type": "integer", "minimum": 1, "maximum": 4, "default": 1,
                    "description": "Number of outputs to generate"},
    "num_inference_steps": {"type": "integer", "minimum": 1, "maximum": 50, "default": 28,
                            "description": "Number of denoising steps. Recommended range is "
                                           "28-50, and lower number of steps produce lower "
                                           "quality outputs, faster."},
    "guidance": {"type": "number", "minimum": 0, "maximum": 10, "default": 3,
                 "description": "Guidance for generated image"},
    "seed": {"type": "integer", "description": "Random seed. Set for reproducible generation"},
    "output_format": {"type": "string", "enum": ["webp", "jpg", "png"], "default": "webp",
                      "description": "Format of the output images"},
    "output_quality": {"type": "integer", "minimum": 0, "maximum": 100, "default": 80,
                       "description": "Quality when saving the output images, from 0 to 100. "
                                      "Not relevant for .png outputs"},
    "disable_safety_checker": {"type": "boolean", "default": False,
                               "description": "Disable safety checker for generated images."},
    "go_fast": {"type": "boolean", "default": True,
                "description": "Run faster predictions with model optimized for speed "
                               "(currently fp8 quantized); disable to run in original bf16"},
    "megapixels": {"type": "string", "enum": ["1", "0.25"], "default": "1",
                   "description": "Approximate number of megapixels for generated image"},
}, ["prompt"])

# black-forest-labs/flux-kontext-pro (official instruction editor; `input_image`, no
# strength, no steps, one output as a plain string URL). Source: the model's API page
# (input and output schema, and the Cancel-After header of predictions.create) as saved
# in a public project's notes (search index file id 60467077685), and the same schema for
# flux-kontext-max with a real prediction body ("version": "hidden", "output" a string,
# metrics.image_count) in another (file id 19008967218).
FLUX_KONTEXT_PRO_SCHEMA = _input({
    "prompt": {"type": "string",
               "description": "Text description of what you want to generate, or the "
                              "instruction on how to edit the given image."},
    "input_image": {"type": "string", "format": "uri", "nullable": True,
                    "description": "Image to use as reference. Must be jpeg, png, gif, or webp."},
    "aspect_ratio": {"type": "string",
                     "enum": ["match_input_image", "1:1", "16:9", "9:16", "4:3", "3:4", "3:2",
                              "2:3", "4:5", "5:4", "21:9", "9:21", "2:1", "1:2"],
                     "default": "match_input_image",
                     "description": "Aspect ratio of the generated image. Use "
                                    "'match_input_image' to match the aspect ratio of the "
                                    "input image."},
    "prompt_upsampling": {"type": "boolean", "default": False,
                          "description": "Automatic prompt improvement"},
    "seed": {"type": "integer", "nullable": True,
             "description": "Random seed. Set for reproducible generation"},
    "output_format": {"type": "string", "enum": ["jpg", "png"], "default": "png",
                      "description": "Output format for the generated image"},
    "safety_tolerance": {"type": "integer", "minimum": 0, "maximum": 6, "default": 2,
                         "description": "Safety tolerance, 0 is most strict and 6 is most "
                                        "permissive. 2 is currently the maximum allowed when "
                                        "input images are used."},
}, ["prompt"])

# bytedance/seedream-4 (official; the image input is a LIST, `image_input`; may return
# several images; no seed in the model page's input list). Sources: the model page as
# saved in dwaipayanbanerjee/qwen-image-editor bytedance_seedream-4.md (inputs, output
# schema: an array of URIs, "$0.03 per output image"); enums, bounds and defaults from
# NikitaStogniy/replicate-dropp app/lib/models/seedream-4.ts.
SEEDREAM_4_SCHEMA = _input({
    "prompt": {"type": "string", "description": "Text prompt for image generation"},
    "image_input": {"type": "array", "items": {"type": "string", "format": "uri"},
                    "default": [], "maxItems": 10,
                    "description": "Input image(s) for image-to-image generation. List of "
                                   "1-10 images for single or multi-reference generation."},
    "size": {"type": "string", "enum": ["1K", "2K", "4K", "custom"], "default": "2K",
             "description": "Image resolution: 1K (1024px), 2K (2048px), 4K (4096px), or "
                            "'custom' for specific dimensions."},
    "aspect_ratio": {"type": "string",
                     "enum": ["match_input_image", "1:1", "4:3", "3:4", "16:9", "9:16", "3:2",
                              "2:3", "21:9"],
                     "default": "match_input_image",
                     "description": "Image aspect ratio. Only used when size is not 'custom'."},
    "width": {"type": "integer", "minimum": 1024, "maximum": 4096, "default": 2048,
              "description": "Custom image width (only used when size='custom')."},
    "height": {"type": "integer", "minimum": 1024, "maximum": 4096, "default": 2048,
               "description": "Custom image height (only used when size='custom')."},
    "sequential_image_generation": {"type": "string", "enum": ["disabled", "auto"],
                                    "default": "disabled",
                                    "description": "Group image generation mode. 'disabled' "
                                                   "generates a single image; 'auto' lets the "
                                                   "model decide to generate several."},
    "max_images": {"type": "integer", "minimum": 1, "maximum": 15, "default": 1,
                   "description": "Maximum number of images to generate when "
                                  "sequential_image_generation='auto'."},
    "enhance_prompt": {"type": "boolean", "default": True,
                       "description": "Enable prompt enhancement for higher quality results, "
                                      "this will take longer to generate."},
}, ["prompt"])


@dataclasses.dataclass(frozen=True)
class KnownPrice:
    kind: str  # per_second | per_image | per_megapixel | per_run
    usd: float
    as_of: str  # YYYY-MM-DD
    source: str
    hardware: str | None = None
    usd_per_input_megapixel: float | None = None


@dataclasses.dataclass(frozen=True)
class KnownModel:
    ref: str
    create_via: str  # versioned | official
    version_id: str  # the version (versioned) or the emulator's stand-in (official)
    price: KnownPrice

    @property
    def openapi_schema(self) -> dict[str, Any]:
        return copy.deepcopy(_SCHEMAS[self.ref]())


def _sdxl_schema() -> dict[str, Any]:
    bundled = load_bundled_version(SDXL_REF)
    assert bundled is not None  # shipped with the code
    return bundled["openapi_schema"]


_SCHEMAS: dict[str, Callable[[], dict[str, Any]]] = {
    SDXL_REF: _sdxl_schema,
    FLUX_DEV_REF: lambda: FLUX_DEV_SCHEMA,
    FLUX_KONTEXT_PRO_REF: lambda: FLUX_KONTEXT_PRO_SCHEMA,
    SEEDREAM_4_REF: lambda: SEEDREAM_4_SCHEMA,
}

KNOWN_MODELS: dict[str, KnownModel] = {
    # Community model billed per second of its hardware (metrics.predict_time); the one
    # home of SDXL's rate.
    SDXL_REF: KnownModel(SDXL_REF, "versioned", SDXL_VERSION, KnownPrice(
        "per_second", 0.000725, "2026-11-24", "replicate.com/pricing: Nvidia A40 (Large) GPU",
        hardware="Nvidia A40 (Large) GPU")),
    FLUX_DEV_REF: KnownModel(FLUX_DEV_REF, "official", FLUX_DEV_VERSION, KnownPrice(
        "per_image", 0.025, "2026-12-02", "replicate.com/black-forest-labs/flux-dev: "
        "$0.025 per output image")),
    FLUX_KONTEXT_PRO_REF: KnownModel(FLUX_KONTEXT_PRO_REF, "official", FLUX_KONTEXT_PRO_VERSION,
                                     KnownPrice("per_image", 0.04, "2026-04-06",
                                                "$0.04 per image (BFL list price, as on "
                                                "runflow.io's FLUX Kontext [pro] page)")),
    SEEDREAM_4_REF: KnownModel(SEEDREAM_4_REF, "official", SEEDREAM_4_VERSION, KnownPrice(
        "per_image", 0.03, "2025-09-15", "replicate.com/bytedance/seedream-4 model page as "
        "saved in dwaipayanbanerjee/qwen-image-editor: $0.03 per output image")),
}


def known_model(ref: str) -> KnownModel | None:
    return KNOWN_MODELS.get(ref)


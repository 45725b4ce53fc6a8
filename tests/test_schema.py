import pytest

from core.planning.schema import (
    describe_value,
    input_properties,
    load_bundled_version,
    parse_model_ref,
    validate_input,
)

OLD_ID = "7762fd07cf82c948538e41f63f77d685e02b063e37e496e96eefd46c929f9bdc"
NEW_ID = "39ed52f2a78e934b3ba6e2a89f5b1c712de7dfea535525255b1aa35c5565e08b"


@pytest.fixture(scope="module")
def sdxl_schema():
    return load_bundled_version(OLD_ID)["openapi_schema"]


def test_parse_model_ref_splits_name_and_version():
    assert parse_model_ref(f"Stability-AI/SDXL:{NEW_ID}") == ("stability-ai/sdxl", NEW_ID)


def test_parse_model_ref_reads_bare_version_id():
    assert parse_model_ref(NEW_ID) == (None, NEW_ID)


def test_parse_model_ref_reads_bare_model_name():
    assert parse_model_ref("stability-ai/sdxl") == ("stability-ai/sdxl", None)


@pytest.mark.parametrize(
    "ref", [OLD_ID, NEW_ID, f"stability-ai/sdxl:{OLD_ID}", f"stability-ai/sdxl:{NEW_ID}", "stability-ai/sdxl"]
)
def test_load_bundled_version_maps_every_sdxl_ref_to_the_recorded_object(ref):
    assert load_bundled_version(ref)["id"] == OLD_ID


@pytest.mark.parametrize("ref", ["black-forest-labs/flux-schnell", "0" * 64, f"someone/else:{OLD_ID}", ""])
def test_load_bundled_version_is_none_for_other_models(ref):
    assert load_bundled_version(ref) is None


def test_load_bundled_version_returns_a_copy_callers_may_change():
    load_bundled_version(OLD_ID)["openapi_schema"].clear()
    assert "components" in load_bundled_version(OLD_ID)["openapi_schema"]


def test_input_properties_resolves_scheduler_enum(sdxl_schema):
    scheduler = input_properties(sdxl_schema)["scheduler"]
    assert "K_EULER" in scheduler["enum"] and scheduler["default"] == "K_EULER"


def test_input_properties_keeps_the_property_description_over_the_enum_one(sdxl_schema):
    assert input_properties(sdxl_schema)["refine"]["description"] == "Which refine style to use"


def test_input_properties_follow_x_order(sdxl_schema):
    assert list(input_properties(sdxl_schema))[:3] == ["prompt", "negative_prompt", "image"]


def test_num_inference_steps_range_comes_from_the_schema(sdxl_schema):
    steps = input_properties(sdxl_schema)["num_inference_steps"]
    assert (steps["minimum"], steps["maximum"]) == (1, 500)


def test_valid_sdxl_input_has_no_problems(sdxl_schema):
    values = {
        "prompt": "a portrait", "negative_prompt": "", "image": "https://example.com/a.png",
        "prompt_strength": 0.35, "num_inference_steps": 30, "guidance_scale": 7.5,
        "seed": 42, "scheduler": "K_EULER", "refine": "no_refiner", "apply_watermark": False,
    }
    assert validate_input(sdxl_schema, values) == []


def test_number_above_maximum_names_field_value_and_range(sdxl_schema):
    assert validate_input(sdxl_schema, {"prompt_strength": 1.3}) == [
        "prompt_strength 1.3 is above the model's maximum 1 (allowed 0 to 1)"
    ]


def test_number_below_minimum_names_field_value_and_range(sdxl_schema):
    assert validate_input(sdxl_schema, {"guidance_scale": 0.5}) == [
        "guidance_scale 0.5 is below the model's minimum 1 (allowed 1 to 50)"
    ]


def test_text_for_integer_is_not_a_whole_number(sdxl_schema):
    assert validate_input(sdxl_schema, {"num_inference_steps": "abc"}) == [
        "num_inference_steps 'abc' is not a whole number"
    ]


def test_fractional_integer_is_not_a_whole_number(sdxl_schema):
    assert validate_input(sdxl_schema, {"num_inference_steps": 30.5}) == [
        "num_inference_steps 30.5 is not a whole number"
    ]


def test_integral_float_counts_as_integer_as_in_json_schema(sdxl_schema):
    assert validate_input(sdxl_schema, {"num_inference_steps": 30.0}) == []


def test_boolean_is_not_an_integer(sdxl_schema):
    assert validate_input(sdxl_schema, {"seed": True}) == ["seed true is not a whole number"]


def test_boolean_is_not_a_number(sdxl_schema):
    assert validate_input(sdxl_schema, {"guidance_scale": False}) == ["guidance_scale false is not a number"]


def test_nan_is_not_a_number(sdxl_schema):
    assert validate_input(sdxl_schema, {"guidance_scale": float("nan")}) == ["guidance_scale nan is not a number"]


def test_integer_is_not_a_boolean(sdxl_schema):
    assert validate_input(sdxl_schema, {"apply_watermark": 1}) == ["apply_watermark 1 is not true or false"]


def test_enum_problem_lists_choices(sdxl_schema):
    [problem] = validate_input(sdxl_schema, {"scheduler": "EULER"})
    assert problem.startswith("scheduler 'EULER' is not one of the model's choices: DDIM, ") and "K_EULER" in problem


def test_non_text_prompt_is_reported(sdxl_schema):
    assert validate_input(sdxl_schema, {"prompt": 5}) == ["prompt 5 is not text"]


def test_image_must_be_a_uri(sdxl_schema):
    assert validate_input(sdxl_schema, {"image": "photo.png"}) == [
        "image 'photo.png' is not a URL (give an https:// or data: URI)"
    ]


def test_unknown_names_are_listed_with_the_valid_ones(sdxl_schema):
    [problem] = validate_input(sdxl_schema, {"strength": 0.3, "steps": 30})
    assert problem.startswith("'strength', 'steps' are not inputs of this model; valid names: prompt, ")
    assert "prompt_strength" in problem


def test_null_for_an_input_with_a_default_is_reported(sdxl_schema):
    assert validate_input(sdxl_schema, {"width": None}) == [
        "width is null; leave it out to use the model's default 1024"
    ]


def test_null_for_an_optional_input_is_accepted(sdxl_schema):
    assert validate_input(sdxl_schema, {"seed": None}) == []


def test_every_problem_is_reported_not_just_the_first(sdxl_schema):
    assert len(validate_input(sdxl_schema, {"prompt_strength": 2, "num_inference_steps": 0, "bogus": 1})) == 3


REQUIRED_SCHEMA = {
    "components": {"schemas": {"Input": {"required": ["image"], "properties": {"image": {"type": "string"}}}}}
}


def test_schema_without_inputs_checks_nothing():
    assert validate_input({}, {"anything": 1}) == []


def test_missing_required_input_is_reported():
    assert validate_input(REQUIRED_SCHEMA, {}) == ["image is required by this model"]


def test_required_input_supplied_later_is_not_reported():
    assert validate_input(REQUIRED_SCHEMA, {}, supplied_later=("image",)) == []


@pytest.mark.parametrize(
    ("value", "shown"), [(1.0, "1"), (0.35, "0.35"), (True, "true"), (None, "null"), ("x", "'x'")]
)
def test_describe_value(value, shown):
    assert describe_value(value) == shown

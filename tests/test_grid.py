import math
import random
from decimal import Decimal

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from core.errors import InvalidInput
from core.planning.grid import (
    MAX_VALUES_PER_AXIS,
    CellSpec,
    GridImage,
    GridSpec,
    AxisSpec,
    parse_axis,
    parse_value,
    PromptVariant,
    apply_prompt_sr,
    count_cells,
    expand_grid,
    parse_number_axis,
    parse_prompt_variants,
    prompt_variants,
    request_hash,
    resolve_seeds,
)
from core.planning.known_models import KNOWN_MODELS
from core.planning.schema import input_roles, load_bundled_version

SDXL = "stability-ai/sdxl:39ed52f2a78e934b3ba6e2a89f5b1c712de7dfea535525255b1aa35c5565e08b"
SDXL_SCHEMA = load_bundled_version(SDXL)["openapi_schema"]
SDXL_ROLES = input_roles(SDXL_SCHEMA)


def strength(text):
    return parse_number_axis(text, name="strength")


def steps(text):
    return parse_number_axis(text, name="steps", integer=True)


# --- number axes: accepted forms -------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("0.3, 0.45, 0.6", [0.3, 0.45, 0.6]),
        ("0.3 0.45\n0.6", [0.3, 0.45, 0.6]),
        ("  0.3 ,  0.45 ,0.6  ", [0.3, 0.45, 0.6]),
        ("0.35", [0.35]),
        ("0.3-0.6 (+0.1)", [0.3, 0.4, 0.5, 0.6]),
        ("0.3 - 0.6 ( +0.1 )", [0.3, 0.4, 0.5, 0.6]),
        ("0.3-0.6(0.1)", [0.3, 0.4, 0.5, 0.6]),
        ("0.2, 0.5-0.7 (+0.1)", [0.2, 0.5, 0.6, 0.7]),
        ("0-1 [3]", [0.0, 0.5, 1.0]),
        ("0.3-0.65 (+0.1)", [0.3, 0.4, 0.5, 0.6]),
        ("0.6-0.3 (+0.1)", [0.6, 0.5, 0.4, 0.3]),
        ("1e-3, 2.5E-1", [0.001, 0.25]),
        ("0.3, 0.3, 0.4", [0.3, 0.4]),
    ],
)
def test_parse_number_axis_accepts(text, values):
    assert strength(text) == values


def test_step_range_values_print_as_typed():
    assert [repr(v) for v in strength("0.3-0.6 (+0.1)")] == ["0.3", "0.4", "0.5", "0.6"]


def test_step_range_includes_an_end_reached_within_float_tolerance():
    assert strength("0-1 (+0.3333333333333334)")[-1] == 1.0


def test_count_range_on_integer_axis():
    assert steps("20-40 [3]") == [20, 30, 40]


def test_count_range_on_integer_axis_rounds_half_up():
    assert steps("20-30 [4]") == [20, 23, 27, 30]


def test_count_range_drops_duplicates_after_rounding_keeping_order():
    assert steps("20-21 [5]") == [20, 21]


def test_integer_axis_returns_ints():
    assert all(type(v) is int for v in steps("25, 30-40 (+5)"))


def test_float_axis_returns_floats():
    assert all(type(v) is float for v in strength("1, 2"))


def test_bare_range_on_integer_axis_steps_by_one():
    assert steps("1-4") == [1, 2, 3, 4]


def test_negative_single_value_parses():
    assert parse_number_axis("-1", name="seed", integer=True) == [-1]


def test_dash_right_after_a_number_is_a_range():
    assert parse_number_axis("-1-5 (+2)", name="seed", integer=True) == [-1, 1, 3, 5]


def test_range_between_two_negatives():
    assert parse_number_axis("-5--1", name="seed", integer=True) == [-5, -4, -3, -2, -1]


def test_minus_after_a_space_starts_a_negative_value():
    assert parse_number_axis("3 -1", name="seed", integer=True) == [3, -1]


def test_minus_with_spaces_on_both_sides_is_a_range():
    assert parse_number_axis("1 - 3", name="seed", integer=True) == [1, 2, 3]


def test_negative_zero_becomes_zero():
    assert repr(strength("-0.0")[0]) == "0.0"


# --- number axes: refused forms ----------------------------------------------------------


def refusal(text, integer=False, **kwargs):
    with pytest.raises(InvalidInput) as info:
        parse_number_axis(text, name="strength", integer=integer, **kwargs)
    return str(info.value)


def test_empty_axis_message_shows_examples():
    assert refusal("  , \n") == "strength is empty: type values like 0.3, 0.45, 0.6 or 0.3-0.6 (+0.1)"


def test_unreadable_text_is_named():
    assert refusal("0.3, abc").startswith("strength: cannot read 'abc'.")


def test_number_with_two_decimal_points_is_unreadable():
    assert refusal("1.2.3").startswith("strength: cannot read '1.2.3'.")


def test_unclosed_step_is_unreadable_not_a_bare_range():
    assert refusal("0.3-0.6 (+0.1").startswith("strength: cannot read '0.3-0.6 (+0.1'.")


def test_float_range_without_step_or_count_asks_for_one():
    assert refusal("0.3-0.6") == "strength: the range '0.3-0.6' needs a step like (+0.1) or a count like [5]"


def test_zero_step_is_refused():
    assert "the step in '0-1 (0)' must be positive" in refusal("0-1 (0)")


def test_negative_step_is_refused_with_the_positive_form():
    assert "must be positive; write (+0.1)" in refusal("0.6-0.3 (-0.1)")


def test_count_below_two_is_refused():
    assert "the count in '0-1 [1]' must be a whole number, 2 or more" in refusal("0-1 [1]")


def test_fractional_count_is_refused():
    assert "the count in '0-1 [2.5]' must be a whole number, 2 or more" in refusal("0-1 [2.5]")


def test_fraction_on_integer_axis_is_refused():
    assert refusal("2.5", integer=True).startswith("strength 2.5 is not a whole number")


def test_fractional_step_on_integer_axis_is_refused():
    assert "the step in '1-2 (+0.5)' must be a whole number" in refusal("1-2 (+0.5)", integer=True)


def test_runaway_range_is_refused_with_its_size():
    assert refusal("0-1000 (+0.001)").startswith("strength has 1,000,001 values; the limit is 200 per axis")


def test_axis_limit_counts_all_items():
    assert refusal("1, 2, 3", max_values=2).startswith("strength has 3 values; the limit is 2 per axis")


def test_huge_number_is_refused():
    assert refusal("1e999").startswith("strength 1e999 is out of range")


# --- number axes: properties --------------------------------------------------------------

finite_floats = st.floats(allow_nan=False, allow_infinity=False)
separators = st.sampled_from([", ", ",", " ", "\n", " ,\n "])


@given(st.lists(finite_floats, min_size=1, max_size=200, unique=True), separators)
def test_formatted_float_lists_parse_back(values, sep):
    assert strength(sep.join(repr(v) for v in values)) == values


@given(st.lists(st.integers(-(10**30), 10**30), min_size=1, max_size=200, unique=True), separators)
def test_formatted_integer_lists_parse_back(values, sep):
    assert steps(sep.join(str(v) for v in values)) == values


hundredths = st.integers(-100_000, 100_000).map(lambda n: Decimal(n) / 100)


@given(hundredths, hundredths, st.integers(1, 10_000).map(lambda n: Decimal(n) / 100))
def test_step_ranges_are_sorted_in_bounds_with_the_expected_count(a, b, step):
    lo, hi = min(a, b), max(a, b)
    expected = math.floor((hi - lo) / step) + 1
    assume(expected <= 200)
    values = strength(f"{lo}-{hi} (+{step})")
    assert len(values) == expected
    assert values == sorted(values)
    assert float(lo) <= values[0] and values[-1] <= float(hi)


@given(hundredths, hundredths, st.integers(1, 10_000).map(lambda n: Decimal(n) / 100))
def test_descending_ranges_mirror_ascending_ones(a, b, step):
    lo, hi = min(a, b), max(a, b)
    assume(math.floor((hi - lo) / step) + 1 <= 200)
    assert strength(f"{hi}-{lo} (+{step})")[0] == float(hi)


def assert_parsed_or_refused_by_name(text, *, integer):
    """Any text gives finite values of the axis' type, or an InvalidInput naming the axis."""
    try:
        values = parse_number_axis(text, name="steps", integer=integer)
    except InvalidInput as exc:
        assert str(exc).startswith("steps"), exc
        return
    assert 1 <= len(values) <= MAX_VALUES_PER_AXIS
    assert all(math.isfinite(v) and isinstance(v, int if integer else float) for v in values)


@given(st.text(max_size=60))
def test_arbitrary_text_gives_values_or_an_error_naming_the_axis(text):
    assert_parsed_or_refused_by_name(text, integer=False)


@given(st.text(alphabet="0123456789.-+eE,()[] \n", max_size=40))
def test_number_like_text_gives_values_or_an_error_naming_the_axis(text):
    for integer in (False, True):
        assert_parsed_or_refused_by_name(text, integer=integer)


# --- prompts ------------------------------------------------------------------------------


def test_prompt_variants_one_per_line_blanks_stripped():
    assert parse_prompt_variants("  a cat \n\n a dog\n") == ["a cat", "a dog"]


def test_empty_prompt_is_refused():
    with pytest.raises(InvalidInput, match="The prompt is empty"):
        parse_prompt_variants(" \n ")


def test_overlong_prompt_is_refused_with_its_length():
    with pytest.raises(InvalidInput, match="has 2,001 characters; the limit is 2,000"):
        parse_prompt_variants("x" * 2001)


def test_prompt_sr_first_item_keeps_the_prompt():
    assert apply_prompt_sr("a cat in snow", "cat, dog, fox") == ["a cat in snow", "a dog in snow", "a fox in snow"]


def test_prompt_sr_quoted_item_keeps_its_comma():
    assert apply_prompt_sr("a cat", 'cat, "dog, wet"')[1] == "a dog, wet"


def test_prompt_sr_missing_term_names_term_and_prompt():
    with pytest.raises(InvalidInput, match="search term 'horse' does not occur in the prompt 'a cat'"):
        apply_prompt_sr("a cat", "horse, cow")


def test_blank_prompt_sr_gives_the_prompt():
    assert apply_prompt_sr("a cat", "  ") == ["a cat"]


def test_prompt_variants_are_labelled_p1_p2():
    assert [v.label for v in prompt_variants("a cat\na dog")] == ["P1", "P2"]


def test_prompt_sr_variants_are_labelled_by_replacement():
    assert prompt_variants("a cat", "cat, dog") == (PromptVariant("a cat", "cat"), PromptVariant("a dog", "dog"))


def test_prompt_sr_on_several_lines_labels_line_and_replacement():
    assert [v.label for v in prompt_variants("a cat\nthe cat", "cat, dog")] == ["P1: cat", "P1: dog", "P2: cat", "P2: dog"]


# --- seeds --------------------------------------------------------------------------------


def test_random_seed_is_drawn_from_rng():
    assert resolve_seeds([-1], random.Random(7)) == [random.Random(7).randrange(2**32)]


def test_fixed_seeds_are_kept():
    assert resolve_seeds([0, 42, 2**32 - 1], random.Random(0)) == [0, 42, 2**32 - 1]


@pytest.mark.parametrize("seed", [-2, 2**32, 1.5, True])
def test_out_of_range_seed_is_refused(seed):
    with pytest.raises(InvalidInput, match="use a whole number from 0 to 4,294,967,295, or -1"):
        resolve_seeds([seed], random.Random(0))


# --- grid expansion -----------------------------------------------------------------------


def spec(**changes):
    axes = changes.pop("axes", None)
    role = {"seed": "seed", "guidance": "guidance_scale", "steps": "num_inference_steps",
            "strength": "prompt_strength"}
    values = {"seed": (42,), "guidance": (7.5,), "steps": (25, 30), "strength": (0.2, 0.35, 0.5)}
    values.update({k: changes.pop(k) for k in list(changes) if k in values})
    fields = dict(
        model_version=SDXL,
        images=(GridImage("img-a", "a" * 64), GridImage("img-b", "b" * 64)),
        prompts=(PromptVariant("a portrait", "P1"),),
        axes=axes if axes is not None else tuple(
            AxisSpec(name, values[name], role[name]) for name in ("seed", "guidance", "steps", "strength")),
        negative_prompt="blurry",
        fixed={"width": 1024, "height": 1024, "scheduler": "K_EULER"},
    )
    return GridSpec(**{**fields, **changes})


def expand(grid, max_cells=2000):
    return expand_grid(grid, roles=SDXL_ROLES, max_cells=max_cells, openapi_schema=SDXL_SCHEMA)


def test_count_cells_is_the_product_of_axis_sizes():
    assert count_cells(spec()) == 12


def test_count_cells_with_an_empty_axis_is_zero():
    assert count_cells(spec(images=())) == 0


def test_expand_grid_gives_one_cell_per_combination():
    assert len(expand(spec())) == count_cells(spec())


def test_expand_grid_varies_strength_fastest_then_steps_then_image():
    order = [(c.image_id, c.steps, c.strength) for c in expand(spec())][:7]
    assert order == [
        ("img-a", 25, 0.2), ("img-a", 25, 0.35), ("img-a", 25, 0.5),
        ("img-a", 30, 0.2), ("img-a", 30, 0.35), ("img-a", 30, 0.5),
        ("img-b", 25, 0.2),
    ]


def test_cell_model_input_uses_the_models_names_and_has_no_image():
    assert expand(spec())[0].model_input == {
        "prompt": "a portrait", "negative_prompt": "blurry", "prompt_strength": 0.2,
        "num_inference_steps": 25, "guidance_scale": 7.5, "seed": 42,
        "width": 1024, "height": 1024, "scheduler": "K_EULER",
    }


def test_nothing_the_grid_does_not_set_is_sent():
    cell = expand(spec(axes=(), negative_prompt="", fixed={}))[0]
    assert cell.model_input == {"prompt": "a portrait"}


def test_cells_record_the_schema_default_for_a_role_that_is_not_sent():
    cell = expand(spec(axes=(), fixed={}))[0]
    assert (cell.steps, cell.guidance, cell.strength, cell.seed) == (50, 7.5, 0.8, None)


def test_any_input_can_be_an_axis():
    cells = expand(spec(axes=(AxisSpec("scheduler", ("K_EULER", "DDIM"), "scheduler"),), fixed={}))
    assert [(c.values, c.model_input["scheduler"]) for c in cells[:2]] == [
        ({"scheduler": "K_EULER"}, "K_EULER"), ({"scheduler": "DDIM"}, "DDIM")]


def test_cell_carries_resolved_parameters():
    cell = expand(spec())[0]
    assert (cell.index, cell.image_sha256, cell.prompt_label, cell.negative_prompt, cell.seed) == (
        0, "a" * 64, "P1", "blurry", 42
    )


def test_cell_request_hash_covers_version_image_and_input():
    cell: CellSpec = expand(spec())[0]
    assert cell.request_hash == request_hash(SDXL, "a" * 64, cell.model_input)


def test_every_cell_has_a_distinct_request_hash():
    assert len({c.request_hash for c in expand(spec())}) == 12


def test_over_max_cells_is_refused_with_the_count_and_limit():
    grid = spec(strength=tuple(i / 100 for i in range(81)), seed=tuple(range(15)), steps=(30,))
    with pytest.raises(InvalidInput) as info:
        expand(grid)
    assert str(info.value).startswith(
        "This grid has 2,430 cells (2 image × 1 prompt × 15 seed × 1 guidance × 1 steps"
        " × 81 strength); the limit is 2,000. Remove values from an axis"
    )


def test_empty_axis_is_named():
    with pytest.raises(InvalidInput, match="give at least one value for image"):
        expand(spec(images=()))


def test_schema_problems_are_reported_once_each():
    with pytest.raises(InvalidInput) as info:
        expand(spec(strength=(0.5, 1.3), steps=(30, 600)))
    assert str(info.value).splitlines() == [
        "The model does not accept some values in this grid:",
        "- prompt_strength 1.3 is above the model's maximum 1 (allowed 0 to 1)",
        "- num_inference_steps 600 is above the model's maximum 500 (allowed 1 to 500)",
    ]


def test_bad_fixed_param_is_reported():
    with pytest.raises(InvalidInput, match="scheduler 'EULER' is not one of the model's choices"):
        expand(spec(fixed={"scheduler": "EULER"}))


def test_fixed_param_clashing_with_an_axis_is_refused():
    with pytest.raises(InvalidInput, match="prompt_strength cannot be a fixed parameter"):
        expand(spec(fixed={"prompt_strength": 0.4}))


def test_empty_prompt_variant_is_refused():
    with pytest.raises(InvalidInput, match="Prompt P2 is empty"):
        expand(spec(prompts=(PromptVariant("a", "P1"), PromptVariant(" ", "P2"))))


def test_overlong_negative_prompt_is_refused():
    with pytest.raises(InvalidInput, match="The negative prompt .* has 2,001 characters"):
        expand(spec(negative_prompt="x" * 2001))


def test_unresolved_random_seed_is_a_programming_error():
    with pytest.raises(ValueError, match="resolve_seeds"):
        expand(spec(seed=(-1,)))


def test_a_list_image_input_is_left_to_the_worker():
    schema = KNOWN_MODELS["bytedance/seedream-4"].openapi_schema
    roles = input_roles(schema)
    cells = expand_grid(spec(axes=(), negative_prompt="", fixed={"size": "1K"}), roles=roles,
                        max_cells=100, openapi_schema=schema)
    assert (roles.image, roles.image_is_list, cells[0].model_input) == (
        "image_input", True, {"prompt": "a portrait", "size": "1K"})


# --- typed axes and values --------------------------------------------------------------------


def test_enum_axis_is_a_comma_list_of_the_models_choices():
    prop = {"type": "string", "enum": ["1:1", "16:9"]}
    assert parse_axis("aspect_ratio", "1:1, 16:9", prop) == ["1:1", "16:9"]
    with pytest.raises(InvalidInput, match="'4:3' is not one of the model's choices: 1:1, 16:9"):
        parse_axis("aspect_ratio", "4:3", prop)


def test_number_axis_takes_the_range_syntax():
    assert parse_axis("guidance", "2-4 [3]", {"type": "number"}) == [2.0, 3.0, 4.0]


def test_boolean_axis_and_values():
    assert parse_axis("go_fast", "true, false", {"type": "boolean"}) == [True, False]
    with pytest.raises(InvalidInput, match="'maybe' is not true or false"):
        parse_value("go_fast", "maybe", {"type": "boolean"})


def test_string_axis_is_one_value_per_line_when_values_have_commas():
    assert parse_axis("style", "a, b\nc", {"type": "string"}) == ["a, b", "c"]


def test_fixed_integer_value_is_typed():
    assert parse_value("width", "768", {"type": "integer"}) == 768


# --- request hashes -----------------------------------------------------------------------

INPUT = {"prompt": "a", "prompt_strength": 0.3, "num_inference_steps": 30, "seed": 1}


def test_request_hash_is_a_sha256_hex_digest():
    assert len(request_hash(SDXL, "a" * 64, INPUT)) == 64


def test_request_hash_ignores_key_order():
    assert request_hash(SDXL, "x", INPUT) == request_hash(SDXL, "x", dict(reversed(INPUT.items())))


def test_request_hash_normalises_float_noise():
    noisy = {**INPUT, "prompt_strength": 0.1 + 0.2}
    assert request_hash(SDXL, "x", noisy) == request_hash(SDXL, "x", INPUT)


def test_request_hash_treats_integral_float_as_int():
    assert request_hash(SDXL, "x", {**INPUT, "num_inference_steps": 30.0}) == request_hash(SDXL, "x", INPUT)


def test_request_hash_accepts_bare_version_id():
    assert request_hash(SDXL.split(":")[1], "x", INPUT) == request_hash(SDXL, "x", INPUT)


@pytest.mark.parametrize(
    ("version", "image", "change"),
    [
        ("stability-ai/sdxl:" + "0" * 64, "x", {}),
        (SDXL, "y", {}),
        (SDXL, None, {}),
        (SDXL, "x", {"seed": 2}),
        (SDXL, "x", {"prompt_strength": 0.31}),
    ],
)
def test_request_hash_changes_with_version_image_or_parameters(version, image, change):
    assert request_hash(version, image, {**INPUT, **change}) != request_hash(SDXL, "x", INPUT)


def test_request_hash_refuses_nan():
    with pytest.raises(ValueError, match="nan"):
        request_hash(SDXL, "x", {"guidance_scale": float("nan")})


def test_nan_in_an_axis_is_a_schema_problem_not_a_hashing_crash():
    with pytest.raises(InvalidInput, match="prompt_strength nan is not a number"):
        expand(spec(strength=(float("nan"),)))

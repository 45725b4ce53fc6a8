import pytest

from core.errors import InvalidInput
from core.planning.known_models import KNOWN_MODELS, SDXL_REF
from core.planning.pricing import (
    Estimate,
    MissingPrice,
    max_cost,
    expected_cost,
    Pricing,
    cost_of,
    estimate_sweep,
    format_usd,
)

PER_IMAGE = Pricing.per_image(0.003)
_SDXL = KNOWN_MODELS[SDXL_REF].price
DEFAULT_PRICING = Pricing.per_second(_SDXL.hardware, _SDXL.usd)


def test_sdxl_is_priced_per_second_on_a40_large_with_a_date():
    assert (_SDXL.kind, _SDXL.hardware, _SDXL.usd, _SDXL.as_of) == (
        "per_second", "Nvidia A40 (Large) GPU", 0.000725, "2026-11-24"
    )


def test_per_megapixel_rounds_each_output_and_each_input_up():
    # 2 outputs of 1.2 MP → 2 × 2 MP; one 0.3 MP input → 1 MP: 4 × 0.015 + 1 × 0.01
    pricing = Pricing.per_megapixel(0.015, usd_per_input_megapixel=0.01)
    assert cost_of(pricing, 3.0, 2, output_megapixels=[1.2, 1.2],
                   input_megapixels=[0.3]) == pytest.approx(0.07)


def test_per_megapixel_bills_nothing_without_outputs():
    assert cost_of(Pricing.per_megapixel(0.015, 0.015), 3.0, 0, input_megapixels=[1.0]) == 0.0


def test_per_run_bills_a_prediction_that_ran_once():
    assert cost_of(Pricing.per_run(0.05), 12.0, 3) == 0.05
    assert cost_of(Pricing.per_run(0.05), None, 0) == 0.0  # aborted: never ran


def test_expected_cost_counts_the_outputs_the_input_asks_for():
    assert expected_cost(Pricing.per_image(0.025), {"num_outputs": 3},
                         expected_predict_time_s=4.0) == pytest.approx(0.075)


def test_expected_megapixels_follow_width_and_height():
    cost = expected_cost(Pricing.per_megapixel(0.01), {"width": 2048, "height": 1024},
                         expected_predict_time_s=4.0)
    assert cost == pytest.approx(0.03)  # 2.1 MP → 3 MP


def test_max_cost_per_second_is_the_whole_cancel_after_deadline():
    assert max_cost(DEFAULT_PRICING, {}, 300) == pytest.approx(300 * 0.000725)


def test_max_cost_per_image_is_every_output_allowed():
    assert max_cost(Pricing.per_image(0.03), {"max_images": 4}, 300) == pytest.approx(0.12)


def test_a_model_without_a_price_is_refused_with_how_to_set_one():
    class Unpriced:
        ref, pricing_kind = "someone/new-model", None

    with pytest.raises(MissingPrice, match="someone/new-model has no price yet: set one"):
        Pricing.of(Unpriced())


@pytest.mark.parametrize("kwargs", [dict(kind="per_token", usd_per_run=1.0),
                                    dict(kind="per_image"),
                                    dict(kind="per_image", usd_per_image=-1.0)])
def test_bad_prices_are_refused(kwargs):
    with pytest.raises(InvalidInput):
        Pricing(**kwargs)


def test_per_second_cost_is_rate_times_predict_time():
    assert cost_of(DEFAULT_PRICING, 10.0, 1) == pytest.approx(0.00725)


def test_per_second_cost_ignores_output_count():
    """A failed or canceled prediction has no outputs but is billed for its time."""
    assert cost_of(DEFAULT_PRICING, 4.0, 0) == pytest.approx(0.0029)


def test_per_second_cost_without_predict_time_is_zero():
    assert cost_of(DEFAULT_PRICING, None, 0) == 0.0


def test_per_image_cost_is_rate_times_outputs():
    assert cost_of(PER_IMAGE, 3.2, 4) == pytest.approx(0.012)


def test_per_image_cost_without_outputs_is_zero():
    assert cost_of(PER_IMAGE, 3.2, 0) == 0.0


def test_negative_predict_time_is_refused():
    with pytest.raises(ValueError, match="predict_time_s -1"):
        cost_of(DEFAULT_PRICING, -1.0, 1)


def test_pricing_without_its_rate_is_refused():
    with pytest.raises(InvalidInput, match="per output image needs usd_per_image"):
        Pricing(kind="per_image", usd_per_second=0.001)


def test_pricing_with_unknown_kind_is_refused():
    with pytest.raises(InvalidInput, match="'monthly' is not one of per_second, per_image"):
        Pricing(kind="monthly", usd_per_second=1.0)  # type: ignore[arg-type]


def test_estimate_cost_is_cells_times_cost_per_cell():
    assert estimate_sweep(DEFAULT_PRICING, 100, 4.0, 32, 600).cost_usd == pytest.approx(0.29)


def test_estimate_duration_is_waves_when_inflight_cap_limits():
    # 100 cells, 10 at a time → 10 waves of 20 s; creates take only 9.9 s + 20 s.
    assert estimate_sweep(DEFAULT_PRICING, 100, 20.0, 10, 600).duration_s == pytest.approx(200.0)


def test_estimate_duration_is_create_pacing_when_rate_limits():
    # 61 creates at 60/min take 60 s, and the last one then runs 2 s.
    assert estimate_sweep(DEFAULT_PRICING, 61, 2.0, 1000, 60).duration_s == pytest.approx(62.0)


def test_estimate_for_no_cells_is_zero():
    assert estimate_sweep(DEFAULT_PRICING, 0, 4.0, 32, 600) == Estimate(cost_usd=0.0, duration_s=0.0)


def test_estimate_per_image_counts_outputs_per_cell():
    assert estimate_sweep(PER_IMAGE, 10, 4.0, 32, 600, outputs_per_cell=2).cost_usd == pytest.approx(0.06)


def test_estimate_refuses_zero_inflight_cap():
    with pytest.raises(ValueError, match="inflight_cap"):
        estimate_sweep(DEFAULT_PRICING, 10, 4.0, 0, 600)


@pytest.mark.parametrize(
    ("amount", "text"),
    [
        (12.344, "$12.34"),
        (1234.5, "$1,234.50"),
        (0.0123, "$0.0123"),
        (0.99996, "$1.00"),
        (0.00001, "<$0.0001"),
        (0, "$0.00"),
        (-2.5, "-$2.50"),
    ],
)
def test_format_usd(amount, text):
    assert format_usd(amount) == text


def test_estimate_duration_counts_the_time_a_cell_holds_its_slot_besides_predicting():
    # 100 cells, 10 at a time → 10 waves of 4 s predicting + 1 s queue and storing.
    estimate = estimate_sweep(DEFAULT_PRICING, 100, 4.0, 10, 600, per_cell_overhead_s=1.0)
    assert estimate.duration_s == pytest.approx(50.0)
    assert estimate.cost_usd == pytest.approx(100 * 4.0 * 0.000725)  # overhead is not billed

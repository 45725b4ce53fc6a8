import pytest

from core.planning.pricing import (
    DEFAULT_PRICING,
    Estimate,
    Pricing,
    cost_of,
    estimate_sweep,
    format_usd,
)

PER_IMAGE = Pricing.per_image(0.003)


def test_default_pricing_is_sdxl_on_a40_large():
    assert (DEFAULT_PRICING.kind, DEFAULT_PRICING.hardware, DEFAULT_PRICING.usd_per_second) == (
        "per_second", "Nvidia A40 (Large) GPU", 0.000725
    )


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
    with pytest.raises(ValueError, match="per_image pricing needs a rate"):
        Pricing(kind="per_image", usd_per_second=0.001)


def test_pricing_with_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="'monthly' is not per_second or per_image"):
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

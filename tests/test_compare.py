"""Two sweeps paired on the common slice, with differences computed by hand."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from core.data.models import OutputMetrics, Review
from core.errors import InvalidInput
from core.insight.compare import compare_sweeps
from core.insight.evidence import load_cells
from tests.factories import make_generation, make_image, make_model, make_sweep


def cell(session: Session, sweep, image, strength: float, similarity: float,
         rating: int | None = None, **fields):
    gen = make_generation(session, sweep, strength=strength, input_image_id=image.id, **fields)
    session.add(OutputMetrics(generation_id=gen.id, similarity=similarity, phash_distance=2,
                              change=1 - similarity, sharpness=100.0, identity=None,
                              identity_distance=None, face_in_input=False))
    if rating is not None:
        session.add(Review(generation_id=gen.id, reviewer="alice", rating=rating))
    session.flush()
    return gen


def test_two_models_are_paired_on_the_strengths_they_share(db_session: Session):
    photo = make_image(db_session)
    a = make_sweep(db_session, make_model(db_session, "stability-ai/sdxl"))
    b = make_sweep(db_session, make_model(db_session, "black-forest-labs/flux-dev"),
                   model_ref="black-forest-labs/flux-dev")
    cell(db_session, a, photo, 0.3, 0.80, rating=3)
    cell(db_session, a, photo, 0.5, 0.60, rating=2)
    cell(db_session, a, photo, 0.7, 0.40)  # B has no 0.7: outside the common slice
    cell(db_session, b, photo, 0.3, 0.90, rating=5)
    cell(db_session, b, photo, 0.5, 0.65, rating=4)
    result = compare_sweeps(db_session, a.id, b.id)
    assert not result.same_axes and result.common_values["strength"] == [0.3, 0.5]
    assert "model" in result.differing and "strength" in result.matched_on
    assert len(result.pairs) == 2
    # similarity deltas 0.10 and 0.05 → mean 0.075; rating deltas 2 and 2 → 2.
    assert result.summary["similarity"].mean == pytest.approx(0.075)
    assert result.summary["rating_mean"].mean == pytest.approx(2.0)
    assert "2 pairs over 1 input image(s)" in result.message


def test_sweeps_without_a_shared_photo_cannot_be_paired(db_session: Session):
    a, b = make_sweep(db_session), make_sweep(db_session)
    cell(db_session, a, make_image(db_session), 0.3, 0.8)
    cell(db_session, b, make_image(db_session), 0.3, 0.8)
    result = compare_sweeps(db_session, a.id, b.id)
    assert result.pairs.empty and "share no input image" in result.message
    with pytest.raises(InvalidInput, match="two different sweeps"):
        compare_sweeps(db_session, a.id, a.id)


def test_a_reused_output_shows_the_metrics_it_reuses(db_session: Session):
    photo = make_image(db_session)
    first = cell(db_session, make_sweep(db_session), photo, 0.3, 0.77)
    again = make_sweep(db_session)
    reused = make_generation(db_session, again, strength=0.3, input_image_id=photo.id,
                             reused_from_id=first.id)
    cells = load_cells(db_session, sweep_ids=[again.id])
    assert cells.loc[cells["id"] == reused.id, "similarity"].item() == pytest.approx(0.77)

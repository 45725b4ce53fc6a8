"""core.insight.export: a sweep as CSV and JSON, with nothing secret in either."""

from __future__ import annotations

import csv
import io
import json

import pytest

from core.errors import InvalidInput, NotFound
from core.insight.export import export_filename, export_sweep
from core.data.models import GenerationState
from core.planning.sweeps import cell_record
from tests.factories import at, make_generation, make_scenario, make_sweep

TOKEN = "r8_AbCdEf0123456789AbCdEf0123456789abcd"


@pytest.fixture
def sweep(db_session):  # noqa: ANN001, ANN201, F811
    scenario = make_scenario(db_session, "projection-level-1")
    sweep = make_sweep(db_session, scenario=scenario, created_by="alice", name="strength scan",
                       created_at=at(2026, 1, 10, 8), budget_usd=2.0, estimated_cost_usd=0.05,
                       fixed_params={"negative_prompt": "blurry", "api_token": TOKEN})
    make_generation(db_session, sweep, cell_index=0, strength=0.3, cost_usd=0.01,
                    prompt='portrait, "studio", naïve', latency_s=12.5)
    make_generation(db_session, sweep, cell_index=1, strength=0.6, cost_usd=0.002,
                    state=GenerationState.FAILED, error=f"401 Unauthorized for token {TOKEN}")
    return db_session, sweep


def test_csv_has_one_row_per_cell(sweep):  # noqa: ANN001
    session, s = sweep
    rows = list(csv.DictReader(io.StringIO(export_sweep(session, s.id, "csv").decode("utf-8"))))
    assert [r["strength"] for r in rows] == ["0.3", "0.6"]
    assert rows[0]["prompt"] == 'portrait, "studio", naïve'
    assert rows[0]["sweep_id"] == str(s.id) and rows[0]["status"] == "succeeded"
    assert rows[1]["error"] == "401 Unauthorized for token r8_…(masked)"
    assert list(rows[0]) == ["sweep_id", *cell_record(s.generations[0])]


def test_json_has_the_sweep_and_its_cells(sweep):  # noqa: ANN001
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


def test_no_secret_anywhere(sweep):  # noqa: ANN001
    session, s = sweep
    for fmt in ("csv", "json"):
        body = export_sweep(session, s.id, fmt).decode("utf-8")
        assert TOKEN not in body and "api_token" not in body


def test_empty_sweep_and_bad_requests(db_session):  # noqa: ANN001, F811
    empty = make_sweep(db_session)
    header = export_sweep(db_session, empty.id, "csv").decode("utf-8").splitlines()
    assert header[0].startswith("sweep_id,id,status,strength") and len(header) == 1
    assert json.loads(export_sweep(db_session, empty.id, "json"))["cells"] == []
    with pytest.raises(InvalidInput, match="'xml'"):
        export_sweep(db_session, empty.id, "xml")
    with pytest.raises(NotFound, match="Sweep 9999"):
        export_sweep(db_session, 9999, "csv")
    assert export_filename(12, "csv") == "sweep-12.csv"

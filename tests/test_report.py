"""``python -m core report SWEEP_ID --json`` over a real database: every key the issue names,
with values computed by hand from the rows the test wrote."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from sqlalchemy.orm import Session

from core.data.db import create_db_engine, session_scope
from core.data.models import OutputMetrics, Review
from core.insight.report import sweep_report
from tests.factories import at, make_generation, make_image, make_sweep
from tests.services import PROJECT_ROOT


def seed(session: Session) -> tuple[int, dict[str, int]]:
    """Two strengths × two images; two reviewers; metrics on every output."""
    sweep = make_sweep(session, axes={"strength": [0.3, 0.6], "steps": [25]},
                       estimated_cost_usd=0.02, estimated_duration_s=30.0,
                       created_at=at(2026, 1, 15, 11, 59, 0))
    images = [make_image(session), make_image(session)]
    ids = {}
    stars = {(0.3, 0): (5, 4), (0.3, 1): (4, 4), (0.6, 0): (2, 3), (0.6, 1): (3, 2)}
    for (strength, i), (alice, bob) in stars.items():
        gen = make_generation(session, sweep, strength=strength, input_image_id=images[i].id,
                              cost_usd=0.004, completed_at=at(2026, 1, 15, 12, 0, 10 * i))
        ids[f"{strength}/{i}"] = gen.id
        session.add(OutputMetrics(generation_id=gen.id, similarity=1 - strength,
                                  phash_distance=int(strength * 20), change=strength / 2,
                                  sharpness=100.0 + i, identity=None, identity_distance=None,
                                  face_in_input=False))
        session.add_all([Review(generation_id=gen.id, reviewer="alice", rating=alice),
                         Review(generation_id=gen.id, reviewer="bob", rating=bob)])
    session.flush()
    return sweep.id, ids


def test_report_has_every_figure_the_issue_names(db_session: Session):
    sweep_id, ids = seed(db_session)
    report = sweep_report(db_session, sweep_id)

    cell = next(c for c in report["cells"] if c["id"] == ids["0.3/0"])
    assert cell["strength"] == 0.3 and cell["steps"] == 25
    assert cell["metrics"]["similarity"] == pytest.approx(0.7)
    assert set(cell["metrics"]) == {"similarity", "change", "sharpness", "phash_distance"}
    assert cell["rating"] == {"n": 2, "mean": 4.5}

    # strength 0.3: ratings 5, 4, 4, 4 over 2 images → t interval (fewer than 5 images):
    # mean 4.25, s = 0.5, t(0.975, 3) = 3.182446, half = 3.182446 · 0.5 / 2 = 0.795612.
    low = report["by_parameter"]["strength"]["0.3"]
    assert low["n"] == 4 and low["mean"] == pytest.approx(4.25)
    assert low["method"] == "t"
    assert low["ci_low"] == pytest.approx(4.25 - 0.795612, abs=1e-5)
    assert low["ci_high"] == pytest.approx(4.25 + 0.795612, abs=1e-5)
    assert report["by_parameter"]["strength"]["0.6"]["mean"] == pytest.approx(2.5)
    similarity = report["metrics_by_parameter"]["strength"]["0.6"]["similarity"]
    assert similarity["mean"] == pytest.approx(0.4) and similarity["n"] == 2

    rec = report["recommendation"]
    assert rec["parameters"] == {"strength": 0.3} and rec["n"] == 4
    assert rec["runner_up"]["strength"] == 0.6 and rec["runner_up"]["mean"] == pytest.approx(2.5)
    assert {"ci_low", "ci_high", "message"} <= set(rec)

    assert report["estimate"] == {"cost_usd": 0.02, "duration_s": 30.0}
    assert report["actual"]["cost_usd"] == pytest.approx(0.016)
    assert report["actual"]["duration_s"] == pytest.approx(70.0)  # 11:59:00 → 12:00:10
    assert report["agreement"]["n_reviewers"] == 2 and report["agreement"]["n_items"] == 4


def test_a_sweep_without_ratings_still_reports_metrics_and_estimates(db_session: Session):
    sweep = make_sweep(db_session, estimated_cost_usd=0.01, estimated_duration_s=12.0)
    gen = make_generation(db_session, sweep, input_image_id=make_image(db_session).id)
    db_session.add(OutputMetrics(generation_id=gen.id, similarity=0.8, phash_distance=3,
                                 change=0.1, sharpness=90.0, identity=0.7,
                                 identity_distance=0.3, face_in_input=True))
    db_session.flush()
    report = sweep_report(db_session, sweep.id)
    assert report["cells"][0]["metrics"]["identity"] == pytest.approx(0.7)
    assert report["cells"][0]["rating"] == {"n": 0, "mean": None}
    assert report["by_parameter"]["strength"] == {}
    assert report["recommendation"]["message"].startswith("Too few ratings to recommend: 0")
    assert report["estimate"]["duration_s"] == 12.0 and report["agreement"] is None


def test_the_command_prints_the_report_as_json_and_names_a_missing_sweep(sqlite_url, tmp_path):
    from core.data.db import upgrade

    upgrade(sqlite_url)
    engine = create_db_engine(sqlite_url)
    with session_scope(engine) as session:
        sweep_id, _ = seed(session)
    engine.dispose()
    env = {"DATABASE_URL": sqlite_url, "MEDIA_URL": f"file://{tmp_path / 'media'}",
           "PATH": "/usr/bin:/bin", "TUNER_RUN_DIR": str(tmp_path / "run")}
    command = [sys.executable, "-m", "core", "report"]
    result = subprocess.run([*command, str(sweep_id), "--json", "--min-similarity", "0.9"],
                            env=env, cwd=PROJECT_ROOT, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["recommendation"]["message"].startswith("No setting has similarity ≥ 0.9")
    assert report["recommendation"]["parameters"] is None and report["recommendation"]["n"] is None
    text = subprocess.run([*command, str(sweep_id)], env=env, cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=120)
    assert text.returncode == 0, text.stderr
    assert "strength=0.3: n=4 mean=4.25 [3.45, 5.05] (t)" in text.stdout
    assert "Estimate: $0.0200, 30 s; actual: $0.0160, 70 s" in text.stdout
    missing = subprocess.run([*command, "999", "--json"], env=env, cwd=PROJECT_ROOT,
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and "Sweep 999 does not exist" in missing.stderr

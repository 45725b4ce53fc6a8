"""A gate end to end on the emulator over HTTP, through the CLI: real RQ workers run both
versions' sweeps, metrics are measured on store, and a candidate with a much higher strength
loses similarity, which the verdict names. A second gate reuses production's outputs."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys

import httpx
import numpy as np
from PIL import Image
from sqlalchemy import select

from core.config import Settings
from core.data.db import session_scope
from core.data.library import add_image
from core.data.models import Generation
from core.runtime import open_runtime
from core.scenarios import gate, testsets
from tests.factories import make_production_scenario


def photo(seed: int) -> bytes:
    """A smooth photo-like gradient with some texture (SSIM of pure noise says little)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:192, 0:192] / 192.0
    base = np.stack([x, y, (x + y) / 2], axis=-1) * 200 + rng.normal(0, 8, (192, 192, 3))
    buffer = io.BytesIO()
    Image.fromarray(np.clip(base, 0, 255).astype("uint8")).save(buffer, format="PNG")
    return buffer.getvalue()


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "core", *args], env=env, capture_output=True,
                          text=True, timeout=300)


def creates(emulator) -> int:
    return httpx.get(f"{emulator.base_url}/_emulator/stats").json()["creates_total"]


def test_a_much_stronger_candidate_fails_the_gate_on_similarity(tuner_env, emulator, tmp_path):
    runtime = open_runtime(Settings())
    with session_scope(runtime.engine) as session:
        ids = [add_image(session, runtime.store, runtime.settings, photo(n), filename=f"p{n}.png",
                         uploaded_by="tester").id for n in (1, 2)]
        make_production_scenario(session, strength=0.3, candidate_strength=0.95, steps=20)
        testsets.create_test_set(session, "two-photos", ids, actor="alice",
                                 notes={ids[1]: "low light"})

    ran = cli(tuner_env, "gate", "run", "projection-level-1", "--candidate", "4", "--set",
              "two-photos", "--seeds", "2", "--wait", "--json")
    assert ran.returncode == 0, ran.stderr
    started = json.loads(ran.stdout)
    run_id = started["gate_run_id"]
    assert (started["cells"], started["reused"], creates(emulator)) == (8, 0, 8)

    # every pair judged: the candidate even wins them all, and still fails on similarity
    with session_scope(runtime.engine) as session:
        run = gate.gate_run(session, run_id)
        for pair_id in gate.upcoming_pairs(session, run_id, "carol", limit=10):
            gate.judge(session, pair_id, "carol", gate.candidate_side(run, pair_id, "carol"))

    report = cli(tuner_env, "gate", "report", str(run_id), "--json")
    assert report.returncode == 0, report.stderr
    data = json.loads(report.stdout)
    similarity = data["metric_deltas"]["similarity"]
    assert similarity["candidate_mean"] < similarity["production_mean"] - 0.1
    assert similarity["delta_ci_high"] < 0 and similarity["n"] == 4
    assert data["win_rate"]["estimate"] == 1.0 and data["win_rate"]["n"] == 4
    assert data["verdict"]["status"] == "fail" and not data["verdict"]["passed"]
    assert any(r.startswith("similarity: similarity fell by") for r in data["verdict"]["reasons"])
    assert [p["note"] for p in data["per_photo"]] == ["", "low light"]
    assert all(p["metric_deltas"]["similarity"]["delta_estimate"] < 0 for p in data["per_photo"])
    assert data["endpoint"] == "emulator" and data["reviewers"]["carol"]["judgments"] == 4

    # the HTML report stands alone: every image inline, the numbers and the reviewer in it
    out = tmp_path / "gate.html"
    assert cli(tuner_env, "gate", "report", str(run_id), "--html", str(out)).returncode == 0
    page = out.read_text()
    assert len(re.findall(r'src="data:image/jpeg;base64,', page)) == 2 + 8  # 2 photos, 8 outputs
    assert not re.search(r'src="(?!data:)', page) and "carol" in page and "FAIL" in page

    # the same gate again: production's outputs (and the candidate's) are identical requests
    again = json.loads(cli(tuner_env, "gate", "run", "projection-level-1", "--candidate", "4",
                           "--set", "two-photos", "--seeds", "2", "--json").stdout)
    assert again["reused"] == 8 and creates(emulator) == 8
    with session_scope(runtime.engine) as session:
        second = gate.gate_run(session, again["gate_run_id"])
        reused = session.scalars(select(Generation.reused_from_id).where(
            Generation.sweep_id == second.production_sweep_id)).all()
        assert all(reused)
    from core.scenarios.verdict import gate_result

    with session_scope(runtime.engine) as session:  # reused outputs keep their metrics
        assert gate_result(session, again["gate_run_id"]).metrics["similarity"].delta.n == 4


def test_bad_gate_requests_print_one_clear_line(tuner_env):
    ran = cli(tuner_env, "gate", "run", "nope", "--candidate", "2", "--set", "x")
    assert ran.returncode == 2 and ran.stderr.strip() == "error: Scenario 'nope' does not exist."
    missing = cli(tuner_env, "gate", "report", "999")
    assert missing.returncode == 2 and "Gate run 999 does not exist" in missing.stderr
    rules = cli(tuner_env, "gate", "set", "create", "s", "--image-id", "1", "--note", "oops")
    assert rules.returncode == 2 and "IMAGE_ID=text" in rules.stderr

"""The command line: errors are one clear line with a non-zero exit, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.services import PROJECT_ROOT, free_port
from tests.test_execution import png_bytes


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "core", *args], env=env, cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=120)


def test_a_bad_axis_is_refused_with_the_value_named(tuner_env, tmp_path):
    image = tmp_path / "face.png"
    image.write_bytes(png_bytes())
    result = run(["sweep", "run", "--image", str(image), "--strength", "0.3, 1.7", "--steps",
                  "20", "--prompt", "a portrait"], tuner_env)
    assert result.returncode == 2
    assert "1.7" in result.stderr and "Traceback" not in result.stderr


def test_a_missing_image_file_is_named(tuner_env, tmp_path):
    result = run(["sweep", "run", "--image", str(tmp_path / "nope.png"), "--strength", "0.3",
                  "--steps", "20", "--prompt", "a portrait"], tuner_env)
    assert result.returncode == 2 and "nope.png" in result.stderr


def test_redis_down_at_submission_keeps_the_sweep(tuner_env, tmp_path):
    image = tmp_path / "face.png"
    image.write_bytes(png_bytes())
    env = {**tuner_env, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    result = run(["sweep", "run", "--image", str(image), "--strength", "0.3", "--steps", "20",
                  "--prompt", "a portrait"], env)
    assert result.returncode == 3 and "is saved" in result.stderr
    status = run(["sweep", "status", "1", "--json"], env)
    assert json.loads(status.stdout)["by_state"] == {"pending": 1}
    cancel = run(["sweep", "cancel", "1"], env)  # works on the database alone
    assert cancel.returncode == 0, cancel.stderr
    status = run(["sweep", "status", "1", "--json"], env)
    assert json.loads(status.stdout)["by_state"] == {"canceled": 1}
    retry = run(["sweep", "retry", "1"], env)
    assert retry.returncode == 2 and "Redis does not answer" in retry.stderr


def test_unknown_sweep_is_a_message(tuner_env):
    result = run(["sweep", "status", "999"], tuner_env)
    assert result.returncode == 2 and "Sweep 999 does not exist" in result.stderr

"""The command line: errors are one clear line with a non-zero exit, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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
    assert result.returncode == 3 and "saved" in result.stderr and "queued when Redis is back" in result.stderr
    status = run(["sweep", "status", "1", "--json"], env)
    assert json.loads(status.stdout)["by_state"] == {"pending": 1}
    cancel = run(["sweep", "cancel", "1"], env)  # works on the database alone
    assert cancel.returncode == 0, cancel.stderr
    status = run(["sweep", "status", "1", "--json"], env)
    assert json.loads(status.stdout)["by_state"] == {"canceled": 1}
    retry = run(["sweep", "retry", "1"], env)  # failed cells only: there are none
    assert retry.returncode == 2 and "no failed cells" in retry.stderr and "resume" in retry.stderr
    resume = run(["sweep", "resume", "1", "--json"], env)
    assert resume.returncode == 3 and "queued when Redis is back" in resume.stderr
    assert json.loads(resume.stdout)["cells"] == 1
    status = run(["sweep", "status", "1", "--json"], env)
    assert json.loads(status.stdout)["cell_counts"]["pending"] == 1  # saved, waiting for Redis


def test_unknown_sweep_is_a_message(tuner_env):
    result = run(["sweep", "status", "999"], tuner_env)
    assert result.returncode == 2 and "Sweep 999 does not exist" in result.stderr


def portrait(tmp_path) -> str:
    image = tmp_path / "face.png"
    image.write_bytes(png_bytes())
    return str(image)


def test_sweep_run_obeys_the_limits_saved_like_the_settings_page(tuner_env, tmp_path):
    saved = run(["settings", "set", "max_cells_per_sweep", "2", "--json"], tuner_env)
    assert saved.returncode == 0, saved.stderr
    assert json.loads(saved.stdout) == {"name": "max_cells_per_sweep", "value": 2,
                                        "source": "stored"}
    result = run(["sweep", "run", "--image", portrait(tmp_path), "--strength", "0.3, 0.5, 0.7",
                  "--steps", "20, 30", "--prompt", "a portrait"], tuner_env)
    assert result.returncode == 2 and "6" in result.stderr and "2" in result.stderr
    assert "Traceback" not in result.stderr
    shown = json.loads(run(["settings", "show", "--json"], tuner_env).stdout)
    row = next(r for r in shown if r["name"] == "max_cells_per_sweep")
    assert (row["value"], row["source"], row["environment_value"]) == (2, "stored", 2000)
    assert next(r for r in shown if r["name"] == "database_url")["editable"] is False


def test_settings_set_validates_as_the_page_does_and_is_audited(tuner_env):
    bad = run(["settings", "set", "max_cells_per_sweep", "0"], tuner_env)
    assert bad.returncode == 2 and "max_cells_per_sweep" in bad.stderr
    assert "greater than or equal to 1" in bad.stderr
    env_only = run(["settings", "set", "database_url", "sqlite:///x.db"], tuner_env)
    assert env_only.returncode == 2 and "environment only" in env_only.stderr
    assert run(["settings", "set", "DAILY_BUDGET_USD", "12.5"], tuner_env).returncode == 0
    from sqlalchemy import create_engine, text

    engine = create_engine(tuner_env["DATABASE_URL"])
    with engine.connect() as conn:
        actions = conn.execute(text("SELECT action, detail FROM audit_entry")).all()
    engine.dispose()
    assert [a for a, _ in actions] == ["edit_settings"]
    assert json.loads(actions[0][1]) == {"daily_budget_usd": 12.5}


def test_output_piped_into_head_ends_quietly(tuner_env, tmp_path):
    made = run(["sweep", "run", "--image", portrait(tmp_path), "--strength", "0.1-0.9 [10]",
                "--steps", "20-49 [30]", "--prompt", "a portrait", "--json"], tuner_env)
    assert made.returncode == 0, made.stderr  # 300 pending cells: far more than a pipe holds
    reader = subprocess.Popen([sys.executable, "-m", "core", "sweep", "status", "1", "--json"],
                              env=tuner_env, cwd=PROJECT_ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    assert reader.stdout.readline().strip() == "{"
    reader.stdout.close()  # what `head -1` does after its line
    stderr = reader.stderr.read()
    reader.wait(timeout=60)
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr, stderr
    assert reader.returncode == 141


def test_every_command_takes_json():
    from core.cli import build_parser

    def leaves(parser, path=()):
        subs = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
        if not subs:
            yield path, parser
        for action in subs:
            for name, child in action.choices.items():
                yield from leaves(child, (*path, name))

    found = dict(leaves(build_parser()))
    assert {("sweep", "resume"), ("settings", "set"), ("settings", "show"), ("up",)} <= set(found)
    assert [p for p, parser in found.items() if "--json" not in parser._option_string_actions] == []


def test_cancel_on_a_finished_sweep_says_nothing_changed(tuner_env, tmp_path):
    made = run(["sweep", "run", "--image", portrait(tmp_path), "--strength", "0.3", "--steps",
                "20", "--prompt", "a portrait", "--wait", "--json"], tuner_env)
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["status"] == "succeeded"
    cancel = run(["sweep", "cancel", "1", "--json"], tuner_env)
    assert json.loads(cancel.stdout)["already_finished"] is True
    status = json.loads(run(["sweep", "status", "1", "--json"], tuner_env).stdout)
    assert status["status"] == "succeeded" and status["cell_counts"]["done"] == 1


def test_sweep_run_takes_models_axes_and_fixed_values(tuner_env, tmp_path):
    image = tmp_path / "face.png"
    image.write_bytes(png_bytes())
    result = run(["sweep", "run", "--model", "stability-ai/sdxl", "--model",
                  "black-forest-labs/flux-kontext-pro", "--image", str(image), "--prompt", "a",
                  "--strength", "0.3, 0.6", "--axis", "aspect_ratio=1:1,16:9",
                  "--set", "scheduler=K_EULER", "--seed", "3", "--json"],
                 {**tuner_env, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"})
    assert result.returncode == 3, result.stderr  # saved; Redis is away in this test
    status = json.loads(run(["sweep", "status", "1", "--json"], tuner_env).stdout)
    cells = status["cells"]
    sdxl = [c for c in cells if "prompt_strength" in c["model_input"]]
    kontext = [c for c in cells if "aspect_ratio" in c["model_input"]]
    assert (len(sdxl), len(kontext)) == (2, 2)
    assert all(c["model_input"]["scheduler"] == "K_EULER" for c in sdxl)


def test_sweep_run_refuses_a_bad_axis_flag(tuner_env, tmp_path):
    image = tmp_path / "face.png"
    image.write_bytes(png_bytes())
    result = run(["sweep", "run", "--image", str(image), "--prompt", "a", "--axis", "nonsense"],
                 tuner_env)
    assert result.returncode == 2 and "--axis 'nonsense' is not NAME=VALUE" in result.stderr


def test_pricing_set_and_show(tuner_env):
    result = run(["pricing", "set", "bytedance/seedream-4", "--per-megapixel", "0.012",
                  "--per-input-megapixel", "0.003", "--as-of", "2026-12-01"], tuner_env)
    assert result.returncode == 0, result.stderr
    assert ("bytedance/seedream-4: $0.012 per output megapixel + $0.003 per input megapixel, "
            "as of 2026-12-01") in result.stdout
    shown = json.loads(run(["pricing", "show", "--json"], tuner_env).stdout)
    row = next(r for r in shown if r["model"] == "bytedance/seedream-4")
    assert (row["pricing_kind"], row["rate_usd"], row["as_of"], row["create_via"]) == (
        "per_megapixel", 0.012, "2026-12-01", "official")
    both = run(["pricing", "set", "bytedance/seedream-4", "--per-image", "1", "--per-run", "1"],
               tuner_env)
    assert both.returncode == 2 and "exactly one of" in both.stderr
    text = run(["pricing", "show"], tuner_env).stdout
    assert "estimates" in text


def test_an_endless_image_file_is_refused_at_the_upload_limit(tuner_env):
    """Issue 16: `--image /dev/zero` read until memory ran out."""
    result = run(["sweep", "run", "--image", "/dev/zero", "--strength", "0.3", "--steps", "20",
                  "--prompt", "a portrait"], {**tuner_env, "UPLOAD_MAX_BYTES": "100000"})
    assert result.returncode == 2
    assert "/dev/zero is larger than the upload limit of 100,000 bytes" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def media_files(env: dict[str, str]) -> list[str]:
    root = Path(env["MEDIA_URL"].removeprefix("file://"))
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) \
        if root.exists() else []


def one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    return result.stderr


def test_a_prompt_that_is_not_utf8_is_one_line_naming_the_flag(tuner_env, tmp_path):
    """Issue 16 §7: bytes that are not UTF-8 (from a file saved in Latin-1, say) ended in a
    traceback. They reach Python as lone surrogates; subprocess sends them as the raw bytes."""
    error = one_line_error(run(["sweep", "run", "--image", portrait(tmp_path), "--strength", "0.3",
                                "--steps", "20", "--prompt", "caf\udce9 portrait"], tuner_env))
    assert "--prompt 'caf\ufffd portrait' is not valid UTF-8 text" in error
    error = one_line_error(run(["sweep", "run", "--image", portrait(tmp_path), "--strength", "0.3",
                                "--steps", "20", "--prompt", "a portrait",
                                "--name=\udcff", "--json"], tuner_env))
    assert "--name" in json.loads(error)["error"]
    assert media_files(tuner_env) == []


def test_a_file_name_that_is_not_utf8_still_opens(tuner_env, tmp_path):
    photo = tmp_path / "caf\udce9.png"
    photo.write_bytes(png_bytes())
    result = run(["sweep", "run", "--image", str(photo), "--strength", "0.3", "--steps", "20",
                  "--prompt", "a portrait", "--json"], tuner_env)
    assert result.returncode == 0, result.stderr


def test_export_to_a_folder_a_missing_folder_or_a_full_disk_is_one_line(tuner_env, tmp_path):
    """Issue 16 §7: each of these ended in a traceback."""
    submitted = run(["sweep", "run", "--image", portrait(tmp_path), "--strength", "0.3",
                     "--steps", "20", "--prompt", "a portrait"], tuner_env)
    assert submitted.returncode == 0, submitted.stderr
    export = ["export", "1", "--format", "csv", "--out"]
    assert "is a folder: give a file name in it" in one_line_error(
        run([*export, str(tmp_path)], tuner_env))
    assert "does not exist: create it" in one_line_error(
        run([*export, str(tmp_path / "missing" / "sweep.csv")], tuner_env))
    assert "/dev/full: the disk is full" in one_line_error(run([*export, "/dev/full"], tuner_env))
    written = run([*export, str(tmp_path / "sweep.csv")], tuner_env)
    assert written.returncode == 0 and (tmp_path / "sweep.csv").read_text().startswith("sweep_id,")


def test_a_refused_submission_keeps_no_photo(tuner_env, tmp_path):
    """Issue 16 §7: a refused `sweep run` left the photo it had stored on disk. Whatever
    refuses it (a bad axis after the photo is stored, a bad second file, an unknown
    scenario), no file and no row is left; a photo already in the library stays."""
    photo = portrait(tmp_path)
    not_an_image = tmp_path / "notes.png"
    not_an_image.write_bytes(b"not a picture")
    refusals = [
        ["--image", photo, "--strength", "0.3, 1.7", "--steps", "20"],
        ["--image", photo, "--image", str(not_an_image), "--strength", "0.3", "--steps", "20"],
        ["--image", photo, "--strength", "0.3", "--steps", "20", "--scenario", "nope"],
    ]
    for flags in refusals:
        one_line_error(run(["sweep", "run", *flags, "--prompt", "a portrait"], tuner_env))
        assert media_files(tuner_env) == []
    listed = run(["gate", "set", "create", "hard-light", "--image", photo, "--scenario", "nope"],
                 tuner_env)
    one_line_error(listed)
    assert media_files(tuner_env) == []
    kept = run(["sweep", "run", "--image", photo, "--strength", "0.3", "--steps", "20",
                "--prompt", "a portrait"], tuner_env)
    assert kept.returncode == 0, kept.stderr
    stored = media_files(tuner_env)
    assert len(stored) == 2  # the photo and its thumbnail
    one_line_error(run(["sweep", "run", "--image", photo, "--strength", "1.7", "--steps", "20",
                        "--prompt", "a portrait"], tuner_env))
    assert media_files(tuner_env) == stored  # in the library before: not this command's to take

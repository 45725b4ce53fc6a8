"""Nobody without access sees these photos: localhost by default, sign-in required to serve
a network, storage keys never from user input, deletion of a photo and all it made, audited."""

from __future__ import annotations

import subprocess
import sys

import pytest
from sqlalchemy import select

from core.auth import add_user, auth_mode, load_users, verify_password
from core.config import Settings
from core.data.db import session_scope
from core.errors import InvalidInput
from core.data.library import delete_image, purge
from core.data.models import AuditEntry, Generation, InputImage
from core.runtime import open_runtime
from tests.services import PROJECT_ROOT
from tests.test_execution import GRID, run_queue, submit


@pytest.mark.parametrize("address", ["0.0.0.0", "", "*", "::"])
def test_up_refuses_a_network_address_without_sign_in(tmp_path, address):
    """An empty or wildcard address is every interface (issue 16: "" was taken for loopback)."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "TUNER_RUN_DIR": str(tmp_path),
           "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    if address:
        args = ["--address", address]
    else:  # an empty address can only come from the environment
        args, env = [], {**env, "DASHBOARD_ADDRESS": address}
    result = subprocess.run([sys.executable, "-m", "core", "up", *args],
                            env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert f"Refusing to serve on {address}" in result.stderr
    assert "users add" in result.stderr  # says how to configure sign-in
    assert not (tmp_path / "x.db").exists()  # refused before starting anything


def test_auth_modes(tmp_path):
    secrets = tmp_path / "secrets.toml"
    assert auth_mode(Settings(auth_users_file=None), secrets) == "none"
    assert auth_mode(Settings(auth_users_file=str(tmp_path / "u.toml")), secrets) == "password"
    secrets.write_text('[auth]\nredirect_uri = "http://x/oauth2callback"\n')
    assert auth_mode(Settings(auth_users_file=None), secrets) == "oidc"


def test_password_users_are_stored_hashed_and_checked(tmp_path):
    users_file = tmp_path / "users.toml"
    add_user(users_file, "Alice", "correct horse battery")
    text = users_file.read_text()
    assert "correct horse" not in text and "$2b$" in text
    assert oct(users_file.stat().st_mode & 0o777) == "0o600"
    users = load_users(users_file)
    assert verify_password(users, "alice", "correct horse battery")
    assert not verify_password(users, "alice", "wrong password!!")
    assert not verify_password(users, "mallory", "correct horse battery")
    with pytest.raises(InvalidInput, match="at least 10 characters"):
        add_user(users_file, "bob", "short")
    with pytest.raises(InvalidInput, match="lowercase letters"):
        add_user(users_file, "../etc", "long enough password")


def test_deleting_an_input_image_removes_everything_made_from_it(tuner_env):
    runtime = open_runtime(Settings())
    sweep_id = submit(runtime, GRID)
    run_queue(runtime.settings.redis_url)
    with session_scope(runtime.engine) as session:
        cells = list(session.scalars(select(Generation).where(Generation.sweep_id == sweep_id)))
        image = session.get(InputImage, cells[0].input_image_id)
        keys = {image.storage_key, image.thumbnail_key} | {c.output_key for c in cells} | {
            c.thumbnail_key for c in cells}
        assert all(runtime.store.exists(k) for k in keys)
        image_id = image.id
    with session_scope(runtime.engine) as session:
        deleted, doomed = delete_image(session, image_id, actor="carol")
    purge(runtime.store, doomed)
    assert deleted == 18
    assert not any(runtime.store.exists(k) for k in keys)
    with session_scope(runtime.engine) as session:
        assert session.get(InputImage, image_id) is None
        assert session.scalars(select(Generation).where(Generation.sweep_id == sweep_id)).all() == []
        audit = session.scalars(select(AuditEntry).where(AuditEntry.action == "delete_image")).one()
        assert audit.actor == "carol" and audit.target_id == str(image_id)
        assert audit.detail["generations_deleted"] == 18


def test_every_write_records_who_did_it(tuner_env):
    runtime = open_runtime(Settings())
    submit(runtime, GRID)
    with session_scope(runtime.engine) as session:
        actions = {(a.action, a.actor) for a in session.scalars(select(AuditEntry))}
    assert ("upload_image", "tester") in actions
    assert ("create_sweep", "tester") in actions


def test_storage_keys_never_come_from_user_input(tuner_env):
    runtime = open_runtime(Settings())
    from core.data.library import add_image
    from tests.test_execution import png_bytes

    with session_scope(runtime.engine) as session:
        image = add_image(session, runtime.store, runtime.settings, png_bytes(),
                          filename="../../etc/passwd.png", uploaded_by="eve")
        assert image.storage_key.startswith("inputs/") and ".." not in image.storage_key
        assert image.sha256 in image.storage_key
    with pytest.raises(ValueError):
        runtime.store.get("../../etc/passwd")

"""Who may use the dashboard.

On localhost nobody signs in (the OS user is recorded). Served to a network, sign-in is
required: Streamlit's OIDC (``st.login``, configured in ``.streamlit/secrets.toml`` [auth]),
or a local user list of bcrypt password hashes (AUTH_USERS_FILE, a TOML file)."""

from __future__ import annotations

import getpass
import re
import tomllib
from pathlib import Path
from typing import Literal

import bcrypt

from core.config import PROJECT_ROOT, Settings
from core.errors import ConfigurationError, InvalidInput

AuthMode = Literal["none", "oidc", "password"]
SECRETS_FILE = PROJECT_ROOT / ".streamlit" / "secrets.toml"
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,39}$")


def auth_mode(settings: Settings, secrets_file: Path = SECRETS_FILE) -> AuthMode:
    if secrets_file.exists():
        try:
            if "auth" in tomllib.loads(secrets_file.read_text()):
                return "oidc"
        except tomllib.TOMLDecodeError as exc:
            raise ConfigurationError(f"{secrets_file} is not valid TOML: {exc}") from exc
    if settings.auth_users_file:
        return "password"
    return "none"


def load_users(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{path} is not valid TOML: {exc}") from exc
    return {name: entry["password_hash"] for name, entry in data.get("users", {}).items()}


def verify_password(users: dict[str, str], username: str, password: str) -> bool:
    stored = users.get(username.strip().lower())
    if not stored or not password:
        # Hash anyway so a wrong name takes as long as a wrong password.
        bcrypt.checkpw(b"x", bcrypt.hashpw(b"y", bcrypt.gensalt(rounds=4)))
        return False
    return bcrypt.checkpw(password.encode(), stored.encode())


def add_user(path: Path, username: str, password: str) -> None:
    name = username.strip().lower()
    if not USERNAME.match(name):
        raise InvalidInput(f"User name {username!r} must be 2–40 lowercase letters, digits, . _ -")
    if len(password) < 10:
        raise InvalidInput("Passwords must have at least 10 characters.")
    users = load_users(path)
    users[name] = bcrypt.hashpw(password.encode(), bcrypt.gensalt()).decode()
    lines = ["# Scenario Tuner users: bcrypt hashes only, written by `python -m core users add`."]
    for user, hashed in sorted(users.items()):
        lines += [f"[users.{user}]", f'password_hash = "{hashed}"', ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
    path.chmod(0o600)


def local_user() -> str:
    """The name recorded for writes on an unauthenticated localhost dashboard."""
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        return "local"

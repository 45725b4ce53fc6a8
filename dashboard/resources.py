"""Cached resources and reads shared by every page, the signed-in user, and session state.

``runtime()`` is built once per server process (migrations run then). Reads are cached for a
few seconds with ``st.cache_data`` and return plain data (dicts, dataclasses), never ORM rows
bound to a closed session."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import streamlit as st
from redis.exceptions import RedisError

from core import auth
from core.planning.budget import day_start, real_spend_since
from core.config import get_settings, is_loopback
from core.data.db import read_scope
from core.errors import ConfigurationError
from core.runtime import Runtime, open_runtime
from core.data.settings_store import effective_settings

STATE_DEFAULTS: dict[str, Any] = {
    "user": None,               # signed-in user name (password sign-in)
    "sweep_id": None,           # the sweep Runs and Gallery show
    "flash": [],                # (kind, message) shown once on the next page
    "chosen_images": [],        # input image ids picked on New sweep
    "uploads_seen": {},         # uploaded file id → image id, so reruns do not re-store
    "seed_salt": 0,             # keeps random seeds stable between preview and submit
}


def init_state() -> None:
    """Every session-state key the dashboard uses, with its default, in one place."""
    for key, value in STATE_DEFAULTS.items():
        if key not in st.session_state:
            st.session_state[key] = value.copy() if hasattr(value, "copy") else value


@st.cache_resource(show_spinner="Opening the database…")
def runtime() -> Runtime:
    return open_runtime(get_settings())


# -- who is signed in ----------------------------------------------------------------------------
def _served_address() -> str:
    address = st.get_option("server.address")
    return address if address is not None else get_settings().dashboard_address


def current_user() -> str:
    """The signed-in user's name; shows a sign-in form and stops the page when there is none."""
    settings = get_settings()
    mode = auth.auth_mode(settings)
    if mode == "oidc":
        if not st.user.is_logged_in:
            st.title("Scenario Tuner")
            st.button("Sign in", on_click=st.login, type="primary")
            st.stop()
        return str(st.user.get("email") or st.user.get("name") or "signed-in user")
    if mode == "password":
        if st.session_state.user is None:
            _password_form(Path(settings.auth_users_file or ""))
            st.stop()
        return st.session_state.user
    if not is_loopback(_served_address()):
        st.error("This dashboard is served on a network address without sign-in. Configure "
                 "users (`python -m core users add`, AUTH_USERS_FILE) or OIDC "
                 "(.streamlit/secrets.toml [auth]), or bind it to 127.0.0.1.")
        st.stop()
    return auth.local_user()


def _password_form(users_file: Path) -> None:
    st.title("Scenario Tuner")
    with st.form("sign_in"):
        name = st.text_input("User name")
        password = st.text_input("Password", type="password")
        if st.form_submit_button("Sign in", type="primary"):
            if auth.verify_password(auth.load_users(users_file), name, password):
                st.session_state.user = name.strip().lower()
                st.rerun()
            st.error("Unknown user name or wrong password.")


def current_auth_mode() -> str:
    return auth.auth_mode(get_settings())


def sign_out() -> None:
    if auth.auth_mode(get_settings()) == "oidc":
        st.logout()
    st.session_state.user = None


# -- the frame -----------------------------------------------------------------------------------
def endpoint_kind() -> tuple[str, str]:
    """("emulator" | "replicate" | "unconfigured", detail) without raising."""
    try:
        endpoint = runtime().endpoint
    except ConfigurationError as exc:
        return "unconfigured", str(exc)
    return endpoint.name, endpoint.base_url


@st.cache_data(ttl=10, show_spinner=False)
def spend_today() -> tuple[float, float]:
    """(real spend today in USD, daily budget); emulated cost never counts."""
    rt = runtime()
    with read_scope(rt.engine) as session:
        spent = real_spend_since(session, day_start(dt.datetime.now(dt.timezone.utc)))
        return spent, effective_settings(session, rt.settings).daily_budget_usd


@st.cache_data(ttl=5, show_spinner=False)
def health() -> list[Any]:
    """Redis, workers and database as CheckResults; each check gives up within ~2 s."""
    from core.health import CheckResult, check_database, check_redis, check_workers

    settings = get_settings()
    redis = check_redis(settings)
    workers = (check_workers(settings) if redis.ok else
               CheckResult("Workers", False, "unknown while Redis is down",
                           "Start Redis first; workers need it."))
    return [redis, workers, check_database(settings)]


@st.cache_data(ttl=2, show_spinner=False)
def queue_status() -> dict[str, Any]:
    """Workers and queue depth for the Runs panel; ``ok`` is False when Redis is down."""
    from core.insight.progress import queue_depth
    from core.engine.worker import live_workers

    redis, deployment = runtime().redis, runtime().deployment
    try:
        workers = live_workers(redis, deployment)
        return {"ok": True, "workers": len(workers),
                "busy": sum(1 for w in workers if w["current_job"]),
                "queued": queue_depth(redis, deployment)}
    except RedisError:
        return {"ok": False, "workers": 0, "busy": 0, "queued": 0}


@st.cache_data(ttl=3600, max_entries=4000, show_spinner=False)
def media(key: str) -> bytes:
    """Stored bytes by content-hash key (immutable, so cached long)."""
    return runtime().store.get(key)


def media_url(key: str, slot: str, width_px: int | None = None) -> str:
    """A URL the browser can load ``key`` from, through Streamlit's media files (one per
    panel slot, so a slot's old image is released when it shows another); ``width_px``: the
    stored thumbnail made that wide (``grid_thumbnail``). The URL is the content's hash, the
    same on every run, so an image the browser already shows is not fetched again."""
    from streamlit.runtime import Runtime

    from core.data.storage import content_type_of

    data = media(key) if width_px is None else grid_thumbnail(key, width_px)
    return Runtime.instance().media_file_mgr.add(data, content_type_of(key), f"panel.{slot}")


@st.cache_data(ttl=3600, max_entries=4000, show_spinner=False)
def grid_thumbnail(key: str, width_px: int) -> bytes:
    """A stored thumbnail (JPEG) made ``width_px`` wide for a grid cell: a 10-column grid
    sends and decodes a quarter of the pixels."""
    from core.data.images import fit_width

    return fit_width(media(key), width_px)


@st.cache_data(ttl=10, show_spinner=False)
def effective(name: str) -> Any:
    """A setting as edited in the dashboard, else from the environment."""
    rt = runtime()
    with read_scope(rt.engine) as session:
        return getattr(effective_settings(session, rt.settings), name)

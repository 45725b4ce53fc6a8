"""The frame on every page: who is signed in, emulator badge, spend today, health, navigation."""

from __future__ import annotations

import pytest

from core.auth import add_user
from tests.pages.conftest import start_sweep
from tests.services import free_port

PLACEHOLDERS = ["pages/overview.py", "pages/review.py", "pages/monitoring.py",
                "pages/scenarios.py", "pages/settings.py"]


def _sidebar_text(app) -> str:
    return "\n".join(m.value for m in app.sidebar.markdown)


def test_sidebar_shows_user_emulator_spend_and_health(open_page) -> None:
    app = open_page()
    assert not app.exception
    text = _sidebar_text(app)
    assert "Signed in as" in text
    assert "EMULATOR" in text and "emulated" in text
    assert "Spend today** $0.00 of $20.00" in text
    assert "✓ Redis" in text and "✓ Database" in text
    assert "✗ Workers" in text  # none running in this test
    assert any("python -m core worker" in c.value for c in app.sidebar.caption)


@pytest.mark.parametrize("path", PLACEHOLDERS)
def test_every_page_in_the_navigation_renders(open_page, path: str) -> None:
    app = open_page(path)
    assert not app.exception
    assert app.info, f"{path} shows nothing"


def test_redis_down_is_reported_and_pages_still_render(open_page, monkeypatch) -> None:
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    for path in (None, "pages/new_sweep.py", "pages/runs.py", "pages/gallery.py"):
        app = open_page(path)
        assert not app.exception, path
        assert "✗ Redis" in _sidebar_text(app), (path, app.main, app.sidebar)
    assert any("Start Redis" in c.value or "redis-server" in c.value for c in app.sidebar.caption)


def test_password_auth_asks_to_sign_in(open_page, monkeypatch, tmp_path) -> None:
    users = tmp_path / "users.toml"
    add_user(users, "ada", "a long enough password")
    monkeypatch.setenv("AUTH_USERS_FILE", str(users))
    app = open_page()
    assert app.text_input[0].label == "User name"
    assert "Signed in as" not in _sidebar_text(app)

    app.text_input[0].input("ada")
    app.text_input[1].input("wrong password")
    app.button[0].click().run()
    assert "wrong password" in app.error[0].value

    app.text_input[1].input("a long enough password")
    app.button[0].click().run()
    assert "**Signed in as** ada" in _sidebar_text(app)


def test_a_page_url_requested_first_still_gets_the_frame(open_page, monkeypatch) -> None:
    """Before st.navigation has run once in the process, Streamlit runs a pages/ file alone;
    page_setup() reruns it through streamlit_app.py (sign-in gate and sidebar included)."""
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.testing.v1 import app_test

    monkeypatch.setattr(app_test, "PagesManager", PagesManager)  # as a fresh server process
    app = open_page("pages/runs.py")
    assert not app.exception
    assert app.title[0].value == "Runs"
    assert "Signed in as" in _sidebar_text(app)


@pytest.mark.parametrize("path", ["pages/overview.py", "pages/runs.py", "pages/review.py",
                                  "pages/scenarios.py", "pages/gate.py", "pages/settings.py"])
def test_a_message_left_by_the_page_before_moves_nothing_when_it_goes(open_page, runtime,
                                                                      path) -> None:
    """Shown once, then gone on the next run; what follows it keeps its place in the page (a
    moved field is drawn anew by Streamlit's frontend, and a value being typed into it is
    lost)."""
    start_sweep(runtime)  # Runs shows its panel, not its empty state
    app = open_page(path)
    app.session_state.flash = [("success", "Sweep 1 submitted.")]
    app.run()
    assert [s.value for s in app.success] == ["Sweep 1 submitted."]
    places = len(app.main.children)
    app.run()
    assert not app.success and not app.exception
    assert len(app.main.children) == places

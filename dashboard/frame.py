"""The frame every page shares: page setup, the sidebar (who, endpoint, spend, health) and a
page's sections as lazy tabs."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from dashboard import format as fmt
from dashboard import resources
from dashboard.errors import shown_errors


_run = threading.local()  # is streamlit_app.py drawing this run? (one script thread per run)


def page_setup() -> str:
    """First line of every page: the signed-in user, with the frame drawn around the page.

    Streamlit treats an app with a ``pages/`` folder as an old-style multipage app until the
    entry script has called ``st.navigation`` once in the server process; until then a
    request for a page URL runs that page file alone, without streamlit_app.py (no sign-in
    gate, no sidebar, no session defaults). Such a run is turned into a normal one."""
    if not getattr(_run, "in_frame", False):
        try:
            from streamlit.runtime.pages_manager import PagesManager
        except ImportError:  # pragma: no cover - a Streamlit without the flag
            st.switch_page("streamlit_app.py")
        PagesManager.uses_pages_directory = False
        st.rerun()
    return resources.current_user()


def run_pages(pages: list) -> None:
    _run.in_frame = True
    try:
        st.navigation(pages).run()
    finally:
        _run.in_frame = False


def sections(draws: Mapping[str, Callable[[], None]], key: str, *, in_url: bool = True) -> None:
    """A page's sections as tabs of which only the chosen one runs and is drawn (lazy tabs),
    the chosen one in the URL (``?KEY=Label``) so a link opens it; ``in_url=False`` for tabs
    in a dialog, which a link does not reopen."""
    tabs = (st.tabs(list(draws), key=key, bind="query-params") if in_url
            else st.tabs(list(draws), key=key, on_change="rerun"))
    for draw, tab in zip(draws.values(), tabs):
        if tab.open:
            with tab:
                draw()


def steady() -> DeltaGenerator:
    """A place in the page that is there on every run, whether anything is drawn in it or not:
    for what comes and goes (a message, a model's price form, a field only some models have).
    What follows keeps its place. A field that moves to a new place in the page is drawn anew
    by Streamlit's frontend from the script's value, so a value being typed into it as that
    run finishes is lost."""
    return st.container()


def sidebar(user: str) -> None:
    with st.sidebar:
        st.markdown(f"**Signed in as** {fmt.plain(user)}")
        if resources.current_auth_mode() != "none":
            st.button("Sign out", on_click=resources.sign_out, key="sign_out")
        _endpoint()
        with shown_errors("reading today's spend"):
            _spend()
        _health()


def _endpoint() -> None:
    kind, detail = resources.endpoint_kind()
    if kind == "emulator":
        st.markdown(f"{fmt.endpoint_badge('emulator')} results are **emulated** — "
                    "no real images, no real cost.")
    elif kind == "replicate":
        st.markdown(f"{fmt.endpoint_badge('replicate')} results come from **real Replicate** "
                    "and cost money.")
    else:
        st.markdown(":red-badge[NOT CONFIGURED]")
        st.caption(detail)


def _spend() -> None:
    spent, budget = resources.spend_today()
    share = spent / budget if budget else 1.0
    st.markdown(f"**Spend today** {fmt.usd(spent)} of {fmt.usd(budget)}")
    st.progress(min(share, 1.0))
    if share >= 1.0:
        st.caption(":red[Daily budget reached: real sweeps are refused until tomorrow (UTC).]")


def _health() -> None:
    checks = resources.health()
    line = " · ".join(f"{'✓' if c.ok else '✗'} {c.name}" for c in checks)
    st.markdown(f"**Health** {line}")
    for check in checks:
        if not check.ok:
            st.caption(f"✗ {check.name}: {check.detail}. {check.fix}")

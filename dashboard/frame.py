"""The frame every page shares: page setup and the sidebar (who, endpoint, spend, health)."""

from __future__ import annotations

import streamlit as st

from dashboard import format as fmt
from dashboard import resources
from dashboard.errors import shown_errors


def sidebar(user: str) -> None:
    with st.sidebar:
        st.markdown(f"**Signed in as** `{user}`")
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

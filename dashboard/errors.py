"""The one place exceptions become messages on a page: a TunerError shows its own message
(written for the person who must act), Redis being away says so, and anything else is
logged with its traceback while the page says only that something went wrong."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import streamlit as st
from core.data.redisio import is_outage, redis_errors
from core.errors import RedisUnavailable, TunerError
from dashboard.format import plain

log = logging.getLogger("dashboard")

REDIS_DOWN = ("Redis does not answer, so nothing can be queued or cancelled right now. "
              "Start redis-server (or `python -m core up`) or fix REDIS_URL.")


def message_for(exc: Exception, doing: str = "") -> str:
    if is_outage(exc):
        return REDIS_DOWN
    if isinstance(exc, TunerError):
        return str(exc)
    what = f" while {doing}" if doing else ""
    return f"Something went wrong{what}: {type(exc).__name__} — details in the server log."


@contextlib.contextmanager
def shown_errors(doing: str = "") -> Iterator[None]:
    """``with shown_errors("submitting the sweep"): ...`` — never a traceback on the page.

    Streamlit's own control flow (st.rerun, st.stop, st.switch_page) derives from
    BaseException and passes through untouched."""
    try:
        with redis_errors():
            yield
    except RedisUnavailable:
        st.error(REDIS_DOWN, icon="🚨")
    except TunerError as exc:
        st.error(plain(exc), icon="⚠️")  # messages quote what was typed
    except Exception as exc:
        log.exception("error while %s", doing or "rendering a page")
        st.error(plain(message_for(exc, doing)), icon="🚨")

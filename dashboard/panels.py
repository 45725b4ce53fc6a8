"""The browser panels (Streamlit components v2): the review and gate pages' panels driven by
keys, and the Gallery's grid.

Browser side: each panel's script is assets/panel_common.js (the outbox that sends actions
until the server acknowledges them, the mount, small DOM helpers) followed by the panel's own
assets/NAME.js, with assets/NAME.css. Server side, here: the log's ids read safely, each
action applied once per client sequence number, and the outcome shown for it."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol, TypeVar

import streamlit as st

_ASSETS = Path(__file__).parent / "assets"


def panel_component(name: str) -> Any:
    """The component ``scenario_tuner.NAME`` from assets/NAME.js and assets/NAME.css."""
    script = "\n".join((_ASSETS / file).read_text() for file in ("panel_common.js", f"{name}.js"))
    return st.components.v2.component(f"scenario_tuner.{name}", js=script,
                                      css=(_ASSETS / f"{name}.css").read_text())


@dataclasses.dataclass(frozen=True)
class Outcome:
    kind: str  # "success" | "error" | "info"
    text: str


class _Sequenced(Protocol):
    @property
    def seq(self) -> int: ...


A = TypeVar("A", bound=_Sequenced)


def not_applied(client: str, actions: Iterable[A], applied: dict[str, int]) -> Iterator[A]:
    """The client's actions (in sequence order) not applied yet, each recorded in ``applied``
    as it is handed out: the browser sends an action again until ``applied`` acknowledges
    it, and it is applied once."""
    for action in actions:
        if action.seq <= applied.get(client, 0):
            continue
        applied[client] = action.seq
        yield action


def log_id(value: Any) -> int | None:
    """An id from the panel's log: an int (not a bool), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None

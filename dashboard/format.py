"""How numbers, times, states and endpoints read on every page."""

from __future__ import annotations

import datetime as dt

from core.planning.pricing import format_usd

STATE_ICONS = {
    "pending": "⏳", "submitting": "📤", "submitted": "🔄",
    "succeeded": "✅", "failed": "❌", "canceled": "⛔",
}
STATUS_ICONS = {  # the values of core.insight.progress.SweepStatus
    "running": "🔄", "canceling": "⏳", "succeeded": "✅",
    "finished with failures": "⚠️", "canceled": "⛔", "empty": "•",
}

usd = format_usd


def state(value: str) -> str:
    return f"{STATE_ICONS.get(value, '•')} {value}"


def status(value: str) -> str:
    return f"{STATUS_ICONS.get(value, '•')} {value}"


def duration(seconds: float | None) -> str:
    """``850 ms``, ``12.3 s``, ``4 min 05 s``, ``2 h 10 min``; ``–`` when unknown."""
    if seconds is None:
        return "–"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def ago(when: dt.datetime | None, now: dt.datetime | None = None) -> str:
    if when is None:
        return "–"
    now = now or dt.datetime.now(dt.timezone.utc)
    return f"{duration(max((now - when).total_seconds(), 0.0))} ago"


def endpoint_badge(endpoint: str) -> str:
    """Markdown badge: results from the emulator must never pass for real ones."""
    if endpoint == "emulator":
        return ":orange-badge[EMULATOR]"
    return ":blue-badge[REPLICATE]"


def axis_value(value: object) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)

"""How numbers, times, states and endpoints read on every page."""

from __future__ import annotations

import datetime as dt
import re

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

# Read as Markdown, HTML or Streamlit syntax anywhere in a line: links and images (``[ ]``),
# HTML and autolinks (``<``), code, emphasis (``*``; ``_`` only at a word's edge), tables,
# strikethrough, entities (``&``), LaTeX (``$``), the backslash itself, and the colon that opens
# a ``:red[…]`` directive. "Saved: 3" stays as it is.
_INLINE = re.compile(r"[\\`*\[\]<|~$&]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])|:(?=[\w\-]+\[)")
# A web address becomes a link (harmless) and shows a backslash inside it as typed: only what
# could make it an image or a link to somewhere else is escaped there.
_URL = re.compile(r"(?:https?://|www\.)[^\s<]*", re.IGNORECASE)
_IN_URL = re.compile(r"[\\\[\]]")
# ``:smile:`` and ``:material/home:`` turn into an emoji or icon even when escaped; an invisible
# word joiner after the first colon keeps them as typed.
_SHORTCODE = re.compile(r":(?=[A-Za-z+\-][\w+\-/]*:)")  # not a time like 10:30:00
# Read as a block only at the start of a line: headings, quotes, list items, rules, numbered items.
_BLOCK = re.compile(r"^([ \t]*\d*)([#>]|[-+=](?=[ \t]|$|[-+=])|(?<=\d)[.)](?=[ \t]|$))",
                    re.MULTILINE)


def _escape(pattern: re.Pattern[str], text: str) -> str:
    return pattern.sub(lambda m: "\\" + m.group(0), text)


def plain(value: object) -> str:
    """User text (names, prompts, notes, tags, file names, messages quoting them) for any place
    Streamlit reads Markdown: st.markdown, captions, alerts, titles, progress text, image
    captions, and the labels, tabs, expanders and tooltips of widgets. Everything Markdown or
    Streamlit would read is escaped, so the text shows as typed, and ``![x](http://…)`` or
    ``<img src=…>`` never makes the browser fetch anything. Line breaks stay line breaks.
    Select box options and table cells are text already: not through here."""
    text, parts, last = str(value), [], 0
    for url in _URL.finditer(text):
        parts += [_escape(_INLINE, text[last:url.start()]), _escape(_IN_URL, url.group(0))]
        last = url.end()
    text = "".join([*parts, _escape(_INLINE, text[last:])])
    text = _SHORTCODE.sub(":\u2060", text)
    text = _BLOCK.sub(lambda m: m.group(1) + "\\" + m.group(2), text)
    return text.replace("\n", "  \n")


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

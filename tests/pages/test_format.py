"""dashboard.format.plain: user text for places Streamlit reads as Markdown. The browser test
(tests/browser/test_plain_text.py) shows the result in a real page; these pin the escaping."""

from __future__ import annotations

import pytest

from dashboard.format import plain


@pytest.mark.parametrize("text", [
    "Saved: Daily budget (USD) 7.5, Cells per queued job 8",
    "usd_per_second 0.000725 → 0.0014", "strength 0.3 · steps 20", "-1", "0.2, 0.4",
    "projection-level-1", "P1: a portrait, studio light", "10:30", "at 10:30:00 UTC"])
def test_ordinary_text_is_left_as_it_is(text):
    assert plain(text) == text


@pytest.mark.parametrize("text, shown", [
    ("![x](http://h/p.png)", "!\\[x\\](http://h/p.png)"),
    ("<img src=http://h/q.png>", "\\<img src=http://h/q.png>"),
    ("[a](javascript:x)", "\\[a\\](javascript:x)"),
    (":red[hot] and :orange-badge[x]", "\\:red\\[hot\\] and \\:orange-badge\\[x\\]"),
    ("$x^2$ and `code` and *em* and _em_ and ~~s~~ | t", "\\$x^2\\$ and \\`code\\` and \\*em\\* "
     "and \\_em\\_ and \\~\\~s\\~\\~ \\| t"),
    ("a \\ b &amp;", "a \\\\ b \\&amp;"),
    ("# h\n- item\n1. one\n> quote\n===", "\\# h  \n\\- item  \n1\\. one  \n\\> quote  \n\\==="),
    (":smile: :material/home:", ":\u2060smile: :\u2060material/home:"),
    ("http://h/a?b=1&c=2_d [x]", "http://h/a?b=1&c=2_d \\[x\\]"),  # a backslash would show
    ("http://h/![x](http://h/p.png)", "http://h/!\\[x\\](http://h/p.png)"),
])
def test_markdown_html_and_streamlit_syntax_is_escaped(text, shown):
    assert plain(text) == shown


def test_anything_becomes_text():
    assert plain(ValueError("Bad [x]")) == "Bad \\[x\\]"

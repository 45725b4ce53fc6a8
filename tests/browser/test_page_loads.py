"""Page loads in a freshly started product: what runs, and what a load keeps.

The first visitor of a freshly started dashboard who comes by a page's own URL (a link to
/runs, say) gets that page in one run, with the app's own sidebar.

Streamlit treats an app with a ``pages/`` folder as an old-style multipage app until the entry
script has called ``st.navigation`` once in the server process; ``dashboard.serve`` decides it
before the port opens. Without that, the first run drew the folder's file names in the
sidebar ("streamlit app", "new sweep", ...) over an empty page, and a second run the page.

This module has its own ``running`` product (module scope), and its first test is the
server's first visit: nothing may load a page before it.
"""

from __future__ import annotations

from core.data.db import create_db_engine, session_scope
from core.scenarios.versions import create_scenario
from tests.browser.conftest import RUN_OVER_JS, is_script_finished

# Every link text the sidebar's navigation has shown since the document started.
NAV_SEEN_JS = r"""
window.__navSeen = new Set();
new MutationObserver(() => {
  for (const link of document.querySelectorAll('[data-testid="stSidebarNav"] a')) {
    window.__navSeen.add(link.innerText.trim().split('\n').pop().trim());
  }
}).observe(document, {childList: true, subtree: true, characterData: true});
"""


def test_a_page_url_as_the_servers_first_visit_runs_once_with_the_apps_sidebar(running, page):
    finished: list[object] = []  # Streamlit's script_finished messages, as they arrive

    def count(payload: object) -> None:
        if is_script_finished(payload):
            finished.append(payload)

    page.on("websocket", lambda socket: socket.on("framereceived", count))
    page.add_init_script(NAV_SEEN_JS)
    page.goto(f"{running.url}/runs")
    page.get_by_role("heading", name="Runs", level=1).wait_for()
    page.wait_for_function(RUN_OVER_JS)

    seen = set(page.evaluate("() => [...window.__navSeen]"))
    assert "Overview" in seen and "Runs" in seen, seen
    folder_names = {"streamlit app", "new sweep", "runs"} & seen
    assert not folder_names, f"the sidebar showed the pages folder's file names: {folder_names}"
    assert len(finished) == 1, f"{len(finished)} script runs for the first visit, not 1"


def test_an_unsaved_edit_survives_a_look_at_the_history(running, page):
    """Scenarios' History tab runs only while open; the editor stays drawn in either tab, so
    a value typed but not saved is still there after a look at the history."""
    engine = create_db_engine(running.env["DATABASE_URL"])
    try:
        with session_scope(engine) as session:
            create_scenario(session, "first-visit", actor="alice", prompt_template="a photo",
                            params={"strength": 0.35})
    finally:
        engine.dispose()
    page.goto(f"{running.url}/scenarios")
    strength = page.get_by_label("strength", exact=True)
    strength.fill("0.45")
    page.get_by_role("tab", name="History (1 versions)").click()
    page.get_by_text("v1 · alice").wait_for()  # the history ran and was drawn
    page.wait_for_function(RUN_OVER_JS)
    page.get_by_role("tab", name="Edit").click()
    page.wait_for_function(RUN_OVER_JS)
    assert strength.input_value() == "0.45"

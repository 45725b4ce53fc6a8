"""The dashboard's server process, as ``python -m core up`` starts it: Streamlit, with the
modules the pages use imported before the port opens.

Streamlit imports a page's modules in the first session that runs it, so the first visitor
of a freshly started server waited for pandas, SQLAlchemy, Altair, OpenCV, scikit-image and
our own modules: 2.5–3 s of the 4.7–5.7 s first load on 2 CPUs (bench/browser.py, "cold";
py-spy on the script thread). Importing them here moves that wait to the start, before
``up`` says the dashboard is up.

It also tells Streamlit, before the first session, that the app is not an old-style
``pages/``-folder app (see ``frame.page_setup``): otherwise the first visitor of a page's own
URL, a link to /gallery?sweep=N say, got a run of that page file alone (the sidebar with the
folder's file names, an empty page) and then the real run, twice the wait.

    python -m dashboard.serve [options of `streamlit run`]
"""

from __future__ import annotations

import gc
import importlib
import logging
import pkgutil
import sys

from core.config import PROJECT_ROOT

# Imported inside functions (so the CLI and the workers start without them), used by pages.
USED_LAZILY = (
    "alembic.runtime.migration", "alembic.script", "core.engine.worker", "core.health",
    "core.insight.contact_sheet", "core.insight.pairwise", "core.insight.progress",
    "core.insight.sqlstats", "core.planning.pricing", "core.planning.timing", "scipy.stats",
    "statsmodels.stats.proportion", "streamlit.runtime.pages_manager")


def preload() -> list[str]:
    """Import every dashboard module and what pages import lazily; the names imported."""
    import dashboard

    names = [m.name for m in pkgutil.iter_modules(dashboard.__path__, "dashboard.")
             if m.name != "dashboard.serve"]  # itself: run as __main__ under -m
    # st.cache_data checks its options against the runtime's cache storage when a function
    # is decorated and, before the runtime exists, warns once per function; the caches
    # themselves are made at the first call, inside the runtime.
    from streamlit.runtime.caching import cache_data_api  # its logger's level set on import

    quiet = logging.getLogger(cache_data_api.__name__)
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        for name in (*names, *USED_LAZILY):
            importlib.import_module(name)
    finally:
        quiet.setLevel(level)
    return [*names, *USED_LAZILY]


def main(argv: list[str] | None = None) -> int:
    preload()
    from streamlit.runtime.pages_manager import PagesManager

    # streamlit_app.py calls st.navigation on every run, so the decision its first run would
    # make is known now; a class attribute, read for every run of every session.
    PagesManager.uses_pages_directory = False
    # What was just imported lives as long as the server: out of the collector's sight, a
    # full collection walks only what the sessions made since, not every module's objects.
    gc.collect()
    gc.freeze()
    from streamlit.web import cli

    sys.argv = ["streamlit", "run", str(PROJECT_ROOT / "streamlit_app.py"),
                *(sys.argv[1:] if argv is None else argv)]
    return cli.main(prog_name="streamlit")


if __name__ == "__main__":
    sys.exit(main())

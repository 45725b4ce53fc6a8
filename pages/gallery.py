"""Gallery: one sweep as a labelled grid; any axis across or down, the rest in tabs."""

from collections import Counter

import streamlit as st

from core.insight.progress import CellCounts
from dashboard import actions, frame, grid_view, queries, resources, runs_view
from dashboard import format as fmt
from dashboard import review_widgets as rw
from dashboard.errors import shown_errors

user = frame.page_setup()
st.title("Gallery")

summaries = runs_view.sweeps_or_stop(
    "No sweeps yet — start one on New sweep, and its images appear here as they finish.")

sweep_id = runs_view.choose_sweep(summaries)
summary = next(s for s in summaries if s.id == sweep_id)
exports = st.columns([1, 1, 4])
exports[0].download_button("Sweep as CSV", lambda: queries.export_sweep(sweep_id, "csv"),
                           file_name=f"sweep-{sweep_id}.csv", mime="text/csv", on_click="ignore")
exports[1].download_button("Sweep as JSON", lambda: queries.export_sweep(sweep_id, "json"),
                           file_name=f"sweep-{sweep_id}.json", mime="application/json",
                           on_click="ignore")


def open_cell(cell: dict) -> None:
    st.query_params["cell"] = str(cell["id"])  # the open cell is part of the link
    st.session_state.open_cell = cell["id"]
    grid_view.cell_dialog(cell, resources.media,
                          lambda gid, name, **options: actions.promote(gid, name, user=user,
                                                                        **options),
                          review=lambda c: rw.rate_cell(c, user))


linked_cell = st.query_params.get("cell")
if linked_cell is not None and linked_cell != str(st.session_state.get("open_cell")):
    found = next((c for c in queries.sweep_cells(sweep_id) if str(c["id"]) == linked_cell), None)
    if found is None:
        del st.query_params["cell"]  # a cell of another sweep: the link no longer holds it
    else:
        open_cell(found)


# Axes, filters and grid are one fragment: choosing an axis reruns only this part.
@st.fragment(run_every=None if summary.finished else 2)
def gallery() -> None:
    with shown_errors("showing the grid"):
        live = queries.sweep_cells(sweep_id)
        finished = CellCounts.from_states(Counter(c["state"] for c in live)).finished
        if finished and not summary.finished:
            queries.sweep_summaries.clear()  # read the finished status now, not in 2 s
            st.rerun()  # the whole page: its status, and this fragment stops refreshing
        swept = grid_view.swept_axes(live)
        x, y = grid_view.choose_axes(swept)
        rest = [a for a in swept if a not in (x, y)]
        st.caption(f"{sum(c['state'] == 'succeeded' for c in live)} of {len(live)} images ready"
                   + (" — filling in as the sweep runs" if not finished else ""))
        shown = grid_view.review_filter(grid_view.state_filter(live))
        shown, sort_key, descending = grid_view.metric_filter(shown)
        if sort_key is not None:
            grid_view.ranked(shown, sort_key, descending, url=resources.media_url,
                             on_open=open_cell)
            return
        groups = grid_view.split(shown, rest)
        if not groups:
            st.info("No cells match the chosen states, rating and tags.")
            return
        every = list(groups)
        st.download_button(
            "Grid as PNG" + (f" (all {len(every)} slices, each labelled)" if len(every) > 1
                             else ""),
            lambda: queries.grid_png(every, x, y, f"Sweep {sweep_id} · {summary.name}"),
            file_name=f"sweep-{sweep_id}-grid.png", mime="image/png", key="png_all",
            # No rerun on click: a rerun re-registers the deferred file while the browser is
            # still fetching it, and the download could be lost.
            on_click="ignore")
        if len(groups) > 12:
            label = st.selectbox("Showing", [g[0] for g in groups], key="g_group")
            groups = [g for g in groups if g[0] == label]
        for tab, (label, group) in zip(st.tabs([fmt.plain(g[0]) for g in groups]), groups):
            with tab:
                grid_view.grid(group, x, y, url=resources.media_url, on_open=open_cell,
                               key=label, user=user)


gallery()

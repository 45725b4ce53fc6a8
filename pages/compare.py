"""Compare: two sweeps side by side (pairs of outputs with their metric and rating
differences), and one input photo across every sweep and model that used it."""

import pandas as pd
import streamlit as st

from core.data.models import GenerationState
from core.insight.compare import COMPARED
from dashboard import frame, queries, resources, runs_view
from dashboard import format as fmt
from dashboard import insight_queries as iq
from dashboard.errors import shown_errors


def fmt_num(value: object) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "—"
    return f"{value:.2f}"

frame.page_setup()
st.title("Compare")
summaries = runs_view.sweeps_or_stop("No sweeps yet — run two, then compare them here.")
names = {s.id: f"#{s.id} {s.name} ({s.model_ref})" for s in summaries}
LABELS = {"similarity": "similarity", "change": "change", "sharpness": "sharpness",
          "identity": "identity", "rating_mean": "mean rating"}

two, photo = st.tabs(["Two sweeps", "One photo"])

with two:
    if len(summaries) < 2:
        st.info("Comparing needs two sweeps.")
    else:
        ids = list(names)
        left, right = st.columns(2)
        a = left.selectbox("Sweep A", ids, format_func=names.get, key="c_a")
        b = right.selectbox("Sweep B", [i for i in ids if i != a], format_func=names.get,
                            key="c_b")
        with shown_errors("comparing the sweeps"):
            result = iq.sweep_pair(a, b)
            st.caption(fmt.plain(result.message))
            if not result.pairs.empty:
                cols = st.columns(len(COMPARED))
                for col, name in zip(cols, COMPARED):
                    s = result.summary[name]
                    if s.mean is None:
                        col.metric(f"Δ {LABELS[name]} (B − A)", "—", help="not measured")
                        continue
                    ci = (f"95% {s.ci_low:+.3f} … {s.ci_high:+.3f} ({s.method}), "
                          if s.ci_low is not None else "")
                    col.metric(f"Δ {LABELS[name]} (B − A)", f"{s.mean:+.3f}",
                               help=f"{ci}n = {s.n} pairs")
                show = ["image", *result.matched_on, "id_a", "id_b",
                        *[f"{m}_{side}" for m in COMPARED for side in ("a", "b", "delta")]]
                st.dataframe(result.pairs[[c for c in show if c in result.pairs]],
                             hide_index=True, width="stretch")
                cells_a = {c["id"]: c for c in queries.sweep_cells(a)}
                cells_b = {c["id"]: c for c in queries.sweep_cells(b)}
                limit = st.slider("Pairs shown", 1, max(1, min(40, len(result.pairs))),
                                  min(8, len(result.pairs)), key="c_limit")
                for row in result.pairs.head(limit).to_dict("records"):
                    setting = " · ".join(f"{k} {fmt.axis_value(row[k])}"
                                         for k in result.matched_on)
                    st.markdown(f"**image #{row['image']}** · {fmt.plain(setting)}")
                    for col, cell, side in zip(st.columns(2), (cells_a.get(row["id_a"]),
                                                               cells_b.get(row["id_b"])),
                                               "AB"):
                        if cell and cell["thumbnail"]:
                            d = row.get("similarity_delta")
                            col.image(resources.media(cell["thumbnail"]), width="stretch",
                                      caption=f"{side}: similarity "
                                              f"{fmt_num(cell.get('similarity'))}, rating "
                                              f"{fmt_num(cell.get('rating'))}"
                                              + (f" (Δ {d:+.3f})" if side == "B" and
                                                 d is not None and d == d else ""))
                        else:
                            col.caption(f"{side}: no image")

with photo:
    images = queries.library()
    if not images:
        st.info("No input photos yet.")
    else:
        labels = {i["id"]: f"#{i['id']} {i['label']}" for i in images}
        image_id = st.selectbox("Input photo", list(labels), format_func=labels.get, key="c_img")
        with shown_errors("reading the photo's outputs"):
            cells, _ = iq.image_evidence(image_id)
            done = cells[cells["state"] == GenerationState.SUCCEEDED.value]
            if done.empty:
                st.info("No sweep has an output for this photo yet.")
            else:
                per = (done.groupby(["sweep_id", "model"])
                       .agg(outputs=("id", "count"), similarity=("similarity", "mean"),
                            identity=("identity", "mean"), rating=("rating_mean", "mean"))
                       .reset_index())
                st.dataframe(per, hide_index=True, width="stretch")
                order = st.selectbox("Order by", ["similarity", "rating_mean", "sharpness",
                                                  "identity", "strength"], key="c_order")
                ranked = done.sort_values(order, ascending=False, na_position="last")
                by_id = {}
                for sweep in ranked["sweep_id"].unique():
                    by_id.update({c["id"]: c for c in queries.sweep_cells(int(sweep))})
                rows = ranked.head(48).to_dict("records")
                for start in range(0, len(rows), 6):
                    for col, row in zip(st.columns(6), rows[start:start + 6]):
                        cell = by_id.get(row["id"])
                        if cell and cell["thumbnail"]:
                            col.image(resources.media(cell["thumbnail"]), width="stretch",
                                      caption=f"#{row['sweep_id']} {fmt.plain(row['model'])} · strength "
                                              f"{fmt.axis_value(row['strength'])} · sim "
                                              f"{fmt_num(row['similarity'])}")

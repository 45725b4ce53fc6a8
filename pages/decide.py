"""Decide: which setting to ship, with its evidence — the recommendation under your
constraints, ratings and image metrics per parameter with 95% intervals, a heatmap over any
two axes, estimate against actual, and the monthly cost of the chosen setting."""

import streamlit as st

from core.insight import evidence, stats
from core.insight.analytics import projection_table
from core.insight.recommend import recommend, representative
from core.insight.report import STATISTICS_NOTE
from dashboard import actions, charts, frame, runs_view
from dashboard import format as fmt
from dashboard import insight_queries as iq
from dashboard import insight_widgets as iw
from dashboard.errors import shown_errors
from dashboard.scenario_widgets import promote_form

user = frame.page_setup()
st.title("Decide")

summaries = runs_view.sweeps_or_stop(
    "No sweeps yet — run one on New sweep, rate some outputs on Review, and the evidence "
    "for each setting shows up here.")

scope = st.radio("Evidence from", ["one sweep", "every sweep of a scenario"], horizontal=True,
                 key="d_scope")
if scope == "one sweep":
    sweep_id = runs_view.choose_sweep(summaries)
    cells, ratings = iq.sweep_evidence(sweep_id)
else:
    names = iq.scenarios()
    if not names:
        st.info("No scenarios yet: create one on Scenarios, then run sweeps for it.")
        st.stop()
    scenario_id = st.selectbox("Scenario", list(names), format_func=names.get, key="d_scenario")
    sweep_id = None
    cells, ratings = iq.scenario_evidence(scenario_id)

if cells.empty:
    st.info("No cells yet in this scope.")
    st.stop()

axes = evidence.swept_axes(cells) or ["strength"]
st.caption(f"{len(cells)} cells · {len(ratings)} ratings from "
           f"{ratings['reviewer'].nunique()} reviewer(s) · swept: {', '.join(axes)}. "
           + STATISTICS_NOTE)

st.subheader("Recommendation")
objective, constraints = iw.constraints_form("d")
with shown_errors("recommending a setting"):
    rec = recommend(cells, ratings, objective=objective, constraints=constraints, axes=axes)
    iw.recommendation_card(rec)
    if rec.best is not None:
        gid = representative(cells, rec.best.setting)
        o = rec.best.objective
        proof = (f"{', '.join(f'{k}={v}' for k, v in rec.best.setting.items())}; "
                 f"{objective} mean {o.mean:.2f} (n={o.n}"
                 + (f", 95% {o.ci_low:.2f}–{o.ci_high:.2f}" if o.ci_low is not None
                    else "") + f"); {rec.message}")
        with st.expander(f"Promote the recommended setting (generation {gid}) to a scenario"):
            promote_form(gid, key="d_promote", disabled=False,
                         promote=lambda g, name, **options: actions.promote_recommendation(
                             g, name, proof, user=user, **options))
        if rec.best.cost_per_image_usd is not None:
            with st.expander(f"Monthly cost at this setting "
                             f"({fmt.usd(rec.best.cost_per_image_usd)} per image, measured)"):
                st.dataframe(projection_table(rec.best.cost_per_image_usd), hide_index=True)
    with st.expander("Every setting"):
        iw.settings_table(rec)

st.subheader("By parameter")
value = st.selectbox("Show", list(iw.METRIC_CHOICES), format_func=iw.METRIC_CHOICES.get,
                     key="d_value")
source = ratings if value == "rating" else cells
column = "rating" if value == "rating" else value
for axis in axes:
    with shown_errors(f"summarising by {axis}"):
        table = stats.grouped_intervals(source, axis, column)
        if table.empty:
            st.caption(f"{axis}: nothing {'rated' if value == 'rating' else 'measured'} yet.")
            continue
        charts.draw(iw.error_bars, table, axis, iw.METRIC_CHOICES[value])

st.subheader("Heatmap")
if len(axes) >= 2:
    a, b, c = st.columns(3)
    x = a.selectbox("Across", axes, key="d_hx")
    y = b.selectbox("Down", [ax for ax in axes if ax != x], key="d_hy")
    shown = c.selectbox("Colour", list(iw.METRIC_CHOICES), format_func=iw.METRIC_CHOICES.get,
                        key="d_hv")
    with shown_errors("drawing the heatmap"):
        table = stats.heatmap(ratings if shown == "rating" else cells, x, y,
                              "rating" if shown == "rating" else shown)
        if table.empty:
            st.caption("Nothing to show yet for this choice.")
        else:
            charts.draw(iw.heatmap_chart, table, x, y, iw.METRIC_CHOICES[shown])
else:
    st.caption("A heatmap needs two swept axes; this scope sweeps one.")

if sweep_id is not None:
    st.subheader("Estimate against actual")
    with shown_errors("comparing the estimate"):
        iw.estimate_vs_actual(*iq.estimate_and_actual(sweep_id))

"""Altair chart builders over the DataFrames core.insight.analytics / core.insight.performance return;
``draw``, which draws one, and ``show``, which draws one with a CSV download of exactly the
rows it plots.

Builders take a frame and return a chart; they never query anything. Days come back from
core as ``datetime.date`` values, which Vega-Lite cannot read, so each builder converts its
time column first (on a copy). A builder's Vega-Lite spec is made once per content of its
frame and arguments (``_spec``): building and validating an Altair chart costs tens of
milliseconds of the server's CPU, on every rerun and for every person, for the same rows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

COMPONENT_LABELS = {"queue_s": "our queue", "replicate_queue_s": "Replicate's queue",
                    "predict_time_s": "predict time", "latency_s": "total"}
DAY_BAR_PX = 16  # fixed, so a range with one busy day is not one bar as wide as the chart
OUTCOME_COLORS = alt.Scale(domain=["succeeded", "failed", "canceled"],
                           range=["#4c9f70", "#d1495b", "#9a9a9a"])


def _dated(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    out = frame.copy()
    out[column] = pd.to_datetime(out[column])
    return out


Builder = Callable[..., alt.TopLevelMixin]


@st.cache_data(max_entries=256, show_spinner=False)
def _spec(name: str, frame: pd.DataFrame, args: tuple, _build: Builder) -> dict[str, Any]:
    """``_build(frame, *args)`` as a Vega-Lite spec with its rows inline, cached by the
    builder's name and the frame's and arguments' content."""
    with alt.data_transformers.disable_max_rows():
        return _build(frame, *args).to_dict()


def draw(build: Builder, frame: pd.DataFrame, *args: Any) -> None:
    """The chart ``build(frame, *args)`` makes, as wide as its container."""
    st.vega_lite_chart(None, _spec(f"{build.__module__}.{build.__qualname__}", frame, args,
                                   build), width="stretch")


def show(build: Builder, frame: pd.DataFrame, name: str, *args: Any, empty: str) -> None:
    """The chart ``build(frame, *args)`` (or ``empty`` when there are no rows) and a CSV of
    what it shows."""
    if frame.empty:
        st.caption(empty)
        return
    draw(build, frame, *args)
    st.download_button(f"CSV of {name}", frame.to_csv(index=False).encode(),
                       file_name=f"{name.replace(' ', '-')}.csv", mime="text/csv",
                       key=f"csv_{name}", icon=":material/download:")


# -- cost ----------------------------------------------------------------------------------------
def cost_per_day(frame: pd.DataFrame, by: str) -> alt.Chart:
    """Bars per day stacked by ``by`` (scenario or model)."""
    return alt.Chart(_dated(frame, "day")).mark_bar(size=DAY_BAR_PX).encode(
        x=alt.X("yearmonthdate(day):T", title="Day (UTC)"),
        y=alt.Y("sum(cost_usd):Q", title="Cost (USD)"),
        color=alt.Color(f"{by}:N", title=by.capitalize()),
        tooltip=["day:T", f"{by}:N", "predictions:Q", alt.Tooltip("cost_usd:Q", format="$.4f")],
    ).properties(height=260)


def cumulative_spend(frame: pd.DataFrame) -> alt.LayerChart:
    """Running real spend in the month, with the monthly budget as a dashed red line."""
    data = _dated(frame, "day")
    base = alt.Chart(data).encode(x=alt.X("day:T", title="Day (UTC)"))
    spent = base.mark_area(line=True, opacity=0.3).encode(
        y=alt.Y("cumulative_usd:Q", title="Real spend this month (USD)"),
        tooltip=["day:T", alt.Tooltip("spend_usd:Q", format="$.2f"),
                 alt.Tooltip("cumulative_usd:Q", format="$.2f"),
                 alt.Tooltip("budget_used:Q", format=".0%")])
    budget = base.mark_line(color="#d1495b", strokeDash=[6, 4]).encode(y="budget_usd:Q")
    return (spent + budget).properties(height=260)


def cost_per_generation(frame: pd.DataFrame) -> alt.Chart:
    return alt.Chart(_dated(frame, "day")).mark_line(point=True).encode(
        x=alt.X("day:T", title="Day (UTC)"),
        y=alt.Y("cost_per_prediction_usd:Q", title="Cost per prediction (USD)"),
        color=alt.Color("endpoint:N", title="Endpoint"),
        tooltip=["day:T", "endpoint:N", "predictions:Q",
                 alt.Tooltip("cost_per_prediction_usd:Q", format="$.5f")],
    ).properties(height=240)


# -- latency -------------------------------------------------------------------------------------
def _labelled(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    out["component"] = out["component"].map(lambda c: COMPONENT_LABELS.get(c, c))
    return out


def latency_histograms(frame: pd.DataFrame) -> alt.FacetChart:
    """One histogram per latency component, each on its own seconds axis."""
    return alt.Chart(_labelled(frame)).mark_bar().encode(
        x=alt.X("bin_start_s:Q", title="Seconds", bin="binned"),
        x2="bin_end_s:Q",
        y=alt.Y("count:Q", title="Predictions"),
        tooltip=["component:N", alt.Tooltip("bin_start_s:Q", format=".2f"),
                 alt.Tooltip("bin_end_s:Q", format=".2f"), "count:Q"],
    ).properties(width=150, height=140).facet(
        facet=alt.Facet("component:N", title=None, sort=list(COMPONENT_LABELS.values())),
        columns=4).resolve_scale(x="independent", y="independent")


def latency_over_time(frame: pd.DataFrame) -> alt.Chart:
    """p50 (solid) and p95 (dashed) per day, a colour per component."""
    long = _labelled(_dated(frame, "day")).melt(
        id_vars=["day", "component", "n"], value_vars=["p50_s", "p95_s"],
        var_name="percentile", value_name="seconds")
    long["percentile"] = long["percentile"].str.replace("_s", "", regex=False)
    return alt.Chart(long).mark_line(point=True).encode(
        x=alt.X("day:T", title="Day (UTC)"), y=alt.Y("seconds:Q", title="Seconds"),
        color=alt.Color("component:N", title="Component",
                        sort=list(COMPONENT_LABELS.values())),
        strokeDash=alt.StrokeDash("percentile:N", title="Percentile"),
        tooltip=["day:T", "component:N", "percentile:N", alt.Tooltip("seconds:Q", format=".2f"),
                 "n:Q"],
    ).properties(height=260)


# -- throughput and failures ---------------------------------------------------------------------
def throughput(frame: pd.DataFrame) -> alt.Chart:
    long = _dated(frame, "period").melt(id_vars=["period"],
                                        value_vars=["succeeded", "failed", "canceled"],
                                        var_name="outcome", value_name="predictions")
    return alt.Chart(long).mark_bar(size=DAY_BAR_PX).encode(
        x=alt.X("yearmonthdate(period):T", title="Day (UTC)"),
        y=alt.Y("sum(predictions):Q", title="Predictions finished"),
        color=alt.Color("outcome:N", scale=OUTCOME_COLORS, title="Outcome"),
        tooltip=["period:T", "outcome:N", "predictions:Q"],
    ).properties(height=240)


def failure_rate(frame: pd.DataFrame) -> alt.Chart:
    return alt.Chart(_dated(frame, "day")).mark_line(point=True, color="#d1495b").encode(
        x=alt.X("day:T", title="Day (UTC)"),
        y=alt.Y("failure_rate:Q", title="Failure rate", axis=alt.Axis(format=".0%")),
        tooltip=["day:T", "succeeded:Q", "failed:Q",
                 alt.Tooltip("failure_rate:Q", format=".1%")],
    ).properties(height=200)


# -- people and reviews --------------------------------------------------------------------------
def usage_per_person(frame: pd.DataFrame) -> alt.Chart:
    return alt.Chart(frame).mark_bar().encode(
        x=alt.X("generations:Q", title="Generations finished"),
        y=alt.Y("person:N", sort="-x", title=None),
        tooltip=["person:N", "sweeps:Q", "generations:Q",
                 alt.Tooltip("real_cost_usd:Q", format="$.2f"),
                 alt.Tooltip("emulated_cost_usd:Q", format="$.2f")],
    ).properties(height=alt.Step(24))


def mean_rating(frame: pd.DataFrame, parameter: str) -> alt.Chart:
    """Mean stars per value of one parameter (rows of ``ratings_by_parameter``)."""
    rows = frame[(frame["parameter"] == parameter) & frame["mean_rating"].notna()].copy()
    rows["value"] = rows["value"].astype(str)
    return alt.Chart(rows).mark_bar().encode(
        x=alt.X("value:N", title=parameter, sort=None),
        y=alt.Y("mean_rating:Q", title="Mean rating", scale=alt.Scale(domain=[0, 5])),
        tooltip=["value:N", alt.Tooltip("mean_rating:Q", format=".2f"), "ratings:Q",
                 "thumbs_up:Q", "thumbs_down:Q"],
    ).properties(height=180)

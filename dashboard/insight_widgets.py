"""Evidence widgets: intervals as error bars, heatmaps, the recommendation card, the
constraint form. They take plain data from ``core.insight`` and draw it."""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from core.insight.recommend import OBJECTIVES, Constraints, Recommendation, SettingEvidence
from dashboard import format as fmt

METRIC_CHOICES = {"rating": "mean rating", "similarity": "similarity (SSIM)",
                  "identity": "identity", "change": "change", "sharpness": "sharpness",
                  "phash_distance": "perceptual-hash distance"}


def constraints_form(key: str) -> tuple[str, Constraints]:
    """The objective and the user's constraints (each off until ticked)."""
    objective = st.selectbox("Maximise", OBJECTIVES, format_func=METRIC_CHOICES.get,
                             key=f"{key}_objective")
    cols = st.columns(5)
    values: dict[str, float | None] = {}
    specs = [("min_similarity", "Similarity ≥", 0.0, 1.0, 0.7, 0.05),
             ("min_identity", "Identity ≥", 0.0, 1.0, 0.4, 0.05),
             ("max_failure_rate", "Failure rate ≤", 0.0, 1.0, 0.1, 0.01),
             ("max_cost_usd", "Cost per image ≤ $", 0.0, 10.0, 0.01, 0.001),
             ("min_rating", "Rating ≥", 1.0, 5.0, 3.5, 0.5)]
    for col, (name, label, low, high, default, step) in zip(cols, specs):
        with col:
            on = st.checkbox(label, key=f"{key}_{name}_on")
            value = st.number_input(label, low, high, default, step, key=f"{key}_{name}",
                                    label_visibility="collapsed", disabled=not on,
                                    format="%.3f" if name == "max_cost_usd" else "%.2f")
            values[name] = float(value) if on else None
    return objective, Constraints(**values)


def _setting(evidence: SettingEvidence) -> str:
    return " · ".join(f"{k} **{fmt.plain(fmt.axis_value(v))}**"
                      for k, v in evidence.setting.items())


def _interval(evidence: SettingEvidence) -> str:
    o = evidence.objective
    if o.mean is None:
        return "no data"
    ci = (f", 95% interval {o.ci_low:.2f}–{o.ci_high:.2f} ({o.method})"
          if o.ci_low is not None else ", no interval (one value)")
    return f"mean {o.mean:.2f} over n = {o.n}{ci}"


def recommendation_card(rec: Recommendation) -> None:
    """The recommended setting with its evidence, its runner-up, and the verdict."""
    if rec.best is None:
        st.warning(fmt.plain(rec.message))
        return
    best = rec.best
    with st.container(border=True):
        st.markdown(f"#### Recommended: {_setting(best)}")
        st.markdown(f"{fmt_objective(rec.objective)}: {_interval(best)}")
        extras = []
        if best.similarity is not None:
            extras.append(f"similarity {best.similarity:.2f}")
        if best.identity is not None:
            extras.append(f"identity {best.identity:.2f}")
        if best.failure_rate is not None:
            extras.append(f"failure rate {best.failure_rate:.0%}"
                          + (f" ({best.safety_failures} safety filter)"
                             if best.safety_failures else ""))
        if best.cost_per_image_usd is not None:
            extras.append(f"{fmt.usd(best.cost_per_image_usd)} per image")
        st.caption(" · ".join(extras) + f" · {best.cells} cells")
        if rec.runner_up is not None:
            st.markdown(f"Runner-up: {_setting(rec.runner_up)} — {_interval(rec.runner_up)}")
        (st.success if rec.distinguishable else st.info)(fmt.plain(rec.message))
        if rec.constraints.describe():
            st.caption(f"Constraints: {rec.constraints.describe()}.")


def fmt_objective(objective: str) -> str:
    return METRIC_CHOICES.get(objective, objective).capitalize()


def settings_table(rec: Recommendation) -> None:
    rows = [{**{k: fmt.axis_value(v) for k, v in s.setting.items()},
             "n": s.objective.n, "mean": s.objective.mean, "ci_low": s.objective.ci_low,
             "ci_high": s.objective.ci_high, "method": s.objective.method,
             "similarity": s.similarity, "identity": s.identity,
             "failure rate": s.failure_rate, "cost/image $": s.cost_per_image_usd,
             "misses": ", ".join(s.violations)} for s in rec.settings]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")


def error_bars(table: pd.DataFrame, axis: str, value_label: str) -> alt.LayerChart:
    """Mean with its 95% interval per value of ``axis`` (columns: axis, n, mean, ci_low,
    ci_high, method)."""
    data = table.assign(value=table[axis].map(fmt.axis_value),
                        low=table["ci_low"].fillna(table["mean"]),
                        high=table["ci_high"].fillna(table["mean"]))
    low, high = float(data["low"].min()), float(data["high"].max())
    pad = (high - low) * 0.15 or 0.5
    scale = alt.Scale(domain=[low - pad, high + pad], nice=False)
    base = alt.Chart(data).encode(x=alt.X("value:N", title=axis, sort=None,
                                          axis=alt.Axis(labelAngle=0)))
    tooltip = ["value", "n", alt.Tooltip("mean:Q", format=".3f"),
               alt.Tooltip("ci_low:Q", format=".3f"), alt.Tooltip("ci_high:Q", format=".3f"),
               "method"]
    points = base.mark_point(filled=True, size=80).encode(
        y=alt.Y("mean:Q", title=value_label, scale=scale), tooltip=tooltip)
    bars = base.mark_rule(strokeWidth=2).encode(y=alt.Y("low:Q", title=value_label, scale=scale),
                                                y2="high:Q", tooltip=tooltip)
    labels = base.mark_text(dx=14, align="left").encode(
        y=alt.Y("mean:Q", scale=scale), text=alt.Text("n:Q", format="d"))
    return (bars + points + labels).properties(height=240)


def heatmap_chart(table: pd.DataFrame, x: str, y: str, value_label: str) -> alt.LayerChart:
    """Mean per (x, y) as colour, n written in each cell (columns: x, y, n, mean)."""
    data = table.assign(xv=table[x].map(fmt.axis_value), yv=table[y].map(fmt.axis_value),
                        label=[f"{m:.2f} (n={n})" for m, n in zip(table["mean"], table["n"])])
    base = alt.Chart(data).encode(x=alt.X("xv:N", title=x, sort=None, axis=alt.Axis(labelAngle=0)),
                                  y=alt.Y("yv:N", title=y, sort=None))
    rect = base.mark_rect().encode(color=alt.Color("mean:Q", title=value_label),
                                   tooltip=["xv", "yv", "n", alt.Tooltip("mean:Q", format=".3f")])
    text = base.mark_text(fontSize=11).encode(text="label:N")
    return (rect + text).properties(height=max(160, 40 * data["yv"].nunique()))


def estimate_vs_actual(estimate: dict[str, Any], actual: dict[str, Any]) -> None:
    a, b = st.columns(2)
    a.metric("Cost", fmt.usd(actual["cost_usd"]),
             delta=_delta(actual["cost_usd"], estimate.get("cost_usd")),
             delta_color="off", help=f"Estimated before submit: {fmt.usd(estimate['cost_usd'] or 0)}")
    b.metric("Duration", "running" if actual["duration_s"] is None
             else fmt.duration(actual["duration_s"]),
             delta=_delta(actual["duration_s"], estimate.get("duration_s")), delta_color="off",
             help="Submit → the last stored output. Estimated before submit: "
                  + (fmt.duration(estimate["duration_s"]) if estimate.get("duration_s")
                     else "not recorded (sweeps made before estimates were kept)"))


def _delta(actual: float | None, estimate: float | None) -> str | None:
    if actual is None or not estimate:
        return None
    return f"{actual / estimate - 1:+.0%} vs estimate"

"""Monitoring: cost, latency, throughput, failures, usage and the monthly projection over a
date range; every chart has a CSV of what it shows. Real and emulated cost never mix."""

import datetime as dt

import streamlit as st

from dashboard import charts, frame, queries
from dashboard import format as fmt
from dashboard import overview_widgets as ov
from dashboard.errors import shown_errors

frame.page_setup()
st.title("Monitoring")

summaries = []
with shown_errors("loading sweeps"):
    summaries = queries.sweep_summaries(limit=1)
if not summaries:
    st.info("Nothing to chart yet: cost, latency and failures appear here once a sweep has run.")
    st.page_link("pages/new_sweep.py", label="Start a new sweep", icon="➕")
    st.stop()

today = dt.datetime.now(dt.timezone.utc).date()
QUICK = {"Today": 1, "7 days": 7, "30 days": 30}
quick = st.segmented_control("Range", [*QUICK, "Custom"], default="30 days", key="mon_quick")
if quick in QUICK:
    picked = (today - dt.timedelta(days=QUICK[quick] - 1), today)
else:
    picked = st.date_input("Days (UTC)", value=(today - dt.timedelta(days=29), today),
                           max_value=today, key="mon_range")
if not isinstance(picked, tuple) or len(picked) != 2:
    st.info("Pick the last day of the range too.")
    st.stop()

span = None
with shown_errors("reading the date range"):
    span = ov.last_days((picked[1] - picked[0]).days + 1, today=picked[1])
if span is None:
    st.stop()
start, end = span
st.caption(f"{picked[0]:%d %b %Y} – {picked[1]:%d %b %Y}, by the time each generation finished. "
           "Generations are what ran (succeeded and failed); canceled cells did not run and "
           "reused outputs cost nothing, so both stay out of cost per generation, throughput "
           "and latency. Failures count every failed attempt, retried ones included.")
with shown_errors("counting what ran"):
    numbers = ov.headline(start, end)
    a, b, c, d = st.columns(4)
    a.metric("Generations", numbers.generations,
             help=f"{numbers.succeeded} succeeded, {numbers.failed} failed attempts")
    b.metric("Failure rate", "–" if numbers.success_rate is None
             else f"{1 - numbers.success_rate:.1%}", help="Failed attempts over all that ran.")
    c.metric("Canceled (did not run)", numbers.canceled)
    d.metric("Reused outputs", numbers.reused,
             help=f"Saved {fmt.usd(numbers.saved_usd)}: what those outputs cost when made.")


def cost() -> None:
    with shown_errors("charting cost per day"):
        by = st.segmented_control("Stack cost by", ["scenario", "model"], default="scenario",
                                  key="mon_by") or "scenario"
        per_day = ov.cost_per_day(start, end, by)
        real_tab, emulated_tab = st.tabs(["Real Replicate spend", "Emulated (not real money)"])
        with real_tab:
            rows = ov.by_endpoint(per_day, "replicate")
            charts.show(charts.cost_per_day, rows, f"real cost per day by {by}", by,
                        empty="No real Replicate spend in this range.")
        with emulated_tab:
            rows = ov.by_endpoint(per_day, "emulator")
            st.caption(f"{fmt.endpoint_badge('emulator')} what real Replicate would have charged.")
            charts.show(charts.cost_per_day, rows, f"emulated cost per day by {by}", by,
                        empty="No emulated generations in this range.")

    left, right = st.columns(2)
    with left:
        st.subheader("Real spend this month vs budget")
        with shown_errors("charting cumulative spend"):
            rows = ov.cumulative_real_spend(start, end)
            charts.show(charts.cumulative_spend, rows, "cumulative real spend",
                        empty="No days in this range.")
    with right:
        st.subheader("Cost per generation")
        with shown_errors("charting cost per generation"):
            rows = ov.cost_per_generation(start, end)
            charts.show(charts.cost_per_generation, rows, "cost per generation",
                        empty="No predictions finished in this range.")


def latency() -> None:
    st.caption("Succeeded predictions only. Our queue: enqueued → a worker took it; Replicate's "
               "queue: created → started; predict time: billed compute; total: enqueued → stored.")
    with shown_errors("charting latency"):
        rows = ov.latency_per_day(start, end)
        charts.show(charts.latency_over_time, rows, "latency p50 p95 per day",
                    empty="No latency measured in this range.")
        rows = ov.latency_histograms(start, end)
        charts.show(charts.latency_histograms, rows, "latency distributions",
                    empty="No latency measured in this range.")


def throughput_and_failures() -> None:
    left, right = st.columns(2)
    with left:
        with shown_errors("charting throughput"):
            rows = ov.throughput(start, end)
            charts.show(charts.throughput, rows, "throughput per day",
                        empty="No predictions finished in this range.")
    with right:
        with shown_errors("charting failures"):
            rows = ov.failure_rate(start, end)
            charts.show(charts.failure_rate, rows, "failure rate per day",
                        empty="No predictions finished in this range.")
    with shown_errors("listing errors"):
        errors = ov.top_errors(start, end)
        if errors.empty:
            st.caption("No failures in this range.")
        else:
            st.markdown("**Most common errors**")
            st.dataframe(errors, hide_index=True, width="stretch")
            st.download_button("CSV of most common errors", errors.to_csv(index=False).encode(),
                               file_name="most-common-errors.csv", mime="text/csv")
            st.markdown("**Failures by parameter** — a rate that climbs with strength (a safety "
                        "filter, say) is a calibration finding, not noise.")
            by = st.segmented_control("Break failures down by", ["strength", "steps", "prompt",
                                                                 "model"], default="strength",
                                      key="mon_fail_by") or "strength"
            breakdown = ov.failures_by(start, end, by)
            st.dataframe(breakdown, hide_index=True, width="stretch", column_config={
                "failure_rate": st.column_config.ProgressColumn("failure rate", min_value=0.0,
                                                                max_value=1.0, format="percent")})
            st.download_button(f"CSV of failures by {by}", breakdown.to_csv(index=False).encode(),
                               file_name=f"failures-by-{by}.csv", mime="text/csv")


def usage_per_person() -> None:
    with shown_errors("charting usage"):
        rows = ov.usage_per_person(start, end)
        left, right = st.columns([2, 3])
        with left:
            st.dataframe(rows, hide_index=True, width="stretch", column_config={
                "real_cost_usd": st.column_config.NumberColumn("Real cost", format="$%.4f"),
                "emulated_cost_usd": st.column_config.NumberColumn("Emulated cost",
                                                                   format="$%.4f")})
        with right:
            charts.show(charts.usage_per_person, rows, "usage per person",
                        empty="Nobody ran anything in this range.")


def monthly_projection() -> None:
    with shown_errors("projecting monthly cost"):
        by_scenario = ov.projection_by_scenario(start, end)
        if not by_scenario.empty:
            st.markdown(
                "Each scenario at the setting it ships — its production version, else its current "
                "one — priced at **that setting's own measured cost per delivered image** (its "
                "predictions in every sweep of the scenario, whatever the range above, failures' "
                "cost spread over the "
                "successes, as Decide measures a setting; real predictions where there are any). "
                "Where a setting never ran, the average of every prediction in this range stands "
                "in, and *counts* says so. A production job renders two images; jobs per month as "
                "in the production team's cost table.")
            users = {c: f"{c.split('_')[3]} users / month" for c in by_scenario.columns
                     if c.startswith("usd_per_month_")}
            st.dataframe(by_scenario, hide_index=True, width="stretch", column_config={
                "scenario": "Scenario", "version": "Version", "counts": "What the cost counts",
                "cost_per_image_usd": st.column_config.NumberColumn("Cost / image",
                                                                    format="$%.4f"),
                **{c: st.column_config.NumberColumn(label, format="$%.2f")
                   for c, label in users.items()}})
            st.download_button("CSV of monthly projection", by_scenario.to_csv(index=False).encode(),
                               file_name="monthly-projection.csv", mime="text/csv")
        else:
            projection = ov.projection(start, end)
            basis = projection.basis
            if projection.table.empty:
                st.caption("No succeeded generation in this range to measure a cost per image "
                           "from.")
            else:
                source = ("real Replicate predictions" if basis.endpoint == "replicate" else
                          "**emulated** predictions (what Replicate would charge; no real spend "
                          "yet)")
                st.markdown(f"No scenario yet, so no chosen setting to price: the **average** of "
                            f"every prediction, {fmt.usd(basis.cost_per_image_usd)} per delivered "
                            f"image over {basis.images} image(s) from {source}; a production job "
                            "renders two images, jobs per month as in the production team's cost "
                            "table.")
                st.dataframe(projection.table, hide_index=True, width="stretch", column_config={
                    "users_per_month": "Users / month", "jobs_per_month": "Jobs / month",
                    "images_per_month": "Images / month",
                    "cost_per_month_usd": st.column_config.NumberColumn("Cost / month",
                                                                        format="$%.2f")})
                st.download_button("CSV of monthly projection",
                                   projection.table.to_csv(index=False).encode(),
                                   file_name="monthly-projection.csv", mime="text/csv")


# One section at a time: lazy tabs run and draw only the chosen one (all five at once were
# nine charts and four tables, over a second of the browser's layout on 2 CPUs); the section
# is in the URL (?mon_section=Latency), so a link opens it.
frame.sections({"Cost": cost, "Latency": latency, "Throughput and failures": throughput_and_failures,
                "Usage per person": usage_per_person, "Monthly projection": monthly_projection},
               key="mon_section")

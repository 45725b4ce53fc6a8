"""New sweep: pick models and images, type the axes (any input of the models' own schemas),
see cells, reuse and cost, submit, go to the run."""

import random

import streamlit as st

from core.planning.pricing import MissingPrice
from core.planning.sweeps import SweepRequest
from dashboard import actions, frame, queries, resources, sweep_form
from dashboard import format as fmt
from dashboard import settings_widgets
from dashboard.errors import shown_errors

user = frame.page_setup()
sweep_form.init_fields()
st.title("New sweep")

with shown_errors("loading scenarios"):
    sweep_form.scenario_picker(queries.presets())
model_text = st.text_input(
    "Models", key="f_model",
    help="owner/name or owner/name:version; several, separated by commas, run the same grid "
         "on each model (the model axis). stability-ai/sdxl by default.")
refs = sweep_form.model_refs(model_text)
views = []
# What the models say (an error, a price to set) comes and goes as they are typed.
with frame.steady():
    with shown_errors("reading the models' inputs"):
        views = actions.model_views(refs)
    for view in sweep_form.missing_prices(views):
        st.warning(f"{fmt.plain(view.ref)} has no price yet: set one to plan a sweep with it "
                   "(Replicate's API does not say what a model costs; copy the rate from the "
                   "model's page).")
        with shown_errors(f"saving the price of {view.ref}"):
            row = next(m for m in settings_widgets.models() if m["ref"] == view.ref)
            changes = settings_widgets.pricing_form(row)
            if changes is not None:
                settings_widgets.save_pricing(row["id"], changes, actor=user)
                actions.model_views.clear()
                st.rerun()

st.subheader("Input images")
files = st.file_uploader("Upload images", type=["png", "jpg", "jpeg", "webp"],
                         accept_multiple_files=True, key="uploader")
upload_notes = frame.steady()  # empty until there is an upload
if files:
    outcomes = sweep_form.take_uploads(files, st.session_state.uploads_seen,
                                       lambda batch: actions.store_uploads(batch, user=user))
    with upload_notes:
        sweep_form.upload_messages(outcomes)
    new_ids = [o["image_id"] for o in outcomes if o["image_id"] is not None]
    st.session_state.chosen_images = list(dict.fromkeys([*st.session_state.chosen_images, *new_ids]))
with st.expander("Library of earlier uploads", expanded=True):
    with shown_errors("loading the image library"):
        sweep_form.image_picker(queries.library(), resources.media)
with frame.steady():  # the note comes and goes with the models
    if views:
        sweep_form.image_input_note(views)

st.subheader("Axes")
left, right = st.columns(2)
with left:
    strength = sweep_form.role_axis("strength", views, help_prefix=(
        "0.2–0.4 subtle, 0.8–1.0 may lose identity. Lists 0.3, 0.5; ranges 0.3-0.6 (+0.1); "
        "counts 0.2-0.8 [4].  \n"))
    guidance = sweep_form.role_axis("guidance", views, help_prefix="Blank: the model's default.  \n")
with right:
    steps = sweep_form.role_axis("steps", views, help_prefix="e.g. 20-40 [3].  \n")
    seeds = sweep_form.role_axis("seed", views,
                                 help_prefix="Whole numbers; -1 draws a random seed now and records it.  \n")
prompts, prompt_sr, negative, variants = sweep_form.prompt_fields()
fixed, other_axes, others_ok = sweep_form.other_inputs(views)

st.subheader("Run")
st.session_state.setdefault("f_budget", float(resources.effective("sweep_budget_usd")))
budget = st.number_input("Budget for this sweep (USD)", min_value=0.0, step=0.5, key="f_budget")
cancel_after = st.number_input(
    "Cancel after (seconds)", min_value=5, max_value=24 * 3600, step=30, key="f_cancel_after",
    help="Sent as Cancel-After with every prediction: one that has not started by then ends "
         "'aborted' and is not billed; one still running is canceled.")
fresh = st.checkbox("Fresh run (pay again instead of reusing identical earlier outputs)",
                    key="f_fresh")
name = st.text_input("Name (optional)", key="f_name")


def _text(role: str, values: list | None) -> str | None:
    """The typed text of a role field, or None when blank or no model has the role."""
    return st.session_state.get(f"f_{role}") if values else None


chosen = st.session_state.chosen_images
plan = None
request = None
if not chosen:
    st.info("Choose at least one input image: upload one or tick one in the library.")
elif views and others_ok and variants is not None and all(
        v is not None or not any(m.roles.name_for(r) for m in views)
        for r, v in (("strength", strength), ("steps", steps), ("guidance", guidance),
                     ("seed", seeds))):
    preset = st.session_state.get("f_scenario")
    request = SweepRequest(
        model_ref=refs[0], extra_models=refs[1:], image_ids=chosen,
        strength=_text("strength", strength), steps=_text("steps", steps),
        guidance=_text("guidance", guidance), seed=_text("seed", seeds) or "-1",
        prompts=prompts.splitlines(), prompt_sr=prompt_sr, negative_prompt=negative,
        fixed=fixed, axes=other_axes, cancel_after_s=int(cancel_after),
        scenario_id=preset.scenario_id if preset else None,
        budget_usd=budget, fresh_run=fresh, name=name)
    with shown_errors("planning the sweep"):
        try:
            plan = actions.plan(request, seed_salt=st.session_state.seed_salt)
        except MissingPrice:
            plan = None  # the price form above says what to do
        if plan is not None:
            sweep_form.preview(plan)
            if plan.estimated_cost_usd > budget:
                st.error(f"The estimate {fmt.usd(plan.estimated_cost_usd)} is over this sweep's "
                         f"budget of {fmt.usd(budget)}: remove values from an axis or raise the "
                         "budget.")
                plan = None
            elif resources.endpoint_kind()[0] == "emulator":
                st.caption("Emulator: the estimate is what real Replicate would charge; "
                           "nothing is charged now.")

if st.button("Submit sweep", type="primary", disabled=plan is None):
    with shown_errors("submitting the sweep"):
        done = actions.submit(request, user=user, seed_salt=st.session_state.seed_salt)
        st.session_state.seed_salt = random.randrange(2**31)
        st.session_state.sweep_id = done.sweep_id
        st.session_state.flash.append(("success" if done.queued else "warning", done.message()))
        st.switch_page("pages/runs.py")

"""New sweep: pick images, type the axes, see cells, reuse and cost, submit, go to the run."""

import random

import streamlit as st

from core.planning.sweeps import SweepRequest
from dashboard import actions, frame, queries, resources, sweep_form
from dashboard import format as fmt
from dashboard.errors import shown_errors

user = frame.page_setup()
sweep_form.init_fields()
st.title("New sweep")

with shown_errors("loading scenarios"):
    sweep_form.scenario_picker(queries.presets())
model = st.text_input("Model", key="f_model",
                      help="owner/name or owner/name:version; stability-ai/sdxl by default.")

st.subheader("Input images")
files = st.file_uploader("Upload images", type=["png", "jpg", "jpeg", "webp"],
                         accept_multiple_files=True, key="uploader")
if files:
    outcomes = sweep_form.take_uploads(files, st.session_state.uploads_seen,
                                       lambda batch: actions.store_uploads(batch, user=user))
    sweep_form.upload_messages(outcomes)
    new_ids = [o["image_id"] for o in outcomes if o["image_id"] is not None]
    st.session_state.chosen_images = list(dict.fromkeys([*st.session_state.chosen_images, *new_ids]))
with st.expander("Library of earlier uploads", expanded=True):
    with shown_errors("loading the image library"):
        sweep_form.image_picker(queries.library(), resources.media)

st.subheader("Axes")
left, right = st.columns(2)
with left:
    strength = sweep_form.number_axis("Strength", "f_strength", name="strength",
                                      help="0.2–0.4 subtle, 0.8–1.0 may lose identity. "
                                           "Lists 0.3, 0.5; ranges 0.3-0.6 (+0.1); counts 0.2-0.8 [4].")
    guidance = sweep_form.number_axis("Guidance", "f_guidance", name="guidance")
with right:
    steps = sweep_form.number_axis("Steps", "f_steps", name="steps", integer=True,
                                   help="25–30 is the production range; e.g. 20-40 [3].")
    seeds = sweep_form.seed_axis()
prompts, prompt_sr, negative, variants = sweep_form.prompt_fields()

st.subheader("Run")
st.session_state.setdefault("f_budget", float(resources.effective("sweep_budget_usd")))
budget = st.number_input("Budget for this sweep (USD)", min_value=0.0, step=0.5, key="f_budget")
fresh = st.checkbox("Fresh run (pay again instead of reusing identical earlier outputs)",
                    key="f_fresh")
name = st.text_input("Name (optional)", key="f_name")

chosen = st.session_state.chosen_images
plan = None
if not chosen:
    st.info("Choose at least one input image: upload one or tick one in the library.")
elif None not in (strength, steps, guidance, seeds, variants):
    preset = st.session_state.get("f_scenario")
    request = SweepRequest(
        model_ref=model, image_ids=chosen, strength=st.session_state.f_strength,
        steps=st.session_state.f_steps, guidance=st.session_state.f_guidance,
        seed=st.session_state.f_seed, prompts=prompts.splitlines(), prompt_sr=prompt_sr,
        negative_prompt=negative, scenario_id=preset.scenario_id if preset else None,
        budget_usd=budget, fresh_run=fresh, name=name)
    with shown_errors("planning the sweep"):
        plan = actions.plan(request, seed_salt=st.session_state.seed_salt)
        sweep_form.preview(plan)
        if plan.estimated_cost_usd > budget:
            st.error(f"The estimate {fmt.usd(plan.estimated_cost_usd)} is over this sweep's "
                     f"budget of {fmt.usd(budget)}: remove values from an axis or raise the budget.")
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

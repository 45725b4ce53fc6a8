"""Settings and system check: model pricing, budgets and caps, the `check` results with their
fixes, and the library of input images (deletable with everything made from them)."""

import streamlit as st

from dashboard import format as fmt
from dashboard import frame, queries, resources, runs_view
from dashboard import settings_widgets as sw
from dashboard.errors import shown_errors

user = frame.page_setup()
st.title("Settings")
runs_view.show_flash()


def models_and_pricing() -> None:
    st.caption("The price table. Replicate's API returns no price, so every cost shown is an "
               "estimate from these rates: per second of the model's hardware (community "
               "models), per output image or per output megapixel (official models), or per "
               "run. Each rate carries the date it was read.")
    models = []
    with shown_errors("loading models"):
        models = sw.models()
    if not models:
        st.info("No models yet: the first sweep adds stability-ai/sdxl, or add it now.")
        if st.button("Add stability-ai/sdxl"):
            with shown_errors("adding the model"):
                st.success(f"{fmt.plain(sw.add_default_model(actor=user))} added.")
    with st.form("st_add_model"):
        new_ref = st.text_input("Add a model", placeholder="owner/name or owner/name:version",
                                help="Its input schema is read from Replicate; set its price "
                                     "below before planning a sweep with it.")
        if st.form_submit_button("Add model") and new_ref.strip():
            with shown_errors(f"adding {new_ref}"):
                st.success(f"{fmt.plain(sw.add_model(new_ref, actor=user))} added: set its price below.")
                models = sw.models()
    for model in models:
        price = model["price"] or "no price yet"
        with st.expander(f"**{fmt.plain(model['ref'])}** · {price} · created via "
                         f"{model['create_via']}",
                         expanded=len(models) == 1 or model["price"] is None):
            with shown_errors(f"saving the pricing of {model['ref']}"):
                changes = sw.pricing_form(model)
                if changes is not None:
                    diff = sw.save_pricing(model["id"], changes, actor=user)
                    if diff:
                        st.success(fmt.plain(f"Pricing of {model['ref']} saved: " + ", ".join(
                            f"{f} {old} → {new}" for f, (old, new) in diff.items())))
                    else:
                        st.info("Nothing changed.")


def budgets_and_caps() -> None:
    st.caption("Budgets cap real Replicate spend only; emulated runs never count. These "
               "override the environment's values.")
    with shown_errors("saving budgets and caps"):
        changes = sw.budgets_form(sw.editable_values())
        if changes == {}:
            st.info("Nothing changed.")
        elif changes:
            sw.save_budgets(changes, actor=user)
            st.session_state.flash.append(("success", "Saved: " + ", ".join(
                f"{sw.SETTING_LABELS[k][0]} {v:g}" for k, v in changes.items())))
            st.rerun()


def system_check() -> None:
    st.caption("The same checks as `python -m core check`: configuration, Redis, database, "
               "media storage, Replicate (or the emulator) and workers.")
    if st.button("Run system check", type="primary", icon=":material/health_and_safety:"):
        with st.spinner("Checking…"):
            st.session_state.st_checks = sw.run_checks()
    if "st_checks" in st.session_state:
        sw.check_results(st.session_state.st_checks)
    else:
        st.info("Press Run system check; each check gives up within a few seconds.")


def image_library() -> None:
    st.caption("Every input image uploaded so far. Deleting one deletes every generation made "
               "from it, with its outputs and reviews — use it for photos of real people who "
               "ask to be removed.")
    images = []
    with shown_errors("loading the image library"):
        images = queries.library()
    if not images:
        st.info("No images yet: upload test images on New sweep.")
        st.page_link("pages/new_sweep.py", label="Upload on New sweep", icon="➕")
    else:
        sw.library_grid(images, resources.media)
        doomed = sw.delete_controls(images)
        if doomed is not None:
            with shown_errors("deleting the image"):
                gone = sw.remove_image(doomed, actor=user)
                st.session_state.flash.append(
                    ("success", f"Image #{doomed} deleted with {gone} generation(s) made from it."))
                st.rerun()


# One section at a time, as on Monitoring (all four at once were every model's pricing form,
# the budgets, the check and the library's thumbnails on every load); a link opens one:
# ?st_section=Image+library.
frame.sections({"Models and pricing": models_and_pricing, "Budgets and caps": budgets_and_caps,
                "System check": system_check, "Image library": image_library}, key="st_section")

"""Settings: model pricing (edited here, with an audit entry), budgets and caps
(core.data.settings_store), the system check, and the input-image library with delete."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from core.data.audit import record
from core.planning.catalog import SDXL_REF, ensure_model, list_models, set_price
from core.planning.pricing import PRICING_KINDS, Pricing, price_text
from core.config import get_settings
from core.data.db import read_scope, session_scope
from core.errors import InvalidInput, NotFound
from core.health import CheckResult, run_all
from core.engine.deletion import delete_photo
from core.data.models import ModelSpec
from core.data.settings_store import EDITABLE, effective_settings, save_settings
from dashboard import format as fmt
from dashboard import queries, resources
from dashboard.resources import runtime

PRICE_COLUMNS = ("pricing_kind", "hardware", "usd_per_second", "usd_per_image",
                 "usd_per_megapixel", "usd_per_input_megapixel", "usd_per_run", "price_as_of")
PRICING_FIELDS = (*PRICE_COLUMNS, "inflight_cap")
SETTING_LABELS = {
    "daily_budget_usd": ("Daily budget (USD)", "Real spend per UTC day; sweeps are refused past it."),
    "monthly_budget_usd": ("Monthly budget (USD)", "Real spend per UTC month."),
    "sweep_budget_usd": ("Default sweep budget (USD)", "Prefilled on New sweep."),
    "inflight_cap": ("Predictions in flight per model", "Shared by all workers through Redis."),
    "max_cells_per_sweep": ("Most cells in one sweep", None),
    "chunk_size": ("Cells per queued job", "A job runs its cells concurrently."),
}


# -- models and pricing --------------------------------------------------------------------------
@st.cache_data(ttl=30, show_spinner=False)
def models() -> list[dict[str, Any]]:
    with read_scope(runtime().engine) as session:
        rows = []
        for m in list_models(session):
            rows.append({"id": m.id, "ref": m.ref, "version_id": m.version_id,
                         "create_via": m.create_via, "deployment": m.deployment,
                         "price": price_text(m),
                         **{f: getattr(m, f) for f in PRICING_FIELDS}})
        return rows


def checked_pricing(changes: dict[str, Any]) -> Pricing:
    """The price as typed, checked by core's Pricing (one set of rules for page and CLI);
    only the chosen unit's rates are kept."""
    kind = changes.get("pricing_kind")
    if kind not in PRICING_KINDS:
        raise InvalidInput(f"Choose how the model is billed: {', '.join(PRICING_KINDS)}.")
    hardware = (changes.get("hardware") or "").strip()
    if len(hardware) > 80:
        raise InvalidInput("The hardware name is at most 80 characters.")
    return Pricing.for_kind(
        kind, changes.get(f"usd_{kind}"),
        hardware=(hardware or None) if kind == "per_second" else None,
        usd_per_input_megapixel=(changes.get("usd_per_input_megapixel")
                                 if kind == "per_megapixel" else None),
        as_of=(changes.get("price_as_of") or "").strip() or None)


def save_pricing(model_id: int, changes: dict[str, Any], *, actor: str) -> dict[str, list[Any]]:
    """Set a model's price and in-flight cap; returns {field: [old, new]} of what changed
    (audited)."""
    unknown = set(changes) - set(PRICING_FIELDS)
    if unknown:
        raise InvalidInput(f"{', '.join(sorted(unknown))} cannot be edited here.")
    cap = changes.get("inflight_cap")
    if cap is not None and cap < 1:
        raise InvalidInput("The in-flight cap is 1 or more, or empty to use the global cap.")
    with session_scope(runtime().engine) as session:
        model = session.get(ModelSpec, model_id)
        if model is None:
            raise NotFound(f"Model {model_id} does not exist (deleted meanwhile?).")
        current = {f: getattr(model, f) for f in PRICING_FIELDS}
        pricing = checked_pricing({**current, **changes})
        _, diff = set_price(session, model.ref, pricing, actor=actor,
                            inflight_cap=changes.get("inflight_cap", current["inflight_cap"]))
    models.clear()
    return diff


def add_model(ref: str, *, actor: str) -> str:
    """Add a model by reference (its schema from the bundled copy or Replicate), so its
    price can be set before it is planned."""
    from dashboard.actions import schema_fetcher

    with session_scope(runtime().engine) as session:
        model = ensure_model(session, ref, fetch_schema=schema_fetcher())
        record(session, actor, "add_model", "model_spec", model.id, {"ref": model.ref})
        added = model.ref
    models.clear()
    queries.model_refs.clear()
    return added


def add_default_model(*, actor: str) -> str:
    return add_model(SDXL_REF, actor=actor)


def pricing_form(model: dict[str, Any]) -> dict[str, Any] | None:
    """The price of one model in its billing unit, with the date it was read."""
    with st.form(f"st_model_{model['id']}"):
        kinds = list(PRICING_KINDS)
        kind = st.selectbox("Pricing", kinds, format_func=PRICING_KINDS.get,
                            index=kinds.index(model["pricing_kind"])
                            if model["pricing_kind"] in kinds else 0,
                            help="Replicate's API returns no price: costs are estimates from "
                                 "this table. Copy the rate from the model's page.")
        hardware = st.text_input("Hardware", value=model["hardware"] or "",
                                 placeholder="Nvidia A40 (Large) GPU",
                                 help="Per-second pricing only: the SKU the rate is for.")
        a, b, c = st.columns(3)
        per_second = a.number_input("USD per second", value=model["usd_per_second"],
                                    min_value=0.0, step=0.000025, format="%.6f")
        per_image = b.number_input("USD per image", value=model["usd_per_image"],
                                   min_value=0.0, step=0.001, format="%.4f")
        per_run = c.number_input("USD per run", value=model["usd_per_run"],
                                 min_value=0.0, step=0.001, format="%.4f")
        d, e, f = st.columns(3)
        per_mp = d.number_input("USD per output megapixel", value=model["usd_per_megapixel"],
                                min_value=0.0, step=0.001, format="%.4f",
                                help="Each output's megapixels are rounded up.")
        per_in_mp = e.number_input("USD per input megapixel",
                                   value=model["usd_per_input_megapixel"], min_value=0.0,
                                   step=0.001, format="%.4f",
                                   help="Per-megapixel models that also bill their input "
                                        "images; rounded up per image.")
        as_of = f.text_input("Price as of", value=model["price_as_of"] or "",
                             placeholder="YYYY-MM-DD", help="Empty: today.")
        cap = st.number_input("In-flight cap", value=model["inflight_cap"], min_value=1, step=1,
                              help="Empty: the global cap under Budgets and caps.")
        if not st.form_submit_button("Save pricing"):
            return None
    return {"pricing_kind": kind, "hardware": hardware, "usd_per_second": per_second,
            "usd_per_image": per_image, "usd_per_megapixel": per_mp,
            "usd_per_input_megapixel": per_in_mp, "usd_per_run": per_run,
            "price_as_of": as_of, "inflight_cap": cap}


# -- budgets and caps ----------------------------------------------------------------------------
def editable_values() -> dict[str, Any]:
    rt = runtime()
    with read_scope(rt.engine) as session:
        current = effective_settings(session, rt.settings)
    return {key: getattr(current, key) for key in EDITABLE}


def save_budgets(changes: dict[str, Any], *, actor: str) -> None:
    rt = runtime()
    with session_scope(rt.engine) as session:
        save_settings(session, rt.settings, changes, actor=actor)
    resources.spend_today.clear()
    resources.effective.clear()


def budgets_form(current: dict[str, Any]) -> dict[str, Any] | None:
    """The changed settings on submit (an empty dict when nothing changed)."""
    with st.form("st_budgets"):
        values: dict[str, Any] = {}
        for column, key in zip(st.columns(3) * 2, EDITABLE):
            label, help_text = SETTING_LABELS.get(key, (key, None))
            money = key.endswith("_usd")
            values[key] = column.number_input(
                label, value=float(current[key]) if money else int(current[key]),
                min_value=0.0 if money else 1, step=1.0 if money else 1, help=help_text,
                key=f"st_{key}")
        if not st.form_submit_button("Save budgets and caps", type="primary"):
            return None
    return {k: v for k, v in values.items() if v != current[k]}


# -- system check --------------------------------------------------------------------------------
def run_checks() -> list[CheckResult]:
    resources.health.clear()
    return run_all(get_settings())


def check_results(results: list[CheckResult]) -> None:
    for check in results:
        took = f" ({fmt.duration(check.seconds)})"
        if check.ok:
            st.success(f"**{check.name}** — {check.detail}{took}", icon="✅")
        else:
            st.error(f"**{check.name}** — {check.detail}{took}\n\n**Fix:** {check.fix}", icon="❌")


# -- image library -------------------------------------------------------------------------------
def remove_image(image_id: int, *, actor: str) -> int:
    """Delete an input image and everything made from it; files go once the rows are gone."""
    deleted = delete_photo(runtime(), image_id, actor=actor)
    queries.library.clear()
    queries.sweep_summaries.clear()
    queries.clear_sweep_cells()
    return deleted.generations


def library_grid(images: list[dict[str, Any]], load: Callable[[str], bytes]) -> None:
    for start in range(0, len(images), 6):
        for column, image in zip(st.columns(6), images[start:start + 6]):
            with column:
                caption = fmt.plain(f"#{image['id']} {image['label']} · {image['uploaded_by']}")
                try:
                    st.image(load(image["thumbnail_key"]), caption=caption, width="stretch")
                except Exception:  # noqa: BLE001 - a missing thumbnail still lists the image
                    st.caption(f"{caption} (no thumbnail)")


def delete_controls(images: list[dict[str, Any]]) -> int | None:
    """Pick an image and confirm; the chosen id when the delete button is pressed."""
    by_id = {i["id"]: i for i in images}
    chosen = st.selectbox("Image to delete", list(by_id), key="st_delete_pick",
                          format_func=lambda i: f"#{i} {by_id[i]['label']} "
                                                f"(uploaded by {by_id[i]['uploaded_by']})")
    sure = st.checkbox(f"Yes, delete image #{chosen} and every generation made from it "
                       "(outputs, reviews) — this cannot be undone", key=f"st_delete_sure_{chosen}")
    if st.button("Delete image", type="primary", disabled=not sure, icon=":material/delete:"):
        return chosen
    return None

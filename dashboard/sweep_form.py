"""New sweep widgets: axis fields with live parsing feedback, every other input of the chosen
models (from their own schemas), the image picker, the preview.

Widgets take plain data and return what the user typed or chose; they do not write."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import streamlit as st

from core.planning import grid
from core.errors import InvalidInput
from core.planning.catalog import ModelView
from core.planning.presets import Preset
from core.planning.schema import describe_value, input_kind
from core.planning.sweeps import DEFAULT_CANCEL_AFTER_S, SweepPlan
from dashboard import format as fmt
from dashboard import frame

# Widget keys of the fields a scenario can prefill, with blank-sweep defaults.
# Blank axis fields leave the model's own default (nothing is sent for them).
FIELD_DEFAULTS = {
    "f_model": "stability-ai/sdxl",
    "f_strength": "0.3, 0.5, 0.7",
    "f_steps": "20, 30",
    "f_guidance": "",
    "f_seed": "-1",
    "f_prompts": "",
    "f_prompt_sr": "",
    "f_negative": "",
    "f_cancel_after": DEFAULT_CANCEL_AFTER_S,
}
MODES = ("fixed", "swept")  # what a picked other input does
OTHER_KEY = "f_other_inputs"  # the other inputs picked to set or sweep
ROLE_LABELS = {"strength": "Strength", "steps": "Steps", "guidance": "Guidance", "seed": "Seed"}


def init_fields() -> None:
    for key, value in FIELD_DEFAULTS.items():
        st.session_state.setdefault(key, value)


def apply_preset(preset: Preset | None) -> None:
    """Fill the fields from a scenario (a widget callback, so it runs before they render):
    its model, prompt, axes and every other parameter as a fixed input."""
    values: dict[str, Any] = dict(FIELD_DEFAULTS)
    for key in [k for k in st.session_state if str(k).startswith(("f_mode_", "f_fixed_", "f_axis_"))]:
        del st.session_state[key]
    values[OTHER_KEY] = []
    if preset is not None:
        values.update({f"f_{axis}": text for axis, text in preset.axes.items()})
        values.update(f_prompts=preset.prompt, f_negative=preset.negative_prompt)
        if preset.model_ref:
            values["f_model"] = preset.model_ref
        values[OTHER_KEY] = list(preset.fixed)
        for name, value in preset.fixed.items():
            values[f"f_mode_{name}"] = "fixed"
            values[f"f_fixed_{name}"] = value
    st.session_state.update(values)


def model_refs(text: str) -> list[str]:
    """The models typed in the Models field: comma separated, each owner/name[:version]."""
    return list(dict.fromkeys(r.strip() for r in text.split(",") if r.strip()))


def _prop_help(view: ModelView, name: str) -> str:
    prop = view.properties.get(name, {})
    bits = [f"{fmt.plain(view.ref)}: `{name}`"]
    if "minimum" in prop or "maximum" in prop:
        bits.append(f"{describe_value(prop.get('minimum', '…'))} to "
                    f"{describe_value(prop.get('maximum', '…'))}")
    if "default" in prop:
        bits.append(f"default {describe_value(prop['default'])}")
    text = ", ".join(bits)
    # Written by whoever published the model: text too, so no image in it is fetched.
    return text + (f" — {fmt.plain(prop['description'])}" if prop.get("description") else "")


def role_axis(role: str, views: list[ModelView], *, help_prefix: str = "") -> list[Any] | None:
    """The strength / steps / guidance / seed field, shown only when a chosen model has that
    input (under whatever name); blank leaves each model's default. Returns the values,
    [] when blank, None when it does not parse or no model has it. In a place that is there
    either way (``frame.steady``): the field below keeps its place when the models change."""
    with frame.steady():
        having = [v for v in views if v.roles.name_for(role)]
        if not having:
            return None
        name = having[0].roles.name_for(role) or role
        help_text = help_prefix + "  \n".join(_prop_help(v, v.roles.name_for(role) or role)
                                                for v in having)
        text = st.text_input(ROLE_LABELS[role], key=f"f_{role}", help=help_text)
        if not text.strip():
            st.caption("→ each model's default")
            return []
        prop = having[0].properties.get(name, {})
        if role == "seed":
            return _feedback(lambda: grid.parse_number_axis(text, name="seed", integer=True))
        return _feedback(lambda: grid.parse_axis(role, text, prop))


def _union_inputs(views: list[ModelView]) -> dict[str, list[ModelView]]:
    """Every input of the chosen models the form does not already cover, in model order."""
    covered = set()
    for view in views:
        covered |= set(view.roles.mapped.values()) | {view.roles.image}
    union: dict[str, list[ModelView]] = {}
    for view in views:
        for name in view.properties:
            if name not in covered:
                union.setdefault(name, []).append(view)
    return union


def _fixed_widget(name: str, prop: dict[str, Any], help_text: str) -> Any:
    key, kind = f"f_fixed_{name}", input_kind(prop)
    default = prop.get("default")
    if kind == "enum":
        options = list(prop["enum"])
        if st.session_state.get(key) not in options:
            st.session_state[key] = default if default in options else options[0]
        return st.selectbox(name, options, key=key, help=help_text)
    if kind == "boolean":
        st.session_state.setdefault(key, bool(default))
        return st.checkbox(name, key=key, help=help_text)
    current = st.session_state.get(key, default)
    if not isinstance(current, str):  # a preset's number, or the schema default
        st.session_state[key] = "" if current is None else (
            describe_value(current) if kind in ("integer", "number") else str(current))
    text = st.text_input(name, key=key, help=help_text)
    return grid.parse_value(name, text, prop) if text.strip() else None


def _defaults_table(union: dict[str, list[ModelView]], picked: list[str]) -> str:
    """The inputs left at the models' defaults as one Markdown table: input, default, what it
    does (the first model's schema; its publisher's text, so escaped like any user text)."""
    def cell(text: object) -> str:
        return fmt.plain(" ".join(str(text).split()))  # escapes | too

    rows = ["| input | default | what it does |", "| --- | --- | --- |"]
    for name, having in union.items():
        if name not in picked:
            prop = having[0].properties[name]
            default = describe_value(prop["default"]) if "default" in prop else "not sent"
            about = str(prop.get("description") or "")
            rows.append(f"| {cell(name)} | {cell(default)} | "
                        f"{cell(about if len(about) <= 140 else about[:137].rsplit(' ', 1)[0] + ' …')} |")
    return "\n".join(rows)


def other_inputs(views: list[ModelView]) -> tuple[dict[str, Any], dict[str, str], bool]:
    """Every other input of the chosen models: the ones picked in "Set or sweep" are fixed or
    swept (a widget that fits its type, the schema's description as help), the rest are left
    to the model's default and listed in one table. Returns (fixed values, axis texts, whether
    everything parsed).

    Only the picked inputs are widgets: SDXL's twelve other inputs as a row of widgets each
    were ~60 of New sweep's ~140 elements, all drawn on every load with the expander shut."""
    fixed: dict[str, Any] = {}
    axes: dict[str, str] = {}
    ok = True
    union = _union_inputs(views)
    st.session_state[OTHER_KEY] = [n for n in st.session_state.get(OTHER_KEY, []) if n in union]
    chosen = len(st.session_state[OTHER_KEY])
    with st.expander(f"Other model inputs ({chosen} set of {len(union)})", expanded=chosen > 0):
        picked = st.multiselect(
            "Set or sweep", list(union), key=OTHER_KEY,
            help="Pick an input to give it a value or an axis. Anything left at the model "
                 "default is not sent. With several models, a value applies to the models "
                 "that have the input.")
        with frame.steady():  # rows come and go as inputs are picked
            for name in picked:
                ok = _other_input_row(name, union[name], fixed, axes) and ok
        if len(picked) < len(union):
            st.markdown(_defaults_table(union, picked))
    return fixed, axes, ok


def _other_input_row(name: str, having: list[ModelView], fixed: dict[str, Any],
                     axes: dict[str, str]) -> bool:
    """One picked input: fixed or swept, and its value; adds to ``fixed`` or ``axes`` and
    returns whether what was typed parses."""
    prop = having[0].properties[name]
    help_text = "  \n".join(_prop_help(v, name) for v in having)
    kind = input_kind(prop)
    modes = list(MODES) if kind not in ("image", "other") else list(MODES[:1])
    if st.session_state.get(f"f_mode_{name}") not in modes:
        st.session_state[f"f_mode_{name}"] = modes[0]
    left, right = st.columns([1, 2])
    mode = left.selectbox(name, modes, key=f"f_mode_{name}", help=help_text)
    with right:
        try:
            if mode == "fixed":
                value = _fixed_widget(name, prop, help_text)
                if value is not None:
                    fixed[name] = value
                return True
            text = st.text_input(f"{name} values", key=f"f_axis_{name}",
                                 help=help_text + "  \nA comma list, or for numbers a range: "
                                 "0.3-0.6 (+0.1), 20-40 [3].")
            if not text.strip():
                return True
            values = _feedback(lambda: grid.parse_axis(name, text, prop))
            if values is None:
                return False
            axes[name] = text
            return True
        except InvalidInput as exc:
            st.error(fmt.plain(exc), icon="✏️")
            return False


def image_input_note(views: list[ModelView]) -> None:
    parts = []
    for view in views:
        image = view.roles.image
        if image is None:
            parts.append(f"{fmt.plain(view.ref)} takes no image (text to image)")
        else:
            parts.append(f"{fmt.plain(view.ref)}: `{image}`" + (" (as a list)" if view.roles.image_is_list
                                                       else ""))
    st.caption("Each chosen photo goes to the model's image input — " + "; ".join(parts) + ".")


def missing_prices(views: list[ModelView]) -> list[ModelView]:
    return [v for v in views if v.price is None]


def scenario_picker(presets: list[Preset]) -> Preset | None:
    options: list[Preset | None] = [None, *presets]
    return st.selectbox(
        "Start from", options, key="f_scenario",
        format_func=lambda p: "Blank sweep" if p is None else f"Scenario {p.name} ({p.status})",
        on_change=lambda: apply_preset(st.session_state.f_scenario),
        help="A scenario fills in its prompt, negative prompt and parameters; edit freely.")


def _feedback(parse: Callable[[], list[Any]], unit: str = "value") -> list[Any] | None:
    """Show what a field parses to, or why it does not; returns the values or None."""
    try:
        values = parse()
    except InvalidInput as exc:
        st.error(fmt.plain(exc), icon="✏️")
        return None
    shown = ", ".join(fmt.axis_value(v) for v in values[:12]) + (" …" if len(values) > 12 else "")
    st.caption(f"→ {len(values)} {unit}{'s' if len(values) != 1 else ''}: {fmt.plain(shown)}")
    return values


def number_axis(label: str, key: str, *, name: str, integer: bool = False,
                help: str | None = None) -> list[Any] | None:
    text = st.text_input(label, key=key, help=help)
    return _feedback(lambda: grid.parse_number_axis(text, name=name, integer=integer))


def seed_axis() -> list[Any] | None:
    text = st.text_input("Seed", key="f_seed",
                         help="Whole numbers; -1 draws a random seed now and records it.")
    return _feedback(lambda: grid.parse_number_axis(text, name="seed", integer=True))


def prompt_fields() -> tuple[str, str, str, list[Any] | None]:
    prompts = st.text_area("Prompt variants (one per line)", key="f_prompts", height=100,
                           placeholder="a portrait in the style of a projection, level 1")
    sr = st.text_input("Prompt S/R (optional)", key="f_prompt_sr",
                       help="Comma-separated: the first item must occur in each prompt; "
                            "each item replaces it in turn.")
    if prompts.strip():
        variants = _feedback(lambda: [v.label + ": " + v.text[:60]
                                      for v in grid.prompt_variants(prompts, sr)], "prompt variant")
    else:
        st.caption("Type at least one prompt; each line is a variant.")
        variants = None
    negative = st.text_area("Negative prompt", key="f_negative", height=68)
    return prompts, sr, negative, variants


def _toggle(image_id: int, state_key: str) -> None:
    chosen = st.session_state[state_key]
    st.session_state[state_key] = ([i for i in chosen if i != image_id] if image_id in chosen
                                   else [*chosen, image_id])


def image_picker(images: list[dict[str, Any]], load: Callable[[str], bytes],
                 state_key: str = "chosen_images", columns: int = 6) -> list[int]:
    """Thumbnails with checkboxes over the ids in ``st.session_state[state_key]``, which
    stays the one source of truth (uploads add to it too); returns the chosen ids."""
    if not images:
        st.caption("No images in the library yet: upload one above.")
        return []
    known = {image["id"] for image in images}
    st.session_state[state_key] = [i for i in st.session_state[state_key] if i in known]
    chosen = st.session_state[state_key]
    cols = st.columns(columns)
    for n, image in enumerate(images):
        picked = image["id"] in chosen
        with cols[n % columns]:
            if image["thumbnail_key"]:
                try:
                    st.image(load(image["thumbnail_key"]), width="stretch")
                except Exception:  # noqa: BLE001 - a missing file must not hide the others
                    st.caption("(thumbnail missing)")
            # The key follows the choice, so the box always shows what session state says.
            st.checkbox(f"{fmt.plain(image['label'][:24])} · {image['width']}×{image['height']}",
                        value=picked, key=f"pick_{image['id']}_{int(picked)}",
                        on_change=_toggle, args=(image["id"], state_key))
    return list(st.session_state[state_key])


def preview(plan: SweepPlan) -> None:
    reused = len(plan.cells) - plan.to_run
    a, b, c, d = st.columns(4)
    a.metric("Cells", f"{len(plan.cells):,}")
    b.metric("Reuse earlier outputs", f"{reused:,}",
             help="Identical requests (same model version, image, parameters and fixed seed) "
                  "reuse the stored output instead of paying again, unless Fresh run is on.")
    c.metric("Estimated cost", fmt.usd(plan.estimated_cost_usd),
             help="An estimate from the price table (Settings): Replicate's API returns no "
                  "price. " + " ".join(f"{fmt.plain(m.ref)}: {_price(m)}." for m in plan.models))
    d.metric("Estimated duration", fmt.duration(plan.estimated_duration_s))
    if plan.estimate is not None:
        st.caption(f"Estimated from {plan.estimate.basis}; about "
                   f"{plan.estimate.predict_s:.1f} s of predict time a cell, "
                   f"{plan.estimate.parallel} cells at a time.")
    for ref, names in plan.not_applied.items():
        st.caption(f"{fmt.plain(ref)} has no {', '.join(names)}: its cells leave "
                   f"{'it' if len(names) == 1 else 'them'} out.")
    several = len(plan.models) > 1
    rows = [{"#": cell.index, **({"model": cell.model} if several else {}),
             "image": cell.image_id, "prompt": cell.prompt_label,
             **{name: cell.values.get(name, "—") for name in plan.axes
                if name not in ("model", "image", "prompt")},
             "reuses output": cell.request_hash in plan.reusable}
            for cell in plan.cells[:500]]
    st.dataframe(pd.DataFrame(rows), hide_index=True, height=min(38 + 35 * len(rows), 320),
                 width="stretch")
    if len(plan.cells) > 500:
        st.caption(f"Showing the first 500 of {len(plan.cells):,} cells.")


def _price(model: Any) -> str:
    from core.planning.pricing import price_text

    return price_text(model) or "no price"


def take_uploads(files: list[Any], seen: dict[str, dict[str, Any]],
                 store: Callable[[list[tuple[str, bytes]]], list[Any]]) -> list[dict[str, Any]]:
    """Store the files not stored yet (the uploader hands the same files to every rerun) and
    return this batch's outcomes: ``{"name", "image_id", "error"}`` per file."""
    new = [f for f in files if f.file_id not in seen]
    if new:
        for upload, outcome in zip(new, store([(f.name, f.getvalue()) for f in new])):
            seen[upload.file_id] = {"name": upload.name, "image_id": outcome.image_id,
                                    "error": outcome.error}
    return [seen[f.file_id] for f in files if f.file_id in seen]


def upload_messages(outcomes: list[dict[str, Any]]) -> None:
    for outcome in outcomes:
        if outcome["error"]:
            st.error(f"{fmt.plain(outcome['name'])}: {fmt.plain(outcome['error'])}", icon="🖼️")
    stored = sum(1 for o in outcomes if o["image_id"] is not None)
    if stored:
        st.caption(f"{stored} uploaded image(s) stored in the library and chosen below.")

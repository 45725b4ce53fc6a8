"""New sweep widgets: axis fields with live parsing feedback, the image picker, the preview.

Widgets take plain data and return what the user typed or chose; they do not write."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import streamlit as st

from core.planning import grid
from core.errors import InvalidInput
from core.planning.presets import Preset
from core.planning.sweeps import SweepPlan
from dashboard import format as fmt

# Widget keys of the fields a scenario can prefill, with blank-sweep defaults.
FIELD_DEFAULTS = {
    "f_model": "stability-ai/sdxl",
    "f_strength": "0.3, 0.5, 0.7",
    "f_steps": "20, 30",
    "f_guidance": "7.5",
    "f_seed": "-1",
    "f_prompts": "",
    "f_prompt_sr": "",
    "f_negative": "",
}


def init_fields() -> None:
    for key, value in FIELD_DEFAULTS.items():
        st.session_state.setdefault(key, value)


def apply_preset(preset: Preset | None) -> None:
    """Fill the fields from a scenario (a widget callback, so it runs before they render)."""
    values = dict(FIELD_DEFAULTS)
    if preset is not None:
        values.update({f"f_{axis}": text for axis, text in preset.axes.items()})
        values.update(f_prompts=preset.prompt, f_negative=preset.negative_prompt)
        if preset.model_ref:
            values["f_model"] = preset.model_ref
    st.session_state.update(values)


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
        st.error(str(exc), icon="✏️")
        return None
    shown = ", ".join(fmt.axis_value(v) for v in values[:12]) + (" …" if len(values) > 12 else "")
    st.caption(f"→ {len(values)} {unit}{'s' if len(values) != 1 else ''}: {shown}")
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
            st.checkbox(f"{image['label'][:24]} · {image['width']}×{image['height']}",
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
    c.metric("Estimated cost", fmt.usd(plan.estimated_cost_usd))
    d.metric("Estimated duration", fmt.duration(plan.estimated_duration_s))
    if plan.estimate is not None:
        st.caption(f"Estimated from {plan.estimate.basis}; about "
                   f"{plan.estimate.predict_s:.1f} s of predict time a cell, "
                   f"{plan.estimate.parallel} cells at a time.")
    rows = [{"#": cell.index, "image": cell.image_id, "prompt": cell.prompt_label,
             "seed": cell.seed, "guidance": cell.guidance, "steps": cell.steps,
             "strength": cell.strength, "reuses output": cell.request_hash in plan.reusable}
            for cell in plan.cells[:500]]
    st.dataframe(pd.DataFrame(rows), hide_index=True, height=min(38 + 35 * len(rows), 320),
                 width="stretch")
    if len(plan.cells) > 500:
        st.caption(f"Showing the first 500 of {len(plan.cells):,} cells.")


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
            st.error(f"{outcome['name']}: {outcome['error']}", icon="🖼️")
    stored = sum(1 for o in outcomes if o["image_id"] is not None)
    if stored:
        st.caption(f"{stored} uploaded image(s) stored in the library and chosen below.")

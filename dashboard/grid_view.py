"""Gallery widgets: axis choice (any swept input, the model too), splitting the other axes
into tabs, the labelled grid with pagination, and the full-size cell dialog. Cells are typed
records (core.insight.grid_cells.GridCell), read here by name."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import streamlit as st

from core.insight.grid_cells import GridCell
from core.insight.grid_cells import swept_axes as swept_axes
from dashboard import format as fmt
from dashboard.frame import sections
from dashboard.panels import panel_component

PAGE_CELLS = 100
NONE = "(none)"
Cell = GridCell
ThumbnailUrl = Callable[[str, str, int], str]  # (stored key, slot, width in px) → URL


def values_of(cells: Sequence[Cell], axis: str) -> list[Any]:
    """The axis's values in order; cells whose model lacks the input have none."""
    return list(dict.fromkeys(cell[axis] for cell in cells if not cell.lacks_axis(axis)))


def choose_axes(swept: list[str]) -> tuple[str | None, str | None]:
    """X across (strength by default) and Y down (steps by default), from the link when it
    names axes this sweep has; an axis the sweep does not have falls back to the default.
    The choice goes back into the link (``?x=…&y=…``)."""
    options = [*swept, NONE]
    x_default = "strength" if "strength" in swept else (swept[0] if swept else NONE)
    _from_link("g_x", "x", options, x_default)
    left, right = st.columns(2)
    x = left.selectbox("Across (X)", options, key="g_x")
    rest = [a for a in options if a != x or a == NONE]
    y_default = next((a for a in ("model", "steps", *swept) if a in rest and a != NONE), NONE)
    _from_link("g_y", "y", rest, y_default)
    y = right.selectbox("Down (Y)", rest, key="g_y")
    for param, value in (("x", x), ("y", y)):
        st.query_params[param] = st.session_state[f"_link_{param}"] = value
    return (None if x == NONE else x), (None if y == NONE else y)


def _from_link(key: str, param: str, options: list[str], default: str) -> None:
    """Before the widget: a link that says something new (pasted, not what this session last
    wrote) sets it when this sweep has that axis; a value this sweep lacks falls back to the
    default; otherwise the person's choice stands."""
    linked = st.query_params.get(param)
    if linked is not None and linked != st.session_state.get(f"_link_{param}") \
            and linked in options:
        st.session_state[key] = linked
    elif st.session_state.get(key) not in options:
        st.session_state[key] = default


def prompt_heading(axis: str, value: Any,
                   texts: Mapping[Any, str]) -> tuple[str, str | None]:
    """A heading for one axis value, and its full text for the tooltip (prompts only):
    ``P1: a portrait, studio…`` rather than a bare P1. ``texts``: the grid's prompt texts by
    label (``prompt_texts``, made once a grid). Raw text: pass it through fmt.plain wherever
    Streamlit reads Markdown."""
    if axis != "prompt":
        texts = {}
    return _heading(axis, value, texts), texts.get(value)


def _heading(axis: str, value: Any, texts: Mapping[Any, str]) -> str:
    from core.insight.contact_sheet import PROMPT_CHARS, shorten

    if axis == "prompt" and texts.get(value):
        return f"{value}: {shorten(texts[value], PROMPT_CHARS)}"
    return f"{axis} {fmt.axis_value(value)}"


def split(cells: Sequence[Cell], axes: list[str]) -> list[tuple[str, list[Cell]]]:
    """Cells grouped by their values on ``axes``, labelled "P1: a portrait, studio… · seed 42"
    (a prompt by its label and its shortened text). Raw labels: fmt.plain them for tabs."""
    from core.insight.contact_sheet import prompt_texts

    texts = prompt_texts(cells) if "prompt" in axes else {}
    groups: dict[tuple, list[Cell]] = {}
    for cell in cells:
        groups.setdefault(tuple(cell[a] for a in axes), []).append(cell)
    return [(" · ".join(_heading(a, v, texts) for a, v in zip(axes, key)) or "All cells", group)
            for key, group in groups.items()]


def state_filter(cells: Sequence[Cell]) -> list[Cell]:
    states = list(fmt.STATE_ICONS)  # a fixed set, so the widget keeps its identity
    shown = st.pills("Show states", states, selection_mode="multi", default=states,
                     format_func=fmt.state, key="g_states")
    return [c for c in cells if c["state"] in shown]


def review_filter(cells: Sequence[Cell]) -> list[Cell]:
    """Keep cells rated at least N stars and/or carrying chosen review tags."""
    tags = sorted({tag for cell in cells for tag in cell.get("tags", [])})
    left, right = st.columns([1, 2])
    min_rating = left.select_slider("Rated at least", options=[0, 1, 2, 3, 4, 5], value=0,
                                    format_func=lambda n: "any" if n == 0 else "★" * n,
                                    key="g_min_rating")
    chosen = right.multiselect("With review tags", tags, key="g_tags",
                               placeholder="any" if tags else "no tags yet")
    if min_rating:
        cells = [c for c in cells if (c.get("rating") or 0) >= min_rating]
    if chosen:
        cells = [c for c in cells if set(chosen) <= set(c.get("tags", []))]
    return list(cells)


SORTS = {"grid position": None, "similarity": "similarity", "identity": "identity",
         "change": "change", "sharpness": "sharpness", "perceptual-hash distance": "phash_distance",
         "rating": "rating"}


def metric_filter(cells: Sequence[Cell]) -> tuple[list[Cell], str | None, bool]:
    """Filter on the image metrics and pick an order: (cells, sort key or None, descending)."""
    a, b, c, d = st.columns(4)
    min_similarity = a.slider("Similarity at least", 0.0, 1.0, 0.0, 0.05, key="g_min_sim",
                              help="SSIM of the output against its input photo (1 = same).")
    max_change = b.slider("Change at most", 0.0, 1.0, 1.0, 0.05, key="g_max_change",
                          help="Mean absolute pixel difference from the input (0–1).")
    min_identity = c.slider("Identity at least", 0.0, 1.0, 0.0, 0.05, key="g_min_identity",
                            help="1 − dlib face-descriptor distance, where the input has a "
                                 "face; 0.4 is dlib's same-person threshold. Cells without a "
                                 "face measured are kept.")
    label = d.selectbox("Sort by", list(SORTS), key="g_sort",
                        help="Any order but grid position shows the cells as a ranked list.")
    kept = [cell for cell in cells if _passes(cell, min_similarity, max_change, min_identity)]
    key = SORTS[label]
    return kept, key, key not in ("change", "phash_distance")


def _passes(cell: Cell, min_similarity: float, max_change: float, min_identity: float) -> bool:
    if min_similarity > 0 and (cell.get("similarity") is None
                               or cell["similarity"] < min_similarity):
        return False
    if max_change < 1 and (cell.get("change") is None or cell["change"] > max_change):
        return False
    identity = cell.get("identity")
    return not (min_identity > 0 and identity is not None and identity < min_identity)


def ranked(cells: Sequence[Cell], key: str, descending: bool, *, url: ThumbnailUrl,
           on_open: Callable[[Cell], None], per_row: int = 6) -> None:
    """Cells ordered by one metric, best first; unmeasured ones last."""
    measured = sorted((c for c in cells if c.get(key) is not None), key=lambda c: c[key],
                      reverse=descending)
    ordered = (measured + [c for c in cells if c.get(key) is None])[:PAGE_CELLS]
    px = thumbnail_px(per_row)
    places = []
    for n, cell in enumerate(ordered):
        value = cell.get(key)
        shown = "—" if value is None else f"{value:.3g}"
        places.append(_place(cell, f"{key} {shown} · #{cell['cell_index']}", url, px,
                             f"ranked.{n}"))
    rows = [{"heading": None, "cells": places[start:start + per_row]}
            for start in range(0, len(places), per_row)]
    _draw({"columns": [], "rows": rows}, ordered, "g_ranked", on_open)


def metrics_line(cell: Cell) -> str:
    """The cell's image metrics in one line, for the dialog."""
    if cell.get("similarity") is None:
        return "Image metrics: not measured yet (`python -m core metrics backfill`)."
    identity = ("no face found in the input" if cell.get("identity") is None
                else f"identity **{cell['identity']:.2f}**")
    return (f"similarity **{cell['similarity']:.3f}** · change **{cell['change']:.3f}** · "
            f"perceptual-hash distance **{cell['phash_distance']}** · sharpness "
            f"**{cell['sharpness']:.0f}** · {identity}")


def rating_text(cell: Cell, user: str | None = None) -> str:
    """"★ 3.5 · n 2 · yours 4" (or "not rated yet") for a cell's caption and dialog."""
    n = cell.get("n_ratings") or 0
    if not n:
        return "not rated yet"
    text = f"★ {cell['rating']:.1f} · n {n}"
    mine = (cell.get("ratings_by") or {}).get(user) if user else None
    return text + (f" · yours {mine}" if mine else "")


def _label(cell: Cell, x: str | None, y: str | None) -> str:
    parts = [f"{a} {fmt.axis_value(cell[a])}" if not cell.lacks_axis(a) else f"no {a}"
             for a in (x, y) if a]
    shown = " · ".join(parts) if parts else f"#{cell['cell_index']}"
    return f"{fmt.STATE_ICONS.get(cell['state'], '')} {shown}"


def thumbnail_px(columns: int) -> int:
    """Pixels across a grid thumbnail for a grid this many columns wide (twice the ~1,200 px
    of the page's width shared out, for high-density screens; at most the stored 400)."""
    return min(400, max(96, 2400 // max(columns, 1) // 32 * 32))


def grid(cells: Sequence[Cell], x: str | None, y: str | None, *, url: ThumbnailUrl,
         on_open: Callable[[Cell], None], key: str, user: str | None = None) -> None:
    """X values across, Y values down, at most PAGE_CELLS cells per page, drawn by the
    gallery_grid component; ``url(key, slot, px)`` gives a thumbnail px wide. Each succeeded
    cell's caption says its ratings (mean, n, ``user``'s); a click on a cell opens it."""
    xs = values_of(cells, x) if x else [None]
    ys = values_of(cells, y) if y else [None]
    at = {(c[x] if x else None, c[y] if y else None): c for c in reversed(cells)}
    # A cell whose model lacks the X input stands in the row's first column and says so.
    lacking_x = {(c[y] if y else None): c for c in reversed(cells) if c.lacks_axis(x)}
    rows_per_page = max(1, PAGE_CELLS // max(len(xs), 1))
    pages = math.ceil(len(ys) / rows_per_page)
    page = 1
    if pages > 1:
        page = st.selectbox(f"Page (of {pages}, {rows_per_page} rows each)", range(1, pages + 1),
                            key=f"page_{key}")
    px = thumbnail_px(len(xs))
    from core.insight.contact_sheet import prompt_texts

    texts = prompt_texts(cells) if "prompt" in (x, y) else {}
    # The slice's label holds user text; the component's key must not (Streamlit refuses
    # "__" in it), so the grid is keyed by a digest of the label.
    ident = hashlib.sha1(key.encode()).hexdigest()[:12]
    columns = [_heading_data(x, value, texts) for value in xs] if x else []
    rows, shown = [], []
    for yv in ys[(page - 1) * rows_per_page: page * rows_per_page]:
        lacking = lacking_x.get(yv)
        places = []
        for n, xv in enumerate(xs):
            cell = at.get((xv, yv)) or (lacking if n == 0 else None)
            if cell is None:
                places.append({"note": f"{lacking['model']} has no {x}"
                               if lacking is not None else "—"})
                continue
            label = _label(cell, x, y)
            if cell.get("n_ratings"):
                label += " · " + rating_text(cell, user)
            places.append(_place(cell, label, url, px, f"{ident}.{len(shown)}"))
            shown.append(cell)
        rows.append({"heading": _heading_data(y, yv, texts) if y else None, "cells": places})
    _draw({"columns": columns, "rows": rows}, shown, f"g_grid_{ident}", on_open)


_component = panel_component("gallery_grid")


def _heading_data(axis: str, value: Any, texts: Mapping[Any, str]) -> dict[str, str | None]:
    heading, full = prompt_heading(axis, value, texts)
    return {"text": heading, "help": full}


def _place(cell: Cell, caption: str, url: ThumbnailUrl, px: int, slot: str) -> dict[str, Any]:
    """One cell as the grid component draws it: its thumbnail's URL (None when it has none,
    or its file is missing), its caption, its state, and its error when it failed."""
    src = None
    if cell["thumbnail"]:
        try:
            src = url(cell["thumbnail"], f"gallery.{slot}", px)
        except Exception:  # noqa: BLE001 - a missing file shows as such, the grid goes on
            caption += " (image missing)"
    return {"id": cell["id"], "caption": caption, "src": src, "state": cell["state"],
            "error": cell["error"][:120] if cell["error"] and not src else None}


@st.fragment
def _draw(data: dict[str, Any], cells: Sequence[Cell], key: str,
          on_open: Callable[[Cell], None]) -> None:
    """The component, and ``on_open`` of the cell it says was clicked in this run. A fragment
    of its own: a click reruns only this, with the grid the enclosing run built, not the
    Gallery's filters and the grid again (bench/browser.py, "open a cell")."""
    result = _component(key=key, data=data, on_open_change=_ignore, height="content")
    opened = next((c for c in cells if c["id"] == result.open), None)
    if opened is not None:
        on_open(opened)


def _ignore() -> None:
    """The component's click is read from its result; the callback only declares it."""


CELL_SECTION = "g_cell_section"  # the cell dialog's chosen tab: Rate, Promote, Model input


@st.dialog("Cell", width="large")
def cell_dialog(cell: Cell, load: Callable[[str], bytes],
                promote: Callable[..., str],
                review: Callable[[Cell], None] | None = None) -> None:
    """The cell full size; ``review(cell)`` draws its ratings and the controls to rate it."""
    left, right = st.columns(2)
    with left:
        st.markdown("**Input**")
        if cell["image_key"]:
            _full_size(load, cell["image_key"], caption=fmt.plain(cell["image"]))
    with right:
        st.markdown(f"**Output** {fmt.state(cell['state'])}")
        if cell["output"]:
            _full_size(load, cell["output"])
        elif cell["error"]:
            st.error(fmt.plain(cell["error"]))
    for extra in cell.extra_outputs:  # a model that returned several images for this cell
        _full_size(load, extra)
    shown = [f"{name} **{cell[name]}**" for name in ("strength", "steps", "guidance", "seed")
             if cell[name] is not None]
    st.markdown(" · ".join([f"model **{fmt.plain(cell.model)}**", *shown,
                            f"prompt **{fmt.plain(cell['prompt'])}**"]))
    if cell.lacks:
        st.caption(f"{fmt.plain(cell.model)} has no {', '.join(cell.lacks)}: this cell ran without "
                   f"{'it' if len(cell.lacks) == 1 else 'them'}.")
    st.markdown(metrics_line(cell))
    st.caption(f"Prompt: {fmt.plain(cell['prompt_text'])}")
    if cell["negative_prompt"]:
        st.caption(f"Negative prompt: {fmt.plain(cell['negative_prompt'])}")
    st.caption(" · ".join([
        f"Cost {fmt.usd(cell['cost_usd'] or 0.0)} (an estimate from the price table: "
        "Replicate's API returns no price)",
        f"predict time {fmt.duration(cell['predict_time_s'])}",
        f"total latency {fmt.duration(cell['latency_s'])}",
        f"{cell['attempts'] or 0} attempt{'' if cell['attempts'] == 1 else 's'}"]))
    st.caption(f"Prediction id: `{cell['prediction_id'] or '—'}` · endpoint "
               f"{cell['endpoint']} · generation {cell['id']}"
               + (f" · reused output of generation {cell['reused_from']}" if cell["reused_from"] else ""))
    from dashboard.scenario_widgets import promote_form

    # Lazy tabs: what is not chosen is neither run nor sent, so the dialog opens with its
    # images, settings and ratings only (bench/browser.py, "open a cell").
    draws = {"Rate": lambda: review(cell)} if review is not None else {}
    draws["Promote"] = lambda: promote_form(cell["id"], key=f"promote_{cell['id']}",
                                            disabled=cell["state"] != "succeeded",
                                            promote=promote)
    draws["Model input"] = lambda: st.json(dict(cell["model_input"]))
    sections(draws, key=CELL_SECTION, in_url=False)


def _full_size(load: Callable[[str], bytes], key: str, caption: str | None = None) -> None:
    """A stored image at full size, its bytes as they are: st.image's "auto" format re-encodes
    every PNG without alpha as a JPEG on every run (~70 ms of a cell dialog's run for a
    1-megapixel output); a PNG or JPEG named as such passes through (a WebP is still
    re-encoded: st.image sends only PNG, JPEG or GIF)."""
    from core.data.storage import content_type_of

    kind = content_type_of(key).removeprefix("image/").upper()
    st.image(load(key), caption=caption, width="stretch",
             output_format=kind if kind in ("PNG", "JPEG") else "auto")

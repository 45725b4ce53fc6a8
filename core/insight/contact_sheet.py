"""A sweep's grid as one labelled PNG: a title, column headings for the X axis, row headings
for the Y axis and an axis legend, like the X/Y plots people paste into a discussion; with a
third axis, every slice in the same PNG under its label; prompts legible, not just P1/P2."""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from PIL import Image, ImageDraw, ImageFont

CELL_PX = 256
GAP_PX = 8
LABEL_PX = 28
ROW_LABEL_PX = 150
TITLE_PX = 40
BACKGROUND = (255, 255, 255)
INK = (30, 30, 30)
MUTED = (120, 120, 120)
EMPTY = (230, 230, 230)

Cell = Mapping[str, Any]
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


def _font(size: int) -> Font:
    for name in ("DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"):
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default(size)


def axis_values(cells: Sequence[Cell], axis: str | None) -> list[Any]:
    """The distinct values of ``axis`` in first-seen order ([None] when there is no axis)."""
    if axis is None:
        return [None]
    return list(dict.fromkeys(cell.get(axis) for cell in cells))


PROMPT_CHARS = 28  # a prompt heading is "P1: its first words…"; the legend has it whole


def _label(axis: str | None, value: Any, prompts: Mapping[Any, str] | None = None) -> str:
    if axis is None:
        return ""
    if axis == "prompt" and prompts and prompts.get(value):
        return f"{value}: {shorten(prompts[value], PROMPT_CHARS)}"
    return f"{axis} {value}"


def shorten(text: str, chars: int) -> str:
    """``text`` cut at a word to at most ``chars`` characters, with "…" when cut."""
    text = " ".join(text.split())
    if len(text) <= chars:
        return text
    cut = text[:chars - 1].rsplit(" ", 1)[0] or text[:chars - 1]
    return cut + "…"


def prompt_texts(cells: Sequence[Cell]) -> dict[Any, str]:
    """Prompt label → its full text (cells carry both as ``prompt`` and ``prompt_text``)."""
    return {c.get("prompt"): str(c.get("prompt_text")) for c in cells if c.get("prompt_text")}


def _fit(draw: ImageDraw.ImageDraw, text: str, font: Font, width: int) -> str:
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def _wrap(draw: ImageDraw.ImageDraw, text: str, font: Font, width: int) -> list[str]:
    """``text`` in lines no wider than ``width``, broken at spaces (a word longer than a
    line is broken inside); nothing is cut off."""
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        line = ""
        for word in paragraph.split(" "):
            candidate = f"{line} {word}" if line else word
            if draw.textlength(candidate, font=font) <= width:
                line = candidate
                continue
            if line:
                lines.append(line)
            while draw.textlength(word, font=font) > width and len(word) > 1:
                n = len(word)
                while n > 1 and draw.textlength(word[:n], font=font) > width:
                    n -= 1
                lines.append(word[:n])
                word = word[n:]
            line = word
        lines.append(line)
    return lines


def _thumbnail(data: bytes | None) -> Image.Image | None:
    if not data:
        return None
    try:
        with Image.open(io.BytesIO(data)) as img:
            rgb = img.convert("RGB")
            rgb.thumbnail((CELL_PX, CELL_PX))
            return rgb
    except OSError:
        return None


def render_grid_png(cells: Sequence[Cell], x_axis: str | None, y_axis: str | None,
                    load_thumbnail: Callable[[Cell], bytes | None], *, title: str = "") -> bytes:
    """One PNG of one grid: X values across, Y values down (see ``render_sheet_png``)."""
    return render_sheet_png([("", list(cells))], x_axis, y_axis, load_thumbnail, title=title)


def render_sheet_png(slices: Sequence[tuple[str, Sequence[Cell]]], x_axis: str | None,
                     y_axis: str | None, load_thumbnail: Callable[[Cell], bytes | None], *,
                     title: str = "") -> bytes:
    """One PNG holding every slice of a sweep (the values of a third axis), each under its
    label, X values across and Y values down. The title wraps, never cut; prompt headings
    show the prompt's first words, and a legend under the grids gives each prompt whole.
    A cell without an image (still running, failed) is a grey box saying its state; cells
    sharing an (x, y) position in a slice keep the first."""
    every = [cell for _, group in slices for cell in group]
    xs, ys = axis_values(every, x_axis), axis_values(every, y_axis)
    prompts = prompt_texts(every) if "prompt" in (x_axis, y_axis) or any(
        "prompt" in label for label, _ in slices) else {}
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    title_font, label_font, small = _font(20), _font(15), _font(13)

    left = ROW_LABEL_PX if y_axis else GAP_PX
    width = max(left + len(xs) * (CELL_PX + GAP_PX) + GAP_PX, 480)
    title_lines = _wrap(probe, title, title_font, width - 2 * GAP_PX) if title else [""]
    title_h = TITLE_PX + (len(title_lines) - 1) * 26
    labelled = len(slices) > 1 or bool(slices and slices[0][0])
    grid_h = (LABEL_PX if x_axis else 0) + len(ys) * (CELL_PX + GAP_PX) + GAP_PX
    block_h = (LABEL_PX if labelled else 0) + grid_h
    legend_lines = [line for label, text in prompts.items()
                    for line in _wrap(probe, f"{label}: {text}", small, width - 2 * GAP_PX)]
    legend_h = (len(legend_lines) * 18 + GAP_PX * 2) if legend_lines else 0
    height = title_h + LABEL_PX + len(slices) * block_h + legend_h
    sheet = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)

    for n, line in enumerate(title_lines):
        draw.text((GAP_PX, 10 + n * 26), line, fill=INK, font=title_font)
    legend = "   ".join(t for t in (f"across: {x_axis} →" if x_axis else "",
                                     f"down: {y_axis} ↓" if y_axis else "") if t)
    draw.text((GAP_PX, title_h), legend, fill=MUTED, font=label_font)
    top = title_h + LABEL_PX
    for slice_label, group in slices:
        if labelled:
            draw.text((GAP_PX, top + 4), _fit(draw, slice_label, label_font, width - 2 * GAP_PX),
                      fill=INK, font=label_font)
            top += LABEL_PX
        _draw_grid(sheet, draw, group, xs, ys, x_axis, y_axis, load_thumbnail, top, left,
                   prompts, label_font, small)
        top += grid_h
    for n, line in enumerate(legend_lines):
        draw.text((GAP_PX, top + GAP_PX + n * 18), line, fill=MUTED, font=small)
    out = io.BytesIO()
    sheet.save(out, format="PNG", optimize=True)
    return out.getvalue()


def _draw_grid(sheet: Image.Image, draw: ImageDraw.ImageDraw, cells: Sequence[Cell],
               xs: list[Any], ys: list[Any], x_axis: str | None, y_axis: str | None,
               load_thumbnail: Callable[[Cell], bytes | None], top: int, left: int,
               prompts: Mapping[Any, str], label_font: Font, small: Font) -> None:
    placed: dict[tuple[int, int], Cell] = {}
    for cell in cells:
        pos = (xs.index(cell.get(x_axis)) if x_axis else 0,
               ys.index(cell.get(y_axis)) if y_axis else 0)
        placed.setdefault(pos, cell)
    if x_axis:
        for i, x in enumerate(xs):
            cx = left + i * (CELL_PX + GAP_PX)
            draw.text((cx, top + 4), _fit(draw, _label(x_axis, x, prompts), label_font, CELL_PX),
                      fill=INK, font=label_font)
        top += LABEL_PX
    for j, y in enumerate(ys):
        cy = top + j * (CELL_PX + GAP_PX)
        if y_axis:
            lines = _wrap(draw, _label(y_axis, y, prompts), label_font, ROW_LABEL_PX - 2 * GAP_PX)
            for n, line in enumerate(lines[:8]):
                draw.text((GAP_PX, cy + CELL_PX // 2 - 8 + int((n - (min(len(lines), 8) - 1) / 2) * 18)),
                          line, fill=INK, font=label_font)
        for i in range(len(xs)):
            cx = left + i * (CELL_PX + GAP_PX)
            at = placed.get((i, j))
            image = _thumbnail(load_thumbnail(at)) if at is not None else None
            if image is None:
                draw.rectangle((cx, cy, cx + CELL_PX - 1, cy + CELL_PX - 1), fill=EMPTY)
                state = str(at.get("state", "")) if at is not None else "no cell"
                draw.text((cx + 10, cy + CELL_PX // 2 - 8), state or "no image", fill=MUTED,
                          font=small)
                continue
            sheet.paste(image, (cx + (CELL_PX - image.width) // 2,
                                cy + (CELL_PX - image.height) // 2))

"""A sweep's grid as one labelled PNG: a title, column headings for the X axis, row headings
for the Y axis and an axis legend, like the X/Y plots people paste into a discussion."""

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


def _label(axis: str | None, value: Any) -> str:
    return "" if axis is None else f"{axis} {value}"


def _fit(draw: ImageDraw.ImageDraw, text: str, font: Font, width: int) -> str:
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


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
    """One PNG of the grid: X values across, Y values down; a cell without an image (still
    running, failed) is a grey box saying its state. Cells sharing an (x, y) position keep
    the first (split other axes before calling)."""
    xs, ys = axis_values(cells, x_axis), axis_values(cells, y_axis)
    placed: dict[tuple[int, int], Cell] = {}
    for cell in cells:
        pos = (xs.index(cell.get(x_axis)) if x_axis else 0,
               ys.index(cell.get(y_axis)) if y_axis else 0)
        placed.setdefault(pos, cell)

    left = ROW_LABEL_PX if y_axis else GAP_PX
    top = TITLE_PX + LABEL_PX + (LABEL_PX if x_axis else 0)
    width = left + len(xs) * (CELL_PX + GAP_PX) + GAP_PX
    height = top + len(ys) * (CELL_PX + GAP_PX) + GAP_PX
    sheet = Image.new("RGB", (max(width, 480), height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    title_font, label_font, small = _font(20), _font(15), _font(13)

    draw.text((GAP_PX, 10), _fit(draw, title, title_font, sheet.width - 2 * GAP_PX),
              fill=INK, font=title_font)
    legend = "   ".join(t for t in (f"across: {x_axis} →" if x_axis else "",
                                     f"down: {y_axis} ↓" if y_axis else "") if t)
    draw.text((GAP_PX, TITLE_PX), legend, fill=MUTED, font=label_font)
    for i, x in enumerate(xs):
        cx = left + i * (CELL_PX + GAP_PX)
        if x_axis:
            draw.text((cx, TITLE_PX + LABEL_PX + 4), _fit(draw, _label(x_axis, x), label_font, CELL_PX),
                      fill=INK, font=label_font)
    for j, y in enumerate(ys):
        cy = top + j * (CELL_PX + GAP_PX)
        if y_axis:
            draw.text((GAP_PX, cy + CELL_PX // 2 - 8),
                      _fit(draw, _label(y_axis, y), label_font, ROW_LABEL_PX - 2 * GAP_PX),
                      fill=INK, font=label_font)
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
            sheet.paste(image, (cx + (CELL_PX - image.width) // 2, cy + (CELL_PX - image.height) // 2))
    out = io.BytesIO()
    sheet.save(out, format="PNG", optimize=True)
    return out.getvalue()

"""The labelled grid PNG: its size follows the axes, images land in their cells, gaps are grey."""

from __future__ import annotations

import io

from PIL import Image

from core.insight.contact_sheet import (CELL_PX, EMPTY, GAP_PX, LABEL_PX, ROW_LABEL_PX, TITLE_PX,
                                axis_values, render_grid_png, render_sheet_png, shorten)


def _png(color: tuple[int, int, int], size: tuple[int, int] = (64, 64)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format="WEBP")
    return out.getvalue()


RED, BLUE = (220, 20, 20), (20, 20, 220)


def _cells() -> list[dict]:
    return [{"strength": s, "steps": n, "state": "succeeded",
             "thumb": _png(RED if s == 0.3 else BLUE)}
            for n in (20, 30) for s in (0.3, 0.5, 0.7)]


def _open(data: bytes) -> Image.Image:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return Image.open(io.BytesIO(data)).convert("RGB")


def _centre(col: int, row: int, with_x: bool = True, with_y: bool = True) -> tuple[int, int]:
    left = ROW_LABEL_PX if with_y else GAP_PX
    top = TITLE_PX + LABEL_PX + (LABEL_PX if with_x else 0)
    return (left + col * (CELL_PX + GAP_PX) + CELL_PX // 2,
            top + row * (CELL_PX + GAP_PX) + CELL_PX // 2)


def test_size_follows_the_axes() -> None:
    sheet = _open(render_grid_png(_cells(), "strength", "steps", lambda c: c["thumb"], title="t"))
    assert sheet.width == ROW_LABEL_PX + 3 * (CELL_PX + GAP_PX) + GAP_PX
    assert sheet.height == TITLE_PX + 2 * LABEL_PX + 2 * (CELL_PX + GAP_PX) + GAP_PX


def test_each_image_lands_in_its_column() -> None:
    sheet = _open(render_grid_png(_cells(), "strength", "steps", lambda c: c["thumb"]))
    for row in (0, 1):
        assert _near(sheet.getpixel(_centre(0, row)), RED)
        assert _near(sheet.getpixel(_centre(1, row)), BLUE)


def test_a_cell_without_an_image_is_a_grey_box() -> None:
    cells = _cells()
    cells[4]["state"], cells[4]["thumb"] = "failed", None  # strength 0.5, steps 30
    sheet = _open(render_grid_png(cells, "strength", "steps", lambda c: c["thumb"]))
    x, y = _centre(1, 1)
    assert sheet.getpixel((x - CELL_PX // 2 + 2, y - CELL_PX // 2 + 2)) == EMPTY


def test_an_unreadable_thumbnail_is_drawn_as_empty_not_raised() -> None:
    cells = _cells()[:1]
    sheet = _open(render_grid_png(cells, "strength", None, lambda c: b"not an image"))
    assert sheet.height == TITLE_PX + 2 * LABEL_PX + CELL_PX + 2 * GAP_PX


def test_no_y_axis_gives_one_row() -> None:
    cells = [c for c in _cells() if c["steps"] == 20]
    sheet = _open(render_grid_png(cells, "strength", None, lambda c: c["thumb"]))
    assert _near(sheet.getpixel(_centre(0, 0, with_y=False)), RED)


def test_axis_values_keep_first_seen_order() -> None:
    assert axis_values([{"a": 3}, {"a": 1}, {"a": 3}], "a") == [3, 1]
    assert axis_values([{"a": 3}], None) == [None]


def _near(pixel: tuple[int, ...], color: tuple[int, int, int], tolerance: int = 40) -> bool:
    return all(abs(p - c) <= tolerance for p, c in zip(pixel, color))


def test_a_long_title_wraps_instead_of_being_cut() -> None:
    short = _open(render_grid_png(_cells(), "strength", "steps", lambda c: c["thumb"], title="t"))
    title = "Sweep 12 · projection-level-1 candidate against production " * 4
    long = _open(render_grid_png(_cells(), "strength", "steps", lambda c: c["thumb"], title=title))
    assert long.width == short.width and long.height > short.height  # more lines, same grid
    # the grid moved down by the extra title lines and is intact
    shift = long.height - short.height
    x, y = _centre(0, 0)
    assert _near(long.getpixel((x, y + shift)), RED)


def test_a_third_axis_makes_one_png_with_every_slice_labelled() -> None:
    slices = [(f"seed {seed}", _cells()) for seed in (1, 2, 3)]
    one = _open(render_grid_png(_cells(), "strength", "steps", lambda c: c["thumb"]))
    sheet = _open(render_sheet_png(slices, "strength", "steps", lambda c: c["thumb"]))
    grid_h = LABEL_PX + 2 * (CELL_PX + GAP_PX) + GAP_PX
    assert sheet.height == TITLE_PX + LABEL_PX + 3 * (LABEL_PX + grid_h)
    assert sheet.width == one.width
    x, _ = _centre(1, 0)
    for n in range(3):  # the middle of each slice's first-row second image is blue
        y = TITLE_PX + LABEL_PX + n * (LABEL_PX + grid_h) + LABEL_PX + LABEL_PX + CELL_PX // 2
        assert _near(sheet.getpixel((x, y)), BLUE)


def test_prompts_show_their_text_and_a_legend_has_them_whole() -> None:
    texts = {"P1": "a portrait, studio light, soft shadows, 85mm", "P2": "a portrait at dusk"}
    cells = [{"prompt": p, "prompt_text": t, "steps": 20, "state": "succeeded",
              "thumb": _png(RED)} for p, t in texts.items()]
    labelled = _open(render_grid_png(cells, "prompt", "steps", lambda c: c["thumb"]))
    bare = [{k: v for k, v in c.items() if k != "prompt_text"} for c in cells]
    plain = _open(render_grid_png(bare, "prompt", "steps", lambda c: c["thumb"]))
    assert labelled.height > plain.height  # the legend below the grid
    assert shorten(texts["P1"], 28) == "a portrait, studio light,…"
    assert shorten("short", 28) == "short"

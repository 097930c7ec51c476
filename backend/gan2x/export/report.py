"""The report picture of a fit (``images/report.png`` of a bundle): labelled
panels in titled sections, composed with numpy and Pillow only.

``compose_report`` takes the images and their labels and returns an RGB
uint8 array; it knows nothing about fits (``gan2x.pipeline`` builds the
panels). Small images are enlarged by a whole factor with nearest-neighbour
sampling to at least ``MIN_PANEL_PX`` a side, so that 64-pixel renders stay
readable; labels use Pillow's default bitmap font (6 x 11 pixels a
character), wrapped to the panel's width.
"""
from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw, ImageFont

MIN_PANEL_PX = 160
"""Panels smaller than this are enlarged by a whole factor to reach it (64 px -> 192 px)."""
MAX_COLUMNS = 6
"""Wider sections wrap onto further rows (every row of a section wraps together)."""
MARGIN = 8
GAP = 6
LINE_PX = 12
BACKGROUND = (255, 255, 255)
INK = (0, 0, 0)
HEADING_INK = (40, 40, 140)


@dataclass
class Panel:
    """One image and its label. ``image``: [H, W, 3] (or [H, W]) floats in
    [0, 1] (sRGB-encoded) or uint8; ``label``: text, ``\\n`` between lines
    (long lines are wrapped to the panel's width)."""
    image: np.ndarray
    label: str = ""


@dataclass
class Section:
    """A heading and rows of panels; the rows' panels line up in columns (so
    a render can sit above its projection)."""
    heading: str
    rows: list = field(default_factory=list)


def _font():
    loader = getattr(ImageFont, "load_default_imagefont", None)  # Pillow >= 10.1: the bitmap font itself
    return loader() if loader is not None else ImageFont.load_default()


def _as_uint8(image) -> np.ndarray:
    array = np.asarray(image)
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=-1)
    if array.ndim != 3 or array.shape[-1] != 3:
        raise ValueError(f"a report panel must be [H, W, 3] or [H, W], found {array.shape}")
    if array.dtype != np.uint8:
        values = np.asarray(array, dtype=np.float64)
        values = np.where(np.isfinite(values), values, 0.0)
        array = np.round(np.clip(values, 0.0, 1.0) * 255.0).astype(np.uint8)
    return array


def _enlarged(image: np.ndarray, min_px: int) -> np.ndarray:
    factor = max(1, math.ceil(min_px / max(image.shape[0], image.shape[1])))
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1) if factor > 1 else image


def _wrap(text: str, width_px: int) -> list[str]:
    characters = max(8, width_px // 6)
    lines: list[str] = []
    for paragraph in text.split("\n"):
        lines.extend(textwrap.wrap(paragraph, characters) or [""])
    return lines


def compose_report(sections: list[Section], title: str = "", min_panel_px: int = MIN_PANEL_PX,
                   max_columns: int = MAX_COLUMNS) -> np.ndarray:
    """The report: ``title``, then each section's heading and its rows of
    labelled panels, on white; text is wrapped to the picture's width.
    Returns [H, W, 3] uint8."""
    font = _font()
    # Every panel enlarged; a section's columns chunked by max_columns, every row of a chunk together.
    blocks = []  # (heading or None, [row: [(pixels, lines)]], cell_w, cell_h)
    for section in sections:
        rows = [[(_enlarged(_as_uint8(panel.image), min_panel_px), panel.label) for panel in row]
                for row in section.rows if row]
        if not rows:
            continue
        columns = max(len(row) for row in rows)
        cell_w = max(pixels.shape[1] for row in rows for pixels, _ in row)
        for first in range(0, columns, max_columns):
            chunk = [[(pixels, _wrap(label, cell_w)) for pixels, label in row[first:first + max_columns]]
                     for row in rows]
            chunk = [row for row in chunk if row]
            blocks.append((section.heading if first == 0 else None, chunk, cell_w))
    content_w = max([MARGIN + len(row) * (cell_w + GAP) - GAP + MARGIN
                     for _, chunk, cell_w in blocks for row in chunk] + [320])
    title_lines = _wrap(title, content_w - 2 * MARGIN) if title else []

    height = MARGIN + len(title_lines) * LINE_PX + (GAP if title_lines else 0)
    layout = []  # (y, heading lines, chunk, cell_w, row heights)
    for heading, chunk, cell_w in blocks:
        y = height
        heading = _wrap(heading, content_w - 2 * MARGIN) if heading is not None else []
        block_h = len(heading) * LINE_PX + 4 if heading else 0
        row_heights = []
        for row in chunk:
            image_h = max(pixels.shape[0] for pixels, _ in row)
            label_h = max(len(lines) for _, lines in row) * LINE_PX
            row_heights.append((image_h, label_h))
            block_h += image_h + 2 + label_h + GAP
        layout.append((y, heading, chunk, cell_w, row_heights))
        height += block_h + GAP
    height += MARGIN

    canvas = Image.new("RGB", (content_w, height), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    for index, line in enumerate(title_lines):
        draw.text((MARGIN, MARGIN + index * LINE_PX), line, font=font, fill=INK)
    for y, heading, chunk, cell_w, row_heights in layout:
        if heading:
            for index, line in enumerate(heading):
                draw.text((MARGIN, y + index * LINE_PX), line, font=font, fill=HEADING_INK)
            y += len(heading) * LINE_PX
            draw.line((MARGIN, y + 1, content_w - MARGIN, y + 1), fill=HEADING_INK)
            y += 4
        for row, (image_h, label_h) in zip(chunk, row_heights):
            for column, (pixels, lines) in enumerate(row):
                x = MARGIN + column * (cell_w + GAP)
                canvas.paste(Image.fromarray(pixels), (x, y))
                for index, line in enumerate(lines):
                    draw.text((x, y + image_h + 2 + index * LINE_PX), line, font=font, fill=INK)
            y += image_h + 2 + label_h + GAP
    return np.asarray(canvas, dtype=np.uint8).copy()

"""The benchmark's figure: for a few samples, what went in, what is true and
what the fit found, side by side, so a person can judge the numbers.

Columns: input | normals true, fit | albedo true, fit | ks true, fit |
relit true, fit (the first of ``evaluate.RELIGHT_DIRECTIONS_CAMERA``).
Normals are shown as ``(n + 1) / 2`` in the target camera frame; albedo
sRGB-encoded (with the fit's albedo scaled per channel to the truth, as the
albedo error is); ks as grey, 1 = white; pixels off the true object are
dark grey.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from .. import conventions
from ..measure import metrics
from ..measure.ground_truth import RELIGHT_DIRECTIONS_CAMERA, relit_pair

COLUMNS = ("input", "normals (true)", "normals (fit)", "albedo (true)", "albedo (fit)",
           "ks (true)", "ks (fit)", "relit (true)", "relit (fit)")
BACKDROP = 0.15


def sample_panels(model, target_state, generator, ws: torch.Tensor, truth: dict, target_image: torch.Tensor,
                  sampling) -> list[np.ndarray]:
    """The row of one sample: ``len(COLUMNS)`` float images [R, R, 3] in [0, 1]."""
    resolution = truth["mask"].shape[-1]
    mask = truth["mask"].cpu().numpy().astype(bool)[..., None]
    render = model.render_image(target_state, resolution, sampling)

    def masked(image) -> np.ndarray:
        image = np.asarray(image.detach().cpu() if hasattr(image, "detach") else image, dtype=np.float64)
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, -1)
        return np.where(mask, np.clip(image, 0, 1), BACKDROP)

    albedo_fit = render["albedo"].cpu().numpy()
    albedo_true = truth["albedo"].cpu().numpy()
    scale = metrics.albedo_scale(albedo_fit, albedo_true, mask[..., 0])
    relit_fit, relit_true = relit_pair(model, target_state, generator, ws, truth, sampling,
                                       RELIGHT_DIRECTIONS_CAMERA[0])
    return [
        ((target_image + 1) / 2).clamp(0, 1).permute(1, 2, 0).cpu().numpy(),
        masked((truth["normal"] + 1) / 2),
        masked((render["normal"] + 1) / 2),
        masked(conventions.srgb_from_linear(np.clip(albedo_true, 0, 1))),
        masked(conventions.srgb_from_linear(np.clip(albedo_fit * scale, 0, 1))),
        masked(truth["specular"]),
        masked(render["specular"]),
        masked(((relit_true["image"][0] + 1) / 2).permute(1, 2, 0)),
        masked(relit_fit["rgb"]),
    ]


def write_figure(rows: list[tuple[str, list[np.ndarray]]], path: Path, cell: int = 128) -> Path:
    """A PNG grid: one labelled row per sample, ``COLUMNS`` across."""
    label_width, header = 120, 18
    sheet = Image.new("RGB", (label_width + cell * len(COLUMNS), header + cell * len(rows)), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    for column, title in enumerate(COLUMNS):
        draw.text((label_width + column * cell + 4, 3), title, fill=(230, 230, 230))
    for row, (label, panels) in enumerate(rows):
        draw.text((4, header + row * cell + cell // 2 - 6), label, fill=(230, 230, 230))
        for column, panel in enumerate(panels):
            image = Image.fromarray((np.clip(panel, 0, 1) * 255 + 0.5).astype(np.uint8))
            sheet.paste(image.resize((cell, cell), Image.Resampling.NEAREST),
                        (label_width + column * cell, header + row * cell))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path

"""Evaluation of a fit against the generator's ground truth, in the input view."""
from __future__ import annotations

import torch

from . import metrics


def ground_truth_maps(generator, ws: torch.Tensor) -> dict | None:
    """The target view's true ``depth`` [R, R] metres, ``normal`` [R, R, 3]
    (camera frame) and ``mask`` [R, R] bool; None for generators without
    ground truth (real GANs)."""
    if not hasattr(generator, "ground_truth"):
        return None
    with torch.no_grad():
        truth = generator.ground_truth(ws)
    return {"depth": truth["depth"][0], "normal": truth["normal"][0].permute(1, 2, 0),
            "mask": truth["hit"][0]}


def shape_metrics(render: dict, truth: dict) -> dict:
    """SIDE (x 10^-2) and MAD (degrees) of a render at the target camera.

    The target camera is frontal (it defines the fit's world frame), so the
    render's world-frame normals are camera-frame normals."""
    return {
        "side_x100": 100.0 * metrics.side(render["depth"], truth["depth"], truth["mask"]),
        "mad_degrees": metrics.mean_angle_deviation(render["normal"], truth["normal"], truth["mask"]),
    }

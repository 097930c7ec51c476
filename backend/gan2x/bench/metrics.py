"""Ground-truth metrics, METHOD.md section 5. All evaluated in the input view
over the true object mask. Inputs are torch tensors or numpy arrays."""
from __future__ import annotations

import math

import numpy as np


def _np(values) -> np.ndarray:
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    return np.asarray(values, dtype=np.float64)


def side(depth_predicted, depth_true, mask) -> float:
    """Scale-invariant depth error sqrt(mean(d^2) - mean(d)^2), d = log pred - log true.
    depth_* [H, W] metres (> 0 on the mask); mask [H, W] bool. Unitless (report x 10^-2)."""
    mask = _np(mask) > 0.5
    difference = np.log(np.clip(_np(depth_predicted)[mask], 1e-6, None)) - np.log(_np(depth_true)[mask])
    return float(math.sqrt(max(np.mean(difference ** 2) - np.mean(difference) ** 2, 0.0)))


def mean_angle_deviation(normal_predicted, normal_true, mask) -> float:
    """Mean angle in degrees between unit normals [H, W, 3] over mask [H, W]."""
    mask = _np(mask) > 0.5
    predicted = _np(normal_predicted)[mask]
    true = _np(normal_true)[mask]
    predicted = predicted / np.clip(np.linalg.norm(predicted, axis=-1, keepdims=True), 1e-9, None)
    true = true / np.clip(np.linalg.norm(true, axis=-1, keepdims=True), 1e-9, None)
    cosine = np.clip((predicted * true).sum(-1), -1.0, 1.0)
    return float(np.degrees(np.arccos(cosine)).mean())


def masked_psnr(image_a, image_b, mask, peak: float = 1.0) -> float:
    """PSNR in dB between [H, W, C] images over mask [H, W]."""
    mask = _np(mask) > 0.5
    error = np.mean((_np(image_a)[mask] - _np(image_b)[mask]) ** 2)
    return float("inf") if error == 0 else float(10.0 * math.log10(peak ** 2 / error))

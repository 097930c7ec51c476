"""Image and ground-truth metrics, METHOD.md section 5. The ground-truth ones are evaluated in the input view
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


def erode(mask, pixels: int = 1) -> np.ndarray:
    """Boolean [H, W] mask shrunk by ``pixels`` (3x3 neighbourhood each time;
    outside the image counts as empty): keeps comparisons off silhouettes,
    where pixel filters and anti-aliasing differ by design."""
    mask = _np(mask) > 0.5
    for _ in range(pixels):
        padded = np.pad(mask, 1, constant_values=False)
        eroded = np.ones_like(mask)
        for dy in range(3):
            for dx in range(3):
                eroded &= padded[dy:dy + mask.shape[0], dx:dx + mask.shape[1]]
        mask = eroded
    return mask


def albedo_scale(albedo_predicted, albedo_true, mask) -> np.ndarray:
    """The least-squares scale per channel [3] taking predicted linear albedo
    [H, W, 3] to the true one over mask [H, W] (albedo and light strength are
    only known up to a product)."""
    mask = _np(mask) > 0.5
    predicted, true = _np(albedo_predicted)[mask], _np(albedo_true)[mask]
    return (predicted * true).sum(0) / np.clip((predicted * predicted).sum(0), 1e-12, None)


def scaled_albedo_error(albedo_predicted, albedo_true, mask) -> float:
    """Mean absolute error of linear albedo [H, W, 3] over mask [H, W] after
    ``albedo_scale``."""
    scale = albedo_scale(albedo_predicted, albedo_true, mask)
    inside = _np(mask) > 0.5
    return float(np.abs(_np(albedo_predicted)[inside] * scale - _np(albedo_true)[inside]).mean())


def albedo_psnr(albedo_predicted, albedo_true, mask) -> float:
    """PSNR in dB (peak 1) of LINEAR albedo [H, W, 3] over mask [H, W] after
    ``albedo_scale`` (the per-channel least-squares scale ``scaled_albedo_error``
    uses): the values compared are linear reflectances in [0, 1], not
    sRGB-encoded ones (dark albedo weighs as little as it reflects)."""
    scale = albedo_scale(albedo_predicted, albedo_true, mask)
    return masked_psnr(_np(albedo_predicted) * scale, albedo_true, mask)


DETAIL_SIGMA_FRACTION = 1.0 / 32.0
"""The detail-normal metric's Gaussian: sigma = this fraction of the image
side (2 px at 64 px, 4 px at 128 px), so it splits the same physical scale
at any resolution."""


def masked_gaussian_blur(values, mask, sigma: float) -> np.ndarray:
    """Normalised convolution: the Gaussian (``sigma`` px, truncated at 3
    sigma, separable) of ``values`` [H, W] or [H, W, C] over mask [H, W],
    divided by the Gaussian of the mask, so pixels outside the mask neither
    count nor pull the average towards 0. 0 where no masked pixel is near."""
    values, weight = _np(values), (_np(mask) > 0.5).astype(np.float64)
    squeeze = values.ndim == 2
    if squeeze:
        values = values[..., None]
    radius = max(1, int(math.ceil(3.0 * sigma)))
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)

    def blur(image):
        for axis in (0, 1):
            padding = [(0, 0)] * image.ndim
            padding[axis] = (radius, radius)
            padded = np.pad(image, padding)
            out = np.zeros_like(image)
            for k, w in zip(offsets, kernel):
                out += w * np.take(padded, np.arange(radius + k, radius + k + image.shape[axis]), axis=axis)
            image = out
        return image

    numerator = blur(values * weight[..., None])
    denominator = blur(weight)[..., None]
    result = np.where(denominator > 1e-9, numerator / np.clip(denominator, 1e-9, None), 0.0)
    return result[..., 0] if squeeze else result


def detail_normals(normals, mask, sigma: float | None = None) -> np.ndarray:
    """The high-frequency part of unit normals [H, W, 3] (camera frame) over
    mask [H, W]: each normal expressed in the frame of the minimal rotation
    that takes its own smoothed normal (``masked_gaussian_blur`` with
    ``sigma`` px, default ``DETAIL_SIGMA_FRACTION`` x W, renormalised) to +Z.
    A surface without detail at that scale gives (0, 0, 1) everywhere;
    [H, W, 3], unit, (0, 0, 1) outside the mask."""
    mask = _np(mask) > 0.5
    n = _np(normals)
    n = n / np.clip(np.linalg.norm(n, axis=-1, keepdims=True), 1e-9, None)
    if sigma is None:
        sigma = DETAIL_SIGMA_FRACTION * n.shape[1]
    smooth = masked_gaussian_blur(n, mask, sigma)
    smooth = smooth / np.clip(np.linalg.norm(smooth, axis=-1, keepdims=True), 1e-9, None)
    # Rodrigues: R = I + [v]x + [v]x^2 / (1 + c), v = s x z, c = s . z, applied to n
    z = np.array([0.0, 0.0, 1.0])
    v = np.cross(smooth, z)
    c = np.clip(smooth[..., 2], -1.0 + 1e-6, None)
    v_cross_n = np.cross(v, n)
    rotated = n + v_cross_n + np.cross(v, v_cross_n) / (1.0 + c)[..., None]
    rotated = rotated / np.clip(np.linalg.norm(rotated, axis=-1, keepdims=True), 1e-9, None)
    return np.where(mask[..., None], rotated, z)


def detail_normal_mad(normal_predicted, normal_true, mask, sigma: float | None = None) -> float:
    """Mean angle in degrees between the ``detail_normals`` of the predicted
    and the true normals [H, W, 3] (camera frame) over mask [H, W] (pass the
    eroded object mask): the MAD of the high-frequency part alone. A smooth
    prediction scores ``detail_normal_magnitude(normal_true)``, the true
    detail's mean angle; only creases in the right places score lower."""
    return mean_angle_deviation(detail_normals(normal_predicted, mask, sigma),
                                detail_normals(normal_true, mask, sigma), mask)


def detail_normal_magnitude(normals, mask, sigma: float | None = None) -> float:
    """Mean angle in degrees of ``detail_normals`` from +Z over mask: how much
    fine relief normals [H, W, 3] hold (what a smooth prediction scores in
    ``detail_normal_mad``)."""
    flat = np.zeros(_np(normals).shape)
    flat[..., 2] = 1.0
    return mean_angle_deviation(detail_normals(normals, mask, sigma), flat, mask)


def mean_absolute_error(predicted, true, mask) -> float:
    """Mean |predicted - true| over mask [H, W] (maps [H, W] or [H, W, C])."""
    mask = _np(mask) > 0.5
    return float(np.abs(_np(predicted)[mask] - _np(true)[mask]).mean())


def log_shininess_error(shininess_predicted, shininess_true, mask) -> float:
    """Mean |ln n_pred - ln n_true| of Phong exponents [H, W] over mask."""
    mask = _np(mask) > 0.5
    return float(np.abs(np.log(_np(shininess_predicted)[mask]) - np.log(_np(shininess_true)[mask])).mean())


def ssim(image_a, image_b) -> float:
    """Structural similarity of two sRGB-encoded images [H, W, 3] in [0, 1]
    (clipped to it) over the whole image: scikit-image's ``structural_similarity`` with its
    defaults (7x7 uniform window, K1 0.01, K2 0.03), ``channel_axis=-1``
    (the mean of the three channels' SSIM) and ``data_range=1``. 1 for
    identical images; lower, down to -1, as they differ. NaN for images
    smaller than the window (under 7 pixels a side), which have no SSIM."""
    from skimage.metrics import structural_similarity

    a, b = np.clip(_np(image_a), 0.0, 1.0), np.clip(_np(image_b), 0.0, 1.0)
    if a.shape != b.shape or a.ndim != 3:
        raise ValueError(f"ssim needs two [H, W, C] images of one shape, got {a.shape} and {b.shape}")
    if min(a.shape[0], a.shape[1]) < 7:
        return float("nan")
    return float(structural_similarity(a, b, channel_axis=-1, data_range=1.0))


def psnr(image_a, image_b, peak: float = 1.0) -> float:
    """PSNR in dB between [H, W, C] images over every pixel."""
    error = np.mean((_np(image_a) - _np(image_b)) ** 2)
    return float("inf") if error == 0 else float(10.0 * math.log10(peak ** 2 / error))

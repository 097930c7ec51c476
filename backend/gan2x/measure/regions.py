"""Fixed image regions for metrics that must not depend on the fit.

``ellipsoid_silhouette``: the pixels of the target view covered by the fit's
initial shape, the ellipsoid prior (``conventions.PRIOR_SEMI_AXES_METRES``),
found by intersecting each pixel's centre ray with it. The same region for
every method and every fit at a resolution, so a method whose silhouette
shrinks cannot score by leaving the hard pixels to the background model
(docs/benchmark.md, "Fidelity").
"""
from __future__ import annotations

import numpy as np
import torch

from .. import conventions
from ..render.cameras import pixel_directions_camera


def ellipsoid_silhouette(resolution: int, semi_axes=conventions.PRIOR_SEMI_AXES_METRES,
                         fov_degrees: float = conventions.FOV_DEGREES,
                         distance: float = conventions.CAMERA_DISTANCE) -> np.ndarray:
    """[R, R] bool, row 0 at the top: pixel centres whose ray from the
    frontal camera (``conventions.orbit_world_from_camera(0, 0)``) meets the
    origin-centred ellipsoid with ``semi_axes`` (metres, x y z)."""
    directions = pixel_directions_camera(resolution, fov_degrees, dtype=torch.float64).numpy()
    directions = directions.reshape(resolution, resolution, 3)  # the frontal camera: camera frame = world
    axes = np.asarray(semi_axes, dtype=np.float64)
    origin = np.array([0.0, 0.0, distance]) / axes
    scaled = directions / axes
    a = (scaled * scaled).sum(-1)
    b = 2.0 * (scaled * origin).sum(-1)
    c = (origin * origin).sum() - 1.0
    return b * b - 4.0 * a * c >= 0.0

"""Calling the fitting stage's numpy fields in chunks, with shape checks.

The fields (docs: ``gan2x.export`` package docstring):

* ``sdf(points [N, 3] float32) -> [N] float32``, metres, world frame,
  negative inside;
* ``materials(points [N, 3] float32) -> dict(albedo=[N, 3] linear in [0, 1],
  specular=[N] Phong ks, shininess=[N] Phong exponent)``, and optionally
  ``normal=[N, 3]``: the shape's unit outward normal there (the normalised
  SDF gradient, world frame), which the bake turns into the normal map.
"""
from __future__ import annotations

import numpy as np

from .. import conventions
from .datatypes import ExportError

DEFAULT_CHUNK = 1 << 18
"""Points per call of a field (262144: ~3 MB of float32 points)."""


def evaluate_sdf(sdf, points: np.ndarray, chunk: int = DEFAULT_CHUNK) -> np.ndarray:
    """``sdf`` at ``points`` [N, 3], called on at most ``chunk`` points at a
    time -> [N] float32. Raises ExportError on a wrong shape or NaN."""
    points = np.ascontiguousarray(points, dtype=np.float32)
    out = np.empty(len(points), dtype=np.float32)
    chunk = max(1, int(chunk))
    for start in range(0, len(points), chunk):
        part = points[start:start + chunk]
        values = np.asarray(sdf(part), dtype=np.float32).reshape(-1)
        if values.shape != (len(part),):
            raise ExportError("sdf returned {} values for {} points".format(values.size, len(part)))
        out[start:start + len(part)] = values
    if np.isnan(out).any():
        raise ExportError("sdf returned NaN at {} of {} points".format(int(np.isnan(out).sum()), len(out)))
    return out


def evaluate_materials(materials, points: np.ndarray, chunk: int = DEFAULT_CHUNK) -> dict:
    """``materials`` at ``points`` [N, 3] in chunks -> dict(albedo [N, 3],
    specular [N], shininess [N]) float32, albedo and specular clipped to
    [0, 1], shininess to [SHININESS_MIN, SHININESS_MAX] (conventions).
    Raises ExportError on a missing key, a wrong shape or a non-finite
    value. When the first chunk's dict has a ``"normal"`` key, the result
    has ``normal`` [N, 3] too (every chunk must then return it), unit
    length, NaN rows where the field gave a zero or non-finite vector."""
    points = np.ascontiguousarray(points, dtype=np.float32)
    count = len(points)
    out = {"albedo": np.empty((count, 3), np.float32), "specular": np.empty(count, np.float32),
           "shininess": np.empty(count, np.float32)}
    chunk = max(1, int(chunk))
    for start in range(0, count, chunk):
        part = points[start:start + chunk]
        values = materials(part)
        if not isinstance(values, dict):
            raise ExportError("materials must return a dict, returned {}".format(type(values).__name__))
        if start == 0 and "normal" in values:
            out["normal"] = np.empty((count, 3), np.float32)
        for key, target in out.items():
            if key not in values:
                raise ExportError("materials returned no '{}' (it must return albedo, specular, "
                                  "shininess)".format(key))
            value = np.asarray(values[key], dtype=np.float32)
            shape = (len(part), 3) if key in ("albedo", "normal") else (len(part),)
            if value.size != int(np.prod(shape)):
                raise ExportError("materials '{}' has shape {} for {} points, expected {}".format(
                    key, value.shape, len(part), shape))
            target[start:start + len(part)] = value.reshape(shape)
    normal = out.pop("normal", None)
    for key, value in out.items():
        if not np.all(np.isfinite(value)):
            raise ExportError("materials returned non-finite '{}' values".format(key))
    if normal is not None:
        with np.errstate(invalid="ignore"):
            length = np.linalg.norm(normal, axis=1, keepdims=True)
            usable = np.isfinite(length) & (length > 1e-12)
            out["normal"] = np.where(usable, normal / np.where(usable, length, 1.0), np.nan).astype(np.float32)
    np.clip(out["albedo"], 0.0, 1.0, out=out["albedo"])
    np.clip(out["specular"], 0.0, 1.0, out=out["specular"])
    np.clip(out["shininess"], conventions.SHININESS_MIN, conventions.SHININESS_MAX, out=out["shininess"])
    return out

"""Triangle rasterisation in numpy: UV space for baking, a camera's image for
rendering and visibility of the exported mesh.

Coordinates given to ``triangle_coverage`` are in *centre units*: the centre
of pixel (row, col) sits at (x, y) = (col, row), so a point at pixel-corner
coordinates (X, Y) (``conventions``: pixel centre at (col + 0.5, row + 0.5))
is passed as (X - 0.5, Y - 0.5). A pixel is covered by a triangle when its
centre lies inside it, edges included.

Cameras follow ``gan2x.conventions``: OpenGL camera axes, ``world_from_camera``
4x4, square images, vertical field of view ``fov_y_degrees``; depth is the
distance along the camera's viewing axis (metres).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CANDIDATES_PER_BATCH = 1 << 22
"""Pixel-in-triangle tests per vectorised batch (bounds memory: ~150 MB)."""


def triangle_coverage(xy: np.ndarray, faces: np.ndarray, width: int, height: int,
                      batch: int = CANDIDATES_PER_BATCH):
    """Every (pixel, triangle) pair whose pixel centre lies in the triangle.

    xy [V, 2] float64 in centre units; faces [F, 3] int. Returns pixel index
    [K] int64 (row * width + col; a pixel on a shared edge or under several
    triangles appears once per triangle), face [K] int64 and the
    barycentric weights [K, 3] float64 (in the 2D plane, summing to 1)."""
    faces = faces.astype(np.int64)
    fx, fy = xy[:, 0][faces], xy[:, 1][faces]  # [F, 3]
    col0 = np.clip(np.ceil(fx.min(axis=1)), 0, width - 1).astype(np.int64)
    col1 = np.clip(np.floor(fx.max(axis=1)), -1, width - 1).astype(np.int64)
    row0 = np.clip(np.ceil(fy.min(axis=1)), 0, height - 1).astype(np.int64)
    row1 = np.clip(np.floor(fy.max(axis=1)), -1, height - 1).astype(np.int64)
    widths = np.maximum(col1 - col0 + 1, 0)
    heights = np.maximum(row1 - row0 + 1, 0)
    det = (fx[:, 1] - fx[:, 0]) * (fy[:, 2] - fy[:, 0]) - (fx[:, 2] - fx[:, 0]) * (fy[:, 1] - fy[:, 0])
    counts = np.where(np.abs(det) > 1e-12, widths * heights, 0)

    pixels, face_ids, weights = [], [], []
    order = np.flatnonzero(counts)
    ends = np.cumsum(counts[order])
    start = 0
    while start < len(order):
        offset = ends[start - 1] if start else 0
        stop = max(start + 1, int(np.searchsorted(ends, offset + batch, side="right")))
        tri = order[start:stop]
        n = counts[tri]
        tri_of = np.repeat(tri, n)
        first = np.repeat(np.cumsum(n) - n, n)
        local = np.arange(int(n.sum()), dtype=np.int64) - first
        cols = col0[tri_of] + local % widths[tri_of]
        rows = row0[tri_of] + local // widths[tri_of]
        px, py = fx[tri_of], fy[tri_of]
        dx, dy = cols - px[:, 0], rows - py[:, 0]
        d = det[tri_of]
        w1 = (dx * (py[:, 2] - py[:, 0]) - (px[:, 2] - px[:, 0]) * dy) / d
        w2 = ((px[:, 1] - px[:, 0]) * dy - dx * (py[:, 1] - py[:, 0])) / d
        w0 = 1.0 - w1 - w2
        eps = -1e-9
        inside = (w0 >= eps) & (w1 >= eps) & (w2 >= eps)
        pixels.append(rows[inside] * width + cols[inside])
        face_ids.append(tri_of[inside])
        weights.append(np.clip(np.stack([w0[inside], w1[inside], w2[inside]], axis=1), 0.0, 1.0))
        start = stop
    if not pixels:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 3))
    weights = np.concatenate(weights)
    weights /= np.maximum(weights.sum(axis=1, keepdims=True), 1e-12)
    return np.concatenate(pixels), np.concatenate(face_ids), weights


@dataclass
class Fragments:
    """What each pixel of a camera's ``size x size`` image sees of a mesh
    (flat, row-major): ``face`` [P] int64 (-1: nothing), ``weights`` [P, 3]
    perspective-correct barycentric weights of that face's vertices,
    ``depth`` [P] metres along the viewing axis (inf: nothing)."""
    size: int
    face: np.ndarray
    weights: np.ndarray
    depth: np.ndarray

    @property
    def covered(self) -> np.ndarray:
        return self.face >= 0


def project_points(points: np.ndarray, world_from_camera: np.ndarray, size: int, fov_y_degrees: float):
    """World points [N, 3] -> pixel-corner coordinates [N, 2] (x right from
    the left edge, y down from the top edge, pixel units of a ``size``-pixel
    image) and depth [N] (metres along the viewing axis)."""
    world_from_camera = np.asarray(world_from_camera, dtype=np.float64)
    camera = (np.asarray(points, dtype=np.float64) - world_from_camera[:3, 3]) @ world_from_camera[:3, :3]
    depth = -camera[:, 2]
    focal = 0.5 * size / np.tan(np.radians(fov_y_degrees) / 2.0)
    safe = np.where(depth > 1e-9, depth, 1e-9)
    x = focal * camera[:, 0] / safe + size / 2.0
    y = size / 2.0 - focal * camera[:, 1] / safe
    return np.stack([x, y], axis=1), depth


def rasterize_view(vertices: np.ndarray, faces: np.ndarray, world_from_camera: np.ndarray, size: int,
                   fov_y_degrees: float) -> Fragments:
    """The nearest triangle at every pixel centre of the camera's image
    (a z-buffer; no culling, so the mesh should be closed)."""
    size = int(size)
    corners, depth = project_points(vertices, world_from_camera, size, fov_y_degrees)
    pixel, face, screen = triangle_coverage(corners - 0.5, faces, size, size)
    face_depth = depth[faces.astype(np.int64)]  # [F, 3]
    # Perspective-correct: interpolate 1 / depth linearly in the image.
    inverse = screen / face_depth[face]
    inverse_depth = inverse.sum(axis=1)
    fragment_depth = 1.0 / np.maximum(inverse_depth, 1e-12)
    out_face = np.full(size * size, -1, dtype=np.int64)
    out_weights = np.zeros((size * size, 3))
    out_depth = np.full(size * size, np.inf)
    if len(pixel):
        order = np.lexsort((fragment_depth, pixel))
        nearest = order[np.r_[True, pixel[order][1:] != pixel[order][:-1]]]
        chosen = pixel[nearest]
        out_face[chosen] = face[nearest]
        out_weights[chosen] = inverse[nearest] / inverse_depth[nearest, None]
        out_depth[chosen] = fragment_depth[nearest]
    return Fragments(size=size, face=out_face, weights=out_weights, depth=out_depth)


def sample_bilinear(image: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """image [H, W, C] or [H, W] at pixel-corner coordinates xy [N, 2] (clamped
    to the image) -> [N, C] or [N]: bilinear between pixel centres."""
    height, width = image.shape[:2]
    x = np.clip(xy[:, 0] - 0.5, 0.0, width - 1.0)
    y = np.clip(xy[:, 1] - 0.5, 0.0, height - 1.0)
    x0 = np.minimum(np.floor(x).astype(np.int64), width - 2) if width > 1 else np.zeros(len(x), np.int64)
    y0 = np.minimum(np.floor(y).astype(np.int64), height - 2) if height > 1 else np.zeros(len(y), np.int64)
    x1, y1 = np.minimum(x0 + 1, width - 1), np.minimum(y0 + 1, height - 1)
    fx, fy = x - x0, y - y0
    if image.ndim == 3:
        fx, fy = fx[:, None], fy[:, None]
    top = image[y0, x0] * (1 - fx) + image[y0, x1] * fx
    bottom = image[y1, x0] * (1 - fx) + image[y1, x1] * fx
    return top * (1 - fy) + bottom * fy


def uv_to_texture_xy(uv: np.ndarray, size: int) -> np.ndarray:
    """UVs [N, 2] (origin bottom-left, docs/bundle.md) -> pixel-corner
    coordinates [N, 2] of a ``size x size`` texture stored row 0 at the top."""
    return np.stack([uv[:, 0] * size, (1.0 - uv[:, 1]) * size], axis=1)

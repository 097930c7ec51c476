"""Texture baking: the fitted material fields sampled at every texel's
surface point.

Input: a ``TexturedMesh`` (uvs origin bottom-left) and ``materials(points
[N, 3] float32, metres, world frame) -> dict(albedo=[N, 3] linear in [0, 1],
specular=[N] Phong ks, shininess=[N] Phong exponent)``, called in chunks of
at most ``chunk`` points.

Texel ``(row, col)`` of an ``S x S`` texture (row 0 at the top, as in the
PNG) has its centre at ``u = (col + 0.5) / S``, ``v = 1 - (row + 0.5) / S``
(docs/bundle.md). A texel is *covered* when its centre lies in a triangle in
UV space (edges included); its surface point is the barycentric
interpolation of that triangle's 3D vertices, and the fields are queried
there. Uncovered texels within ``padding_px`` texels of a covered one get
the mean of their already filled 8-neighbours (dilation, repeated
``padding_px`` times) so that bilinear filtering and mipmaps do not pull in
background at chart seams; the texels left after that get the mean of the
covered texels.

The normal map is flat, (0, 0, 1) in tangent space, for now.
"""
from __future__ import annotations

import numpy as np

from .chunking import DEFAULT_CHUNK, evaluate_materials
from .datatypes import BakedTextures, ExportError, TexturedMesh

CANDIDATES_PER_BATCH = 1 << 22
"""Texel-in-triangle tests per vectorised batch (bounds memory: ~150 MB)."""


def rasterize_uv(mesh: TexturedMesh, size: int, batch: int = CANDIDATES_PER_BATCH):
    """Texels whose centre lies in a UV triangle: (texel index [K] int64 =
    row * size + col, unique; face [K] int64; barycentric weights [K, 3]
    float64). Vectorised over triangles in batches of bounding-box texels."""
    size = int(size)
    uv = mesh.uvs.astype(np.float64)
    faces = mesh.faces.astype(np.int64)
    # Texel-centre coordinates: texel (row, col) centre sits at (x, y) = (col, row).
    x = uv[:, 0] * size - 0.5
    y = (1.0 - uv[:, 1]) * size - 0.5
    fx, fy = x[faces], y[faces]  # [F, 3]
    col0 = np.clip(np.ceil(fx.min(axis=1)), 0, size - 1).astype(np.int64)
    col1 = np.clip(np.floor(fx.max(axis=1)), -1, size - 1).astype(np.int64)
    row0 = np.clip(np.ceil(fy.min(axis=1)), 0, size - 1).astype(np.int64)
    row1 = np.clip(np.floor(fy.max(axis=1)), -1, size - 1).astype(np.int64)
    widths = np.maximum(col1 - col0 + 1, 0)
    heights = np.maximum(row1 - row0 + 1, 0)
    det = (fx[:, 1] - fx[:, 0]) * (fy[:, 2] - fy[:, 0]) - (fx[:, 2] - fx[:, 0]) * (fy[:, 1] - fy[:, 0])
    counts = np.where(np.abs(det) > 1e-12, widths * heights, 0)

    texels, face_ids, weights = [], [], []
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
        texels.append(rows[inside] * size + cols[inside])
        face_ids.append(tri_of[inside])
        weights.append(np.clip(np.stack([w0[inside], w1[inside], w2[inside]], axis=1), 0.0, 1.0))
        start = stop
    if not texels:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 3))
    texels = np.concatenate(texels)
    unique, first_hit = np.unique(texels, return_index=True)  # a texel on a shared edge: one face
    weights = np.concatenate(weights)[first_hit]
    weights /= weights.sum(axis=1, keepdims=True)
    return unique, np.concatenate(face_ids)[first_hit], weights


def bake_textures(mesh: TexturedMesh, materials, size: int = 1024, padding_px: int = 4,
                  chunk: int = DEFAULT_CHUNK) -> BakedTextures:
    """Bakes ``materials`` into ``size x size`` textures (module docstring)."""
    size = int(size)
    if size < 1:
        raise ValueError("size must be positive, got {}".format(size))
    texels, face_ids, weights = rasterize_uv(mesh, size)
    if len(texels) == 0:
        raise ExportError("no texel centre falls inside a UV triangle at {0}x{0}; the UVs are "
                          "degenerate".format(size))
    corners = mesh.vertices.astype(np.float64)[mesh.faces[face_ids].astype(np.int64)]  # [K, 3, 3]
    points = np.einsum("kc,kcd->kd", weights, corners).astype(np.float32)
    values = evaluate_materials(materials, points, chunk=chunk)

    channels = np.zeros((size * size, 5), dtype=np.float32)
    channels[texels, 0:3] = values["albedo"]
    channels[texels, 3] = values["specular"]
    channels[texels, 4] = values["shininess"]
    coverage = np.zeros(size * size, dtype=bool)
    coverage[texels] = True
    channels = channels.reshape(size, size, 5)
    coverage = coverage.reshape(size, size)

    filled = dilate(channels, coverage, padding_px)
    channels[~filled] = channels[coverage].mean(axis=0)

    normal = np.zeros((size, size, 3), dtype=np.float32)
    normal[..., 2] = 1.0
    return BakedTextures(albedo=np.ascontiguousarray(channels[..., 0:3]),
                         specular=np.ascontiguousarray(channels[..., 3]),
                         shininess=np.ascontiguousarray(channels[..., 4]),
                         normal=normal, coverage=coverage)


def dilate(values: np.ndarray, filled: np.ndarray, steps: int) -> np.ndarray:
    """Grows the filled region of ``values`` [H, W, C] (in place) by
    ``steps`` texels: each empty texel next to a filled one (8-neighbourhood)
    takes the mean of its filled neighbours. Returns the new filled mask."""
    filled = filled.copy()
    height, width = filled.shape
    for _ in range(int(steps)):
        weight = filled.astype(np.float32)
        padded_values = np.pad(values * weight[..., None], ((1, 1), (1, 1), (0, 0)))
        padded_weight = np.pad(weight, 1)
        total = np.zeros_like(values)
        count = np.zeros((height, width), dtype=np.float32)
        for dr in (0, 1, 2):
            for dc in (0, 1, 2):
                if dr == 1 and dc == 1:
                    continue
                total += padded_values[dr:dr + height, dc:dc + width]
                count += padded_weight[dr:dr + height, dc:dc + width]
        grow = ~filled & (count > 0)
        if not grow.any():
            break
        values[grow] = total[grow] / count[grow][:, None]
        filled |= grow
    return filled

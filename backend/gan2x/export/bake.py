"""Texture baking: the fitted material fields sampled at every texel's
surface point.

Input: a ``TexturedMesh`` (uvs origin bottom-left) and ``materials(points
[N, 3] float32, metres, world frame) -> dict(albedo=[N, 3] linear in [0, 1],
specular=[N] Phong ks, shininess=[N] Phong exponent)`` and optionally
``normal=[N, 3]`` (the shape's unit outward normal, the normalised SDF
gradient, world frame), called in chunks of at most ``chunk`` points.

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

The normal map holds the detail of the field's normals that the mesh does
not: each covered texel's field normal (``materials(...)["normal"]``)
expressed in the mesh's tangent frame at its surface point
(``export.tangents``: MikkTSpace-style per-vertex tangents ``T`` along
increasing u and signs ``s``; ``T``, the vertex normals ``N`` and ``s``
interpolated barycentrically, not renormalised, ``B = s * cross(N, T)``,
along increasing v: OpenGL +Y). The stored ``c`` solves
``normalise(c.x T + c.y B + c.z N) = field normal`` exactly (how Blender's
Normal Map node decodes it), normalised, with ``c.z`` at least
``MIN_TANGENT_Z``. Where the field agrees with the mesh's interpolated
normal (a surface the mesh already resolves) to within
``FLAT_BELOW_DEGREES`` (less than the PNG's 8-bit step), ``c`` is exactly
(0, 0, 1), so noise does not dither the map. Padding texels average their
neighbours' ``c`` (renormalised); the texels left after that, and texels
whose field normal is zero or not finite, are flat. Without a ``"normal"``
key the whole map is flat, (0, 0, 1).
"""
from __future__ import annotations

import numpy as np

from .chunking import DEFAULT_CHUNK, evaluate_materials
from .datatypes import BakedTextures, ExportError, TexturedMesh
from .raster import CANDIDATES_PER_BATCH, triangle_coverage
from .tangents import encode_tangent_space, frames_at

MIN_TANGENT_Z = 0.05
"""The normal map's smallest tangent-space z: a field normal facing away
from the mesh's surface is tilted back to it."""

FLAT_BELOW_DEGREES = 0.4
"""Field normals within this angle of the mesh's interpolated normal are
stored exactly flat (under the 8-bit PNG's ~0.45 degree step)."""


def rasterize_uv(mesh: TexturedMesh, size: int, batch: int = CANDIDATES_PER_BATCH):
    """Texels whose centre lies in a UV triangle: (texel index [K] int64 =
    row * size + col, unique; face [K] int64; barycentric weights [K, 3]
    float64). A texel on a shared edge takes one of its faces."""
    size = int(size)
    uv = mesh.uvs.astype(np.float64)
    # Texel-centre coordinates: texel (row, col) centre sits at (x, y) = (col, row).
    xy = np.stack([uv[:, 0] * size - 0.5, (1.0 - uv[:, 1]) * size - 0.5], axis=1)
    texels, face_ids, weights = triangle_coverage(xy, mesh.faces, size, size, batch=batch)
    unique, first_hit = np.unique(texels, return_index=True)
    return unique, face_ids[first_hit], weights[first_hit]


def bake_textures(mesh: TexturedMesh, materials, size: int = 1024, padding_px: int = 4,
                  chunk: int = DEFAULT_CHUNK, raster=None) -> BakedTextures:
    """Bakes ``materials`` into ``size x size`` textures (module docstring).
    ``raster``: ``rasterize_uv(mesh, size)`` when the caller has it."""
    size = int(size)
    if size < 1:
        raise ValueError("size must be positive, got {}".format(size))
    texels, face_ids, weights = raster if raster is not None else rasterize_uv(mesh, size)
    if len(texels) == 0:
        raise ExportError("no texel centre falls inside a UV triangle at {0}x{0}; the UVs are "
                          "degenerate".format(size))
    corners = mesh.vertices.astype(np.float64)[mesh.faces[face_ids].astype(np.int64)]  # [K, 3, 3]
    points = np.einsum("kc,kcd->kd", weights, corners).astype(np.float32)
    values = evaluate_materials(materials, points, chunk=chunk)

    channels = np.zeros((size * size, 8), dtype=np.float32)
    channels[:, 7] = 1.0  # flat normal (0, 0, 1) wherever nothing else is written
    channels[texels, 0:3] = values["albedo"]
    channels[texels, 3] = values["specular"]
    channels[texels, 4] = values["shininess"]
    if "normal" in values:
        channels[texels, 5:8] = tangent_space_normals(mesh, face_ids, weights, values["normal"])
    coverage = np.zeros(size * size, dtype=bool)
    coverage[texels] = True
    channels = channels.reshape(size, size, 8)
    coverage = coverage.reshape(size, size)

    filled = dilate(channels, coverage, padding_px)
    channels[~filled, 0:5] = channels[coverage, 0:5].mean(axis=0)
    channels[~filled, 5:8] = (0.0, 0.0, 1.0)
    normal = channels[..., 5:8]
    normal /= np.maximum(np.linalg.norm(normal, axis=-1, keepdims=True), 1e-12)  # padding averages
    return BakedTextures(albedo=np.ascontiguousarray(channels[..., 0:3]),
                         specular=np.ascontiguousarray(channels[..., 3]),
                         shininess=np.ascontiguousarray(channels[..., 4]),
                         normal=np.ascontiguousarray(normal), coverage=coverage)


def tangent_space_normals(mesh: TexturedMesh, face_ids: np.ndarray, weights: np.ndarray,
                          world_normals: np.ndarray) -> np.ndarray:
    """The field's unit world normals [K, 3] at the texels' surface points
    (face [K], barycentric weights [K, 3]) in the mesh's tangent frames
    there (module docstring) -> [K, 3] float32 unit, z > 0; NaN rows (no
    normal from the field) and deviations under ``FLAT_BELOW_DEGREES`` give
    the flat (0, 0, 1)."""
    tangents, normals, signs = frames_at(mesh, face_ids, weights)
    encoded = encode_tangent_space(world_normals, tangents, normals, signs, min_z=MIN_TANGENT_Z)
    encoded[encoded[:, 2] >= np.cos(np.radians(FLAT_BELOW_DEGREES))] = (0.0, 0.0, 1.0)
    return encoded


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

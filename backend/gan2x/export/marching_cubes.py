"""Marching cubes of the fitted SDF into a watertight, outward-facing mesh.

Input: ``sdf(points [N, 3] float32) -> [N] float32``, metres, world frame
(gan2x.conventions: +Y up, object inside the unit sphere), negative inside.
It is called in chunks of at most ``chunk`` points, on the regular grid of
``resolution ** 3`` points spanning ``[-bound, bound] ** 3`` (grid corners
included), then at the vertices for the normals.

Output: ``TriangleMesh(vertices [V, 3] float32 metres, faces [F, 3] int32
counter-clockwise seen from outside, normals [V, 3] float32 outward)``.
``extract_mesh_and_grid`` returns the sampled grid too (``SdfGrid``: the
values and the bound), for steps that read the field again without
evaluating it (the ambient occlusion bake).

Duplicate vertices are merged and degenerate faces dropped, so the mesh is
closed (every edge shared by exactly two faces) wherever the zero level set
is closed inside the box. A surface cut by the box is left open there.
"""
from __future__ import annotations

import numpy as np

from .chunking import DEFAULT_CHUNK, evaluate_sdf
from .datatypes import ExportError, SdfGrid, TriangleMesh


NARROW_BAND_BLOCK = 4
"""Fine cells a side of one block of the narrow-band sampling (``sample_grid``)."""
NARROW_BAND_MARGIN = 1.5
"""A block without a sign change is skipped when one of its corners has
|sdf| above this many block diagonals (for a true distance field one
diagonal would do: the ball around that corner holds the whole block and no
surface); the margin leaves room for a fitted SDF whose gradient norm runs
above 1."""


def sample_grid(sdf, resolution: int = 128, bound: float = 1.0, chunk: int = DEFAULT_CHUNK,
                narrow_band: bool = True) -> np.ndarray:
    """``sdf`` on the grid: [R, R, R] float32 with ``grid[i, j, k] =
    sdf(x_i, y_j, z_k)`` and ``x_i = -bound + 2 * bound * i / (R - 1)``.

    ``narrow_band`` (grids of 64 and more): ``sdf`` is first sampled at the
    corners of blocks of ``NARROW_BAND_BLOCK`` cells; only blocks that may
    hold surface (a sign change among their corners, or no corner farther
    than ``NARROW_BAND_MARGIN`` block diagonals from it) are sampled at
    every grid point, and the others get the corners' trilinear
    interpolation (the right sign, and values marching cubes never uses).
    The mesh is the dense grid's wherever the field's gradient norm stays
    under the margin (tests compare them); docs/performance.md gives the
    fraction of points evaluated and the time saved."""
    resolution = int(resolution)
    if resolution < 2:
        raise ValueError("resolution must be at least 2, got {}".format(resolution))
    axis = np.linspace(-bound, bound, resolution, dtype=np.float32)
    if not narrow_band or resolution < 64:
        return _sample_points(sdf, axis, np.arange(resolution ** 3, dtype=np.int64), chunk).reshape(
            resolution, resolution, resolution)
    block = NARROW_BAND_BLOCK
    corners = np.unique(np.append(np.arange(0, resolution, block), resolution - 1))  # [C] fine indices
    coarse_axis = axis[corners]
    count = len(corners)
    coarse_index = (corners[:, None, None] * resolution ** 2 + corners[None, :, None] * resolution
                    + corners[None, None, :]).reshape(-1)
    coarse = _sample_points(sdf, axis, coarse_index, chunk).reshape(count, count, count)
    grid = _trilinear_upsample(coarse, coarse_axis, axis)
    # a block (a, b, c) spans corners[a]..corners[a + 1] on each axis
    spacing = float(axis[1] - axis[0])
    reach = NARROW_BAND_MARGIN * block * spacing * np.sqrt(3.0)
    # A corner farther than ``reach`` from the surface puts the whole block
    # (within one diagonal of it) on its side; a sign change means a crossing.
    far = np.abs(coarse) > reach
    signs = np.sign(coarse)
    any_far = np.zeros((count - 1,) * 3, dtype=bool)
    crossing = np.zeros((count - 1,) * 3, dtype=bool)
    first = signs[:-1, :-1, :-1]
    for di in (0, 1):
        for dj in (0, 1):
            for dk in (0, 1):
                corner = (slice(di, count - 1 + di), slice(dj, count - 1 + dj), slice(dk, count - 1 + dk))
                any_far |= far[corner]
                crossing |= signs[corner] != first
    active = crossing | ~any_far
    fine = np.zeros((resolution,) * 3, dtype=bool)
    for a, b, c in np.argwhere(active):
        fine[corners[a]:corners[a + 1] + 1, corners[b]:corners[b + 1] + 1, corners[c]:corners[c + 1] + 1] = True
    index = np.flatnonzero(fine.reshape(-1))
    grid.reshape(-1)[index] = _sample_points(sdf, axis, index, chunk)
    return grid


def _sample_points(sdf, axis: np.ndarray, flat_index: np.ndarray, chunk: int) -> np.ndarray:
    """``sdf`` at the grid points with these flat (row-major i, j, k) indices -> [N] float32."""
    resolution = len(axis)
    out = np.empty(len(flat_index), dtype=np.float32)
    chunk = max(1, int(chunk))
    for start in range(0, len(flat_index), chunk):
        index = flat_index[start:start + chunk]
        points = np.stack([axis[index // (resolution * resolution)],
                           axis[(index // resolution) % resolution],
                           axis[index % resolution]], axis=1)
        out[start:start + len(index)] = evaluate_sdf(sdf, points, chunk=len(index))
    return out


def _trilinear_upsample(coarse: np.ndarray, coarse_axis: np.ndarray, axis: np.ndarray) -> np.ndarray:
    """Values [C, C, C] at ``coarse_axis`` on each axis -> [R, R, R] at ``axis``, trilinear."""
    upper = np.clip(np.searchsorted(coarse_axis, axis, side="right"), 1, len(coarse_axis) - 1)
    lower = upper - 1
    weight = ((axis - coarse_axis[lower]) / (coarse_axis[upper] - coarse_axis[lower])).astype(np.float32)
    values = coarse
    for dimension in range(3):
        shape = [1, 1, 1]
        shape[dimension] = -1
        w = weight.reshape(shape)
        values = (np.take(values, lower, axis=dimension) * (1 - w) + np.take(values, upper, axis=dimension) * w)
    return values.astype(np.float32)


def extract_mesh(sdf, resolution: int = 128, bound: float = 1.0, chunk: int = DEFAULT_CHUNK,
                 largest_component: bool = False) -> TriangleMesh:
    """Zero level set of ``sdf`` in ``[-bound, bound] ** 3`` sampled on
    ``resolution ** 3`` grid points (see the module docstring).

    ``largest_component`` keeps only the connected component with the most
    faces (drops floaters). Raises ExportError when the SDF has no zero
    crossing in the box."""
    return extract_mesh_and_grid(sdf, resolution, bound, chunk, largest_component)[0]


def extract_mesh_and_grid(sdf, resolution: int = 128, bound: float = 1.0, chunk: int = DEFAULT_CHUNK,
                          largest_component: bool = False):
    """``extract_mesh``, and the grid it was extracted from: (TriangleMesh,
    SdfGrid). The grid serves later steps that need the field without
    evaluating it again (``ambient_occlusion`` marches rays in it)."""
    import mcubes

    grid = sample_grid(sdf, resolution, bound, chunk)
    low, high = float(grid.min()), float(grid.max())
    if not (low < 0.0 < high):
        raise ExportError(
            "the SDF has no zero crossing in the box [-{b}, {b}]^3 sampled at {r}^3 (values from {lo:.4g} "
            "to {hi:.4g}); the surface is {where}".format(
                b=bound, r=resolution, lo=low, hi=high,
                where="missing or smaller than a voxel" if low >= 0.0 else "outside the box"))
    voxel = 2.0 * bound / (resolution - 1)
    index_vertices, faces = mcubes.marching_cubes(grid, 0.0)
    vertices = index_vertices * voxel - bound
    vertices, faces = merge_duplicate_vertices(vertices, faces.astype(np.int64))
    if len(faces) == 0:
        raise ExportError("marching cubes found no triangles (the surface is below the grid resolution)")
    if signed_volume(vertices, faces) < 0.0:
        faces = faces[:, ::-1]
    if largest_component:
        vertices, faces = keep_largest_component(vertices, faces)
    normals = sdf_normals(sdf, vertices, step=0.5 * voxel, chunk=chunk)
    fallback = ~np.isfinite(normals).all(axis=1)
    if fallback.any():
        normals[fallback] = face_area_normals(vertices, faces)[fallback]
    mesh = TriangleMesh(vertices=vertices.astype(np.float32), faces=faces.astype(np.int32),
                        normals=normals.astype(np.float32))
    return mesh, SdfGrid(grid, bound)


def merge_duplicate_vertices(vertices: np.ndarray, faces: np.ndarray):
    """Merges vertices at identical positions, drops faces that collapse
    (two equal indices) and vertices no face uses."""
    unique, inverse = np.unique(vertices, axis=0, return_inverse=True)
    faces = inverse.reshape(-1)[faces]
    degenerate = ((faces[:, 0] == faces[:, 1]) | (faces[:, 1] == faces[:, 2])
                  | (faces[:, 0] == faces[:, 2]))
    return compact(unique, faces[~degenerate])


def compact(vertices: np.ndarray, faces: np.ndarray):
    """Drops vertices no face uses; renumbers faces."""
    used = np.zeros(len(vertices), dtype=bool)
    used[faces.reshape(-1)] = True
    renumber = np.cumsum(used) - 1
    return vertices[used], renumber[faces]


def signed_volume(vertices: np.ndarray, faces: np.ndarray) -> float:
    """Volume enclosed by a closed mesh, positive when its faces wind
    counter-clockwise seen from outside."""
    v = vertices.astype(np.float64)
    a, b, c = v[faces[:, 0]], v[faces[:, 1]], v[faces[:, 2]]
    return float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6.0)


def face_area_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted average of face normals at each vertex, unit length."""
    v = vertices.astype(np.float64)
    cross = np.cross(v[faces[:, 1]] - v[faces[:, 0]], v[faces[:, 2]] - v[faces[:, 0]])
    normals = np.zeros_like(v)
    for corner in range(3):
        np.add.at(normals, faces[:, corner], cross)
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    return normals / np.where(length > 0, length, 1.0)


def sdf_normals(sdf, points: np.ndarray, step: float, chunk: int = DEFAULT_CHUNK) -> np.ndarray:
    """Unit gradient of ``sdf`` at ``points`` by central differences (6
    evaluations per point): outward for an SDF that is negative inside.
    Rows where the gradient vanishes are NaN."""
    points = points.astype(np.float32)
    offsets = np.concatenate([np.eye(3), -np.eye(3)]).astype(np.float32) * np.float32(step)
    normals = np.empty((len(points), 3), dtype=np.float64)
    per_call = max(1, int(chunk) // 6)
    for start in range(0, len(points), per_call):
        part = points[start:start + per_call]
        probes = (part[None, :, :] + offsets[:, None, :]).reshape(-1, 3)
        values = evaluate_sdf(sdf, probes, chunk=len(probes)).astype(np.float64).reshape(6, len(part))
        normals[start:start + len(part)] = (values[:3] - values[3:]).T / (2.0 * step)
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        normals = normals / length
    normals[(length[:, 0] <= 1e-12) | ~np.isfinite(length[:, 0])] = np.nan
    return normals


def connected_components(vertex_count: int, faces: np.ndarray) -> np.ndarray:
    """Component label (its smallest vertex index) of every vertex, vertices
    connected through faces. Vectorised union-find with pointer jumping."""
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]]]).astype(np.int64)
    parent = np.arange(vertex_count, dtype=np.int64)
    while True:
        pu, pv = parent[edges[:, 0]], parent[edges[:, 1]]
        differ = pu != pv
        if not differ.any():
            return parent
        lo, hi = np.minimum(pu[differ], pv[differ]), np.maximum(pu[differ], pv[differ])
        np.minimum.at(parent, hi, lo)
        while True:
            jumped = parent[parent]
            if np.array_equal(jumped, parent):
                break
            parent = jumped


def keep_largest_component(vertices: np.ndarray, faces: np.ndarray):
    """The connected component with the most faces (vertices, faces)."""
    labels = connected_components(len(vertices), faces)
    face_labels = labels[faces[:, 0]]
    values, counts = np.unique(face_labels, return_counts=True)
    if len(values) <= 1:
        return vertices, faces
    keep = face_labels == values[np.argmax(counts)]
    return compact(vertices, faces[keep])

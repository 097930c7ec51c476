"""Ambient occlusion (AO) of the exported mesh, baked into a texture from
the sampled SDF. Numpy only.

Meaning: the AO of a surface point is the fraction of its cosine-weighted
hemisphere (about the outward normal) from which a ray escapes to
``max_distance`` metres without entering the object: 1 = fully open, 0 =
fully enclosed. Only the object itself occludes (the bundle has no other
geometry), and only within ``max_distance`` (0.25 m by default), so the
texture holds the cavities and contact regions of the shape, not the
distant sky.

How (cost: well under the export's budget at mesh 128 / texture 1024 on one
CPU thread; docs/performance.md has no separate line for it, the export's
``export_ambient_occlusion`` timing does):

* the field is never evaluated again: rays march in the ``SdfGrid`` that
  marching cubes sampled (``marching_cubes.extract_mesh_and_grid``), read
  with trilinear interpolation; a point outside the grid's box is open
  space;
* per vertex (once per vertex of the unwrapped mesh's source, seams
  share), ``directions`` fixed rays: a golden-angle spiral on the unit disk
  lifted to the hemisphere (Malley's method, so the set is
  cosine-weighted and the plain mean is the cosine-weighted fraction),
  turned into the vertex's normal frame. The set is the same for every
  vertex and every run: the result is deterministic;
* each ray starts ``start_offset_voxels`` grid cells out along the normal
  (so a vertex does not occlude itself through interpolation error) and
  sphere-traces: it steps by the SDF value (at least ``min_step_voxels``
  cells, never past ``max_distance``), is occluded once the SDF is negative
  (inside the object), and escapes when the SDF ball about its point
  reaches past ``max_distance`` (nothing can lie on the rest of the ray)
  or it leaves the box. A ray still undecided after ``max_steps`` steps
  (grazing a surface) counts as open;
* texels take the barycentric interpolation of their triangle's vertex
  values (``bake.rasterize_uv``, the same texel-to-triangle mapping as the
  other textures), then are dilated by ``padding_px`` like them
  (``bake.dilate``); texels left after that get the covered texels' mean.

Units: metres for distances, grid cells ("voxels", ``SdfGrid.voxel``) for
the offsets and the minimum step.
"""
from __future__ import annotations

import math

import numpy as np

from .bake import dilate, rasterize_uv
from .datatypes import ExportError, SdfGrid, TexturedMesh

DIRECTIONS = 24
"""Rays per vertex."""
MAX_DISTANCE = 0.25
"""Metres a ray travels before it counts as escaped."""
START_OFFSET_VOXELS = 1.5
"""A ray starts this many grid cells out from the surface, along the normal."""
MIN_STEP_VOXELS = 0.5
"""The smallest sphere-tracing step, in grid cells."""
MAX_STEPS = 16
"""Sphere-tracing steps per ray; a ray neither occluded nor escaped by then counts as open."""
RAYS_PER_BATCH = 1 << 20
"""Rays traced together (bounds memory: about 100 MB)."""

_GOLDEN_ANGLE = math.pi * (3.0 - math.sqrt(5.0))


def hemisphere_directions(count: int = DIRECTIONS) -> np.ndarray:
    """``count`` unit directions [count, 3] float64 about +Z (z > 0),
    cosine-weighted: points of a golden-angle spiral spread evenly over the
    unit disk, lifted to the hemisphere (``z = sqrt(1 - x^2 - y^2)``)."""
    count = int(count)
    if count < 1:
        raise ValueError("count must be positive, got {}".format(count))
    index = np.arange(count, dtype=np.float64)
    radius = np.sqrt((index + 0.5) / count)
    angle = index * _GOLDEN_ANGLE
    x, y = radius * np.cos(angle), radius * np.sin(angle)
    return np.stack([x, y, np.sqrt(np.maximum(0.0, 1.0 - x * x - y * y))], axis=1)


def normal_frames(normals: np.ndarray):
    """Two unit tangents [V, 3] each, orthogonal to the unit ``normals`` [V, 3]
    and to each other (a right-handed frame (t, b, n) per row)."""
    normals = np.asarray(normals, dtype=np.float64)
    # Cross with the world axis least aligned with the normal: never degenerate.
    axis = np.zeros_like(normals)
    axis[np.arange(len(normals)), np.argmin(np.abs(normals), axis=1)] = 1.0
    tangent = np.cross(axis, normals)
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True)
    bitangent = np.cross(normals, tangent)
    return tangent, bitangent


class GridSampler:
    """Trilinear reads of an ``SdfGrid``. The grid is repacked once so that
    the four (y, z) corners of a cell sit together (16 bytes): a read
    gathers two such records (x and x + 1) instead of eight floats."""

    def __init__(self, grid: SdfGrid):
        values = grid.values
        self.resolution = grid.resolution
        self.bound = np.float32(grid.bound)
        self.scale = np.float32((self.resolution - 1) / (2.0 * grid.bound))
        corners = np.stack([values[:, :-1, :-1], values[:, :-1, 1:], values[:, 1:, :-1], values[:, 1:, 1:]],
                           axis=-1)  # [R, R-1, R-1, 4]
        self._cells = np.ascontiguousarray(corners).view(np.dtype((np.void, 16))).reshape(-1)

    def __call__(self, points: np.ndarray):
        """The SDF at ``points`` [N, 3] (metres): (values [N] float32,
        inside [N] bool). Points outside the grid's box have ``inside``
        False and value +inf."""
        last = self.resolution - 1
        coords = (np.asarray(points, dtype=np.float32) + self.bound) * self.scale  # in cells
        x, y, z = coords[:, 0], coords[:, 1], coords[:, 2]
        outside = (x < 0.0) | (x > last) | (y < 0.0) | (y > last) | (z < 0.0) | (z > last)
        np.clip(coords, 0.0, np.float32(last), out=coords)
        base = np.minimum(coords.astype(np.int32), last - 1)  # the cell's low corner: at most R - 2
        frac = coords - base
        side = last  # cells a side of the (y, z) planes of the packed grid
        index = (base[:, 0] * side + base[:, 1]) * side + base[:, 2]
        low = self._cells.take(index).view(np.float32).reshape(-1, 4)
        high = self._cells.take(index + side * side).view(np.float32).reshape(-1, 4)
        across_x = low + (high - low) * frac[:, 0:1]  # corners (y0 z0, y0 z1, y1 z0, y1 z1)
        fz = frac[:, 2]
        y0 = across_x[:, 0] + (across_x[:, 1] - across_x[:, 0]) * fz
        y1 = across_x[:, 2] + (across_x[:, 3] - across_x[:, 2]) * fz
        values = y0 + (y1 - y0) * frac[:, 1]
        values[outside] = np.inf
        return values, ~outside


def sample_grid_trilinear(grid: SdfGrid, points: np.ndarray):
    """The grid's SDF at ``points`` [N, 3] (metres) by trilinear
    interpolation: (values [N] float32, inside [N] bool); outside the box
    ``inside`` is False and the value +inf. (``GridSampler`` for many calls.)"""
    return GridSampler(grid)(points)


def vertex_ambient_occlusion(grid: SdfGrid, vertices: np.ndarray, normals: np.ndarray,
                             directions: int = DIRECTIONS, max_distance: float = MAX_DISTANCE,
                             start_offset_voxels: float = START_OFFSET_VOXELS,
                             min_step_voxels: float = MIN_STEP_VOXELS, max_steps: int = MAX_STEPS,
                             batch: int = RAYS_PER_BATCH) -> np.ndarray:
    """AO at each vertex (module docstring): [V] float32 in [0, 1], 1 = no
    ray of the hemisphere about the outward unit normal meets the object
    within ``max_distance`` metres. ``vertices`` [V, 3] metres, ``normals``
    [V, 3] outward (normalised here; a zero normal gets AO 1)."""
    vertices = np.asarray(vertices, dtype=np.float64).reshape(-1, 3)
    normals = np.asarray(normals, dtype=np.float64).reshape(-1, 3)
    if len(vertices) != len(normals):
        raise ValueError("vertices and normals differ in length: {}, {}".format(len(vertices), len(normals)))
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    usable = (length[:, 0] > 1e-12) & np.all(np.isfinite(normals), axis=1)
    ao = np.ones(len(vertices), dtype=np.float32)
    if not usable.any():
        return ao
    points, unit = vertices[usable], normals[usable] / length[usable]
    tangent, bitangent = (frame.astype(np.float32) for frame in normal_frames(unit))
    local32 = hemisphere_directions(directions).astype(np.float32)  # [K, 3]
    count = len(local32)
    sample = GridSampler(grid)
    voxel = grid.voxel
    origins = (points + unit * (start_offset_voxels * voxel)).astype(np.float32)
    unit = unit.astype(np.float32)
    min_step = np.float32(min_step_voxels * voxel)
    max_distance = np.float32(max_distance)
    # The first step is the same for all rays of a vertex: read it once per vertex.
    start_values, start_inside = sample(origins)
    start_step = np.minimum(np.maximum(start_values, min_step), max_distance)

    open_rays = np.zeros(len(points), dtype=np.int64)
    per_batch = max(1, int(batch) // count)
    for first in range(0, len(points), per_batch):
        vertex = np.arange(first, min(len(points), first + per_batch))
        vertex = vertex[(start_values[vertex] >= 0.0)]  # a start inside the object: every ray occluded
        escaped = ~start_inside[vertex] | (start_values[vertex] >= max_distance)
        open_rays[vertex[escaped]] = count
        vertex = vertex[~escaped]
        # One flat list of rays, K per vertex: position, world direction, distance travelled.
        ray_vertex = np.repeat(vertex, count)
        direction = (local32[None, :, 0:1] * tangent[vertex, None, :]
                     + local32[None, :, 1:2] * bitangent[vertex, None, :]
                     + local32[None, :, 2:3] * unit[vertex, None, :]).reshape(-1, 3)
        travelled = start_step[ray_vertex]
        position = origins[ray_vertex] + direction * travelled[:, None]
        occluded = np.zeros(len(ray_vertex), dtype=bool)
        ray = np.arange(len(ray_vertex))  # the rays still marching, compacted every step
        for _ in range(int(max_steps) - 1):
            if len(ray) == 0:
                break
            values, inside = sample(position)
            hit = values < 0.0
            occluded[ray[hit]] = True
            # Escaped: the ball free of surface about this point holds the rest of the ray
            # (+inf out of the box). Else step, but not past the reach: a surface crossed
            # just before it is still seen.
            keep = ~hit & inside & (travelled + values < max_distance)
            step = np.minimum(np.maximum(values[keep], min_step), max_distance - travelled[keep])
            ray, direction = ray[keep], direction[keep]
            travelled = travelled[keep] + step
            position = position[keep] + direction * step[:, None]
        open_rays += np.bincount(ray_vertex[~occluded], minlength=len(points))
    ao[usable] = open_rays.astype(np.float32) / np.float32(count)
    return ao


def bake_ambient_occlusion(mesh: TexturedMesh, grid: SdfGrid, size: int = 1024, padding_px: int = 4,
                           raster=None, **options) -> np.ndarray:
    """The AO texture of ``mesh``: [size, size] float32 in [0, 1], row 0 at
    the top (the PNG row order), 1 = unoccluded (module docstring).

    ``mesh``: the unwrapped mesh (uvs origin bottom-left, outward normals,
    metres); ``grid``: the SDF it was extracted from
    (``marching_cubes.extract_mesh_and_grid``). ``raster``: the result of
    ``bake.rasterize_uv(mesh, size)`` when the caller has it (else it is
    computed). ``options``: ``vertex_ambient_occlusion``'s."""
    size = int(size)
    if size < 1:
        raise ValueError("size must be positive, got {}".format(size))
    # Seam copies of a vertex share its position and normal: trace each source vertex once.
    if mesh.source_vertex is not None:
        _, first, inverse = np.unique(mesh.source_vertex, return_index=True, return_inverse=True)
        per_vertex = vertex_ambient_occlusion(grid, mesh.vertices[first], mesh.normals[first],
                                              **options)[inverse.reshape(-1)]
    else:
        per_vertex = vertex_ambient_occlusion(grid, mesh.vertices, mesh.normals, **options)
    texels, face_ids, weights = raster if raster is not None else rasterize_uv(mesh, size)
    if len(texels) == 0:
        raise ExportError("no texel centre falls inside a UV triangle at {0}x{0}; the UVs are "
                          "degenerate".format(size))
    corner_values = per_vertex[mesh.faces[face_ids].astype(np.int64)]  # [K, 3]
    values = np.zeros((size * size, 1), dtype=np.float32)
    values[texels, 0] = np.einsum("kc,kc->k", weights, corner_values)
    coverage = np.zeros(size * size, dtype=bool)
    coverage[texels] = True
    values = values.reshape(size, size, 1)
    coverage = coverage.reshape(size, size)
    filled = dilate(values, coverage, padding_px)
    values[~filled] = values[coverage].mean(axis=0)
    return np.ascontiguousarray(np.clip(values[..., 0], 0.0, 1.0), dtype=np.float32)

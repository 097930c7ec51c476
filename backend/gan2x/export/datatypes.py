"""Plain-numpy containers passed between the export stage's modules.

Everything is in the bundle (world) frame of ``gan2x.conventions``: metres,
+Y up, +Z towards the target camera. No torch here (the export stage never
imports it).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np


class BundleError(Exception):
    """A bundle (or one of its files) that cannot be written or read as
    docs/bundle.md says; ``str()`` names the file and the problem."""


class ExportError(ValueError):
    """The export stage cannot turn its inputs into an asset (for example an
    SDF without a zero crossing in the box); the message says why."""


def _as(array, dtype, shape_tail: tuple, name: str) -> np.ndarray:
    array = np.ascontiguousarray(array, dtype=dtype)
    if array.ndim != 1 + len(shape_tail) or tuple(array.shape[1:]) != shape_tail:
        raise ValueError("{} must have shape [N{}], found {}".format(
            name, "".join(", {}".format(n) for n in shape_tail), array.shape))
    return array


@dataclass
class TriangleMesh:
    """A triangle mesh from marching cubes.

    vertices [V, 3] float32 metres; faces [F, 3] int32, counter-clockwise
    seen from outside; normals [V, 3] float32 unit, outward (or None)."""
    vertices: np.ndarray
    faces: np.ndarray
    normals: np.ndarray | None = None

    def __post_init__(self):
        self.vertices = _as(self.vertices, np.float32, (3,), "vertices")
        self.faces = _as(self.faces, np.int32, (3,), "faces")
        if self.normals is not None:
            self.normals = _as(self.normals, np.float32, (3,), "normals")
            if len(self.normals) != len(self.vertices):
                raise ValueError("normals and vertices differ in length")


@dataclass
class TexturedMesh:
    """A mesh with per-vertex UVs (vertices duplicated along UV seams).

    vertices [V, 3] float32 metres; normals [V, 3] float32 unit, outward;
    uvs [V, 2] float32 in [0, 1], origin at the bottom-left of the texture
    (docs/bundle.md); faces [F, 3] int32 counter-clockwise seen from outside;
    source_vertex [V] int64: index of each vertex in the mesh that was
    unwrapped (None for a mesh read back from a file)."""
    vertices: np.ndarray
    normals: np.ndarray
    uvs: np.ndarray
    faces: np.ndarray
    source_vertex: np.ndarray | None = None

    def __post_init__(self):
        self.vertices = _as(self.vertices, np.float32, (3,), "vertices")
        self.normals = _as(self.normals, np.float32, (3,), "normals")
        self.uvs = _as(self.uvs, np.float32, (2,), "uvs")
        self.faces = _as(self.faces, np.int32, (3,), "faces")
        if not len(self.vertices) == len(self.normals) == len(self.uvs):
            raise ValueError("vertices, normals and uvs differ in length: {}, {}, {}".format(
                len(self.vertices), len(self.normals), len(self.uvs)))
        if self.source_vertex is not None:
            self.source_vertex = np.ascontiguousarray(self.source_vertex, dtype=np.int64)
            if self.source_vertex.shape != (len(self.vertices),):
                raise ValueError("source_vertex must have shape [V]")

    @cached_property
    def tangent_frames(self) -> tuple[np.ndarray, np.ndarray]:
        """The per-vertex tangent frames of the normal map
        (``export.tangents.vertex_tangents``: tangents [V, 3], signs [V]),
        computed once on first use: a mesh is not modified after its unwrap."""
        from .tangents import vertex_tangents  # tangents imports this module
        return vertex_tangents(self)


@dataclass
class BakedTextures:
    """Square texture maps, row 0 at the top (the PNG row order).

    albedo [S, S, 3] float32 linear in [0, 1]; specular [S, S] float32 Phong
    ks; shininess [S, S] float32 Phong exponent; normal [S, S, 3] float32
    tangent-space unit vectors (OpenGL convention, flat = (0, 0, 1));
    coverage [S, S] bool: texels whose centre lies on a triangle (before
    padding); ambient_occlusion [S, S] float32 in [0, 1], the unoccluded
    fraction of the cosine-weighted hemisphere (1 = open;
    ``ambient_occlusion.bake_ambient_occlusion``), or None when not baked
    (the bundle then holds no AO texture)."""
    albedo: np.ndarray
    specular: np.ndarray
    shininess: np.ndarray
    normal: np.ndarray
    coverage: np.ndarray
    ambient_occlusion: np.ndarray | None = None

    @property
    def size(self) -> int:
        return int(self.albedo.shape[0])


@dataclass
class SdfGrid:
    """The SDF sampled on a regular grid (``marching_cubes.sample_grid``).

    values [R, R, R] float32 metres, negative inside, ``values[i, j, k] =
    sdf(x_i, y_j, z_k)`` with ``x_i = -bound + 2 * bound * i / (R - 1)``
    (the same for y and z); bound in metres. With the narrow band, values
    far from the surface are a coarser grid's trilinear interpolation: the
    right sign, roughly the distance."""
    values: np.ndarray
    bound: float

    def __post_init__(self):
        self.values = np.ascontiguousarray(self.values, dtype=np.float32)
        if self.values.ndim != 3 or len(set(self.values.shape)) != 1 or self.values.shape[0] < 2:
            raise ValueError("values must have shape [R, R, R] with R >= 2, found {}".format(self.values.shape))
        self.bound = float(self.bound)

    @property
    def resolution(self) -> int:
        return int(self.values.shape[0])

    @property
    def voxel(self) -> float:
        """Grid spacing in metres."""
        return 2.0 * self.bound / (self.resolution - 1)

"""Per-vertex tangent frames of a UV-mapped mesh, for tangent-space normal
maps: the frame Blender's Normal Map node (tangent space, on the UV map) and
glTF viewers build, which both take from MikkTSpace.

Input: a ``TexturedMesh`` (vertices duplicated along UV seams, unit outward
normals, UVs with the origin at the bottom-left, faces counter-clockwise seen
from outside). Output: ``tangents`` [V, 3] float32 unit, perpendicular to
the vertex normal, pointing along increasing ``u``; ``signs`` [V] float32
+1 or -1 (glTF's ``TANGENT.w``, Blender's ``bitangent_sign``). The
bitangent is ``B = sign * cross(N, T)``; it points along increasing ``v``
(the OpenGL +Y convention of docs/bundle.md).

As MikkTSpace does:

1. per face, the directions of increasing ``u`` and ``v`` on the surface,
   ``dP/du`` and ``dP/dv`` (solved from the edge vectors and their UV
   differences), each normalised; a face whose UV triangle winds clockwise
   (mirrored chart) has ``orientation`` -1, else +1;
2. per face corner, both projected onto the plane perpendicular to the
   corner's vertex normal, normalised, and weighted by the corner's angle;
3. per vertex, the weighted sum, Gram-Schmidt against the normal,
   normalised; the sign is the angle-weighted majority of the faces'
   orientations.

MikkTSpace also splits a vertex whose faces disagree in orientation (it has
per-corner frames); the unwrap keeps every chart counter-clockwise
(``uv_unwrap``), so this only differs on near-zero-area UV slivers.
``tests/addon/test_addon_normal_map.py`` measures the agreement with
Blender's own ``Mesh.calc_tangents``.
"""
from __future__ import annotations

import numpy as np

from .datatypes import TexturedMesh

_EPS = 1e-20


def _normalised(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(unit vectors, ok mask): rows of zero (or tiny) length stay zero."""
    length = np.linalg.norm(vectors, axis=-1, keepdims=True)
    ok = length[..., 0] > 1e-12
    return np.where(ok[..., None], vectors / np.where(ok[..., None], length, 1.0), 0.0), ok


def _perpendicular(normals: np.ndarray) -> np.ndarray:
    """Any unit vector perpendicular to each unit normal [N, 3]."""
    axis = np.zeros_like(normals)
    axis[np.arange(len(normals)), np.argmin(np.abs(normals), axis=1)] = 1.0
    out = axis - np.sum(axis * normals, axis=1, keepdims=True) * normals
    return _normalised(out)[0]


def vertex_tangents(mesh: TexturedMesh) -> tuple[np.ndarray, np.ndarray]:
    """(tangents [V, 3] float32 unit, signs [V] float32 in {-1, +1}); see
    the module docstring. A vertex with no usable face (all its UV
    triangles degenerate) gets any tangent perpendicular to its normal and
    sign +1."""
    positions = mesh.vertices.astype(np.float64)
    normals, _ = _normalised(mesh.normals.astype(np.float64))
    uvs = mesh.uvs.astype(np.float64)
    faces = mesh.faces.astype(np.int64)
    count = len(positions)

    p0, p1, p2 = (positions[faces[:, k]] for k in range(3))
    t0, t1, t2 = (uvs[faces[:, k]] for k in range(3))
    d1, d2 = p1 - p0, p2 - p0
    s1, s2 = t1 - t0, t2 - t0
    det = s1[:, 0] * s2[:, 1] - s2[:, 0] * s1[:, 1]  # twice the signed UV area
    # det * dP/du and det * dP/dv (inverse of the 2x2 UV edge matrix, times det)
    along_u = s2[:, 1:2] * d1 - s1[:, 1:2] * d2
    along_v = s1[:, 0:1] * d2 - s2[:, 0:1] * d1
    orientation = np.where(det > 0, 1.0, -1.0)
    usable = np.abs(det) > _EPS
    along_u = _normalised(along_u * orientation[:, None])[0] * usable[:, None]
    along_v = _normalised(along_v * orientation[:, None])[0] * usable[:, None]

    tangent_sum = np.zeros((count, 3))
    bitangent_sum = np.zeros((count, 3))
    orientation_sum = np.zeros(count)
    corners = faces  # [F, 3]
    for corner in range(3):
        vertex = corners[:, corner]
        n = normals[vertex]
        # the corner's angle between its two edges, in the normal's plane (MikkTSpace's weight)
        edge_a = positions[corners[:, (corner + 1) % 3]] - positions[vertex]
        edge_b = positions[corners[:, (corner + 2) % 3]] - positions[vertex]
        edge_a = _normalised(edge_a - np.sum(edge_a * n, axis=1, keepdims=True) * n)[0]
        edge_b = _normalised(edge_b - np.sum(edge_b * n, axis=1, keepdims=True) * n)[0]
        angle = np.arccos(np.clip(np.sum(edge_a * edge_b, axis=1), -1.0, 1.0)) * usable
        t = _normalised(along_u - np.sum(along_u * n, axis=1, keepdims=True) * n)[0]
        b = _normalised(along_v - np.sum(along_v * n, axis=1, keepdims=True) * n)[0]
        np.add.at(tangent_sum, vertex, angle[:, None] * t)
        np.add.at(bitangent_sum, vertex, angle[:, None] * b)
        np.add.at(orientation_sum, vertex, angle * orientation)

    tangents = tangent_sum - np.sum(tangent_sum * normals, axis=1, keepdims=True) * normals
    tangents, ok = _normalised(tangents)
    if not ok.all():
        # no u direction (degenerate UVs around the vertex): fall back to the v direction turned
        # a quarter about the normal, else to any perpendicular
        from_v = np.cross(bitangent_sum[~ok], normals[~ok])
        from_v = from_v - np.sum(from_v * normals[~ok], axis=1, keepdims=True) * normals[~ok]
        from_v, from_v_ok = _normalised(from_v)
        from_v[~from_v_ok] = _perpendicular(normals[~ok][~from_v_ok])
        tangents[~ok] = from_v
    signs = np.where(orientation_sum < 0, -1.0, 1.0)
    return tangents.astype(np.float32), signs.astype(np.float32)


def encode_tangent_space(world_normals: np.ndarray, tangents: np.ndarray, normals: np.ndarray,
                         signs: np.ndarray, min_z: float = 0.05) -> np.ndarray:
    """World-frame unit normals [K, 3] expressed in the frames (T, B, N)
    [K, 3] each (interpolated, not necessarily unit nor orthogonal; ``signs``
    [K] interpolated too; ``B = signs * cross(N, T)``): the unit tangent-space
    vectors ``c`` [K, 3] float32 with ``normalise(c.x T + c.y B + c.z N)`` equal
    to the world normal, which is how Blender's Normal Map node (Cycles) and
    MikkTSpace-based viewers decode a texel. ``c.z`` is at least ``min_z``
    (a normal facing away from the surface is tilted back to it, keeping its
    direction in the tangent plane); a world normal that is not finite or a
    frame that is degenerate gives the flat (0, 0, 1)."""
    n_world = np.asarray(world_normals, np.float64)
    t = np.asarray(tangents, np.float64)
    n = np.asarray(normals, np.float64)
    b = np.asarray(signs, np.float64)[:, None] * np.cross(n, t)
    # c = [T B N]^-1 n_world by Cramer's rule: rows of the inverse are (B x N, N x T, T x B) / det
    det = np.sum(t * np.cross(b, n), axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        c = np.stack([np.sum(np.cross(b, n) * n_world, axis=1), np.sum(np.cross(n, t) * n_world, axis=1),
                      np.sum(np.cross(t, b) * n_world, axis=1)], axis=1) / det[:, None]
        c, ok = _normalised(c)
    ok &= np.isfinite(c).all(axis=1) & (np.abs(det) > 1e-8)
    c[~ok] = (0.0, 0.0, 1.0)
    low = c[:, 2] < min_z
    if low.any():
        xy = c[low, :2]
        length = np.linalg.norm(xy, axis=1, keepdims=True)
        scale = np.sqrt(1.0 - min_z ** 2) / np.maximum(length, 1e-12)
        c[low, :2] = np.where(length > 1e-12, xy * scale, 0.0)
        c[low, 2] = np.where(length[:, 0] > 1e-12, min_z, 1.0)
    return c.astype(np.float32)


def decode_tangent_space(encoded: np.ndarray, tangents: np.ndarray, normals: np.ndarray,
                         signs: np.ndarray) -> np.ndarray:
    """The inverse of ``encode_tangent_space``: unit world normals [K, 3]
    ``normalise(c.x T + c.y B + c.z N)``, as Blender's Normal Map node
    computes them."""
    c = np.asarray(encoded, np.float64)
    t = np.asarray(tangents, np.float64)
    n = np.asarray(normals, np.float64)
    b = np.asarray(signs, np.float64)[:, None] * np.cross(n, t)
    return _normalised(c[:, 0:1] * t + c[:, 1:2] * b + c[:, 2:3] * n)[0]


def frames_at(mesh: TexturedMesh, face: np.ndarray, weights: np.ndarray,
              frames: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The tangent frames at surface points given by face [K] and barycentric
    weights [K, 3]: (T [K, 3], N [K, 3], sign [K]) float64, the barycentric
    interpolation of the vertex tangents, normals and signs, not
    renormalised (as Cycles interpolates them). ``frames``: vertex tangents
    and signs to use instead of the mesh's own (``mesh.tangent_frames``)."""
    tangents, signs = frames if frames is not None else mesh.tangent_frames
    corners = mesh.faces[np.asarray(face, np.int64)].astype(np.int64)  # [K, 3]
    weights = np.asarray(weights, np.float64)

    def interpolate(values):
        values = values.astype(np.float64).reshape(len(values), -1)
        out = weights[:, 0:1] * values[corners[:, 0]]
        for corner in (1, 2):
            out += weights[:, corner:corner + 1] * values[corners[:, corner]]
        return out
    return interpolate(tangents), interpolate(mesh.normals), interpolate(signs)[:, 0]


def apply_normal_map(mesh: TexturedMesh, face: np.ndarray, weights: np.ndarray, tangent_space: np.ndarray,
                     frames: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Unit world-frame shading normals [K, 3] at surface points (face [K],
    barycentric weights [K, 3]) from the normal map's tangent-space values
    there (``tangent_space`` [K, 3], decoded to [-1, 1], any length), as
    Blender's Normal Map node bends them."""
    tangents, normals, signs = frames_at(mesh, face, weights, frames)
    return decode_tangent_space(tangent_space, tangents, normals, signs)

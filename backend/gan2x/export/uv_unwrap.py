"""UV unwrap with xatlas: charts, then packing into one square texture.

Input: a ``TriangleMesh`` (vertices [V, 3] metres, faces [F, 3] CCW from
outside, normals [V, 3]). Output: ``TexturedMesh(vertices, normals, uvs,
faces, source_vertex)`` with vertices duplicated along the chart seams, uvs
in [0, 1] with the origin at the bottom-left (docs/bundle.md), one face per
input face in the same order, and ``source_vertex`` [V'] the input vertex
each output vertex copies.

Two ways to make the charts (``method``):

* ``"xatlas"``: xatlas's own segmentation and LSCM parameterisation, with
  ``ChartOptions.max_chart_area`` set to ``chart_area_fraction`` of the
  surface area. Without that limit xatlas grows large charts that fail its
  validity checks and falls back to a slow piecewise parameterisation
  (measured on marching-cubes meshes, 2 CPU cores: 15k faces 4.5 s -> 0.3 s,
  60k faces 35 s -> 2 s). It still grows faster than linearly (94k faces
  ~7-17 s, 135k ~45-90 s, 240k faces over 5 minutes).
* ``"projected"``: each face goes to the one of six axis directions closest
  to its normal and is projected on that axis' plane (orientation kept:
  charts are counter-clockwise in UV); xatlas then only packs the resulting
  charts, ~0.5 s for 60k faces. A texel spans at most ``sqrt(3)`` times
  more surface along one direction than across it; no triangle flips. A chart can overlap
  itself only where a connected region facing one axis winds over itself
  (a helix-like surface), which marching cubes of compact objects does not
  produce in practice.
* ``"auto"`` (default): ``"xatlas"`` up to ``max_xatlas_faces`` faces,
  ``"projected"`` above.

Either way the charts are then made counter-clockwise in UV (a chart that
came out mirrored is flipped; LSCM leaves about half of them mirrored) and
packed by xatlas from those UVs (``use_input_mesh_uvs``) without its
90-degree turns, which can mirror charts; so the charts wind
counter-clockwise in UV as the faces do seen from outside (only slivers of
near-zero area may round the other way), which keeps tangent frames
right-handed for normal maps. Packing leaves ``padding`` texels
between charts at ``texture_size``; the baker dilates into that gap.
"""
from __future__ import annotations

import numpy as np

from .datatypes import ExportError, TexturedMesh, TriangleMesh
from .marching_cubes import connected_components, face_area_normals

METHODS = ("auto", "xatlas", "projected")

# For each of the six directions (+x, -x, +y, -y, +z, -z): the two world axes
# used as (u, v), ordered so that a face facing that direction stays
# counter-clockwise in UV (u x v = the direction).
_PROJECTION_AXES = {0: (1, 2), 1: (2, 1), 2: (2, 0), 3: (0, 2), 4: (0, 1), 5: (1, 0)}


def unwrap(mesh: TriangleMesh, *, texture_size: int = 1024, padding: int = 4, method: str = "auto",
           max_xatlas_faces: int = 60_000, chart_area_fraction: float = 0.01) -> TexturedMesh:
    """UV-unwraps ``mesh`` for a ``texture_size`` square texture (see the
    module docstring for ``method``)."""
    if method not in METHODS:
        raise ValueError("method must be one of {}, got {!r}".format(METHODS, method))
    if len(mesh.faces) == 0:
        raise ExportError("cannot unwrap a mesh without faces")
    if method == "auto":
        method = "xatlas" if len(mesh.faces) <= max_xatlas_faces else "projected"
    normals = mesh.normals if mesh.normals is not None else face_area_normals(mesh.vertices, mesh.faces)

    if method == "xatlas":
        source, chart_faces, chart_uvs = _xatlas_charts(mesh.vertices, mesh.faces, chart_area_fraction)
    else:
        source, chart_faces, chart_uvs = _projected_charts(mesh.vertices, mesh.faces)
    chart_uvs = _orient_charts(chart_uvs, chart_faces)
    vmapping, faces, uvs = _pack(mesh.vertices[source], chart_faces, chart_uvs, texture_size, padding)
    if len(faces) != len(mesh.faces):
        raise ExportError("xatlas returned {} faces for {} input faces".format(len(faces), len(mesh.faces)))
    # Packing only translates charts and turns them about their normal, so
    # faces stay counter-clockwise in UV; check it rather than trust it.
    if _signed_uv_areas(uvs, faces).sum() < 0.0:
        uvs[:, 1] = 1.0 - uvs[:, 1]
    source_vertex = source[vmapping]
    return TexturedMesh(vertices=mesh.vertices[source_vertex], normals=normals[source_vertex],
                        uvs=np.clip(uvs, 0.0, 1.0).astype(np.float32), faces=faces.astype(np.int32),
                        source_vertex=source_vertex)


def _xatlas_charts(vertices: np.ndarray, faces: np.ndarray, chart_area_fraction: float):
    """xatlas segmentation + parameterisation: (source vertex [V'], faces,
    chart uvs [V', 2] in atlas pixels). The packing xatlas does here is
    thrown away (charts are re-packed after orienting them)."""
    import xatlas

    charts = xatlas.ChartOptions()
    charts.max_chart_area = float(chart_area_fraction * _face_areas(vertices, faces).sum())
    pack = xatlas.PackOptions()
    pack.resolution = 256  # a coarse first packing: cheap, only the chart shapes are kept
    atlas = xatlas.Atlas()
    atlas.add_mesh(vertices, faces.astype(np.uint32))
    atlas.generate(charts, pack)
    vmapping, indices, uvs = atlas[0]
    pixels = uvs.astype(np.float64) * np.array([atlas.width, atlas.height], dtype=np.float64)
    return vmapping.astype(np.int64), indices.astype(np.int64), pixels


def _orient_charts(uvs: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Mirrors (u -> -u) every chart whose faces are clockwise in UV, so that
    all charts are counter-clockwise like the faces seen from outside.
    Charts are the connected components of the faces (seams split vertices)."""
    uvs = np.array(uvs, dtype=np.float64)
    labels = connected_components(len(uvs), faces)
    chart_ids, face_chart = np.unique(labels[faces[:, 0]], return_inverse=True)
    area = np.bincount(face_chart, weights=_signed_uv_areas(uvs, faces), minlength=len(chart_ids))
    mirrored_roots = chart_ids[area < 0.0]
    uvs[np.isin(labels, mirrored_roots), 0] *= -1.0
    return uvs


def _pack(vertices: np.ndarray, faces: np.ndarray, uvs: np.ndarray, texture_size: int, padding: int):
    """xatlas packing of the given charts into one atlas of about
    ``texture_size`` texels: (vmapping [V''] into ``vertices``, faces, uvs in
    [0, 1] scaled by the larger atlas side so charts keep their aspect)."""
    import xatlas

    charts = xatlas.ChartOptions()
    charts.use_input_mesh_uvs = True
    pack = xatlas.PackOptions()
    pack.resolution = int(texture_size)  # texels_per_unit 0: scale estimated to fill this size
    pack.padding = int(padding)
    pack.bilinear = True
    pack.bruteForce = False
    pack.rotate_charts = False  # xatlas's 90-degree turns can mirror charts
    pack.rotate_charts_to_axis = True
    atlas = xatlas.Atlas()
    atlas.add_mesh(np.ascontiguousarray(vertices, np.float32), faces.astype(np.uint32), None,
                   np.ascontiguousarray(uvs, np.float32))
    atlas.generate(charts, pack)
    if atlas.atlas_count != 1:
        raise ExportError("xatlas packed the charts into {} atlases; expected one".format(atlas.atlas_count))
    vmapping, indices, packed = atlas[0]
    scale = np.array([atlas.width, atlas.height], dtype=np.float64) / max(atlas.width, atlas.height)
    return vmapping.astype(np.int64), indices.astype(np.int64), packed.astype(np.float64) * scale


def _face_areas(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    v = vertices.astype(np.float64)
    return 0.5 * np.linalg.norm(np.cross(v[faces[:, 1]] - v[faces[:, 0]], v[faces[:, 2]] - v[faces[:, 0]]), axis=1)


def _signed_uv_areas(uvs: np.ndarray, faces: np.ndarray) -> np.ndarray:
    a, b, c = uvs[faces[:, 0]], uvs[faces[:, 1]], uvs[faces[:, 2]]
    return 0.5 * ((b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (c[:, 0] - a[:, 0]) * (b[:, 1] - a[:, 1]))


def _projected_charts(vertices: np.ndarray, faces: np.ndarray):
    """Six-direction planar projection: (source vertex [V'], faces, uvs in
    metres) with each vertex split per direction group that uses it."""
    v = vertices.astype(np.float64)
    face_normals = np.cross(v[faces[:, 1]] - v[faces[:, 0]], v[faces[:, 2]] - v[faces[:, 0]])
    axis = np.argmax(np.abs(face_normals), axis=1)
    negative = face_normals[np.arange(len(faces)), axis] < 0
    group = axis * 2 + negative
    keys = faces.astype(np.int64) * 6 + group[:, None]
    unique_keys, inverse = np.unique(keys.reshape(-1), return_inverse=True)
    split_faces = inverse.reshape(-1, 3)
    source = unique_keys // 6
    vertex_group = unique_keys % 6
    uvs = np.empty((len(unique_keys), 2), dtype=np.float64)
    for direction, (u_axis, v_axis) in _PROJECTION_AXES.items():
        rows = vertex_group == direction
        uvs[rows, 0] = v[source[rows], u_axis]
        uvs[rows, 1] = v[source[rows], v_axis]
    return source, split_faces, uvs

"""The bundle's mesh.ply: exactly the binary layout of docs/bundle.md.

Vertices ``x y z nx ny nz s t`` as little-endian float32 (metres, bundle
frame, outward unit normals, UVs with the origin at the bottom-left); faces
as a uchar count (always 3) and three little-endian uint32 indices,
counter-clockwise seen from outside. ``read_ply`` refuses anything else with
a ``BundleError`` naming the file; ``comment`` and ``obj_info`` header lines
are ignored (the add-on's reader does the same).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .datatypes import BundleError, TexturedMesh

VERTEX_DTYPE = np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"),
                         ("nx", "<f4"), ("ny", "<f4"), ("nz", "<f4"),
                         ("s", "<f4"), ("t", "<f4")])
FACE_DTYPE = np.dtype([("count", "u1"), ("indices", "<u4", (3,))])
_MAX_HEADER_BYTES = 4096


def header_lines(vertex_count: int, face_count: int) -> list[str]:
    """The header of docs/bundle.md for these counts, one line per item."""
    return (["ply", "format binary_little_endian 1.0", "element vertex {}".format(int(vertex_count))]
            + ["property float {}".format(name) for name in VERTEX_DTYPE.names]
            + ["element face {}".format(int(face_count)), "property list uchar uint vertex_indices",
               "end_header"])


def write_ply(path, mesh: TexturedMesh) -> Path:
    """Writes ``mesh`` (vertices, normals, uvs, faces) to ``path``."""
    path = Path(path)
    if len(mesh.faces) and (int(mesh.faces.min()) < 0 or int(mesh.faces.max()) >= len(mesh.vertices)):
        raise BundleError("{}: face indices out of range for {} vertices".format(path, len(mesh.vertices)))
    vertices = np.empty(len(mesh.vertices), VERTEX_DTYPE)
    columns = np.concatenate([mesh.vertices, mesh.normals, mesh.uvs], axis=1).astype("<f4")
    if not np.all(np.isfinite(columns)):
        raise BundleError("{}: refusing to write non-finite vertex data".format(path))
    vertices.view("<f4").reshape(-1, 8)[:] = columns
    faces = np.empty(len(mesh.faces), FACE_DTYPE)
    faces["count"] = 3
    faces["indices"] = mesh.faces.astype("<u4")
    header = ("\n".join(header_lines(len(vertices), len(faces))) + "\n").encode("ascii")
    with open(path, "wb") as stream:
        stream.write(header)
        stream.write(vertices.tobytes())
        stream.write(faces.tobytes())
    return path


def read_ply(path) -> TexturedMesh:
    """Reads a bundle mesh.ply (``source_vertex`` is None). Raises
    BundleError naming the file: unreadable, a header other than the
    bundle's, a body shorter or longer than the header says, a face that is
    not a triangle, an index out of range, non-finite vertex data."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise BundleError("{}: cannot read ({})".format(path, error)) from None

    def fail(problem: str) -> BundleError:
        return BundleError("{}: {}".format(path, problem))

    end = data.find(b"end_header\n", 0, _MAX_HEADER_BYTES)
    if end < 0:
        raise fail("not a bundle PLY: no 'end_header' line in the first {} bytes".format(_MAX_HEADER_BYTES))
    body_offset = end + len(b"end_header\n")
    try:
        text = data[:body_offset].decode("ascii")
    except UnicodeDecodeError:
        raise fail("the PLY header is not ASCII text") from None
    lines = [line.strip() for line in text.split("\n")]
    lines = [line for line in lines if line and not line.split(" ", 1)[0] in ("comment", "obj_info")]
    counts = _parse_counts(lines)
    if counts is None or lines != header_lines(*counts):
        raise fail("unexpected PLY header; docs/bundle.md (mesh.ply) expects:\n  {}\nfound:\n  {}".format(
            "\n  ".join(_template()), "\n  ".join(lines)))
    vertex_count, face_count = counts

    expected_bytes = vertex_count * VERTEX_DTYPE.itemsize + face_count * FACE_DTYPE.itemsize
    body = memoryview(data)[body_offset:]
    if len(body) < expected_bytes:
        raise fail("truncated: the header says {} vertices and {} faces ({} bytes) but the body has {} "
                   "bytes".format(vertex_count, face_count, expected_bytes, len(body)))
    if len(body) > expected_bytes:
        raise fail("{} unexpected bytes after the last face".format(len(body) - expected_bytes))

    vertices = np.frombuffer(body, VERTEX_DTYPE, count=vertex_count)
    faces = np.frombuffer(body, FACE_DTYPE, count=face_count, offset=vertex_count * VERTEX_DTYPE.itemsize)
    if face_count and np.any(faces["count"] != 3):
        bad = int(np.flatnonzero(faces["count"] != 3)[0])
        raise fail("face {} has {} indices; every face must be a triangle".format(bad, int(faces["count"][bad])))
    columns = vertices.view("<f4").reshape(vertex_count, 8)
    finite = np.isfinite(columns).all(axis=1)
    if not finite.all():
        raise fail("vertex {} has non-finite data (NaN or infinity)".format(int(np.flatnonzero(~finite)[0])))
    indices = faces["indices"]
    if face_count and int(indices.max()) >= vertex_count:
        bad = int(np.flatnonzero((indices >= vertex_count).any(axis=1))[0])
        raise fail("face {} indexes vertex {} but there are only {} vertices".format(
            bad, int(indices[bad].max()), vertex_count))
    return TexturedMesh(vertices=columns[:, 0:3], normals=columns[:, 3:6], uvs=columns[:, 6:8],
                        faces=indices.astype(np.int64).astype(np.int32), source_vertex=None)


def _template() -> list[str]:
    return [line.replace(" 0", " <count>") if line.startswith("element") else line
            for line in header_lines(0, 0)]


def _parse_counts(lines: list[str]):
    """(vertex count, face count) from the element lines, or None."""
    try:
        vertex_line = lines[2].split()
        face_line = lines[3 + len(VERTEX_DTYPE.names)].split()
    except IndexError:
        return None
    if (len(vertex_line) != 3 or vertex_line[:2] != ["element", "vertex"] or not vertex_line[2].isdigit()
            or len(face_line) != 3 or face_line[:2] != ["element", "face"] or not face_line[2].isdigit()):
        return None
    return int(vertex_line[2]), int(face_line[2])


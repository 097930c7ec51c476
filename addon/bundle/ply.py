"""numpy reader for the bundle's mesh.ply, exactly the layout of docs/bundle.md.

Binary little-endian; vertices ``x y z nx ny nz s t`` as float32; faces as a
uchar count (always 3) and three uint32 indices. Anything else is refused:
this reader knows one layout, not PLY in general. ``comment`` and
``obj_info`` header lines are ignored.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

VERTEX_DTYPE = np.dtype([
    ("x", "<f4"), ("y", "<f4"), ("z", "<f4"),
    ("nx", "<f4"), ("ny", "<f4"), ("nz", "<f4"),
    ("s", "<f4"), ("t", "<f4"),
])
FACE_DTYPE = np.dtype([("count", "u1"), ("indices", "<u4", (3,))])

_VERTEX_PROPERTIES = [f"property float {name}" for name in VERTEX_DTYPE.names]
_FACE_PROPERTY = "property list uchar uint vertex_indices"
_MAX_HEADER_BYTES = 4096


class PlyError(ValueError):
    """The file is not the bundle's PLY layout; the message says why."""


@dataclass
class PlyMesh:
    """Arrays in the bundle frame: vertices [N, 3] metres, normals [N, 3]
    unit, uvs [N, 2] (origin bottom-left), faces [M, 3] int32 (CCW from
    outside). All float arrays are float32."""
    vertices: np.ndarray
    normals: np.ndarray
    uvs: np.ndarray
    faces: np.ndarray


def _read_header(data: bytes) -> tuple[list[str], int]:
    """Header lines (without comments) and the byte offset of the body."""
    end = data.find(b"end_header\n", 0, _MAX_HEADER_BYTES)
    if end < 0:
        raise PlyError("no 'end_header' line in the first {} bytes".format(_MAX_HEADER_BYTES))
    body_offset = end + len(b"end_header\n")
    try:
        text = data[:body_offset].decode("ascii")
    except UnicodeDecodeError:
        raise PlyError("the header is not ASCII text") from None
    lines = [line.strip() for line in text.replace("\r\n", "\n").split("\n")]
    lines = [line for line in lines if line and not line.startswith(("comment", "obj_info"))]
    return lines, body_offset


def _element_count(line: str, name: str) -> int:
    parts = line.split()
    if len(parts) != 3 or parts[:2] != ["element", name] or not parts[2].isdigit():
        raise PlyError("expected 'element {} <count>', found {!r}".format(name, line))
    return int(parts[2])


def parse_ply(data: bytes) -> PlyMesh:
    """Parses the bytes of a bundle mesh.ply (see the module docstring)."""
    lines, body_offset = _read_header(data)
    if len(lines) != 2 + 1 + len(_VERTEX_PROPERTIES) + 2 + 1 or lines[0] != "ply":
        raise PlyError("the header is not the bundle layout (docs/bundle.md, mesh.ply)")
    if lines[1] != "format binary_little_endian 1.0":
        raise PlyError("expected 'format binary_little_endian 1.0', found {!r}".format(lines[1]))
    vertex_count = _element_count(lines[2], "vertex")
    properties = lines[3:3 + len(_VERTEX_PROPERTIES)]
    if properties != _VERTEX_PROPERTIES:
        raise PlyError("vertex properties must be float x y z nx ny nz s t, found {!r}".format(properties))
    face_count = _element_count(lines[3 + len(_VERTEX_PROPERTIES)], "face")
    if lines[-2] != _FACE_PROPERTY:
        raise PlyError("expected {!r}, found {!r}".format(_FACE_PROPERTY, lines[-2]))
    if lines[-1] != "end_header":
        raise PlyError("the header does not end with 'end_header'")

    expected = vertex_count * VERTEX_DTYPE.itemsize + face_count * FACE_DTYPE.itemsize
    body = memoryview(data)[body_offset:]
    if len(body) < expected:
        raise PlyError("the body is truncated: {} vertices and {} faces need {} bytes, found {}".format(
            vertex_count, face_count, expected, len(body)))
    if len(body) > expected:
        raise PlyError("{} unexpected bytes after the last face".format(len(body) - expected))

    vertex_records = np.frombuffer(body, VERTEX_DTYPE, count=vertex_count)
    face_records = np.frombuffer(body, FACE_DTYPE, count=face_count,
                                 offset=vertex_count * VERTEX_DTYPE.itemsize)
    if face_count and np.any(face_records["count"] != 3):
        bad = int(np.flatnonzero(face_records["count"] != 3)[0])
        raise PlyError("face {} has {} indices; every face must be a triangle".format(
            bad, int(face_records["count"][bad])))

    as_columns = vertex_records.view("<f4").reshape(vertex_count, 8)
    vertices = np.ascontiguousarray(as_columns[:, 0:3], dtype=np.float32)
    normals = np.ascontiguousarray(as_columns[:, 3:6], dtype=np.float32)
    uvs = np.ascontiguousarray(as_columns[:, 6:8], dtype=np.float32)
    if not np.all(np.isfinite(as_columns)):
        bad = int(np.flatnonzero(~np.all(np.isfinite(as_columns), axis=1))[0])
        raise PlyError("vertex {} has non-finite data (NaN or infinity)".format(bad))

    faces = face_records["indices"]
    if face_count and int(faces.max()) >= vertex_count:
        bad = int(np.flatnonzero(np.any(faces >= vertex_count, axis=1))[0])
        raise PlyError("face {} indexes vertex {} but there are only {} vertices".format(
            bad, int(faces[bad].max()), vertex_count))
    return PlyMesh(vertices=vertices, normals=normals, uvs=uvs,
                   faces=np.ascontiguousarray(faces, dtype=np.int32))


def max_file_size(vertex_count: int, face_count: int) -> int:
    """The most bytes a mesh.ply of these counts holds: the longest header
    this reader accepts and the body the counts make."""
    return _MAX_HEADER_BYTES + vertex_count * VERTEX_DTYPE.itemsize + face_count * FACE_DTYPE.itemsize


def read_ply(path: Path, max_bytes: int | None = None) -> PlyMesh:
    """Reads a bundle mesh.ply, refusing one larger than ``max_bytes`` before
    reading more than that; raises PlyError (message without the file name,
    the caller adds it) or OSError."""
    with open(path, "rb") as stream:
        data = stream.read() if max_bytes is None else stream.read(max_bytes + 1)
    if max_bytes is not None and len(data) > max_bytes:
        raise PlyError("larger than the {} bytes its counts allow".format(max_bytes))
    return parse_ply(data)


"""Sample bundles for the add-on tests, written per docs/bundle.md without
the backend: a UV sphere (PLY), Pillow textures, a frontal camera at 12 m
with a 10 degree field of view, one directional light and an ambient term."""
from __future__ import annotations

import json
import math
import sys
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from addon.bundle.ply import FACE_DTYPE, VERTEX_DTYPE  # noqa: E402  (after sys.path)

CAMERA_DISTANCE = 12.0
FOV_DEGREES = 10.0
IMAGE_SIZE = 64
SPHERE_RADIUS = 0.9
TOWARDS_LIGHT = (0.3, 0.5, 0.81)


# --- writing bundles -------------------------------------------------------------

def write_ply(path: Path, vertices, normals, uvs, faces) -> None:
    """Writes docs/bundle.md's PLY layout."""
    records = np.empty(len(vertices), VERTEX_DTYPE)
    records.view("<f4").reshape(-1, 8)[:] = np.concatenate(
        [vertices, normals, uvs], axis=1).astype(np.float32)
    face_records = np.empty(len(faces), FACE_DTYPE)
    face_records["count"] = 3
    face_records["indices"] = faces
    header = "\n".join(
        ["ply", "format binary_little_endian 1.0", "comment written by the add-on tests",
         "element vertex {}".format(len(records))]
        + ["property float {}".format(name) for name in VERTEX_DTYPE.names]
        + ["element face {}".format(len(face_records)),
           "property list uchar uint vertex_indices", "end_header"]) + "\n"
    path.write_bytes(header.encode("ascii") + records.tobytes() + face_records.tobytes())


def uv_sphere(radius: float = SPHERE_RADIUS, rings: int = 24, segments: int = 48):
    """Sphere in the bundle frame (+Y up) with vertices duplicated along the
    seam and at the poles: (vertices [N,3], normals [N,3], uvs [N,2], faces
    [M,3]) with u = longitude / 2pi, v = 1 - colatitude / pi, faces CCW from
    outside and no degenerate triangles."""
    theta = np.linspace(0.0, math.pi, rings + 1)
    phi = np.linspace(0.0, 2.0 * math.pi, segments + 1)
    theta_grid, phi_grid = np.meshgrid(theta, phi, indexing="ij")
    normals = np.stack([np.sin(theta_grid) * np.sin(phi_grid), np.cos(theta_grid),
                        np.sin(theta_grid) * np.cos(phi_grid)], axis=-1).reshape(-1, 3)
    uvs = np.stack([phi_grid / (2.0 * math.pi), 1.0 - theta_grid / math.pi], axis=-1).reshape(-1, 2)
    index = np.arange((rings + 1) * (segments + 1)).reshape(rings + 1, segments + 1)
    faces = []
    for ring in range(rings):
        for segment in range(segments):
            a, b = index[ring, segment], index[ring, segment + 1]
            c, d = index[ring + 1, segment], index[ring + 1, segment + 1]
            if ring != 0:
                faces.append((a, c, b))
            if ring != rings - 1:
                faces.append((b, c, d))
    faces = np.array(faces, dtype=np.int64)
    vertices = normals * radius
    # Orient every face counter-clockwise seen from outside.
    v0, v1, v2 = (vertices[faces[:, k]] for k in range(3))
    inward = np.einsum("ij,ij->i", np.cross(v1 - v0, v2 - v0), v0 + v1 + v2) < 0
    faces[inward] = faces[inward][:, ::-1]
    return vertices.astype(np.float32), normals.astype(np.float32), uvs.astype(np.float32), faces


def save_png(path: Path, array: np.ndarray) -> None:
    """uint8 [H,W,3] -> RGB 8-bit; uint8 [H,W] -> grey 8-bit; uint16 [H,W] -> grey 16-bit."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if array.dtype == np.uint16:
        Image.fromarray(array).save(path)  # uint16 [H, W] -> mode I;16
    else:
        Image.fromarray(array).save(path)


def default_specular(height: int, width: int) -> np.ndarray:
    """16-bit ks texture that varies down the rows (row 0 top = 0)."""
    rows = np.linspace(0.0, 0.2, height)[:, None] * np.ones((1, width))
    return np.round(rows * 65535).astype(np.uint16)


def default_shininess(height: int, width: int) -> np.ndarray:
    """16-bit encoded shininess texture that varies across the columns."""
    cols = np.ones((height, 1)) * np.linspace(0.1, 0.9, width)[None, :]
    return np.round(cols * 65535).astype(np.uint16)


def minimal_glb() -> bytes:
    """A well-formed glTF 2.0 binary holding an empty document (the add-on
    does not read the .glb; the backend's validator checks its container)."""
    document = b'{"asset":{"version":"2.0"}}'
    document += b" " * (-len(document) % 4)
    chunk = len(document).to_bytes(4, "little") + b"JSON" + document
    return b"glTF" + (2).to_bytes(4, "little") + (12 + len(chunk)).to_bytes(4, "little") + chunk


def write_bundle(directory: Path, *, albedo_srgb=(200, 150, 100), specular=None, shininess=None,
                 kd: float = 0.7, ka: float = 0.35, towards_light=TOWARDS_LIGHT,
                 texture_size=(16, 32), provenance=None, report: bool = False,
                 ambient_occlusion=None) -> Path:
    """Writes a complete, valid schema-1 bundle of a UV sphere into
    ``directory`` and returns it. ``albedo_srgb``: an RGB triple (uniform) or
    a uint8 [H,W,3] array; ``specular`` / ``shininess``: a float in [0, 1]
    (uniform texture value) or a uint16 [H,W] array; ``texture_size``:
    (height, width); ``report``: add the optional images/report.png (a
    picture of another size than the camera's) and name it in ``images``;
    ``ambient_occlusion``: None (no AO texture, as older bundles), a float in
    [0, 1] (uniform) or a uint8 [H,W] array, written as the optional
    textures/ambient_occlusion.png (grey 8-bit) and named in ``textures``."""
    directory.mkdir(parents=True, exist_ok=True)
    height, width = texture_size
    vertices, normals, uvs, faces = uv_sphere()
    write_ply(directory / "mesh.ply", vertices, normals, uvs, faces)

    albedo = (np.asarray(albedo_srgb, np.uint8) if np.ndim(albedo_srgb) == 3
              else np.broadcast_to(np.asarray(albedo_srgb, np.uint8), (height, width, 3)).copy())

    def grey16(value, default):
        if value is None:
            return default(height, width)
        if np.ndim(value) == 0:
            return np.full((height, width), round(float(value) * 65535), np.uint16)
        return np.asarray(value, np.uint16)

    save_png(directory / "textures/albedo.png", albedo)
    save_png(directory / "textures/specular.png", grey16(specular, default_specular))
    save_png(directory / "textures/shininess.png", grey16(shininess, default_shininess))
    save_png(directory / "textures/normal.png",
             np.broadcast_to(np.array([128, 128, 255], np.uint8), (height, width, 3)).copy())
    if ambient_occlusion is not None:
        occlusion = (np.full((height, width), round(float(ambient_occlusion) * 255), np.uint8)
                     if np.ndim(ambient_occlusion) == 0 else np.asarray(ambient_occlusion, np.uint8))
        save_png(directory / "textures/ambient_occlusion.png", occlusion)
    image = np.zeros((IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8)
    save_png(directory / "images/target.png", image)
    save_png(directory / "images/rerender.png", image)
    save_png(directory / "images/mask.png", np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.uint8))
    images = {"target": "images/target.png", "rerender": "images/rerender.png", "mask": "images/mask.png"}
    if report:
        save_png(directory / "images/report.png", np.full((3 * IMAGE_SIZE, 5 * IMAGE_SIZE, 3), 255, np.uint8))
        images["report"] = "images/report.png"
    (directory / "asset.glb").write_bytes(minimal_glb())

    towards_light = np.asarray(towards_light, float)
    towards_light = towards_light / np.linalg.norm(towards_light)
    textures = {
        "albedo": {"file": "textures/albedo.png", "width": width, "height": height,
                   "bit_depth": 8, "colour_space": "sRGB"},
        "specular": {"file": "textures/specular.png", "width": width, "height": height,
                     "bit_depth": 16, "colour_space": "linear",
                     "encoding": {"kind": "linear", "scale": 1.0}},
        "shininess": {"file": "textures/shininess.png", "width": width, "height": height,
                      "bit_depth": 16, "colour_space": "linear",
                      "encoding": {"kind": "log", "min": 1.0, "max": 500.0}},
        "normal": {"file": "textures/normal.png", "width": width, "height": height,
                   "bit_depth": 8, "colour_space": "linear",
                   "encoding": {"kind": "tangent", "convention": "opengl"}},
    }
    if ambient_occlusion is not None:
        textures["ambient_occlusion"] = {"file": "textures/ambient_occlusion.png", "width": width,
                                         "height": height, "bit_depth": 8, "colour_space": "linear"}
    manifest = {
        "format": "gan2x.bundle",
        "schema_version": 1,
        "generator_version": "0.0.0-tests",
        "created": "2026-01-01T00:00:00Z",
        "units": "metre",
        "up_axis": "+Y",
        "mesh": {"file": "mesh.ply", "vertex_count": int(len(vertices)), "face_count": int(len(faces)),
                 "bounds_min": vertices.min(axis=0).tolist(), "bounds_max": vertices.max(axis=0).tolist()},
        "textures": textures,
        "camera": {
            "model": "perspective", "image_width": IMAGE_SIZE, "image_height": IMAGE_SIZE,
            "fov_y_degrees": FOV_DEGREES,
            "focal_length_px": 0.5 * IMAGE_SIZE / math.tan(math.radians(FOV_DEGREES) / 2),
            "principal_point_px": [IMAGE_SIZE / 2, IMAGE_SIZE / 2],
            "world_from_camera": [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, CAMERA_DISTANCE], [0, 0, 0, 1]],
        },
        "lights": {
            "directional": [{"towards_light": towards_light.tolist(), "strength": kd, "colour": [1, 1, 1]}],
            "ambient": {"strength": ka, "colour": [1, 1, 1]},
        },
        "shading": {"model": "phong",
                    "equation": "c = a * (ka + kd * max(0, n.l)) + kd * ks * max(0, r.v) ** shininess",
                    "shininess_range": [1, 500]},
        "images": images,
        "glb": "asset.glb",
        "provenance": provenance if provenance is not None else {
            "generator": "synthetic:sphere", "seed": 7, "settings": {"quality": "draft"},
            "metrics": {"psnr": 31.25, "mask_iou": 0.975}, "timings": {"fit": 1.5},
            "versions": {"python": "3.11", "gan2x": "0.0.0"},
        },
    }
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return directory


def zip_bundle(directory: Path, zip_path: Path, top_folder: bool = True) -> Path:
    """Zips a bundle directory (inside a folder named like it, or flat)."""
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                relative = path.relative_to(directory).as_posix()
                archive.write(path, "{}/{}".format(directory.name, relative) if top_folder else relative)
    return zip_path


def edit_manifest(directory: Path, edit) -> None:
    """Rewrites manifest.json after ``edit(manifest_dict)``."""
    path = directory / "manifest.json"
    manifest = json.loads(path.read_text())
    edit(manifest)
    path.write_text(json.dumps(manifest))


def data_counts() -> dict:
    """How many datablocks of each kind an import can create exist now."""
    import bpy

    kinds = ("objects", "meshes", "materials", "images", "lights", "cameras", "worlds",
             "collections", "node_groups", "textures")
    return {kind: len(getattr(bpy.data, kind)) for kind in kinds}

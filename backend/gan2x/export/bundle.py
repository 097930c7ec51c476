"""The asset bundle (docs/bundle.md, schema 1): atomic writer and the
backend-side validator.

``write_bundle`` writes every file into a temporary sibling directory
``<destination>.tmp-<random>``, validates it with ``validate_bundle``, then
renames it into place. An existing bundle at the destination is renamed
away first and deleted only once the new one is in place (and put back if
that rename fails). On any failure the temporary directory is removed and
the destination is left as it was.

``validate_bundle`` runs the checks of ``manifest_checks`` (the module the
add-on's reader runs too, a byte-identical copy in addon/bundle/, so both
sides refuse with the same messages), strict: the writer's exact texture and
image formats, a unit light, mesh bounds that match the vertices. It also
reads the .glb container and the latent .npy. It returns the manifest, or
raises ``BundleError`` whose message names the file and the problem.

No torch here: inputs are numpy arrays.
"""
from __future__ import annotations

import json
import os
import platform
import shutil
import sys
import tempfile
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .. import __version__, conventions
from . import gltf as _gltf
from . import images as _images
from . import ply as _ply
from .datatypes import BakedTextures, BundleError, TexturedMesh
from .manifest_checks import (FORMAT, MANIFEST_NAME, MAX_FACES, MAX_IMAGE_SIDE, MAX_TEXTURE_SIDE, MAX_VERTICES,
                              OPTIONAL_TEXTURE_FORMATS, SCHEMA_VERSION, TEXTURE_FORMATS, Checker, check_bundle)

__all__ = ["CameraSpec", "LightSpec", "BundleError", "SCHEMA_VERSION", "FORMAT", "write_bundle",
           "validate_bundle", "build_manifest"]

SHADING_EQUATION = "c = a * (ka + kd * max(0, n.l)) + kd * ks * max(0, r.v) ** shininess"

FILES = {
    "mesh": "mesh.ply",
    "albedo": "textures/albedo.png",
    "specular": "textures/specular.png",
    "shininess": "textures/shininess.png",
    "normal": "textures/normal.png",
    "ambient_occlusion": "textures/ambient_occlusion.png",
    "target": "images/target.png",
    "rerender": "images/rerender.png",
    "mask": "images/mask.png",
    "report": "images/report.png",
    "glb": "asset.glb",
    "latent": "latent.npy",
}


@dataclass
class CameraSpec:
    """The target camera: pixels, vertical field of view, and the 4x4 rigid
    ``world_from_camera`` (OpenGL camera axes, bundle frame, metres)."""
    image_width: int
    image_height: int
    fov_y_degrees: float
    world_from_camera: np.ndarray


@dataclass
class LightSpec:
    """One directional light and the ambient term of the Phong model:
    ``towards_light`` unit [3] in the bundle frame (surface to light), ``kd``
    and ``ka`` strengths."""
    towards_light: np.ndarray
    diffuse_strength: float
    ambient_strength: float


# --- writing ------------------------------------------------------------------------

def write_bundle(destination, *, mesh: TexturedMesh, textures: BakedTextures, camera: CameraSpec,
                 light: LightSpec, target_image: np.ndarray, rerender_image: np.ndarray, mask: np.ndarray,
                 provenance: dict, latent: np.ndarray | None = None,
                 report_image: np.ndarray | None = None) -> Path:
    """Writes the bundle directory ``destination`` atomically (module
    docstring) and returns it.

    ``target_image`` and ``rerender_image``: [H, W, 3] sRGB-encoded floats in
    [0, 1] at the camera's size; ``mask``: [H, W] in [0, 1]; ``provenance``:
    JSON-able dict (numpy scalars and arrays are converted), to which
    ``versions`` is added when missing and ``latent_file`` when ``latent``
    is given (saved as latent.npy, float32). ``report_image``, optional: the
    picture of the fit (``export.report``), [H, W, 3] uint8 or sRGB floats in
    [0, 1] of any size, saved as images/report.png and named in the
    manifest's ``images`` as ``report``. ``textures.ambient_occlusion``, when
    not None, is written as textures/ambient_occlusion.png (grey 8-bit) and
    named in the manifest's ``textures``; without it the bundle has none."""
    destination = Path(destination)
    _check_inputs(destination, mesh, camera, light, target_image, rerender_image, mask, textures)
    if report_image is not None:
        report_image = _report_pixels(destination, report_image)
    if destination.exists() and not destination.is_dir():
        raise BundleError("{}: exists and is not a directory; refusing to replace it with a bundle"
                          .format(destination))
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=destination.name + ".tmp-", dir=destination.parent))
    try:
        os.chmod(staging, 0o755)
        (staging / "textures").mkdir()
        (staging / "images").mkdir()
        _ply.write_ply(staging / FILES["mesh"], mesh)
        _images.write_albedo_png(staging / FILES["albedo"], textures.albedo)
        _images.write_specular_png(staging / FILES["specular"], textures.specular, scale=1.0)
        _images.write_shininess_png(staging / FILES["shininess"], textures.shininess)
        _images.write_normal_png(staging / FILES["normal"], textures.normal)
        if textures.ambient_occlusion is not None:
            _images.write_ambient_occlusion_png(staging / FILES["ambient_occlusion"], textures.ambient_occlusion)
        _images.write_srgb_png(staging / FILES["target"], target_image)
        _images.write_srgb_png(staging / FILES["rerender"], rerender_image)
        _images.write_mask_png(staging / FILES["mask"], mask)
        if report_image is not None:
            (staging / FILES["report"]).write_bytes(_images.png_bytes(report_image))
        _gltf.write_glb(staging / FILES["glb"], mesh, textures)
        provenance = _complete_provenance(provenance)
        if latent is not None:
            np.save(staging / FILES["latent"], np.asarray(latent, dtype=np.float32))
            provenance["latent_file"] = FILES["latent"]
        manifest = build_manifest(mesh=mesh, textures=textures, camera=camera, light=light, provenance=provenance,
                                  report=report_image is not None)
        try:
            text = json.dumps(manifest, indent=2, allow_nan=False, default=_json_default)
        except ValueError as error:
            raise BundleError("{}: every number must be finite ({}); check provenance".format(
                destination / MANIFEST_NAME, error)) from None
        except TypeError as error:
            raise BundleError("{}: cannot write as JSON ({})".format(destination / MANIFEST_NAME, error)) from None
        (staging / MANIFEST_NAME).write_text(text + "\n", encoding="utf-8")
        validate_bundle(staging)
        _move_into_place(staging, destination)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return destination


def build_manifest(*, mesh: TexturedMesh, textures: BakedTextures, camera: CameraSpec, light: LightSpec,
                   provenance: dict, report: bool = False) -> dict:
    """The manifest.json object for these parts (files at ``FILES``);
    ``report``: whether the bundle holds images/report.png."""
    height, width = textures.albedo.shape[:2]

    def texture(name: str, **extra) -> dict:
        bit_depth, _, colour_space = {**TEXTURE_FORMATS, **OPTIONAL_TEXTURE_FORMATS}[name]
        return dict({"file": FILES[name], "width": int(width), "height": int(height),
                     "bit_depth": bit_depth, "colour_space": colour_space}, **extra)

    towards = np.asarray(light.towards_light, dtype=np.float64).reshape(3)
    towards = towards / np.linalg.norm(towards)
    world_from_camera = np.asarray(camera.world_from_camera, dtype=np.float64).reshape(4, 4)
    images = {"target": FILES["target"], "rerender": FILES["rerender"], "mask": FILES["mask"]}
    if report:
        images["report"] = FILES["report"]
    texture_entries = {
        "albedo": texture("albedo"),
        "specular": texture("specular", encoding={"kind": "linear", "scale": 1.0}),
        "shininess": texture("shininess", encoding={"kind": "log", "min": float(conventions.SHININESS_MIN),
                                                    "max": float(conventions.SHININESS_MAX)}),
        "normal": texture("normal", encoding={"kind": "tangent", "convention": "opengl"}),
    }
    if textures.ambient_occlusion is not None:
        texture_entries["ambient_occlusion"] = texture("ambient_occlusion")
    return {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "generator_version": __version__,
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "units": "metre",
        "up_axis": "+Y",
        "mesh": {"file": FILES["mesh"], "vertex_count": int(len(mesh.vertices)), "face_count": int(len(mesh.faces)),
                 "bounds_min": [float(v) for v in mesh.vertices.min(axis=0)],
                 "bounds_max": [float(v) for v in mesh.vertices.max(axis=0)]},
        "textures": texture_entries,
        "camera": {
            "model": "perspective",
            "image_width": int(camera.image_width),
            "image_height": int(camera.image_height),
            "fov_y_degrees": float(camera.fov_y_degrees),
            "focal_length_px": float(conventions.focal_length_px(int(camera.image_height), float(camera.fov_y_degrees))),
            "principal_point_px": [camera.image_width / 2.0, camera.image_height / 2.0],
            "world_from_camera": world_from_camera.tolist(),
        },
        "lights": {
            "directional": [{"towards_light": towards.tolist(), "strength": float(light.diffuse_strength),
                             "colour": [1.0, 1.0, 1.0]}],
            "ambient": {"strength": float(light.ambient_strength), "colour": [1.0, 1.0, 1.0]},
        },
        "shading": {"model": "phong", "equation": SHADING_EQUATION,
                    "shininess_range": [float(conventions.SHININESS_MIN), float(conventions.SHININESS_MAX)]},
        "images": images,
        "glb": FILES["glb"],
        "provenance": provenance,
    }


def _complete_provenance(provenance: dict) -> dict:
    if not isinstance(provenance, dict):
        raise TypeError("provenance must be a dict, got {}".format(type(provenance).__name__))
    provenance = dict(provenance)
    versions = dict(provenance.get("versions") or {})
    versions.setdefault("python", platform.python_version())
    versions.setdefault("numpy", np.__version__)
    versions.setdefault("gan2x", __version__)
    torch = sys.modules.get("torch")  # never imported here: the export stage is torch-free
    if torch is not None and getattr(torch, "__version__", None):
        versions.setdefault("torch", str(torch.__version__))
    provenance["versions"] = versions
    return provenance


def _json_default(value):
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return value.as_posix()
    raise TypeError("{} is not JSON serialisable".format(type(value).__name__))


def _check_inputs(destination, mesh, camera, light, target_image, rerender_image, mask, textures) -> None:
    _check_limits(destination, mesh, camera, textures)
    size = (int(camera.image_height), int(camera.image_width))
    for name, image, channels in (("target_image", target_image, 3), ("rerender_image", rerender_image, 3),
                                  ("mask", mask, None)):
        shape = np.shape(image)
        expected = size + ((channels,) if channels else ())
        if tuple(shape) != expected:
            raise ValueError("{}: {} has shape {}, the camera needs {}".format(destination, name, shape, expected))
    height, width = textures.albedo.shape[:2]
    for name in ("specular", "shininess", "coverage") + (
            ("ambient_occlusion",) if textures.ambient_occlusion is not None else ()):
        if getattr(textures, name).shape != (height, width):
            raise ValueError("{}: texture {} is {}, albedo is {}".format(
                destination, name, getattr(textures, name).shape, (height, width)))
    if textures.normal.shape != (height, width, 3):
        raise ValueError("{}: normal map is {}, albedo is {}".format(destination, textures.normal.shape,
                                                                     (height, width)))
    towards = np.asarray(light.towards_light, dtype=np.float64).reshape(-1)
    if towards.shape != (3,) or not np.all(np.isfinite(towards)) or np.linalg.norm(towards) < 1e-9:
        raise ValueError("{}: towards_light must be a non-zero 3-vector, got {}".format(destination, towards))


def _check_limits(destination, mesh, camera, textures) -> None:
    """Refuses, before anything is written, what validate_bundle would refuse
    as beyond docs/bundle.md's limits."""
    problems = []
    if not 0 < int(camera.image_width) <= MAX_IMAGE_SIDE or not 0 < int(camera.image_height) <= MAX_IMAGE_SIDE:
        problems.append("the camera is {}x{} pixels, at most {} a side".format(
            camera.image_width, camera.image_height, MAX_IMAGE_SIDE))
    height, width = textures.albedo.shape[:2]
    if not 0 < width <= MAX_TEXTURE_SIDE or not 0 < height <= MAX_TEXTURE_SIDE:
        problems.append("the textures are {}x{} pixels, at most {} a side".format(width, height, MAX_TEXTURE_SIDE))
    if len(mesh.vertices) > MAX_VERTICES or len(mesh.faces) > MAX_FACES:
        problems.append("the mesh has {} vertices and {} faces, at most {} and {}".format(
            len(mesh.vertices), len(mesh.faces), MAX_VERTICES, MAX_FACES))
    if problems:
        raise ValueError("{}: {} (docs/bundle.md, Limits)".format(destination, "; ".join(problems)))


def _report_pixels(destination, image) -> np.ndarray:
    """The report picture as RGB uint8 [H, W, 3] (uint8 as it is, floats in [0, 1] quantised)."""
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[2] != 3 or array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError("{}: report_image has shape {}, expected [H, W, 3]".format(destination, array.shape))
    if array.dtype == np.uint8:
        return np.ascontiguousarray(array)
    array = np.asarray(array, dtype=np.float64)
    if not np.all(np.isfinite(array)):
        raise ValueError("{}: report_image holds non-finite values".format(destination))
    return _images.quantize8(array)


def _move_into_place(staging: Path, destination: Path) -> None:
    if not destination.exists():
        os.rename(staging, destination)
        return
    retired = destination.parent / "{}.old-{}".format(destination.name, uuid.uuid4().hex[:8])
    os.rename(destination, retired)
    try:
        os.rename(staging, destination)
    except BaseException:
        os.rename(retired, destination)
        raise
    shutil.rmtree(retired, ignore_errors=True)


# --- validation -----------------------------------------------------------------------

def validate_bundle(path) -> dict:
    """Validates the bundle directory ``path`` (or its manifest.json) and
    returns the manifest; raises BundleError naming the file and the
    problem. The checks and their messages are the add-on's
    (``manifest_checks``, strict: the writer's exact formats too); the
    .glb container and the latent .npy are checked here."""
    path = Path(path)
    manifest_path = path if path.name == MANIFEST_NAME and not path.is_dir() else path / MANIFEST_NAME
    checked = check_bundle(Checker(manifest_path, error_type=BundleError, strict=True),
                           lambda mesh_path, max_bytes: _ply.read_ply(mesh_path))
    _gltf.read_glb(checked.glb_path)
    if checked.latent_path is not None:
        try:
            np.load(checked.latent_path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as error:
            raise BundleError("{}: not a readable .npy file ({})".format(checked.latent_path, error)) from None
    return checked.manifest

"""The asset bundle (docs/bundle.md, schema 1): atomic writer and the
backend-side validator.

``write_bundle`` writes every file into a temporary sibling directory
``<destination>.tmp-<random>``, validates it with ``validate_bundle``, then
renames it into place. An existing bundle at the destination is renamed
away first and deleted only once the new one is in place (and put back if
that rename fails). On any failure the temporary directory is removed and
the destination is left as it was.

``validate_bundle`` checks everything docs/bundle.md's "Validation" section
lists (and a few consistency checks of its own: texture bit depths and
channels as the table says, mesh bounds, image sizes against the camera,
the .glb container) and returns the manifest, or raises ``BundleError``
whose message names the file and the problem.

No torch here: inputs are numpy arrays.
"""
from __future__ import annotations

import json
import math
import os
import platform
import shutil
import sys
import tempfile
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

import numpy as np

from .. import __version__, conventions
from . import gltf as _gltf
from . import images as _images
from . import ply as _ply
from .datatypes import BakedTextures, BundleError, TexturedMesh

__all__ = ["CameraSpec", "LightSpec", "BundleError", "SCHEMA_VERSION", "FORMAT", "write_bundle",
           "validate_bundle", "build_manifest"]

SCHEMA_VERSION = 1
FORMAT = "gan2x.bundle"
MANIFEST_NAME = "manifest.json"
SHADING_EQUATION = "c = a * (ka + kd * max(0, n.l)) + kd * ks * max(0, r.v) ** shininess"

FILES = {
    "mesh": "mesh.ply",
    "albedo": "textures/albedo.png",
    "specular": "textures/specular.png",
    "shininess": "textures/shininess.png",
    "normal": "textures/normal.png",
    "target": "images/target.png",
    "rerender": "images/rerender.png",
    "mask": "images/mask.png",
    "report": "images/report.png",
    "glb": "asset.glb",
    "latent": "latent.npy",
}

# name -> (bit depth, PNG colour, manifest colour_space) as docs/bundle.md's table says.
TEXTURE_FORMATS = {
    "albedo": (8, "RGB", "sRGB"),
    "specular": (16, "grey", "linear"),
    "shininess": (16, "grey", "linear"),
    "normal": (8, "RGB", "linear"),
}
IMAGE_FORMATS = {"target": "RGB", "rerender": "RGB", "mask": "grey"}
OPTIONAL_IMAGE_FORMATS = {"report": "RGB"}
"""Images a bundle may name (8-bit, any size): ``report``, the picture of the fit."""


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
    manifest's ``images`` as ``report``."""
    destination = Path(destination)
    _check_inputs(destination, camera, light, target_image, rerender_image, mask, textures)
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
        bit_depth, _, colour_space = TEXTURE_FORMATS[name]
        return dict({"file": FILES[name], "width": int(width), "height": int(height),
                     "bit_depth": bit_depth, "colour_space": colour_space}, **extra)

    towards = np.asarray(light.towards_light, dtype=np.float64).reshape(3)
    towards = towards / np.linalg.norm(towards)
    world_from_camera = np.asarray(camera.world_from_camera, dtype=np.float64).reshape(4, 4)
    images = {"target": FILES["target"], "rerender": FILES["rerender"], "mask": FILES["mask"]}
    if report:
        images["report"] = FILES["report"]
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
        "textures": {
            "albedo": texture("albedo"),
            "specular": texture("specular", encoding={"kind": "linear", "scale": 1.0}),
            "shininess": texture("shininess", encoding={"kind": "log", "min": float(conventions.SHININESS_MIN),
                                                        "max": float(conventions.SHININESS_MAX)}),
            "normal": texture("normal", encoding={"kind": "tangent", "convention": "opengl"}),
        },
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


def _check_inputs(destination, camera, light, target_image, rerender_image, mask, textures) -> None:
    size = (int(camera.image_height), int(camera.image_width))
    for name, image, channels in (("target_image", target_image, 3), ("rerender_image", rerender_image, 3),
                                  ("mask", mask, None)):
        shape = np.shape(image)
        expected = size + ((channels,) if channels else ())
        if tuple(shape) != expected:
            raise ValueError("{}: {} has shape {}, the camera needs {}".format(destination, name, shape, expected))
    height, width = textures.albedo.shape[:2]
    for name in ("specular", "shininess", "coverage"):
        if getattr(textures, name).shape != (height, width):
            raise ValueError("{}: texture {} is {}, albedo is {}".format(
                destination, name, getattr(textures, name).shape, (height, width)))
    if textures.normal.shape != (height, width, 3):
        raise ValueError("{}: normal map is {}, albedo is {}".format(destination, textures.normal.shape,
                                                                     (height, width)))
    towards = np.asarray(light.towards_light, dtype=np.float64).reshape(-1)
    if towards.shape != (3,) or not np.all(np.isfinite(towards)) or np.linalg.norm(towards) < 1e-9:
        raise ValueError("{}: towards_light must be a non-zero 3-vector, got {}".format(destination, towards))


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

class _NonFinite(ValueError):
    pass


def _refuse_constant(name: str):
    raise _NonFinite(name)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NonFinite(text)
    return value


class _Checker:
    """Typed access to the manifest; errors name manifest.json (or a file)."""

    def __init__(self, manifest_path: Path):
        self.manifest_path = manifest_path
        self.root = manifest_path.parent
        self.root_resolved = self.root.resolve()

    def error(self, problem: str, path: Path | None = None) -> BundleError:
        return BundleError("{}: {}".format(path or self.manifest_path, problem))

    def get(self, mapping, key: str, kind: str, where: str = ""):
        dotted = where + key
        if not isinstance(mapping, dict) or key not in mapping:
            raise self.error("missing required key '{}' (docs/bundle.md)".format(dotted))
        value = mapping[key]
        valid = {
            "str": isinstance(value, str),
            "int": isinstance(value, int) and not isinstance(value, bool),
            "number": isinstance(value, (int, float)) and not isinstance(value, bool),
            "object": isinstance(value, dict),
            "list": isinstance(value, list),
        }[kind]
        if not valid:
            raise self.error("'{}' must be {} {}, found {}".format(
                dotted, "an" if kind in ("int", "object") else "a", kind, _short(value)))
        return value

    def equal(self, mapping, key: str, expected, where: str = ""):
        value = self.get(mapping, key, "str" if isinstance(expected, str) else "number", where)
        if value != expected:
            raise self.error("'{}{}' must be {!r}, found {}".format(where, key, expected, _short(value)))
        return value

    def vector(self, mapping, key: str, length: int, where: str = "") -> np.ndarray:
        value = self.get(mapping, key, "list", where)
        if len(value) != length or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            raise self.error("'{}{}' must be a list of {} numbers, found {}".format(where, key, length, _short(value)))
        return np.asarray(value, dtype=np.float64)

    def positive_int(self, mapping, key: str, where: str = "") -> int:
        value = self.get(mapping, key, "int", where)
        if value <= 0:
            raise self.error("'{}{}' must be positive, found {}".format(where, key, value))
        return value

    def file(self, mapping, key: str, where: str = "") -> Path:
        relative = self.get(mapping, key, "str", where)
        dotted = where + key
        pure = PurePosixPath(relative)
        if not relative or "\\" in relative:
            raise self.error("'{}' must be a bundle-relative path using '/', found {!r}".format(dotted, relative))
        if pure.is_absolute() or (pure.parts and ":" in pure.parts[0]):
            raise self.error("'{}' is an absolute path ({!r}); paths must be relative to the bundle"
                             .format(dotted, relative))
        path = self.root / pure
        resolved = path.resolve()
        if resolved != self.root_resolved and self.root_resolved not in resolved.parents:
            raise self.error("'{}' ({!r}) leaves the bundle directory".format(dotted, relative))
        if not path.is_file():
            raise self.error("'{}' names {!r}, which is missing from the bundle ({})".format(dotted, relative, path))
        return path


def _short(value) -> str:
    text = repr(value) if isinstance(value, float) else json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def validate_bundle(path) -> dict:
    """Validates the bundle directory ``path`` (or its manifest.json) and
    returns the manifest; raises BundleError naming the file and the
    problem."""
    path = Path(path)
    manifest_path = path if path.name == MANIFEST_NAME and not path.is_dir() else path / MANIFEST_NAME
    check = _Checker(manifest_path)
    manifest = _load_manifest(check)

    check.get(manifest, "generator_version", "str")
    check.get(manifest, "created", "str")
    check.equal(manifest, "units", "metre")
    check.equal(manifest, "up_axis", "+Y")

    mesh_info = check.get(manifest, "mesh", "object")
    mesh_path = check.file(mesh_info, "file", "mesh.")
    vertex_count = check.get(mesh_info, "vertex_count", "int", "mesh.")
    face_count = check.get(mesh_info, "face_count", "int", "mesh.")
    bounds_min = check.vector(mesh_info, "bounds_min", 3, "mesh.")
    bounds_max = check.vector(mesh_info, "bounds_max", 3, "mesh.")

    texture_info = check.get(manifest, "textures", "object")
    for name in TEXTURE_FORMATS:
        _check_texture(check, check.get(texture_info, name, "object", "textures."), name)

    camera = _check_camera(check, check.get(manifest, "camera", "object"))
    _check_lights(check, check.get(manifest, "lights", "object"))

    shading = check.get(manifest, "shading", "object")
    check.equal(shading, "model", "phong", "shading.")
    check.get(shading, "equation", "str", "shading.")
    check.vector(shading, "shininess_range", 2, "shading.")

    image_info = check.get(manifest, "images", "object")
    for name, colour in IMAGE_FORMATS.items():
        image_path = check.file(image_info, name, "images.")
        info = _images.png_info(image_path)
        if info["bit_depth"] != 8 or info["colour"] != colour:
            raise check.error("must be {} 8-bit, found {} {}-bit".format(colour, info["colour"], info["bit_depth"]),
                              image_path)
        if (info["width"], info["height"]) != camera:
            raise check.error("is {}x{} pixels but the camera is {}x{}".format(
                info["width"], info["height"], *camera), image_path)
    for name, colour in OPTIONAL_IMAGE_FORMATS.items():  # any size: not at the camera's
        if name not in image_info:
            continue
        image_path = check.file(image_info, name, "images.")
        info = _images.png_info(image_path)
        if info["bit_depth"] != 8 or info["colour"] != colour:
            raise check.error("must be {} 8-bit, found {} {}-bit".format(colour, info["colour"], info["bit_depth"]),
                              image_path)

    _gltf.read_glb(check.file(manifest, "glb"))

    provenance = check.get(manifest, "provenance", "object")
    seed = provenance.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise check.error("'provenance.seed' must be an int or null, found {}".format(_short(seed)))
    if provenance.get("latent_file") is not None:
        latent_path = check.file(provenance, "latent_file", "provenance.")
        try:
            np.load(latent_path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as error:
            raise check.error("not a readable .npy file ({})".format(error), latent_path) from None

    mesh = _ply.read_ply(mesh_path)
    if len(mesh.vertices) != vertex_count or len(mesh.faces) != face_count:
        raise check.error("holds {} vertices and {} faces but manifest.json says {} and {}".format(
            len(mesh.vertices), len(mesh.faces), vertex_count, face_count), mesh_path)
    if vertex_count:
        tolerance = 1e-5 * max(1.0, float(np.abs(mesh.vertices).max()))
        if (np.abs(mesh.vertices.min(axis=0) - bounds_min).max() > tolerance
                or np.abs(mesh.vertices.max(axis=0) - bounds_max).max() > tolerance):
            raise check.error("'mesh.bounds_min'/'bounds_max' do not match the vertices of {}".format(
                mesh_path.name))
    return manifest


def _load_manifest(check: _Checker) -> dict:
    path = check.manifest_path
    if not path.is_file():
        raise BundleError("{}: missing; a bundle directory holds a {}".format(path, MANIFEST_NAME))
    try:
        text = path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise check.error("cannot read the manifest ({})".format(error)) from None
    try:
        manifest = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except _NonFinite as error:
        raise check.error("{} is not allowed: every number in the manifest must be finite".format(
            error.args[0])) from None
    except json.JSONDecodeError as error:
        raise check.error("not valid JSON ({} at line {}, column {})".format(
            error.msg, error.lineno, error.colno)) from None
    if not isinstance(manifest, dict):
        raise check.error("the manifest must be a JSON object")
    if manifest.get("format") != FORMAT:
        raise check.error("'format' is {}, expected {!r}: not a GAN2X bundle manifest".format(
            _short(manifest.get("format")), FORMAT))
    version = check.get(manifest, "schema_version", "int")
    if version != SCHEMA_VERSION:
        raise check.error("unknown schema_version {}; this backend reads and writes schema {}".format(
            version, SCHEMA_VERSION))
    return manifest


def _check_texture(check: _Checker, info: dict, name: str) -> None:
    where = "textures.{}.".format(name)
    path = check.file(info, "file", where)
    width = check.positive_int(info, "width", where)
    height = check.positive_int(info, "height", where)
    bit_depth = check.get(info, "bit_depth", "int", where)
    check.get(info, "colour_space", "str", where)
    expected_depth, colour, _ = TEXTURE_FORMATS[name]
    if bit_depth != expected_depth:
        raise check.error("'{}bit_depth' must be {} (docs/bundle.md), found {}".format(where, expected_depth, bit_depth))
    if name == "specular":
        encoding = check.get(info, "encoding", "object", where)
        check.equal(encoding, "kind", "linear", where + "encoding.")
        scale = check.get(encoding, "scale", "number", where + "encoding.")
        if scale < 0:
            raise check.error("'{}encoding.scale' must be >= 0, found {}".format(where, scale))
    elif name == "shininess":
        encoding = check.get(info, "encoding", "object", where)
        check.equal(encoding, "kind", "log", where + "encoding.")
        low = check.get(encoding, "min", "number", where + "encoding.")
        high = check.get(encoding, "max", "number", where + "encoding.")
        if not 0 < low < high:
            raise check.error("'{}encoding' needs 0 < min < max, found min {} max {}".format(where, low, high))
    elif name == "normal" and "encoding" in info:
        encoding = check.get(info, "encoding", "object", where)
        check.equal(encoding, "kind", "tangent", where + "encoding.")
        check.equal(encoding, "convention", "opengl", where + "encoding.")

    actual = _images.png_info(path)
    if (actual["width"], actual["height"]) != (width, height):
        raise check.error("is {}x{} pixels but manifest.json says {}x{}".format(
            actual["width"], actual["height"], width, height), path)
    if actual["bit_depth"] != bit_depth:
        raise check.error("has {}-bit channels but manifest.json says {}-bit".format(actual["bit_depth"], bit_depth),
                          path)
    if actual["colour"] != colour:
        raise check.error("is a {} PNG, expected {}".format(actual["colour"], colour), path)


def _check_camera(check: _Checker, info: dict) -> tuple:
    where = "camera."
    check.equal(info, "model", "perspective", where)
    width = check.positive_int(info, "image_width", where)
    height = check.positive_int(info, "image_height", where)
    fov = check.get(info, "fov_y_degrees", "number", where)
    if not 0.0 < fov < 180.0:
        raise check.error("'camera.fov_y_degrees' must be in (0, 180), found {}".format(fov))
    focal = check.get(info, "focal_length_px", "number", where)
    expected = conventions.focal_length_px(height, fov)
    if abs(focal - expected) > 0.01 * expected:
        raise check.error("'camera.focal_length_px' is {:.6g} but fov_y_degrees {:.6g} over {} pixels means {:.6g}"
                          .format(focal, fov, height, expected))
    principal = check.vector(info, "principal_point_px", 2, where)
    if abs(principal[0] - width / 2) > 0.5 or abs(principal[1] - height / 2) > 0.5:
        raise check.error("'camera.principal_point_px' must be the image centre in schema 1, found {}".format(
            principal.tolist()))
    rows = check.get(info, "world_from_camera", "list", where)
    if len(rows) != 4 or not all(isinstance(row, list) and len(row) == 4 and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in row) for row in rows):
        raise check.error("'camera.world_from_camera' must be 4 rows of 4 numbers")
    matrix = np.asarray(rows, dtype=np.float64)
    rotation = matrix[:3, :3]
    if (np.abs(rotation.T @ rotation - np.eye(3)).max() > 1e-4 or np.linalg.det(rotation) < 0
            or np.abs(matrix[3] - [0, 0, 0, 1]).max() > 1e-9):
        raise check.error("'camera.world_from_camera' must be rigid (a rotation and a translation, no scale)")
    return width, height


def _check_lights(check: _Checker, info: dict) -> None:
    directional = check.get(info, "directional", "list", "lights.")
    for index, light in enumerate(directional):
        where = "lights.directional[{}].".format(index)
        if not isinstance(light, dict):
            raise check.error("'{}' must be an object".format(where[:-1]))
        towards = check.vector(light, "towards_light", 3, where)
        if abs(np.linalg.norm(towards) - 1.0) > 1e-3:
            raise check.error("'{}towards_light' must be a unit vector, found {}".format(where, towards.tolist()))
        if check.get(light, "strength", "number", where) < 0:
            raise check.error("'{}strength' must be >= 0".format(where))
        check.vector(light, "colour", 3, where)
    ambient = check.get(info, "ambient", "object", "lights.")
    if check.get(ambient, "strength", "number", "lights.ambient.") < 0:
        raise check.error("'lights.ambient.strength' must be >= 0")
    check.vector(ambient, "colour", 3, "lights.ambient.")

"""Reads and validates a GAN2X asset bundle (docs/bundle.md, schema 1).

bpy-free: numpy and the standard library only, so it is tested without
Blender. ``read_bundle`` accepts the bundle directory, its manifest.json, or
a .zip of the bundle, and either returns a fully checked ``Bundle`` or raises
``BundleError`` with a message that names the file and says what to do.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import stat
import struct
import tempfile
import weakref
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from . import conventions
from .provenance import generator_text
from .ply import PlyError, read_ply

FORMAT = "gan2x.bundle"
SUPPORTED_SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.json"
TEXTURE_NAMES = ("albedo", "specular", "shininess", "normal")
IMAGE_NAMES = ("target", "rerender", "mask")

_MAX_ZIP_BYTES = 4 << 30
"""Refuse archives that would unpack to more than this (a zip bomb guard)."""
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class BundleError(Exception):
    """A bundle that cannot be read; ``str()`` names the file and the problem."""


@dataclass(frozen=True)
class TextureInfo:
    """One texture of the bundle: absolute path, size in pixels, bits per
    channel, colour space as the manifest names it and its value encoding."""
    path: Path
    width: int
    height: int
    bit_depth: int
    colour_space: str
    encoding: dict


@dataclass(frozen=True)
class Camera:
    """The target view. ``world_from_camera`` [4, 4] float64 in the bundle
    frame with OpenGL camera axes; the principal point is the image centre."""
    image_width: int
    image_height: int
    fov_y_degrees: float
    focal_length_px: float
    principal_point_px: tuple
    world_from_camera: np.ndarray


@dataclass(frozen=True)
class DirectionalLight:
    """``towards_light``: unit [3] in the bundle frame (surface to light);
    ``strength``: Phong kd; ``colour``: linear RGB."""
    towards_light: np.ndarray
    strength: float
    colour: tuple


@dataclass(frozen=True)
class AmbientLight:
    """``strength``: Phong ka; ``colour``: linear RGB."""
    strength: float
    colour: tuple


@dataclass
class Bundle:
    """A validated bundle. Mesh arrays are in the bundle frame (+Y up):
    vertices [N, 3] float32 metres, normals [N, 3] float32, uvs [N, 2]
    float32 (origin bottom-left), faces [M, 3] int32. Paths are absolute.

    ``images`` holds the required images (target, rerender, mask);
    ``report_path`` the optional report picture (images/report.png), None
    when the bundle names none.

    A bundle read from a .zip lives in a temporary directory that ``close()``
    (or leaving a ``with`` block, or garbage collection) removes; import it
    (which packs its images into the .blend) before closing."""
    name: str
    root: Path
    manifest_path: Path
    manifest: dict
    vertices: np.ndarray
    normals: np.ndarray
    uvs: np.ndarray
    faces: np.ndarray
    textures: dict
    camera: Camera
    directional_lights: list
    ambient_light: AmbientLight
    shading: dict
    images: dict
    glb_path: Path
    provenance: dict
    latent_path: Path | None = None
    source: Path | None = None
    report_path: Path | None = None
    _cleanup: Any = field(default=None, repr=False)

    @property
    def generator(self) -> str:
        """The generator spec from provenance, as text ('' when absent)."""
        return generator_text(self.provenance)

    @property
    def seed(self):
        """The seed from provenance (int or None)."""
        return self.provenance.get("seed")

    def close(self) -> None:
        """Removes the temporary directory of a bundle read from a .zip."""
        if self._cleanup is not None:
            self._cleanup()

    def __enter__(self) -> "Bundle":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


# --- entry point ----------------------------------------------------------------

def read_bundle(path) -> Bundle:
    """Reads the bundle at ``path``: its directory, its manifest.json, or a
    .zip holding it (at the top or in one folder). Raises BundleError."""
    path = Path(os.fspath(path)).expanduser()
    if not path.exists():
        raise BundleError("{}: no such file or directory".format(path))
    if path.is_dir():
        return _read_directory(path / MANIFEST_NAME, source=path)
    if path.suffix.lower() == ".zip" or (path.suffix.lower() != ".json" and zipfile.is_zipfile(path)):
        return _read_zip(path)
    if path.suffix.lower() == ".json":
        return _read_directory(path, source=path)
    raise BundleError("{}: not a bundle; choose the bundle folder, its manifest.json or a .zip of it"
                      .format(path))


def _read_zip(zip_path: Path) -> Bundle:
    extract_dir = Path(tempfile.mkdtemp(prefix="gan2x-bundle-")).resolve()
    try:
        manifest_path = _extract_zip(zip_path, extract_dir)
        bundle = _read_directory(
            manifest_path, source=zip_path,
            label=lambda path: "{} ({})".format(zip_path, path.relative_to(extract_dir).as_posix()))
    except BaseException:
        shutil.rmtree(extract_dir, ignore_errors=True)
        raise
    bundle._cleanup = weakref.finalize(bundle, shutil.rmtree, str(extract_dir), True)
    if manifest_path.parent == extract_dir:
        bundle.name = zip_path.stem
    return bundle


def unpack_bundle_zip(zip_path, directory) -> Path:
    """Unpacks a bundle zip (files at its top or in one folder) so that the
    new folder ``directory`` holds the bundle's files, with the same checks as
    ``read_bundle``; a temporary sibling is renamed into place, so a failure
    leaves no half folder. Returns ``directory``. Does not validate the
    manifest: ``read_bundle`` does that when the bundle is imported."""
    zip_path, directory = Path(zip_path), Path(directory)
    if directory.exists():
        raise BundleError("{}: already exists; not unpacking {} over it".format(directory, zip_path))
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=directory.name + ".tmp-", dir=directory.parent)).resolve()
    try:
        manifest_path = _extract_zip(zip_path, staging)
        os.replace(manifest_path.parent, directory)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return directory


def _extract_zip(zip_path: Path, extract_dir: Path) -> Path:
    """Unpacks ``zip_path`` into ``extract_dir``, refusing members that would
    land outside it; returns the manifest's path."""
    try:
        archive = zipfile.ZipFile(zip_path)
    except (OSError, zipfile.BadZipFile) as error:
        raise BundleError("{}: cannot open the archive ({})".format(zip_path, error)) from None
    root = extract_dir.resolve()
    with archive:
        members = archive.infolist()
        if sum(member.file_size for member in members) > _MAX_ZIP_BYTES:
            raise BundleError("{}: unpacks to more than {} GiB; not a bundle".format(
                zip_path, _MAX_ZIP_BYTES >> 30))
        for member in members:
            name = member.filename
            pure = PurePosixPath(name.replace("\\", "/"))
            if (pure.is_absolute() or name.startswith(("/", "\\")) or ".." in pure.parts
                    or (pure.parts and ":" in pure.parts[0])):
                raise BundleError("{}: member {!r} would be written outside the bundle; refusing the archive"
                                  .format(zip_path, name))
            if stat.S_ISLNK(member.external_attr >> 16):
                raise BundleError("{}: member {!r} is a symbolic link; refusing the archive".format(zip_path, name))
            target = (root / pure).resolve()
            if target != root and root not in target.parents:
                raise BundleError("{}: member {!r} would be written outside the bundle; refusing the archive"
                                  .format(zip_path, name))
            if member.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with archive.open(member) as source, open(target, "wb") as destination:
                    shutil.copyfileobj(source, destination)
            except (OSError, zipfile.BadZipFile, EOFError) as error:
                raise BundleError("{}: cannot unpack {!r} ({})".format(zip_path, name, error)) from None
    if (root / MANIFEST_NAME).is_file():
        return root / MANIFEST_NAME
    candidates = sorted(root.glob("*/" + MANIFEST_NAME))
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise BundleError("{}: no {} at the top of the archive or in one folder; not a GAN2X bundle"
                          .format(zip_path, MANIFEST_NAME))
    raise BundleError("{}: holds {} bundles ({}); zip one bundle at a time".format(
        zip_path, len(candidates), ", ".join(c.parent.name for c in candidates)))


# --- manifest -------------------------------------------------------------------

class _NonFinite(ValueError):
    pass


def _refuse_constant(name: str):
    raise _NonFinite(name)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NonFinite(text)
    return value


class _Reader:
    """Validation state: the bundle root and how files are named in messages."""

    def __init__(self, manifest_path: Path, label=None):
        self.manifest_path = manifest_path
        self.root = manifest_path.parent
        self.root_resolved = self.root.resolve()
        self._label = label or (lambda p: str(p))

    def label(self, path: Path) -> str:
        return self._label(path)

    def error(self, message: str, path: Path | None = None) -> BundleError:
        return BundleError("{}: {}".format(self.label(path or self.manifest_path), message))

    # -- typed access: ``where`` is the dotted key used in messages
    def value(self, mapping: dict, key: str, kind: str, where: str = ""):
        dotted = where + key
        if not isinstance(mapping, dict) or key not in mapping:
            raise self.error("missing key '{}' (docs/bundle.md)".format(dotted))
        value = mapping[key]
        checks = {
            "str": lambda v: isinstance(v, str),
            "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
            "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
            "object": lambda v: isinstance(v, dict),
            "list": lambda v: isinstance(v, list),
        }
        if not checks[kind](value):
            raise self.error("'{}' must be {} {}, found {}".format(
                dotted, "an" if kind in ("int", "object") else "a", kind, _short(value)))
        return value

    def number(self, mapping, key, where="", minimum=None, exclusive=False) -> float:
        value = float(self.value(mapping, key, "number", where))
        if minimum is not None and (value < minimum or (exclusive and value == minimum)):
            raise self.error("'{}{}' must be {} {}, found {}".format(
                where, key, ">" if exclusive else ">=", minimum, _short(value)))
        return value

    def vector(self, mapping, key, length, where="") -> np.ndarray:
        value = self.value(mapping, key, "list", where)
        if len(value) != length or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                           for v in value):
            raise self.error("'{}{}' must be a list of {} numbers, found {}".format(
                where, key, length, _short(value)))
        return np.asarray(value, dtype=np.float64)

    def file(self, mapping, key, where="") -> Path:
        """A bundle-relative path that exists inside the bundle -> absolute path."""
        relative = self.value(mapping, key, "str", where)
        dotted = where + key
        if not relative or "\\" in relative:
            raise self.error("'{}' must be a path relative to the bundle using '/', found {!r}"
                             .format(dotted, relative))
        pure = PurePosixPath(relative)
        if pure.is_absolute() or (pure.parts and ":" in pure.parts[0]):
            raise self.error("'{}' is an absolute path ({!r}); bundle paths are relative to the bundle"
                             .format(dotted, relative))
        path = self.root / pure
        resolved = path.resolve()
        if resolved != self.root_resolved and self.root_resolved not in resolved.parents:
            raise self.error("'{}' ({!r}) leaves the bundle directory; refusing it".format(dotted, relative))
        if not path.is_file():
            raise self.error("'{}' names {!r}, which is missing from the bundle".format(dotted, relative),
                             path=None)
        return path


def _short(value) -> str:
    text = json.dumps(value) if not isinstance(value, float) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _load_manifest(reader: _Reader) -> dict:
    path = reader.manifest_path
    if not path.is_file():
        raise BundleError("{}: missing; a bundle folder holds a {} (is this a GAN2X bundle?)".format(
            reader.label(path), MANIFEST_NAME))
    try:
        text = path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise reader.error("cannot read the manifest ({})".format(error)) from None
    try:
        manifest = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except _NonFinite as error:
        raise reader.error("{} is not allowed; every number in the manifest must be finite"
                           .format(error.args[0])) from None
    except json.JSONDecodeError as error:
        raise reader.error("not valid JSON ({} at line {}, column {})".format(
            error.msg, error.lineno, error.colno)) from None
    if not isinstance(manifest, dict):
        raise reader.error("the manifest must be a JSON object")
    if manifest.get("format") != FORMAT:
        raise reader.error("not a GAN2X bundle manifest ('format' is {}, expected {!r})".format(
            _short(manifest.get("format")), FORMAT))
    version = reader.value(manifest, "schema_version", "int")
    if version > SUPPORTED_SCHEMA_VERSION:
        raise reader.error(
            "this bundle was written by a newer GAN2X backend (schema {}); update the add-on, "
            "it reads schema {}".format(version, SUPPORTED_SCHEMA_VERSION))
    if version != SUPPORTED_SCHEMA_VERSION:
        raise reader.error("unknown schema_version {}; this add-on reads schema {}".format(
            version, SUPPORTED_SCHEMA_VERSION))
    return manifest


def _read_directory(manifest_path: Path, source: Path, label=None) -> Bundle:
    reader = _Reader(manifest_path, label)
    manifest = _load_manifest(reader)

    reader.value(manifest, "generator_version", "str")
    reader.value(manifest, "created", "str")
    if reader.value(manifest, "units", "str") != "metre":
        raise reader.error("'units' must be 'metre', found {}".format(_short(manifest["units"])))
    if reader.value(manifest, "up_axis", "str") != "+Y":
        raise reader.error("'up_axis' must be '+Y', found {}".format(_short(manifest["up_axis"])))

    mesh_info = reader.value(manifest, "mesh", "object")
    mesh_path = reader.file(mesh_info, "file", "mesh.")
    vertex_count = reader.value(mesh_info, "vertex_count", "int", "mesh.")
    face_count = reader.value(mesh_info, "face_count", "int", "mesh.")
    reader.vector(mesh_info, "bounds_min", 3, "mesh.")
    reader.vector(mesh_info, "bounds_max", 3, "mesh.")

    textures = {name: _read_texture(reader, manifest, name) for name in TEXTURE_NAMES}
    camera = _read_camera(reader, manifest)
    directional_lights, ambient_light = _read_lights(reader, manifest)

    shading = reader.value(manifest, "shading", "object")
    if reader.value(shading, "model", "str", "shading.") != "phong":
        raise reader.error("'shading.model' is {}; this add-on knows 'phong'".format(_short(shading["model"])))

    images_info = reader.value(manifest, "images", "object")
    images = {name: reader.file(images_info, name, "images.") for name in IMAGE_NAMES}
    report_path = reader.file(images_info, "report", "images.") if "report" in images_info else None
    glb_path = reader.file(manifest, "glb")

    provenance = reader.value(manifest, "provenance", "object")
    seed = provenance.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise reader.error("'provenance.seed' must be an int or null, found {}".format(_short(seed)))
    latent_path = None
    if provenance.get("latent_file") is not None:
        latent_path = reader.file(provenance, "latent_file", "provenance.")

    try:
        mesh = read_ply(mesh_path)
    except PlyError as error:
        raise reader.error(str(error), path=mesh_path) from None
    except OSError as error:
        raise reader.error("cannot read ({})".format(error), path=mesh_path) from None
    if len(mesh.vertices) != vertex_count or len(mesh.faces) != face_count:
        raise reader.error("holds {} vertices and {} faces but manifest.json says {} and {}".format(
            len(mesh.vertices), len(mesh.faces), vertex_count, face_count), path=mesh_path)

    return Bundle(
        name=manifest_path.parent.name or "bundle",
        root=manifest_path.parent,
        manifest_path=manifest_path,
        manifest=manifest,
        vertices=mesh.vertices,
        normals=mesh.normals,
        uvs=mesh.uvs,
        faces=mesh.faces,
        textures=textures,
        camera=camera,
        directional_lights=directional_lights,
        ambient_light=ambient_light,
        shading=shading,
        images=images,
        glb_path=glb_path,
        provenance=provenance,
        latent_path=latent_path,
        source=source,
        report_path=report_path,
    )


def _read_texture(reader: _Reader, manifest: dict, name: str) -> TextureInfo:
    where = "textures.{}.".format(name)
    info = reader.value(reader.value(manifest, "textures", "object"), name, "object", "textures.")
    path = reader.file(info, "file", where)
    width = reader.value(info, "width", "int", where)
    height = reader.value(info, "height", "int", where)
    bit_depth = reader.value(info, "bit_depth", "int", where)
    colour_space = reader.value(info, "colour_space", "str", where)
    encoding = {}
    if name == "shininess":
        encoding = reader.value(info, "encoding", "object", where)
        if reader.value(encoding, "kind", "str", where + "encoding.") != "log":
            raise reader.error("'{}encoding.kind' must be 'log'".format(where))
        low = reader.number(encoding, "min", where + "encoding.", minimum=0.0, exclusive=True)
        high = reader.number(encoding, "max", where + "encoding.")
        if high <= low:
            raise reader.error("'{}encoding.max' must be greater than 'min'".format(where))
    elif name == "specular":
        encoding = reader.value(info, "encoding", "object", where)
        if reader.value(encoding, "kind", "str", where + "encoding.") != "linear":
            raise reader.error("'{}encoding.kind' must be 'linear'".format(where))
        reader.number(encoding, "scale", where + "encoding.", minimum=0.0)
    elif name == "normal" and "encoding" in info:
        encoding = reader.value(info, "encoding", "object", where)
        if encoding.get("kind") != "tangent" or encoding.get("convention") != "opengl":
            raise reader.error("'{}encoding' must be tangent space in the OpenGL convention, found {}"
                               .format(where, _short(encoding)))

    actual = png_size_and_depth(path)
    if actual is None:
        raise reader.error("not a PNG file", path=path)
    actual_width, actual_height, actual_depth = actual
    if (actual_width, actual_height) != (width, height):
        raise reader.error("is {}x{} pixels but manifest.json says {}x{}".format(
            actual_width, actual_height, width, height), path=path)
    if actual_depth != bit_depth:
        raise reader.error("has {}-bit channels but manifest.json says {}-bit".format(
            actual_depth, bit_depth), path=path)
    return TextureInfo(path=path, width=width, height=height, bit_depth=bit_depth,
                       colour_space=colour_space, encoding=dict(encoding))


def png_size_and_depth(path: Path):
    """(width, height, bit depth per channel) from a PNG's IHDR chunk, or
    None when the file is not a PNG."""
    try:
        with open(path, "rb") as stream:
            head = stream.read(8 + 8 + 13)
    except OSError:
        return None
    if len(head) < 29 or head[:8] != _PNG_SIGNATURE or head[12:16] != b"IHDR":
        return None
    width, height, bit_depth = struct.unpack(">IIB", head[16:25])
    return width, height, bit_depth


def _read_camera(reader: _Reader, manifest: dict) -> Camera:
    where = "camera."
    info = reader.value(manifest, "camera", "object")
    if reader.value(info, "model", "str", where) != "perspective":
        raise reader.error("'camera.model' must be 'perspective', found {}".format(_short(info["model"])))
    width = reader.value(info, "image_width", "int", where)
    height = reader.value(info, "image_height", "int", where)
    if width <= 0 or height <= 0:
        raise reader.error("'camera.image_width' and 'image_height' must be positive")
    fov = reader.number(info, "fov_y_degrees", where, minimum=0.0, exclusive=True)
    if fov >= 180.0:
        raise reader.error("'camera.fov_y_degrees' must be below 180, found {}".format(fov))
    focal = reader.number(info, "focal_length_px", where, minimum=0.0, exclusive=True)
    expected_focal = conventions.focal_length_px(height, fov)
    if abs(focal - expected_focal) > 0.01 * expected_focal:
        raise reader.error("'camera.focal_length_px' is {:.6g} but fov_y_degrees {:.6g} over {} pixels "
                           "means {:.6g}".format(focal, fov, height, expected_focal))
    principal = reader.vector(info, "principal_point_px", 2, where)
    if abs(principal[0] - width / 2) > 0.5 or abs(principal[1] - height / 2) > 0.5:
        raise reader.error("'camera.principal_point_px' must be the image centre in schema 1, found {}"
                           .format(principal.tolist()))
    rows = reader.value(info, "world_from_camera", "list", where)
    if len(rows) != 4 or not all(isinstance(row, list) and len(row) == 4 for row in rows):
        raise reader.error("'camera.world_from_camera' must be a 4x4 list of rows")
    try:
        matrix = np.array(rows, dtype=np.float64)
    except (TypeError, ValueError):
        raise reader.error("'camera.world_from_camera' must hold numbers") from None
    rotation = matrix[:3, :3]
    if (np.abs(rotation.T @ rotation - np.eye(3)).max() > 1e-3 or np.linalg.det(rotation) < 0
            or np.abs(matrix[3] - [0, 0, 0, 1]).max() > 1e-6):
        raise reader.error("'camera.world_from_camera' must be rigid (a rotation and a translation)")
    return Camera(image_width=width, image_height=height, fov_y_degrees=fov,
                  focal_length_px=focal, principal_point_px=tuple(principal.tolist()),
                  world_from_camera=matrix)


def _read_lights(reader: _Reader, manifest: dict):
    info = reader.value(manifest, "lights", "object")
    directional = []
    for index, light in enumerate(reader.value(info, "directional", "list", "lights.")):
        where = "lights.directional[{}].".format(index)
        if not isinstance(light, dict):
            raise reader.error("'{}' must be an object".format(where[:-1]))
        towards = reader.vector(light, "towards_light", 3, where)
        length = float(np.linalg.norm(towards))
        if length < 1e-6:
            raise reader.error("'{}towards_light' must be a unit vector, found {}".format(where, towards.tolist()))
        directional.append(DirectionalLight(
            towards_light=towards / length,
            strength=reader.number(light, "strength", where, minimum=0.0),
            colour=tuple(reader.vector(light, "colour", 3, where).tolist()),
        ))
    ambient = reader.value(info, "ambient", "object", "lights.")
    ambient_light = AmbientLight(
        strength=reader.number(ambient, "strength", "lights.ambient.", minimum=0.0),
        colour=tuple(reader.vector(ambient, "colour", 3, "lights.ambient.").tolist()),
    )
    return directional, ambient_light

"""Reads and validates a GAN2X asset bundle (docs/bundle.md, schema 1).

bpy-free: numpy and the standard library only, so it is tested without
Blender. ``read_bundle`` accepts the bundle directory, its manifest.json, or
a .zip of the bundle, and either returns a fully checked ``Bundle`` or raises
``BundleError`` with a message that names the file and says what to do.

Sizes are bounded (docs/bundle.md, "Limits"): what the manifest declares
(mesh counts, texture and image sizes) is checked against fixed maxima, each
PNG's header against the declared size before anything decodes it, and a
.zip is unpacked member by member, the manifest first, each member only when
the manifest names it and only up to the size its declared content allows.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import posixpath
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
from .ply import FACE_DTYPE, VERTEX_DTYPE, PlyError, max_file_size, read_ply

FORMAT = "gan2x.bundle"
SUPPORTED_SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.json"
TEXTURE_NAMES = ("albedo", "specular", "shininess", "normal")
IMAGE_NAMES = ("target", "rerender", "mask")

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# --- limits (docs/bundle.md, "Limits") ---------------------------------------------

MAX_TEXTURE_SIDE = 8192
"""Textures are at most 8192 x 8192 pixels. Blender decodes a 16-bit PNG to
float RGBA (1 GiB at this size) and the importer reads it once more."""
MAX_IMAGE_SIDE = 8192
"""The camera's image (target, rerender, mask are its size): at most this a side."""
MAX_REPORT_SIDE = 32768
"""images/report.png: at most this a side and ``report_max_pixels`` in all."""
MAX_REPORT_PIXELS = 1 << 28
REPORT_PANELS = 256
"""A report holds fewer panels than this (75 with 32 pseudo samples)..."""
REPORT_MIN_PANEL_SIDE = 320
"""...each at the camera's size, or enlarged to below this when smaller."""
MAX_VERTICES = 1 << 24
MAX_FACES = 1 << 25
MAX_MANIFEST_BYTES = 1 << 20
"""A manifest is a few kilobytes."""
MAX_MANIFEST_DEPTH = 64
"""Nesting of objects and lists in the manifest (a real one nests 5 deep)."""
MAX_LATENT_BYTES = 16 << 20
"""provenance.latent_file: a W or W+ latent is kilobytes."""
PNG_OVERHEAD_BYTES = 1 << 20
"""Allowed on top of a PNG's raw pixel bytes (chunks, a colour profile, text)."""
GLB_OVERHEAD_BYTES = 1 << 20
"""Allowed on top of the .glb's mesh and images (its JSON, padding)."""
MAX_BUNDLE_BYTES = 4 << 30
"""The most a .zip may unpack to, whatever its manifest declares."""
_COPY_CHUNK_BYTES = 1 << 20
_ZIP_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate",
                zipfile.ZIP_BZIP2: "bzip2", zipfile.ZIP_LZMA: "LZMA"}
"""Compression methods a member may use."""


def png_max_bytes(width: int, height: int, channels: int = 4, bit_depth: int = 8) -> int:
    """The most a PNG of this size may hold: its raw pixel bytes with a filter
    byte a row (what deflate at its worst, stored blocks, barely exceeds),
    plus 1% and ``PNG_OVERHEAD_BYTES``."""
    row = 1 + (width * channels * bit_depth + 7) // 8
    return int(height * row * 1.01) + PNG_OVERHEAD_BYTES


def report_max_pixels(image_width: int, image_height: int) -> int:
    """The most pixels images/report.png may have for a camera of this size."""
    return min(MAX_REPORT_PIXELS, REPORT_PANELS * max(image_width, REPORT_MIN_PANEL_SIDE)
               * max(image_height, REPORT_MIN_PANEL_SIDE))


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
    when the bundle names none. ``skipped_members``: the members of a .zip
    that the manifest does not name, which were not unpacked.

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
    skipped_members: list = field(default_factory=list)
    _cleanup: Any = field(default=None, repr=False)
    _label: Any = field(default=None, repr=False)

    @property
    def generator(self) -> str:
        """The generator spec from provenance, as text ('' when absent)."""
        return generator_text(self.provenance)

    @property
    def seed(self):
        """The seed from provenance (int or None)."""
        return self.provenance.get("seed")

    def label(self, path) -> str:
        """How messages name ``path``: '<zip> (<member>)' for a bundle read
        from a .zip, the path otherwise."""
        return self._label(Path(path)) if self._label is not None else str(path)

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
    label = _zip_label(zip_path, extract_dir)
    try:
        manifest_path, skipped = _extract_zip(zip_path, extract_dir)
        bundle = _read_directory(manifest_path, source=zip_path, label=label)
    except BaseException:
        shutil.rmtree(extract_dir, ignore_errors=True)
        raise
    bundle._cleanup = weakref.finalize(bundle, shutil.rmtree, str(extract_dir), True)
    bundle.skipped_members = skipped
    if manifest_path.parent == extract_dir:
        bundle.name = zip_path.stem
    return bundle


def _zip_label(zip_path: Path, extract_dir: Path):
    return lambda path: "{} ({})".format(zip_path, path.relative_to(extract_dir).as_posix())


def unpack_bundle_zip(zip_path, directory) -> Path:
    """Unpacks a bundle zip (files at its top or in one folder) so that the
    new folder ``directory`` holds the bundle's files, with the same checks
    and bounds as ``read_bundle``: members the manifest does not name are
    left out. A temporary sibling is renamed into place, so a failure leaves
    no half folder. Returns ``directory``. Checks only what the bounds need
    (format, schema, declared sizes): ``read_bundle`` validates the rest when
    the bundle is imported."""
    zip_path, directory = Path(zip_path), Path(directory)
    if directory.exists():
        raise BundleError("{}: already exists; not unpacking {} over it".format(directory, zip_path))
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=directory.name + ".tmp-", dir=directory.parent)).resolve()
    try:
        manifest_path, _ = _extract_zip(zip_path, staging)
        os.replace(manifest_path.parent, directory)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return directory


class _TooLarge(Exception):
    """A member unpacked to more than its bound."""


def _copy_bounded(source, target: Path, bound: int) -> int:
    """Copies the stream ``source`` into the new file ``target`` in chunks,
    stopping with _TooLarge as soon as more than ``bound`` bytes came; on any
    failure ``target`` is deleted. Returns the bytes written."""
    written = 0
    try:
        with open(target, "xb") as destination:
            while True:
                chunk = source.read(_COPY_CHUNK_BYTES)
                if not chunk:
                    return written
                written += len(chunk)
                if written > bound:
                    raise _TooLarge(written)
                destination.write(chunk)
    except BaseException:
        with contextlib.suppress(OSError):
            if target.is_file():
                target.unlink()
        raise


def _archive_files(zip_path: Path, archive: zipfile.ZipFile, root: Path) -> dict:
    """The archive's files by normalised name ('a/b'), after refusing the
    archive for a member that would land outside ``root``, a symbolic link,
    a name held twice, or a file inside another file."""
    files = {}
    for member in archive.infolist():
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
        if member.is_dir() or not pure.parts:
            continue
        key = pure.as_posix()
        if key in files:
            raise BundleError("{}: holds {!r} twice; refusing the archive".format(zip_path, name))
        files[key] = member
    for key, member in files.items():
        for parent in PurePosixPath(key).parents:
            if parent.as_posix() in files:
                raise BundleError("{}: member {!r} lies inside {!r}, which is a file; refusing the archive"
                                  .format(zip_path, member.filename, files[parent.as_posix()].filename))
    return files


def _manifest_key(zip_path: Path, files: dict) -> str:
    if MANIFEST_NAME in files:
        return MANIFEST_NAME
    candidates = sorted(key for key in files
                        if PurePosixPath(key).name == MANIFEST_NAME and len(PurePosixPath(key).parts) == 2)
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise BundleError("{}: no {} at the top of the archive or in one folder; not a GAN2X bundle"
                          .format(zip_path, MANIFEST_NAME))
    raise BundleError("{}: holds {} bundles ({}); zip one bundle at a time".format(
        zip_path, len(candidates), ", ".join(PurePosixPath(c).parent.name for c in candidates)))


def _member_key(prefix: str, relative: str):
    """The archive name of the bundle path ``relative`` (as in the manifest),
    or None for a path that is not a plain one inside the bundle (the
    manifest check refuses those)."""
    if not relative or "\\" in relative or relative.startswith("/"):
        return None
    normal = posixpath.normpath(relative)
    if normal in (".", "..") or normal.startswith("../") or ":" in normal.split("/")[0]:
        return None
    return prefix + normal


def _check_member(zip_path: Path, member: zipfile.ZipInfo, bound: int, allows: str) -> None:
    """Refuses, from its header alone, a member that cannot or may not be
    unpacked: encrypted, compressed with an unknown method, or larger than
    ``bound``."""
    name = member.filename
    if member.flag_bits & 0x1:
        raise BundleError("{}: member {!r} is encrypted; zip the bundle again without a password"
                          .format(zip_path, name))
    if member.compress_type not in _ZIP_METHODS:
        raise BundleError("{}: member {!r} uses compression method {}, which this reader cannot unpack "
                          "(it reads {}); zip the bundle again with deflate".format(
                              zip_path, name, member.compress_type, ", ".join(_ZIP_METHODS.values())))
    if member.file_size > bound:
        raise BundleError("{}: member {!r} unpacks to {} bytes; {} at most {} bytes (docs/bundle.md, Limits); "
                          "refusing the archive".format(zip_path, name, member.file_size, allows, bound))


def _unpack_member(zip_path: Path, archive: zipfile.ZipFile, member: zipfile.ZipInfo, target: Path,
                   bound: int, allows: str) -> None:
    """Unpacks ``member`` to ``target`` in chunks, stopping (and deleting
    what it wrote) as soon as it passes ``bound`` bytes."""
    _check_member(zip_path, member, bound, allows)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with archive.open(member) as source:
            _copy_bounded(source, target, bound)
    except _TooLarge:
        raise BundleError("{}: member {!r} unpacks to more than {} bytes, though its header says {}; {} at most "
                          "{} bytes (docs/bundle.md, Limits); refusing the archive".format(
                              zip_path, member.filename, bound, member.file_size, allows, bound)) from None
    except Exception as error:  # OSError, BadZipFile, zlib/LZMA errors, a password or method zipfile refuses
        raise BundleError("{}: cannot unpack {!r} ({}: {})".format(
            zip_path, member.filename, type(error).__name__, error)) from None


def _extract_zip(zip_path: Path, extract_dir: Path):
    """Unpacks the bundle in ``zip_path`` into ``extract_dir``: the manifest
    first (bounded), then each member it names, bounded by what it declares.
    Refuses members that would land outside ``extract_dir`` or are links.
    Returns (the manifest's path, the names of the members left out)."""
    try:
        archive = zipfile.ZipFile(zip_path)
    except (OSError, zipfile.BadZipFile, EOFError, ValueError, RuntimeError, NotImplementedError) as error:
        raise BundleError("{}: cannot open the archive ({})".format(zip_path, error)) from None
    root = extract_dir.resolve()
    with archive:
        files = _archive_files(zip_path, archive, root)
        manifest_key = _manifest_key(zip_path, files)
        prefix = manifest_key[:-len(MANIFEST_NAME)]
        manifest_path = root / manifest_key
        _unpack_member(zip_path, archive, files[manifest_key], manifest_path, MAX_MANIFEST_BYTES,
                       "a manifest is")
        reader = _Reader(manifest_path, _zip_label(zip_path, root))
        declared = _declared_sizes(reader, _load_manifest(reader))

        wanted = {}  # archive name -> (bound, what the manifest says it is)
        for relative, dotted, bound in declared.files:
            key = _member_key(prefix, relative)
            if key is None or key == manifest_key or key not in files:
                continue  # _read_directory says why (outside the bundle, missing)
            if key not in wanted or bound > wanted[key][0]:
                wanted[key] = (bound, "'{}' allows".format(dotted))
        for key, (bound, allows) in wanted.items():
            _check_member(zip_path, files[key], bound, allows)
        total = sum(files[key].file_size for key in [manifest_key, *wanted])
        if total > MAX_BUNDLE_BYTES:
            raise BundleError("{}: unpacks to {} bytes; a bundle is at most {} GiB (docs/bundle.md, Limits)"
                              .format(zip_path, total, MAX_BUNDLE_BYTES >> 30))
        for key, (bound, allows) in sorted(wanted.items()):
            _unpack_member(zip_path, archive, files[key], root / key, bound, allows)
        skipped = sorted(files[key].filename for key in files if key != manifest_key and key not in wanted)
    return manifest_path, skipped


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

    def count(self, mapping, key, maximum: int, where="", minimum: int = 0, limit: str = "") -> int:
        """An int in [minimum, maximum]; ``limit`` says which limit (for the message)."""
        value = self.value(mapping, key, "int", where)
        if not minimum <= value <= maximum:
            raise self.error("'{}{}' is {}; it must be from {} to {}{} (docs/bundle.md, Limits)".format(
                where, key, value, minimum, maximum, "; " + limit if limit else ""))
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
        with open(path, "rb") as stream:
            data = stream.read(MAX_MANIFEST_BYTES + 1)
        if len(data) > MAX_MANIFEST_BYTES:
            raise reader.error("is larger than a manifest may be: at most {} bytes (docs/bundle.md, Limits)"
                               .format(MAX_MANIFEST_BYTES))
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise reader.error("cannot read the manifest ({})".format(error)) from None
    nested = reader.error("nested too deeply; a manifest nests objects and lists at most {} deep"
                          .format(MAX_MANIFEST_DEPTH))
    try:
        manifest = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except _NonFinite as error:
        raise reader.error("{} is not allowed; every number in the manifest must be finite"
                           .format(error.args[0])) from None
    except json.JSONDecodeError as error:
        raise reader.error("not valid JSON ({} at line {}, column {})".format(
            error.msg, error.lineno, error.colno)) from None
    except RecursionError:
        raise nested from None
    if _nesting_depth(manifest) > MAX_MANIFEST_DEPTH:
        raise nested
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


def _nesting_depth(value) -> int:
    """How deeply objects and lists nest in ``value`` (without recursion);
    stops counting past MAX_MANIFEST_DEPTH."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth)
            if depth > MAX_MANIFEST_DEPTH:
                break
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


@dataclass
class _Declared:
    """What the manifest declares about sizes, checked against the limits.
    ``files``: (path as the manifest has it, manifest key, the most bytes
    that file may hold) for every file the manifest names."""
    vertex_count: int
    face_count: int
    textures: dict
    """name -> (width, height, bit depth)"""
    image_size: tuple
    """the camera's (width, height)"""
    files: list


def _declared_sizes(reader: _Reader, manifest: dict) -> _Declared:
    """Checks the sizes the manifest declares against the limits and derives
    from them a bound for each file it names (docs/bundle.md, Limits)."""
    mesh_info = reader.value(manifest, "mesh", "object")
    vertex_count = reader.count(mesh_info, "vertex_count", MAX_VERTICES, "mesh.")
    face_count = reader.count(mesh_info, "face_count", MAX_FACES, "mesh.")
    files = [(reader.value(mesh_info, "file", "str", "mesh."), "mesh.file", max_file_size(vertex_count, face_count))]

    texture_info = reader.value(manifest, "textures", "object")
    textures = {}
    for name in TEXTURE_NAMES:
        where = "textures.{}.".format(name)
        info = reader.value(texture_info, name, "object", "textures.")
        limit = "textures are at most {0}x{0} pixels".format(MAX_TEXTURE_SIDE)
        width = reader.count(info, "width", MAX_TEXTURE_SIDE, where, minimum=1, limit=limit)
        height = reader.count(info, "height", MAX_TEXTURE_SIDE, where, minimum=1, limit=limit)
        bit_depth = reader.value(info, "bit_depth", "int", where)
        if bit_depth not in (1, 2, 4, 8, 16):
            raise reader.error("'{}bit_depth' is {}; a PNG has 1, 2, 4, 8 or 16 bits a channel".format(
                where, bit_depth))
        textures[name] = (width, height, bit_depth)
        files.append((reader.value(info, "file", "str", where), where + "file",
                      png_max_bytes(width, height, 4, bit_depth)))

    camera = reader.value(manifest, "camera", "object")
    limit = "images are at most {} pixels a side".format(MAX_IMAGE_SIDE)
    image_size = (reader.count(camera, "image_width", MAX_IMAGE_SIDE, "camera.", minimum=1, limit=limit),
                  reader.count(camera, "image_height", MAX_IMAGE_SIDE, "camera.", minimum=1, limit=limit))
    images_info = reader.value(manifest, "images", "object")
    for name in IMAGE_NAMES:
        files.append((reader.value(images_info, name, "str", "images."), "images." + name,
                      png_max_bytes(*image_size, 4, 8)))
    if "report" in images_info:
        pixels = report_max_pixels(*image_size)
        files.append((reader.value(images_info, "report", "str", "images."), "images.report",
                      int(pixels * 4 * 1.01) + MAX_REPORT_SIDE + PNG_OVERHEAD_BYTES))

    # The .glb: the mesh (positions, normals, uvs, indices) and four 8-bit images at the texture size.
    texture_width = max(size[0] for size in textures.values())
    texture_height = max(size[1] for size in textures.values())
    glb_bound = (vertex_count * (VERTEX_DTYPE.itemsize + 4) + face_count * (FACE_DTYPE.itemsize - 1)
                 + 4 * png_max_bytes(texture_width, texture_height, 4, 8) + GLB_OVERHEAD_BYTES)
    files.append((reader.value(manifest, "glb", "str"), "glb", glb_bound))
    provenance = manifest.get("provenance")
    if isinstance(provenance, dict) and isinstance(provenance.get("latent_file"), str):
        files.append((provenance["latent_file"], "provenance.latent_file", MAX_LATENT_BYTES))
    return _Declared(vertex_count=vertex_count, face_count=face_count, textures=textures,
                     image_size=image_size, files=files)


def _read_directory(manifest_path: Path, source: Path, label=None) -> Bundle:
    reader = _Reader(manifest_path, label)
    manifest = _load_manifest(reader)

    reader.value(manifest, "generator_version", "str")
    reader.value(manifest, "created", "str")
    if reader.value(manifest, "units", "str") != "metre":
        raise reader.error("'units' must be 'metre', found {}".format(_short(manifest["units"])))
    if reader.value(manifest, "up_axis", "str") != "+Y":
        raise reader.error("'up_axis' must be '+Y', found {}".format(_short(manifest["up_axis"])))

    declared = _declared_sizes(reader, manifest)
    mesh_info = reader.value(manifest, "mesh", "object")
    mesh_path = reader.file(mesh_info, "file", "mesh.")
    vertex_count, face_count = declared.vertex_count, declared.face_count
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
    for path in images.values():
        _check_image(reader, path, camera)
    report_path = reader.file(images_info, "report", "images.") if "report" in images_info else None
    if report_path is not None:
        _check_report(reader, report_path, camera)
    glb_path = reader.file(manifest, "glb")

    provenance = reader.value(manifest, "provenance", "object")
    seed = provenance.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise reader.error("'provenance.seed' must be an int or null, found {}".format(_short(seed)))
    latent_path = None
    if provenance.get("latent_file") is not None:
        latent_path = reader.file(provenance, "latent_file", "provenance.")

    ply_bound = max_file_size(vertex_count, face_count)
    try:
        ply_bytes = mesh_path.stat().st_size
    except OSError as error:
        raise reader.error("cannot read ({})".format(error), path=mesh_path) from None
    if ply_bytes > ply_bound:
        raise reader.error("is {} bytes; {} vertices and {} faces (manifest.json) take at most {} bytes".format(
            ply_bytes, vertex_count, face_count, ply_bound), path=mesh_path)
    try:
        mesh = read_ply(mesh_path, max_bytes=ply_bound)
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
        _label=label,
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


def _check_image(reader: _Reader, path: Path, camera: "Camera") -> None:
    """target, rerender and mask: PNGs at the camera's size (from the header)."""
    actual = png_size_and_depth(path)
    if actual is None:
        raise reader.error("not a PNG file", path=path)
    width, height, _ = actual
    if (width, height) != (camera.image_width, camera.image_height):
        raise reader.error("is {}x{} pixels but the camera in manifest.json is {}x{}".format(
            width, height, camera.image_width, camera.image_height), path=path)


def _check_report(reader: _Reader, path: Path, camera: "Camera") -> None:
    """images/report.png: a PNG of any size within the report's bound."""
    actual = png_size_and_depth(path)
    if actual is None:
        raise reader.error("not a PNG file", path=path)
    width, height, _ = actual
    most = report_max_pixels(camera.image_width, camera.image_height)
    if not (0 < width <= MAX_REPORT_SIDE and 0 < height <= MAX_REPORT_SIDE and width * height <= most):
        raise reader.error("is {}x{} pixels; a report is at most {} pixels a side and {} pixels in all for a "
                           "{}x{} camera (docs/bundle.md, Limits)".format(
                               width, height, MAX_REPORT_SIDE, most, camera.image_width, camera.image_height),
                           path=path)


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

"""The asset bundle's checks (docs/bundle.md, schema 1), shared by both sides.

ONE source for the backend's validator (``gan2x.export.bundle.validate_bundle``)
and the add-on's reader (``addon/bundle/reader.py``), so both refuse the
same bundles with the same messages. The canonical file is
``backend/gan2x/export/manifest_checks.py``; ``addon/bundle/manifest_checks.py``
is a byte-identical copy (the add-on ships alone inside Blender and cannot
import the backend). Edit the canonical file, then run
``python build.py --sync``; ``build.py`` refuses to build while the copies
differ and ``tests/test_shared_code.py`` fails.

Hence this file imports only numpy and the standard library, and nothing of
either package: a caller passes its own error class (and, for a bundle read
from a .zip, how to name its files) to ``Checker``.

What is here: the manifest's loading (UTF-8, finite numbers only, size and
nesting limits, format, schema version), typed key access with its messages
(``Checker``), the checks of every manifest section and of the PNG headers
of the files it names, the limits (docs/bundle.md, "Limits"), and
``check_bundle``, which runs them all in one order and reads the mesh with
the caller's PLY reader. What is not: the PLY parser (each side has its own),
the .glb and .npy readers (the backend's), .zip unpacking (the add-on's).

``Checker(strict=True)`` (the backend, validating what its writer wrote)
adds the writer's exact formats: texture bit depths and PNG colour types as
docs/bundle.md's table says, 8-bit images of the named colour, a unit
``towards_light``, ``shading.equation`` and ``shading.shininess_range``,
and mesh bounds that match the vertices. The add-on reads without them.
"""
from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

FORMAT = "gan2x.bundle"
SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.json"

TEXTURE_FORMATS = {
    "albedo": (8, "RGB", "sRGB"),
    "specular": (16, "grey", "linear"),
    "shininess": (16, "grey", "linear"),
    "normal": (8, "RGB", "linear"),
}
"""name -> (bit depth, PNG colour, manifest colour_space), docs/bundle.md's table."""
TEXTURE_NAMES = tuple(TEXTURE_FORMATS)
OPTIONAL_TEXTURE_FORMATS = {
    "ambient_occlusion": (8, "grey", "linear"),
}
"""Textures a bundle may hold (as TEXTURE_FORMATS); a bundle without them is
as valid. ``ambient_occlusion``: the unoccluded fraction, value / 255 (255 =
open)."""
OPTIONAL_TEXTURE_NAMES = tuple(OPTIONAL_TEXTURE_FORMATS)
IMAGE_FORMATS = {"target": "RGB", "rerender": "RGB", "mask": "grey"}
"""The required images: 8-bit PNGs at the camera's size."""
IMAGE_NAMES = tuple(IMAGE_FORMATS)
OPTIONAL_IMAGE_FORMATS = {"report": "RGB"}
"""Images a bundle may name: ``report``, the picture of the fit (8-bit, its own size)."""

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
PLY_MAX_HEADER_BYTES = 4096
"""The longest mesh.ply header either reader accepts."""
PLY_VERTEX_BYTES = 32
"""One vertex record of mesh.ply: x y z nx ny nz s t, float32."""
PLY_FACE_BYTES = 13
"""One face record of mesh.ply: a uchar count and three uint32 indices."""


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


def ply_max_bytes(vertex_count: int, face_count: int) -> int:
    """The most bytes a mesh.ply of these counts holds: the longest header
    accepted and the body the counts make."""
    return PLY_MAX_HEADER_BYTES + vertex_count * PLY_VERTEX_BYTES + face_count * PLY_FACE_BYTES


def focal_length_px(image_size: float, fov_degrees: float) -> float:
    """Focal length in pixels of an image ``image_size`` pixels along the
    axis the field of view spans (both sides' conventions.focal_length_px;
    tests/test_shared_code.py checks that the three agree)."""
    return 0.5 * image_size / math.tan(math.radians(fov_degrees) / 2.0)


# --- PNG header ------------------------------------------------------------------

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_COLOUR_TYPES = {0: "grey", 2: "RGB", 3: "palette", 4: "grey+alpha", 6: "RGBA"}


@dataclass(frozen=True)
class PngHeader:
    """What a PNG's IHDR chunk says: pixels, bits per channel, colour
    ('grey', 'RGB', 'palette', 'grey+alpha', 'RGBA' or 'unknown(N)')."""
    width: int
    height: int
    bit_depth: int
    colour: str


def read_png_header(path) -> PngHeader | None:
    """The IHDR of the PNG at ``path`` (29 bytes read, nothing decoded), or
    None when the file is not a PNG. Raises OSError when it cannot be read."""
    with open(path, "rb") as stream:
        head = stream.read(8 + 8 + 13)
    if len(head) < 29 or head[:8] != PNG_SIGNATURE or head[12:16] != b"IHDR":
        return None
    width, height, bit_depth, colour_type = struct.unpack(">IIBB", head[16:26])
    return PngHeader(width, height, bit_depth,
                     PNG_COLOUR_TYPES.get(colour_type, "unknown({})".format(colour_type)))


# --- what a check returns ----------------------------------------------------------

class ManifestError(Exception):
    """Raised by a ``Checker`` that was given no error class of its caller's."""


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
class Declared:
    """What the manifest declares about sizes, checked against the limits.
    ``files``: (path as the manifest has it, manifest key, the most bytes
    that file may hold) for every file the manifest names."""
    vertex_count: int
    face_count: int
    textures: dict
    """name -> (width, height, bit depth): the required textures, then the
    optional ones the manifest names"""
    image_size: tuple
    """the camera's (width, height)"""
    files: list


@dataclass
class CheckedBundle:
    """A bundle whose manifest and files passed every check. Paths are
    absolute; ``mesh`` is what the caller's PLY reader returned."""
    manifest: dict
    declared: Declared
    mesh_path: Path
    bounds_min: np.ndarray
    bounds_max: np.ndarray
    textures: dict
    """name -> TextureInfo: the required textures, and the optional ones
    (``ambient_occlusion``) when the bundle holds them"""
    camera: Camera
    directional_lights: list
    ambient_light: AmbientLight
    shading: dict
    images: dict
    """target, rerender, mask -> path"""
    report_path: Path | None
    glb_path: Path
    provenance: dict
    latent_path: Path | None
    mesh: object = None


# --- typed access -------------------------------------------------------------------

def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


_KINDS = {
    "str": lambda value: isinstance(value, str),
    "int": lambda value: isinstance(value, int) and not isinstance(value, bool),
    "number": _is_number,
    "object": lambda value: isinstance(value, dict),
    "list": lambda value: isinstance(value, list),
}


def short(value) -> str:
    """``value`` for a message: JSON (repr for a float), at most 60 characters."""
    text = repr(value) if isinstance(value, float) else json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


class Checker:
    """Typed access to a manifest at ``manifest_path``; every refusal is an
    ``error_type`` whose message names the file (``label(path)``, the path
    by default) and the problem. ``strict``: also check the writer's exact
    formats (module docstring)."""

    def __init__(self, manifest_path, error_type=ManifestError, label=None, strict: bool = False):
        self.manifest_path = Path(manifest_path)
        self.root = self.manifest_path.parent
        self.root_resolved = self.root.resolve()
        self.error_type = error_type
        self._label = label or str
        self.strict = strict

    def label(self, path) -> str:
        return self._label(path)

    def error(self, problem: str, path=None) -> Exception:
        return self.error_type("{}: {}".format(self.label(path or self.manifest_path), problem))

    # ``where`` is the dotted prefix of ``key`` in messages ("textures.albedo.").
    def get(self, mapping, key: str, kind: str, where: str = ""):
        dotted = where + key
        if not isinstance(mapping, dict) or key not in mapping:
            raise self.error("missing required key '{}' (docs/bundle.md)".format(dotted))
        value = mapping[key]
        if not _KINDS[kind](value):
            raise self.error("'{}' must be {} {}, found {}".format(
                dotted, "an" if kind in ("int", "object") else "a", kind, short(value)))
        return value

    def equal(self, mapping, key: str, expected, where: str = ""):
        value = self.get(mapping, key, "str" if isinstance(expected, str) else "number", where)
        if value != expected:
            raise self.error("'{}{}' must be {!r}, found {}".format(where, key, expected, short(value)))
        return value

    def count(self, mapping, key: str, maximum: int, where: str = "", minimum: int = 0, limit: str = "") -> int:
        """An int in [minimum, maximum]; ``limit`` says which limit (for the message)."""
        value = self.get(mapping, key, "int", where)
        if not minimum <= value <= maximum:
            raise self.error("'{}{}' is {}; it must be from {} to {}{} (docs/bundle.md, Limits)".format(
                where, key, value, minimum, maximum, "; " + limit if limit else ""))
        return value

    def number(self, mapping, key: str, where: str = "", minimum=None, exclusive: bool = False) -> float:
        value = float(self.get(mapping, key, "number", where))
        if minimum is not None and (value < minimum or (exclusive and value == minimum)):
            raise self.error("'{}{}' must be {} {}, found {}".format(
                where, key, ">" if exclusive else ">=", minimum, short(value)))
        return value

    def vector(self, mapping, key: str, length: int, where: str = "") -> np.ndarray:
        value = self.get(mapping, key, "list", where)
        if len(value) != length or not all(_is_number(v) for v in value):
            raise self.error("'{}{}' must be a list of {} numbers, found {}".format(
                where, key, length, short(value)))
        return np.asarray(value, dtype=np.float64)

    def file(self, mapping, key: str, where: str = "") -> Path:
        """A bundle-relative path that exists inside the bundle -> absolute path."""
        relative = self.get(mapping, key, "str", where)
        dotted = where + key
        if not relative or "\\" in relative:
            raise self.error("'{}' must be a path relative to the bundle using '/', found {!r}"
                             .format(dotted, relative))
        pure = PurePosixPath(relative)
        if pure.is_absolute() or (pure.parts and ":" in pure.parts[0]):
            raise self.error("'{}' is an absolute path ({!r}); paths in a bundle are relative to it"
                             .format(dotted, relative))
        path = self.root / pure
        resolved = path.resolve()
        if resolved != self.root_resolved and self.root_resolved not in resolved.parents:
            raise self.error("'{}' ({!r}) leaves the bundle directory".format(dotted, relative))
        if not path.is_file():
            raise self.error("'{}' names {!r}, which is missing from the bundle".format(dotted, relative))
        return path

    def png(self, path: Path) -> PngHeader:
        """The header of the PNG at ``path``; refuses a file that is not one."""
        try:
            header = read_png_header(path)
        except OSError as error:
            raise self.error("cannot read ({})".format(error), path) from None
        if header is None:
            raise self.error("not a PNG file", path)
        return header


# --- the manifest ---------------------------------------------------------------------

class _NonFinite(ValueError):
    pass


def _refuse_constant(name: str):
    raise _NonFinite(name)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NonFinite(text)
    return value


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


def load_manifest(check: Checker) -> dict:
    """Reads ``check.manifest_path`` (at most MAX_MANIFEST_BYTES, UTF-8 JSON,
    finite numbers, nested at most MAX_MANIFEST_DEPTH deep) and checks its
    ``format`` and ``schema_version``."""
    path = check.manifest_path
    if not path.is_file():
        raise check.error("missing; a bundle folder holds a {} (is this a GAN2X bundle?)".format(MANIFEST_NAME))
    try:
        with open(path, "rb") as stream:
            data = stream.read(MAX_MANIFEST_BYTES + 1)
        if len(data) > MAX_MANIFEST_BYTES:
            raise check.error("is larger than a manifest may be: at most {} bytes (docs/bundle.md, Limits)"
                              .format(MAX_MANIFEST_BYTES))
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise check.error("cannot read the manifest ({})".format(error)) from None
    nested = check.error("nested too deeply; a manifest nests objects and lists at most {} deep"
                         .format(MAX_MANIFEST_DEPTH))
    try:
        manifest = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except _NonFinite as error:
        raise check.error("{} is not allowed; every number in the manifest must be finite"
                          .format(error.args[0])) from None
    except json.JSONDecodeError as error:
        raise check.error("not valid JSON ({} at line {}, column {})".format(
            error.msg, error.lineno, error.colno)) from None
    except RecursionError:
        raise nested from None
    if _nesting_depth(manifest) > MAX_MANIFEST_DEPTH:
        raise nested
    if not isinstance(manifest, dict):
        raise check.error("the manifest must be a JSON object")
    if manifest.get("format") != FORMAT:
        raise check.error("not a GAN2X bundle manifest ('format' is {}, expected {!r})".format(
            short(manifest.get("format")), FORMAT))
    version = check.get(manifest, "schema_version", "int")
    if version > SCHEMA_VERSION:
        raise check.error("this bundle was written by a newer GAN2X backend (schema {}); update GAN2X, "
                          "this version reads schema {}".format(version, SCHEMA_VERSION))
    if version != SCHEMA_VERSION:
        raise check.error("unknown schema_version {}; GAN2X reads and writes schema {}".format(
            version, SCHEMA_VERSION))
    return manifest


def declared_sizes(check: Checker, manifest: dict) -> Declared:
    """Checks the sizes the manifest declares against the limits and derives
    from them a bound for each file it names (docs/bundle.md, Limits). Reads
    only the manifest: the add-on runs it on a .zip's manifest before it
    unpacks anything else."""
    mesh_info = check.get(manifest, "mesh", "object")
    vertex_count = check.count(mesh_info, "vertex_count", MAX_VERTICES, "mesh.")
    face_count = check.count(mesh_info, "face_count", MAX_FACES, "mesh.")
    files = [(check.get(mesh_info, "file", "str", "mesh."), "mesh.file", ply_max_bytes(vertex_count, face_count))]

    texture_info = check.get(manifest, "textures", "object")
    textures = {}
    for name in TEXTURE_NAMES + tuple(name for name in OPTIONAL_TEXTURE_NAMES if name in texture_info):
        where = "textures.{}.".format(name)
        info = check.get(texture_info, name, "object", "textures.")
        limit = "textures are at most {0}x{0} pixels".format(MAX_TEXTURE_SIDE)
        width = check.count(info, "width", MAX_TEXTURE_SIDE, where, minimum=1, limit=limit)
        height = check.count(info, "height", MAX_TEXTURE_SIDE, where, minimum=1, limit=limit)
        bit_depth = check.get(info, "bit_depth", "int", where)
        if bit_depth not in (1, 2, 4, 8, 16):
            raise check.error("'{}bit_depth' is {}; a PNG has 1, 2, 4, 8 or 16 bits a channel".format(
                where, bit_depth))
        textures[name] = (width, height, bit_depth)
        files.append((check.get(info, "file", "str", where), where + "file",
                      png_max_bytes(width, height, 4, bit_depth)))

    camera = check.get(manifest, "camera", "object")
    limit = "images are at most {} pixels a side".format(MAX_IMAGE_SIDE)
    image_size = (check.count(camera, "image_width", MAX_IMAGE_SIDE, "camera.", minimum=1, limit=limit),
                  check.count(camera, "image_height", MAX_IMAGE_SIDE, "camera.", minimum=1, limit=limit))
    images_info = check.get(manifest, "images", "object")
    for name in IMAGE_NAMES:
        files.append((check.get(images_info, name, "str", "images."), "images." + name,
                      png_max_bytes(*image_size, 4, 8)))
    if "report" in images_info:
        pixels = report_max_pixels(*image_size)
        files.append((check.get(images_info, "report", "str", "images."), "images.report",
                      int(pixels * 4 * 1.01) + MAX_REPORT_SIDE + PNG_OVERHEAD_BYTES))

    # The .glb: the mesh (positions, normals, uvs, indices) and four 8-bit images at the texture size.
    texture_width = max(size[0] for size in textures.values())
    texture_height = max(size[1] for size in textures.values())
    glb_bound = (vertex_count * (PLY_VERTEX_BYTES + 4) + face_count * (PLY_FACE_BYTES - 1)
                 + 4 * png_max_bytes(texture_width, texture_height, 4, 8) + GLB_OVERHEAD_BYTES)
    files.append((check.get(manifest, "glb", "str"), "glb", glb_bound))
    provenance = manifest.get("provenance")
    if isinstance(provenance, dict) and isinstance(provenance.get("latent_file"), str):
        files.append((provenance["latent_file"], "provenance.latent_file", MAX_LATENT_BYTES))
    return Declared(vertex_count=vertex_count, face_count=face_count, textures=textures,
                    image_size=image_size, files=files)


# --- the sections ------------------------------------------------------------------------

def _texture(check: Checker, info: dict, name: str, declared: Declared) -> TextureInfo:
    where = "textures.{}.".format(name)
    path = check.file(info, "file", where)
    width, height, bit_depth = declared.textures[name]
    colour_space = check.get(info, "colour_space", "str", where)
    encoding = {}
    if name == "specular":
        encoding = check.get(info, "encoding", "object", where)
        check.equal(encoding, "kind", "linear", where + "encoding.")
        check.number(encoding, "scale", where + "encoding.", minimum=0.0)
    elif name == "shininess":
        encoding = check.get(info, "encoding", "object", where)
        check.equal(encoding, "kind", "log", where + "encoding.")
        low = check.number(encoding, "min", where + "encoding.", minimum=0.0, exclusive=True)
        high = check.number(encoding, "max", where + "encoding.")
        if high <= low:
            raise check.error("'{}encoding.max' must be greater than 'min' ({}), found {}".format(
                where, short(low), short(high)))
    elif name == "normal" and "encoding" in info:
        encoding = check.get(info, "encoding", "object", where)
        check.equal(encoding, "kind", "tangent", where + "encoding.")
        check.equal(encoding, "convention", "opengl", where + "encoding.")
    expected_depth, expected_colour, _ = {**TEXTURE_FORMATS, **OPTIONAL_TEXTURE_FORMATS}[name]
    if check.strict and bit_depth != expected_depth:
        raise check.error("'{}bit_depth' must be {} (docs/bundle.md), found {}".format(
            where, expected_depth, bit_depth))

    header = check.png(path)
    if (header.width, header.height) != (width, height):
        raise check.error("is {}x{} pixels but manifest.json says {}x{}".format(
            header.width, header.height, width, height), path)
    if header.bit_depth != bit_depth:
        raise check.error("has {}-bit channels but manifest.json says {}-bit".format(
            header.bit_depth, bit_depth), path)
    if check.strict and header.colour != expected_colour:
        raise check.error("is a {} PNG, expected {}".format(header.colour, expected_colour), path)
    return TextureInfo(path=path, width=width, height=height, bit_depth=bit_depth,
                       colour_space=colour_space, encoding=dict(encoding))


def _camera(check: Checker, info: dict, declared: Declared) -> Camera:
    where = "camera."
    check.equal(info, "model", "perspective", where)
    width, height = declared.image_size
    fov = check.number(info, "fov_y_degrees", where)
    if not 0.0 < fov < 180.0:
        raise check.error("'camera.fov_y_degrees' must be in (0, 180), found {}".format(short(fov)))
    focal = check.number(info, "focal_length_px", where)
    expected = focal_length_px(height, fov)
    if not abs(focal - expected) <= 0.01 * expected:
        raise check.error("'camera.focal_length_px' is {:.6g} but fov_y_degrees {:.6g} over {} pixels "
                          "means {:.6g}".format(focal, fov, height, expected))
    principal = check.vector(info, "principal_point_px", 2, where)
    if abs(principal[0] - width / 2) > 0.5 or abs(principal[1] - height / 2) > 0.5:
        raise check.error("'camera.principal_point_px' must be the image centre in schema 1, found {}"
                          .format(principal.tolist()))
    rows = check.get(info, "world_from_camera", "list", where)
    if len(rows) != 4 or not all(isinstance(row, list) and len(row) == 4 and all(_is_number(v) for v in row)
                                 for row in rows):
        raise check.error("'camera.world_from_camera' must be 4 rows of 4 numbers")
    matrix = np.asarray(rows, dtype=np.float64)
    rotation = matrix[:3, :3]
    if (np.abs(rotation.T @ rotation - np.eye(3)).max() > 1e-3 or np.linalg.det(rotation) < 0
            or np.abs(matrix[3] - [0, 0, 0, 1]).max() > 1e-6):
        raise check.error("'camera.world_from_camera' must be rigid (a rotation and a translation, no scale)")
    return Camera(image_width=width, image_height=height, fov_y_degrees=fov, focal_length_px=focal,
                  principal_point_px=tuple(principal.tolist()), world_from_camera=matrix)


def _lights(check: Checker, info: dict):
    directional = []
    for index, light in enumerate(check.get(info, "directional", "list", "lights.")):
        where = "lights.directional[{}].".format(index)
        if not isinstance(light, dict):
            raise check.error("'{}' must be an object".format(where[:-1]))
        towards = check.vector(light, "towards_light", 3, where)
        length = float(np.linalg.norm(towards))
        if not (abs(length - 1.0) <= 1e-3 if check.strict else length >= 1e-6):
            raise check.error("'{}towards_light' must be a unit vector, found {}".format(where, towards.tolist()))
        directional.append(DirectionalLight(
            towards_light=towards / length,
            strength=check.number(light, "strength", where, minimum=0.0),
            colour=tuple(check.vector(light, "colour", 3, where).tolist()),
        ))
    ambient = check.get(info, "ambient", "object", "lights.")
    ambient_light = AmbientLight(
        strength=check.number(ambient, "strength", "lights.ambient.", minimum=0.0),
        colour=tuple(check.vector(ambient, "colour", 3, "lights.ambient.").tolist()),
    )
    return directional, ambient_light


def _image(check: Checker, path: Path, colour: str, camera: Camera) -> None:
    """target, rerender and mask: PNGs at the camera's size (from the header)."""
    header = check.png(path)
    if (header.width, header.height) != (camera.image_width, camera.image_height):
        raise check.error("is {}x{} pixels but the camera in manifest.json is {}x{}".format(
            header.width, header.height, camera.image_width, camera.image_height), path)
    _strict_image_format(check, path, header, colour)


def _report(check: Checker, path: Path, camera: Camera) -> None:
    """images/report.png: a PNG of any size within the report's bound."""
    header = check.png(path)
    width, height = header.width, header.height
    most = report_max_pixels(camera.image_width, camera.image_height)
    if not (0 < width <= MAX_REPORT_SIDE and 0 < height <= MAX_REPORT_SIDE and width * height <= most):
        raise check.error("is {}x{} pixels; a report is at most {} pixels a side and {} pixels in all for a "
                          "{}x{} camera (docs/bundle.md, Limits)".format(
                              width, height, MAX_REPORT_SIDE, most, camera.image_width, camera.image_height),
                          path)
    _strict_image_format(check, path, header, OPTIONAL_IMAGE_FORMATS["report"])


def _strict_image_format(check: Checker, path: Path, header: PngHeader, colour: str) -> None:
    if check.strict and (header.bit_depth != 8 or header.colour != colour):
        raise check.error("must be {} 8-bit, found {} {}-bit".format(colour, header.colour, header.bit_depth),
                          path)


def check_manifest(check: Checker, manifest: dict) -> CheckedBundle:
    """Every check of the manifest's sections and of the PNG headers of the
    files it names (not the mesh: ``check_bundle``), in one order."""
    check.get(manifest, "generator_version", "str")
    check.get(manifest, "created", "str")
    check.equal(manifest, "units", "metre")
    check.equal(manifest, "up_axis", "+Y")
    declared = declared_sizes(check, manifest)

    mesh_info = manifest["mesh"]
    mesh_path = check.file(mesh_info, "file", "mesh.")
    bounds_min = check.vector(mesh_info, "bounds_min", 3, "mesh.")
    bounds_max = check.vector(mesh_info, "bounds_max", 3, "mesh.")

    textures = {name: _texture(check, manifest["textures"][name], name, declared) for name in declared.textures}
    camera = _camera(check, manifest["camera"], declared)
    directional_lights, ambient_light = _lights(check, check.get(manifest, "lights", "object"))

    shading = check.get(manifest, "shading", "object")
    check.equal(shading, "model", "phong", "shading.")
    if check.strict:
        check.get(shading, "equation", "str", "shading.")
        check.vector(shading, "shininess_range", 2, "shading.")

    images_info = manifest["images"]
    images = {name: check.file(images_info, name, "images.") for name in IMAGE_NAMES}
    for name, path in images.items():
        _image(check, path, IMAGE_FORMATS[name], camera)
    report_path = None
    if "report" in images_info:
        report_path = check.file(images_info, "report", "images.")
        _report(check, report_path, camera)
    glb_path = check.file(manifest, "glb")

    provenance = check.get(manifest, "provenance", "object")
    seed = provenance.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise check.error("'provenance.seed' must be an int or null, found {}".format(short(seed)))
    latent_path = None
    if provenance.get("latent_file") is not None:
        latent_path = check.file(provenance, "latent_file", "provenance.")

    return CheckedBundle(manifest=manifest, declared=declared, mesh_path=mesh_path, bounds_min=bounds_min,
                         bounds_max=bounds_max, textures=textures, camera=camera,
                         directional_lights=directional_lights, ambient_light=ambient_light, shading=shading,
                         images=images, report_path=report_path, glb_path=glb_path, provenance=provenance,
                         latent_path=latent_path)


def check_bundle(check: Checker, read_mesh) -> CheckedBundle:
    """Loads and checks the manifest (``check_manifest``), then the mesh:
    its file size against what its counts allow (before reading it),
    ``read_mesh(path, max_bytes)`` (the caller's PLY reader; it returns an
    object with ``vertices`` [N, 3] and ``faces`` [M, 3] and raises the
    caller's error naming the file), its counts against the manifest's and,
    when strict, its bounds. Returns the ``CheckedBundle`` with ``mesh``."""
    checked = check_manifest(check, load_manifest(check))
    declared, path = checked.declared, checked.mesh_path
    bound = ply_max_bytes(declared.vertex_count, declared.face_count)
    try:
        size = path.stat().st_size
    except OSError as error:
        raise check.error("cannot read ({})".format(error), path) from None
    if size > bound:
        raise check.error("is {} bytes; {} vertices and {} faces (manifest.json) take at most {} bytes".format(
            size, declared.vertex_count, declared.face_count, bound), path)
    mesh = read_mesh(path, bound)
    if len(mesh.vertices) != declared.vertex_count or len(mesh.faces) != declared.face_count:
        raise check.error("holds {} vertices and {} faces but manifest.json says {} and {}".format(
            len(mesh.vertices), len(mesh.faces), declared.vertex_count, declared.face_count), path)
    if check.strict and declared.vertex_count:
        vertices = np.asarray(mesh.vertices, dtype=np.float64)
        tolerance = 1e-5 * max(1.0, float(np.abs(vertices).max()))
        if (np.abs(vertices.min(axis=0) - checked.bounds_min).max() > tolerance
                or np.abs(vertices.max(axis=0) - checked.bounds_max).max() > tolerance):
            raise check.error("'mesh.bounds_min'/'bounds_max' do not match the vertices of {}".format(path.name))
    checked.mesh = mesh
    return checked

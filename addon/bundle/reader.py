"""Reads and validates a GAN2X asset bundle (docs/bundle.md, schema 1).

bpy-free: numpy and the standard library only, so it is tested without
Blender. ``read_bundle`` accepts the bundle directory, its manifest.json, or
a .zip of the bundle, and either returns a fully checked ``Bundle`` or raises
``BundleError`` with a message that names the file and says what to do.

The checks and their messages live in ``manifest_checks``, a byte-identical
copy of the backend's ``gan2x/export/manifest_checks.py`` (``python build.py
--sync``), so the backend's validator and this reader refuse alike. Here:
the .zip, the mesh (through ``ply``) and the ``Bundle``.

Sizes are bounded (docs/bundle.md, "Limits"): what the manifest declares
(mesh counts, texture and image sizes) is checked against fixed maxima, each
PNG's header against the declared size before anything decodes it, and a
.zip is unpacked member by member, the manifest first, each member only when
the manifest names it and only up to the size its declared content allows.
"""
from __future__ import annotations

import contextlib
import os
import posixpath
import shutil
import stat
import tempfile
import weakref
import zipfile
from dataclasses import dataclass, field, fields
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from .manifest_checks import (MANIFEST_NAME, MAX_BUNDLE_BYTES, MAX_MANIFEST_BYTES, CheckedBundle, Checker,
                              check_bundle, declared_sizes, load_manifest)
# Re-exported as before the checks moved to manifest_checks: the limits and the parts of a Bundle.
from .manifest_checks import (FORMAT, IMAGE_NAMES, MAX_FACES, MAX_IMAGE_SIDE, MAX_LATENT_BYTES,  # noqa: F401
                              MAX_MANIFEST_DEPTH, MAX_REPORT_PIXELS, MAX_REPORT_SIDE, MAX_TEXTURE_SIDE, MAX_VERTICES,
                              TEXTURE_NAMES, AmbientLight, Camera, DirectionalLight, TextureInfo, png_max_bytes,
                              report_max_pixels)
from .manifest_checks import SCHEMA_VERSION as SUPPORTED_SCHEMA_VERSION  # noqa: F401
from .provenance import generator_text
from .ply import PlyError, read_ply

_COPY_CHUNK_BYTES = 1 << 20
_ZIP_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate",
                zipfile.ZIP_BZIP2: "bzip2", zipfile.ZIP_LZMA: "LZMA"}
"""Compression methods a member may use."""


class BundleError(Exception):
    """A bundle that cannot be read; ``str()`` names the file and the problem."""


@dataclass(kw_only=True)
class Bundle(CheckedBundle):
    """A validated bundle: what ``manifest_checks.CheckedBundle`` holds
    (``textures``, ``camera``, ``directional_lights``, ``ambient_light``,
    ``shading``, ``images``, ``report_path``, ``glb_path``, ``provenance``,
    ``latent_path``, ...) and the mesh's arrays, in the bundle frame (+Y up):
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
    vertices: np.ndarray
    normals: np.ndarray
    uvs: np.ndarray
    faces: np.ndarray
    source: Path | None = None
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
        check = _checker(manifest_path, _zip_label(zip_path, root))
        declared = declared_sizes(check, load_manifest(check))

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


# --- the bundle ------------------------------------------------------------------

def _checker(manifest_path: Path, label=None) -> Checker:
    return Checker(manifest_path, error_type=BundleError, label=label)


def _read_directory(manifest_path: Path, source: Path, label=None) -> Bundle:
    check = _checker(manifest_path, label)

    def read_mesh(path: Path, max_bytes: int):
        try:
            return read_ply(path, max_bytes=max_bytes)
        except PlyError as error:
            raise check.error(str(error), path) from None
        except OSError as error:
            raise check.error("cannot read ({})".format(error), path) from None

    checked = check_bundle(check, read_mesh)
    mesh = checked.mesh
    return Bundle(name=manifest_path.parent.name or "bundle", root=manifest_path.parent,
                  manifest_path=manifest_path, vertices=mesh.vertices, normals=mesh.normals, uvs=mesh.uvs,
                  faces=mesh.faces, source=source, _label=label,
                  **{part.name: getattr(checked, part.name) for part in fields(CheckedBundle)})

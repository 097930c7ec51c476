"""Builds the installable GAN2X extension zip from addon/ and blender_manifest.toml.

    python build.py [--out-dir DIR]
    python build.py --sync     copy the shared sources into the add-on, then stop
    python build.py --check    exit 1 when an add-on copy differs from its source

Copies the add-on package and the manifest into a temporary staging folder,
validates it with Blender's extension tool (``blender_ext.py validate``, found
in the bpy wheel of this interpreter or in a running Blender), then builds
``gan2x-<version>.zip`` with ``blender_ext.py build`` and prints its path.
Exits non-zero when validation or the build fails.

Shared sources (``SHARED_FILES``): files the backend and the add-on both run,
whose one source is in the backend and whose copy the add-on ships (it cannot
import the backend inside Blender). The build refuses while a copy differs
from its source; ``--sync`` rewrites the copies.
"""
from __future__ import annotations

import argparse
import importlib.util
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent
ADDON_DIR = ROOT / "addon"
MANIFEST = ROOT / "blender_manifest.toml"
DEFAULT_OUT_DIR = ROOT / "dist"
_TOOL = Path("scripts", "addons_core", "bl_pkg", "cli", "blender_ext.py")
SHARED_FILES = (
    (ROOT / "backend" / "gan2x" / "export" / "manifest_checks.py", ADDON_DIR / "bundle" / "manifest_checks.py"),
)
"""(source, the add-on's byte-identical copy): the bundle checks of both sides."""


class BuildError(RuntimeError):
    """Validation or packaging failed; the message holds the tool's output."""


def _relative(path: Path) -> str:
    try:
        return path.relative_to(ROOT).as_posix()
    except ValueError:
        return str(path)


def stale_copies() -> list:
    """The (source, copy) pairs of SHARED_FILES whose copy is missing or
    differs from its source."""
    return [(source, copy) for source, copy in SHARED_FILES
            if not copy.is_file() or copy.read_bytes() != source.read_bytes()]


def check_shared_files() -> None:
    """Raises BuildError naming each add-on copy that differs from its source."""
    stale = stale_copies()
    if stale:
        raise BuildError("the add-on's copy of a shared source differs from it; edit the source, then run "
                         "`python build.py --sync`:\n" + "\n".join(
                             "  {} != {}".format(_relative(copy), _relative(source)) for source, copy in stale))


def sync_shared_files() -> list:
    """Copies each stale source of SHARED_FILES over its add-on copy; returns the copies written."""
    written = []
    for source, copy in stale_copies():
        copy.write_bytes(source.read_bytes())
        written.append(copy)
    return written


def find_extension_tool() -> Path:
    """blender_ext.py of the bpy wheel installed for this interpreter (or of
    the running Blender when called from inside it)."""
    if "bpy" in sys.modules:
        scripts = getattr(sys.modules["bpy"], "utils", None)
        if scripts is not None:
            candidate = Path(scripts.system_resource("SCRIPTS")) / _TOOL.relative_to("scripts")
            if candidate.is_file():
                return candidate
    spec = importlib.util.find_spec("bpy")
    if spec is None:
        raise BuildError("the bpy module is not installed for {}; install bpy (the Blender "
                         "version the add-on targets) to validate and build".format(sys.executable))
    locations = list(spec.submodule_search_locations or []) or [str(Path(spec.origin).parent)]
    for location in locations:
        candidates = sorted(Path(location).glob("*" + "/" + _TOOL.as_posix()))
        if candidates:
            return candidates[-1]
    raise BuildError("no {} in the bpy wheel at {}".format(_TOOL.as_posix(), locations))


def _run_tool(tool: Path, *arguments: str) -> str:
    completed = subprocess.run([sys.executable, str(tool), *arguments],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if completed.returncode != 0:
        raise BuildError("blender_ext.py {} failed:\n{}".format(arguments[0], completed.stdout.strip()))
    return completed.stdout


def stage(staging_dir: Path) -> None:
    """Copies the add-on package and the manifest into ``staging_dir``."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".*")
    shutil.copytree(ADDON_DIR, staging_dir, ignore=ignore, dirs_exist_ok=True)
    shutil.copy2(MANIFEST, staging_dir / MANIFEST.name)


def build_extension(out_dir=DEFAULT_OUT_DIR) -> Path:
    """Validates and builds the extension; returns the zip's path. Refuses
    (BuildError, before anything is written) while a shared source's add-on
    copy differs from it."""
    check_shared_files()
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    tool = find_extension_tool()
    with open(MANIFEST, "rb") as stream:
        manifest = tomllib.load(stream)
    with tempfile.TemporaryDirectory(prefix="gan2x-extension-") as temporary:
        staging_dir = Path(temporary) / "gan2x"
        stage(staging_dir)
        _run_tool(tool, "validate", str(staging_dir))
        zip_path = out_dir / "{}-{}.zip".format(manifest["id"], manifest["version"])
        _run_tool(tool, "build", "--source-dir", str(staging_dir), "--output-filepath", str(zip_path))
    if not zip_path.is_file():
        raise BuildError("the build reported success but wrote no {}".format(zip_path))
    return zip_path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT_DIR,
                        help="where the zip goes (default: dist/)")
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--sync", action="store_true",
                        help="copy the shared sources (SHARED_FILES) into the add-on and stop")
    action.add_argument("--check", action="store_true",
                        help="exit 1 when an add-on copy of a shared source differs from it")
    args = parser.parse_args(argv)
    if args.sync:
        for copy in sync_shared_files():
            print("updated {}".format(_relative(copy)))
        return 0
    try:
        if args.check:
            check_shared_files()
            return 0
        zip_path = build_extension(args.out_dir)
    except BuildError as error:
        print(error, file=sys.stderr)
        return 1
    print(zip_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())

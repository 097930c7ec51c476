"""Headless import and render of a GAN2X bundle.

    python addon/headless.py -- --bundle DIR --blend OUT.blend --render-size 256 \\
        --samples 32 --out-dir DIR [--relight-towards X Y Z] [--ao-strength S]
    blender -b -P addon/headless.py -- (same arguments)

Registers the add-on from this file's folder, starts from factory settings
with an empty scene, imports the bundle with lights, camera and world, saves
the .blend, renders at the bundle camera with Cycles on the CPU and writes
``render.png`` (sRGB, Standard view transform) and ``render_linear.npy``
(float32 [H, W, 4] linear RGBA, row 0 at the top). With ``--relight-towards``
(a direction in the bundle frame, +Y up) the sun turns to it and
``relit.png`` / ``relit_linear.npy`` follow. ``--ao-strength`` (0 to 1,
default the import's, 0.5: ``blender/material.py``) is the Factor of the
ambient occlusion Mix node of bundles that hold an AO texture. Prints one
JSON line.

Other code calls ``run(argv) -> dict`` in-process.

Batch conversion through the backend, with the options of
``blender -b --command gan2x convert`` (``convert.py``):

    blender -b -P addon/headless.py -- convert --generator synthetic:faces --seeds 1-4 --out DIR
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import sys
import time
from pathlib import Path

import bpy
import numpy as np

_FOLDER = Path(__file__).resolve().parent


def _addon_package():
    """The add-on package this file belongs to, imported if need be.

    Imported as part of its package, that package is used. Run as a script,
    the folder is imported as a package under its own name (``addon`` in the
    repository, ``gan2x`` when installed), or under a private name when a
    different module already has that name (the backend is also ``gan2x``).
    It is loaded from its location rather than found on sys.path, so neither
    a same-named module nor the folder's siblings get in the way."""
    package_name = globals().get("__package__")  # None in a script's namespace
    if package_name:
        return importlib.import_module(package_name)
    name = _FOLDER.name
    existing = sys.modules.get(name)
    if existing is not None:
        existing_file = getattr(existing, "__file__", None)
        if existing_file and Path(existing_file).resolve().parent == _FOLDER:
            return existing
        name = "_gan2x_addon"
        if name in sys.modules:
            return sys.modules[name]
    spec = importlib.util.spec_from_file_location(
        name, _FOLDER / "__init__.py", submodule_search_locations=[str(_FOLDER)])
    package = importlib.util.module_from_spec(spec)
    sys.modules[name] = package
    try:
        spec.loader.exec_module(package)
    except BaseException:
        del sys.modules[name]
        raise
    return package


def parse_arguments(argv) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="headless.py", description="Import a GAN2X bundle into a new .blend and render it.")
    parser.add_argument("--bundle", required=True, type=Path,
                        help="the bundle folder, its manifest.json or a .zip of it")
    parser.add_argument("--out-dir", required=True, type=Path, help="where renders go")
    parser.add_argument("--blend", type=Path, help="the .blend to write (default OUT_DIR/scene.blend)")
    parser.add_argument("--render-size", type=int, default=256, help="square render size in pixels")
    parser.add_argument("--samples", type=int, default=32, help="Cycles samples per pixel")
    parser.add_argument("--relight-towards", type=float, nargs=3, metavar=("X", "Y", "Z"),
                        help="also render with the sun turned to this direction (bundle frame, +Y up)")
    parser.add_argument("--ao-strength", type=float, default=None, metavar="S",
                        help="how much the bundle's ambient occlusion texture darkens the albedo, 0 to 1 "
                             "(default: the import's, 0.5; 0 reproduces the backend's re-render)")
    args = parser.parse_args(argv)
    if args.render_size <= 0 or args.samples <= 0:
        parser.error("--render-size and --samples must be positive")
    if args.relight_towards is not None and not np.any(args.relight_towards):
        parser.error("--relight-towards must not be the zero vector")
    if args.ao_strength is not None and not 0.0 <= args.ao_strength <= 1.0:
        parser.error("--ao-strength must be from 0 to 1")
    return args


def run(argv) -> dict:
    """Runs the headless import and render (arguments as on the command line,
    without the leading ``--``). Returns the summary that ``main`` prints:
    ``blend``, ``render_png``, ``render_linear`` (and ``relit_png``,
    ``relit_linear`` when relighting) as absolute paths, ``collection``,
    ``objects``, and ``seconds`` per step. Raises BundleError for a bad bundle."""
    args = parse_arguments(argv)
    package = _addon_package()
    scene_module = importlib.import_module(package.__name__ + ".blender.scene")
    lights_module = importlib.import_module(package.__name__ + ".blender.lights")
    render_module = importlib.import_module(package.__name__ + ".blender.render")
    reader_module = importlib.import_module(package.__name__ + ".bundle.reader")

    out_dir = args.out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    blend_path = (args.blend or out_dir / "scene.blend").resolve()
    blend_path.parent.mkdir(parents=True, exist_ok=True)
    seconds = {}
    clock = time.perf_counter()

    def lap(step):
        nonlocal clock
        now = time.perf_counter()
        seconds[step] = round(now - clock, 4)
        clock = now

    bpy.ops.wm.read_factory_settings(use_empty=True)
    registered_here = not hasattr(bpy.types, "GAN2X_OT_import_bundle")
    if registered_here:
        package.register()
    lap("reset")
    try:
        options = scene_module.ImportOptions(import_lights=True, import_camera=True, import_world=True)
        if args.ao_strength is not None:
            options.ao_strength = args.ao_strength
        with reader_module.read_bundle(args.bundle) as bundle:
            result = scene_module.import_bundle(bpy.context, bundle, options)
        lap("import")

        bpy.ops.wm.save_as_mainfile(filepath=str(blend_path))
        lap("save")

        scene = bpy.context.scene
        render_module.configure_cycles(scene, width=args.render_size, samples=args.samples)
        summary = {"blend": str(blend_path), "collection": result.collection.name,
                   "objects": [obj.name for obj in result.objects]}
        summary.update(_render(render_module, scene, out_dir, "render"))
        lap("render")

        if args.relight_towards is not None:
            if not result.suns:
                raise reader_module.BundleError(
                    "{}: the bundle has no directional light to turn".format(args.bundle))
            lights_module.set_sun_direction(result.suns[0], args.relight_towards)
            summary.update(_render(render_module, scene, out_dir, "relit"))
            lap("relight")
    finally:
        if registered_here:
            package.unregister()
    summary["seconds"] = seconds
    return summary


def _render(render_module, scene, out_dir: Path, stem: str) -> dict:
    png_path = out_dir / (stem + ".png")
    linear_path = out_dir / (stem + "_linear.npy")
    linear = render_module.render_to_arrays(scene, png_path=png_path)
    np.save(linear_path, linear)
    return {stem + "_png": str(png_path), stem + "_linear": str(linear_path)}


def main() -> int:
    argv = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else sys.argv[1:]
    package = _addon_package()
    if argv and argv[0] == "convert":  # the same as ``blender -b --command gan2x convert ...``
        return importlib.import_module(package.__name__ + ".convert").cli_command(argv)
    reader_module = importlib.import_module(package.__name__ + ".bundle.reader")
    try:
        summary = run(argv)
    except reader_module.BundleError as error:
        print("error: {}".format(error), file=sys.stderr)
        return 1
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    # ``python addon/headless.py`` puts this folder first on sys.path, which
    # would make the add-on's subpackages importable as top-level modules.
    if sys.path and Path(sys.path[0] or ".").resolve() == _FOLDER:
        del sys.path[0]
    sys.exit(main())

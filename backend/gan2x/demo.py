"""``gan2x demo``: the product's main job on the built-in generator.

fit -> bundle -> Blender scene (.blend) -> one PNG a person can look at:
target | backend re-render | Cycles render of the imported scene | the same
scene relit from another direction.

The backend never imports bpy: the Blender stage runs the add-on's headless
entry (``addon/headless.py``) in a child process, either this Python (when it
has the ``bpy`` module) or a Blender executable.
"""
from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw


def default_addon_dir() -> Path:
    """The checkout's ``addon/`` (backend/gan2x/demo.py -> ../../addon)."""
    return Path(__file__).resolve().parents[2] / "addon"


def blender_command(explicit: str | None) -> list[str]:
    """How to run a Blender script: ``[python]`` with bpy, or ``[blender, -b, -P]``."""
    if explicit:
        return [explicit, "-b", "--factory-startup", "-P"]
    if importlib.util.find_spec("bpy") is not None:
        return [sys.executable]
    found = shutil.which("blender")
    if found:
        return [found, "-b", "--factory-startup", "-P"]
    raise FileNotFoundError("no Blender found: install the bpy module (pip install bpy==5.0.1) "
                            "or pass --blender /path/to/blender")


def relight_direction(towards_light) -> list[float]:
    """Another light for the relit view, clearly different from the estimated
    one: from the side opposite the estimated light's, 60 degrees off the
    camera axis and a little from above (bundle frame, unit)."""
    side = -1.0 if towards_light[0] > 0 else 1.0
    direction = np.array([side * np.sin(np.radians(60.0)), 0.35, np.cos(np.radians(60.0))], dtype=np.float64)
    direction /= np.linalg.norm(direction)
    return direction.tolist()


def run_blender_stage(bundle: Path, out_dir: Path, render_size: int, samples: int,
                      relight_towards: list[float], addon_dir: Path | None = None,
                      blender: str | None = None) -> dict:
    """Run ``addon/headless.py`` on the bundle; returns its JSON report."""
    addon_dir = Path(addon_dir or default_addon_dir())
    script = addon_dir / "headless.py"
    if not script.is_file():
        raise FileNotFoundError(f"the add-on's headless script is not at {script}; pass --addon-dir")
    command = blender_command(blender) + [str(script), "--", "--bundle", str(bundle),
                                          "--blend", str(out_dir / "scene.blend"),
                                          "--render-size", str(render_size), "--samples", str(samples),
                                          "--out-dir", str(out_dir),
                                          "--relight-towards", *(f"{v:.6f}" for v in relight_towards)]
    completed = subprocess.run(command, capture_output=True, text=True)
    if completed.returncode != 0:
        raise RuntimeError(f"the Blender stage failed (exit {completed.returncode}):\n"
                           f"{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}")
    for line in reversed(completed.stdout.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(f"the Blender stage printed no report:\n{completed.stdout[-3000:]}")


def compose_panels(panels: list[tuple[str, Path]], out_path: Path, size: int = 256) -> Path:
    """Side-by-side PNG of labelled images, each resized to ``size``."""
    label_height = 18
    sheet = Image.new("RGB", (size * len(panels), size + label_height), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    for index, (label, path) in enumerate(panels):
        image = Image.open(path).convert("RGB").resize((size, size), Image.Resampling.LANCZOS)
        sheet.paste(image, (index * size, label_height))
        draw.text((index * size + 4, 3), label, fill=(230, 230, 230))
    sheet.save(out_path)
    return out_path


def run_demo(args, request, progress, print_metrics) -> int:
    from .pipeline import reconstruct

    out_dir = Path(args.out).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    print(f"[1/3] fitting {request.generator} seed {request.seed} ({request.preset} preset)")
    result = reconstruct(request, out_dir / "bundle", progress=progress)
    print_metrics(result.metrics)
    manifest = json.loads((result.bundle / "manifest.json").read_text())

    print("[2/3] building the Blender scene and rendering with Cycles")
    blender_start = time.perf_counter()
    towards = manifest["lights"]["directional"][0]["towards_light"]
    report = run_blender_stage(result.bundle, out_dir / "blender", args.render_size, args.samples,
                               relight_direction(towards), args.addon_dir, args.blender)
    blender_seconds = time.perf_counter() - blender_start

    print("[3/3] composing the comparison image")
    images = manifest["images"]
    comparison = compose_panels([
        ("target", result.bundle / images["target"]),
        ("backend re-render", result.bundle / images["rerender"]),
        ("Blender Cycles", Path(report["render_png"])),
        ("Cycles, relit", Path(report["relit_png"])),
    ], out_dir / "comparison.png", size=args.render_size)

    timings = dict(result.timings)
    timings["blender"] = blender_seconds
    timings["demo_total"] = time.perf_counter() - started
    (out_dir / "timings.json").write_text(json.dumps(timings, indent=2))
    print(f"bundle:      {result.bundle}")
    print(f"report:      {result.report}")
    print(f"blend file:  {report.get('blend')}")
    print(f"comparison:  {comparison}")
    print("timings (s): " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()))
    return 0

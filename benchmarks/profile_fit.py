"""Where does a reconstruction spend its time and memory?

Fits one sample of a generator with a preset (the same ``pipeline.reconstruct``
that ``gan2x fit`` runs) and prints seconds per stage: generator sample,
target fit, exploration (pseudo-sample renders and projection), exploitation,
refinement, evaluation and export (marching cubes, UV unwrap, baking and
writing the bundle), then peak memory: the process's peak resident set
(CPU) and, on a CUDA device, torch's peak allocated and reserved memory.
It then prints the export's parts (marching cubes, UV unwrap, baking) as
the export recorded them in the bundle's provenance; ``--export-only``
skips the fit and times those parts on the ellipsoid prior.

    .venv/bin/python benchmarks/profile_fit.py --preset draft --threads 2
    .venv/bin/python benchmarks/profile_fit.py --preset standard --resolution 128 --device cuda
    .venv/bin/python benchmarks/profile_fit.py --export-only --mesh-resolution 256 --texture-size 1024

``--steps-scale 0.05`` multiplies the preset's step counts, as ``gan2x fit
--steps-scale`` does: a smoke run of the script (benchmarks/gpu_check.sh
--tiny), not a figure to keep.

``--json PATH`` also writes the figures. docs/performance.md keeps its
output with the command and the machine.
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from gan2x.devices import DEVICE_HELP, resolve_device
from gan2x.export.bundle import MANIFEST_NAME
from gan2x.fit.asset_model import AssetModel
from gan2x.pipeline import (ExportSettings, ReconstructionRequest, reconstruct, scaled_consistency_overrides,
                            scaled_step_overrides, sdf_normals)

STAGES = ("generator", "target_fit", "exploration", "exploitation", "refinement", "evaluation", "export")


def peak_rss_mib() -> float:
    """This process's peak resident set size so far, MiB (Linux reports KiB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024.0 if sys.platform != "darwin" else peak / 2 ** 20


def gpu_memory(device: str) -> dict:
    if not device.startswith("cuda"):
        return {}
    return {"cuda_peak_allocated_mib": torch.cuda.max_memory_allocated() / 2 ** 20,
            "cuda_peak_reserved_mib": torch.cuda.max_memory_reserved() / 2 ** 20}


def synchronise(device: str):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def profile_export(model: AssetModel, device: str, mesh_resolution: int, texture_size: int) -> dict:
    """Seconds of each export step on ``model`` (marching cubes on the SDF,
    UV unwrap, texture bake), as ``export.asset.write_asset_bundle`` runs them
    (writing the files is the rest of the export stage)."""
    from gan2x.export.bake import bake_textures
    from gan2x.export.marching_cubes import extract_mesh
    from gan2x.export.uv_unwrap import unwrap

    def sdf(points: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model.sdf(torch.from_numpy(points).to(device, torch.float32)).cpu().numpy()

    def materials(points: np.ndarray) -> dict:  # as pipeline.export_bundle's, normals included
        points_tensor = torch.from_numpy(points).to(device, torch.float32)
        with torch.no_grad():
            values = model.materials(points_tensor)
        values = {key: value.cpu().numpy() for key, value in values.items()}
        values["normal"] = sdf_normals(model.sdf, points_tensor)
        return values

    timings = {}
    start = time.perf_counter()
    mesh = extract_mesh(sdf, resolution=mesh_resolution, largest_component=True)
    timings["marching_cubes"] = time.perf_counter() - start
    start = time.perf_counter()
    textured = unwrap(mesh, texture_size=texture_size)
    timings["uv_unwrap"] = time.perf_counter() - start
    start = time.perf_counter()
    bake_textures(textured, materials, size=texture_size)
    timings["bake"] = time.perf_counter() - start
    timings["faces"] = int(len(mesh.faces))
    return timings


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--generator", default="synthetic:faces")
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--preset", default="draft")
    parser.add_argument("--resolution", type=int, default=64,
                        help="image resolution of the built-in generator (default: 64)")
    parser.add_argument("--device", default="auto", help=DEVICE_HELP + " (default: auto)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--mesh-resolution", type=int, default=256)
    parser.add_argument("--texture-size", type=int, default=1024)
    parser.add_argument("--export-only", action="store_true", help="time only the export parts, on the prior")
    parser.add_argument("--steps-scale", type=float, default=1.0,
                        help="multiply every step count of the preset and the consistency metric's, as gan2x fit "
                             "--steps-scale (e.g. 0.05 for a smoke run; default: 1)")
    parser.add_argument("--json", default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    figures = {"machine": {"platform": platform.platform(), "cpu_threads": torch.get_num_threads(),
                           "torch": torch.__version__, "device": device,
                           "gpu": torch.cuda.get_device_name(device) if device.startswith("cuda") else None},
               "settings": {"generator": args.generator, "seed": args.seed, "preset": args.preset,
                            "resolution": args.resolution, "mesh_resolution": args.mesh_resolution,
                            "texture_size": args.texture_size, "steps_scale": args.steps_scale}}
    if args.export_only:
        model = AssetModel().to(device)
    else:
        options = {"resolution": args.resolution} if args.generator.startswith("synthetic") else {}
        scaled = args.steps_scale != 1.0
        request = ReconstructionRequest(generator=args.generator, seed=args.seed, preset=args.preset, device=device,
                                        generator_options=options,
                                        fit_overrides=scaled_step_overrides(args.preset, args.steps_scale) if scaled
                                        else {},
                                        consistency_overrides=scaled_consistency_overrides(args.steps_scale) if scaled
                                        else {},
                                        export=ExportSettings(mesh_resolution=args.mesh_resolution,
                                                              texture_size=args.texture_size))
        with tempfile.TemporaryDirectory() as out:
            started = time.perf_counter()
            result = reconstruct(request, Path(out))
            synchronise(device)
            wall = time.perf_counter() - started
            written = json.loads((result.bundle / MANIFEST_NAME).read_text())["provenance"]["timings"]
        # the export stage's own figures (export.asset.write_asset_bundle), not a second export
        figures["export_parts_s"] = {"marching_cubes": written["export_mesh"], "uv_unwrap": written["export_unwrap"],
                                     "bake": written["export_bake"]}
        figures["stages_s"] = {stage: round(result.timings.get(stage, 0.0), 3) for stage in STAGES}
        figures["fit_s"] = round(sum(result.timings.get(s, 0.0) for s in STAGES[1:5]), 3)
        figures["total_s"] = round(wall, 3)
        figures["metrics"] = {key: result.metrics.get(key) for key in ("mad_degrees", "side_x100", "rerender_psnr_db")}
        print(f"{args.generator} seed {args.seed}, preset {args.preset}, {args.resolution}x{args.resolution}, "
              f"{device}, {torch.get_num_threads()} CPU threads")
        print("| stage | seconds |\n| --- | ---: |")
        for stage in STAGES:
            print(f"| {stage} | {figures['stages_s'][stage]:.2f} |")
        print(f"| fit (target fit + exploration + exploitation + refinement) | {figures['fit_s']:.2f} |")
        print(f"| whole reconstruction | {figures['total_s']:.2f} |")
        model = None
    if model is not None:  # --export-only: the parts on the prior
        synchronise(device)
        figures["export_parts_s"] = {key: (round(value, 3) if isinstance(value, float) else value)
                                     for key, value in profile_export(model, device, args.mesh_resolution,
                                                                      args.texture_size).items()}
        synchronise(device)
    parts = figures["export_parts_s"]
    faces = f" ({parts['faces']} faces)" if "faces" in parts else ""
    print(f"\nexport parts, {args.mesh_resolution}^3 grid, {args.texture_size}^2 textures{faces}:")
    print(f"marching cubes {parts['marching_cubes']:.2f} s, UV unwrap {parts['uv_unwrap']:.2f} s, "
          f"bake {parts['bake']:.2f} s")
    figures["memory_mib"] = {"cpu_peak_rss_mib": round(peak_rss_mib(), 1),
                             **{k: round(v, 1) for k, v in gpu_memory(device).items()}}
    print("peak memory: " + ", ".join(f"{k} {v:.0f}" for k, v in figures["memory_mib"].items()))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

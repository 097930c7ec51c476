"""Times the export stage alone: the in-memory build (marching cubes, unwrap,
field bake with normals, image bake, ambient occlusion) and writing the
bundle, on one fitted model, several times (docs/performance.md, "Export on
a quiet machine").

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/export_timing.py \\
        --generator dcgan:out/real_gan/dcgan_faces.tar --seed 50 --threads 2 --repeats 3 --cache /tmp/fit_50.pt

The fit (draft preset, one thread) runs once and is kept in ``--cache``
(a torch pickle of the fitted model and its target state, for this script
only); a second run with the same cache times the export again without
fitting. Export settings are the product's defaults (``ExportSettings``).
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from gan2x.conventions import unit_rgb_from_generator
from gan2x.export.asset import write_built_asset
from gan2x.fit.schedule import fit_target
from gan2x.generators import load_generator
from gan2x.pipeline import AssetViews, ExportSettings, build_exported_asset, bundle_camera_and_light, resolve_settings


def fitted(generator_spec: str, seed: int, cache: Path | None) -> dict:
    if cache is not None and cache.is_file():
        return torch.load(cache, weights_only=False)
    torch.set_num_threads(1)
    generator = load_generator(generator_spec)
    with torch.no_grad():
        latent = generator.mapping(generator.z_from_seed(seed), truncation_psi=1.0)
        image = generator.synthesis(latent)[0]
    settings = resolve_settings("draft")
    started = time.perf_counter()
    result = fit_target(generator, latent, image, settings)
    print(f"fit (draft, 1 thread): {time.perf_counter() - started:.1f} s")
    kept = {"model": result.model, "state": result.target_state, "image": image, "settings": settings}
    if cache is not None:
        torch.save(kept, cache)
    return kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--generator", default="dcgan:out/real_gan/dcgan_faces.tar")
    parser.add_argument("--seed", type=int, default=50)
    parser.add_argument("--threads", type=int, default=0, help="torch threads for the export (0: torch's default)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cache", type=Path, default=None, help="keep the fit here, reuse it when present")
    args = parser.parse_args()
    default_threads = torch.get_num_threads()
    fit = fitted(args.generator, args.seed, args.cache)
    torch.set_num_threads(args.threads or default_threads)
    model, state, image = fit["model"], fit["state"], fit["image"]
    resolution = image.shape[-1]
    opacity = model.render_image(state, resolution, fit["settings"].sampling)["opacity"]
    camera, light = bundle_camera_and_light(state, resolution)
    target = unit_rgb_from_generator(image)
    export = ExportSettings()
    print(f"{args.generator} seed {args.seed}: mesh {export.mesh_resolution}^3, textures {export.texture_size}^2, "
          f"{torch.get_num_threads()} torch threads")
    for _ in range(args.repeats):
        started = time.perf_counter()
        asset = build_exported_asset(model, target, opacity, export, camera, light)
        build = time.perf_counter() - started
        rerender = AssetViews(asset, camera).render(state)
        with tempfile.TemporaryDirectory() as folder:
            started = time.perf_counter()
            write_built_asset(Path(folder) / "bundle", asset, camera=camera, light=light,
                              target_image=target.numpy(), rerender_image=rerender["rgb"].numpy(),
                              mask=rerender["coverage"].numpy(),
                              provenance={"generator": args.generator, "seed": args.seed, "truncation": 1.0,
                                          "preset": "draft", "settings": {}, "metrics": {}, "timings": {},
                                          "gan2x_version": "0.1.0"})
            write = time.perf_counter() - started
        steps = ", ".join(f"{name.removeprefix('export_')} {seconds:.2f}" for name, seconds in asset.timings.items())
        print(f"build {build:.2f} s + write {write:.2f} s = export {build + write:.2f} s ({steps})")


if __name__ == "__main__":
    main()

"""How much of a built-in generator's image do its highlights make?

For each seed, renders the sample as it is and with every specular
intensity (ks) of its scene set to 0, and prints, over the object's pixels,
the mean absolute difference of the sRGB images (in [0, 1]) and the
fractions of pixels that differ by more than 0.02 and 0.1, with the mean
true ks. A fit can only learn ks from highlights that stand above the error
it leaves elsewhere (about 0.01 for the draft preset at 64x64;
docs/benchmark.md).

    .venv/bin/python benchmarks/specular_signal.py --seeds 1,2,3
    .venv/bin/python benchmarks/specular_signal.py --seeds 1000,1001,1002 --highlight-scale 4

``--highlight-scale`` multiplies the generator's ks (``SyntheticGenerator``),
as ``gan2x bench --highlight-scale`` does.
"""
from __future__ import annotations

import argparse
import dataclasses

import torch

from gan2x.bench.run import DEFAULT_ENTANGLEMENT
from gan2x.generators import load_generator


def specular_signal(generator, seed: int) -> dict:
    """The highlight's share of one sample's image (see the module docstring)."""
    with torch.no_grad():
        scene = generator.scene(generator.mapping(generator.z_from_seed(seed)))
        shiny = generator.render(scene)
        values = {f.name: getattr(scene, f.name) for f in dataclasses.fields(scene)}
        matte = generator.render(dataclasses.replace(scene, **{
            name: torch.zeros_like(value) for name, value in values.items() if "specular" in name}))
    mask = shiny["hit"][0]
    difference = ((shiny["image"][0] - matte["image"][0]).abs() / 2).mean(0)[mask]
    return {"mean_srgb_difference": float(difference.mean()), "above_0.02": float((difference > 0.02).float().mean()),
            "above_0.1": float((difference > 0.1).float().mean()), "mean_ks": float(shiny["specular"][0][mask].mean())}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--categories", default="faces,objects")
    parser.add_argument("--entanglement", type=float, default=DEFAULT_ENTANGLEMENT)
    parser.add_argument("--highlight-scale", type=float, default=1.0)
    args = parser.parse_args(argv)
    print("| category | seed | mean sRGB difference | pixels > 0.02 | pixels > 0.1 | mean ks |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for category in args.categories.split(","):
        generator = load_generator(f"synthetic:{category}", entanglement=args.entanglement,
                                   highlight_scale=args.highlight_scale)
        for seed in (int(s) for s in args.seeds.split(",")):
            v = specular_signal(generator, seed)
            print(f"| {category} | {seed} | {v['mean_srgb_difference']:.4f} | {100 * v['above_0.02']:.1f}% | "
                  f"{100 * v['above_0.1']:.1f}% | {v['mean_ks']:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

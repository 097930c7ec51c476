"""Can projection through the generator change the view?

For a few samples of the built-in faces generator, renders the TRUE object
from a yaw shifted by ``--shift`` radians (an ideal pseudo sample), projects
that image with ``gan2x.fit.projection.project_to_generator`` and prints the
yaw the generator's latent ends at, next to the wanted one. Also prints the
share of samples whose yaw lies beyond 80% of the category's range.

    .venv/bin/python benchmarks/projection_probe.py [--seeds 1,2,3] [--shift 0.3]
"""
from __future__ import annotations

import argparse
import time

import torch

from gan2x.fit.projection import project_to_generator
from gan2x.generators import load_generator
from gan2x.render.cameras import orbit_world_from_camera


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generator", default="synthetic:faces")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--shift", type=float, default=0.3, help="yaw shift in radians, applied towards the centre")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    generator = load_generator(args.generator, device=torch.device("cpu"))
    yaw_range = generator.template.yaw_range
    print(f"{'seed':>4} {'yaw':>7} {'wanted':>7} {'steps':>5} {'lr':>5} {'got':>7} {'s':>5}")
    for seed in (int(s) for s in args.seeds.split(",")):
        with torch.no_grad():
            ws = generator.mapping(generator.z_from_seed(seed))
            scene = generator.scene(ws)
            wanted = scene.yaw - args.shift * torch.sign(scene.yaw)
            camera = orbit_world_from_camera(wanted.reshape(1).float(), scene.pitch.reshape(1).float())
            pseudo = generator.render(scene, world_from_camera=camera)["image"]
        for steps, learning_rate in ((40, 0.05), (100, 0.05), (40, 0.2)):
            start = time.perf_counter()
            _, projected_ws = project_to_generator(generator, ws, pseudo, steps, learning_rate=learning_rate)
            got = float(generator.scene(projected_ws).yaw)
            print(f"{seed:>4} {float(scene.yaw):7.3f} {float(wanted):7.3f} {steps:>5} {learning_rate:5.2f} "
                  f"{got:7.3f} {time.perf_counter() - start:5.1f}")
    with torch.no_grad():
        yaws = torch.cat([generator.scene(generator.mapping(generator.z_from_seed(s))).yaw.reshape(1)
                          for s in range(40)])
    print(f"seeds 0-39: {float((yaws.abs() > 0.8 * yaw_range).float().mean()):.1%} beyond 80% of the "
          f"±{yaw_range:.3f} rad yaw range")


if __name__ == "__main__":
    main()

"""How fast is each input encoding of the neural fields on this machine?

For "fourier" (5 octaves, the SDF's default), "triplane" and "hashgrid" (their
defaults), times on ``--points`` random points in the unit ball:

- ``encoding``: forward + backward of the encoding alone (gradients to its
  parameters and to the points);
- ``+ mlp``: the same through the SDF's residual MLP (3 hidden layers of 64);
- ``+ eikonal``: the SDF's value and spatial gradient with ``create_graph``,
  then backward of an Eikonal loss (the fit's second-order path).

Each is the median of ``--repeats`` runs after a warm-up, as wall-clock
time and as this process's CPU time (all threads; on a shared, busy machine
the CPU time with ``--threads 1`` is the steadier number).

    .venv/bin/python benchmarks/encodings_speed.py [--points 50000] [--threads 2]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from gan2x.fields.encodings import make_encoding, mlp

NAMES = ("fourier", "triplane", "hashgrid")


def _median_ms(step, repeats: int) -> tuple[float, float]:
    """Median (wall, CPU) milliseconds of one call of ``step``."""
    step()
    wall, cpu = [], []
    for _ in range(repeats):
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        step()
        wall.append(time.perf_counter() - start_wall)
        cpu.append(time.process_time() - start_cpu)
    return 1e3 * statistics.median(wall), 1e3 * statistics.median(cpu)


def _points(count: int, generator: torch.Generator) -> torch.Tensor:
    direction = torch.nn.functional.normalize(torch.randn(count, 3, generator=generator), dim=-1)
    return direction * torch.rand(count, 1, generator=generator) ** (1 / 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=50_000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(0)
    points = _points(args.points, generator)
    print(f"{args.points} points, {args.threads} threads, median of {args.repeats}: wall ms (CPU ms)")
    print(f"{'encoding':<10} {'dim':>4} {'params':>8} {'encoding':>16} {'+ mlp':>16} {'+ eikonal':>16}")
    for name in NAMES:
        options = {"num_frequencies": 5} if name == "fourier" else {}
        encoding = make_encoding(name, **options)
        head = mlp(encoding.output_dim, 64, 3, 1)
        modules = torch.nn.ModuleList([encoding, head])

        def encoding_only():
            modules.zero_grad(set_to_none=True)
            x = points.clone().requires_grad_(True)
            encoding(x).square().sum().backward()

        def with_mlp():
            modules.zero_grad(set_to_none=True)
            x = points.clone().requires_grad_(True)
            head(encoding(x)).sum().backward()

        def with_eikonal():
            modules.zero_grad(set_to_none=True)
            x = points.clone().requires_grad_(True)
            distance = head(encoding(x)).squeeze(-1)
            (gradient,) = torch.autograd.grad(distance.sum(), x, create_graph=True)
            ((gradient.norm(dim=-1) - 1.0) ** 2).mean().backward()

        parameters = sum(p.numel() for p in encoding.parameters())
        timings = [_median_ms(step, args.repeats) for step in (encoding_only, with_mlp, with_eikonal)]
        cells = " ".join(f"{f'{wall:.0f} ({cpu:.0f})':>16}" for wall, cpu in timings)
        print(f"{name:<10} {encoding.output_dim:>4} {parameters:>8} {cells}")


if __name__ == "__main__":
    main()

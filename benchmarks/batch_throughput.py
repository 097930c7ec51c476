"""Throughput of ``gan2x batch`` against the same fits one after another.

Three runs of the same small fits (``--seeds`` of ``--generator``, draft
with its steps scaled by ``--steps-scale``, so a fit takes seconds), each
in its own process, timed from outside:

1. **sequential**: one Python process that imports the pipeline and calls
   ``pipeline.reconstruct`` for each seed in turn (1 torch thread), as a
   script looping over ``gan2x fit`` would without paying the interpreter's
   start each time;
2. **batch, 1 worker**: ``gan2x batch --local-cpus 1`` (a local Ray
   instance with one CPU, one fit at a time);
3. **batch, 2 workers**: ``gan2x batch --local-cpus 2``.

Per run it prints the wall time (the whole command), the start-up (the
sequential process's imports; Ray's ``ray.init``, from summary.json), the
fits' seconds (each measured where it ran; a batch item's include its
worker's first imports of torch and the pipeline), the mean per fit (and,
for the batches, an item that found its worker warm against one that
started it), the scheduling overhead per task, ``(workers * (wall -
start-up) - sum of fit seconds) / fits``: worker time per item spent
neither starting up nor fitting (driver start, task dispatch, results,
idle at the end), and fits per minute.

    .venv/bin/python benchmarks/batch_throughput.py [--seeds 0-5] [--steps-scale 0.05]
                                                    [--mesh-resolution 32] [--texture-size 64] [--json out.json]

Figures and the command go to docs/scale.md ("Benchmark").
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def fit_settings(args) -> list[str]:
    return ["--preset", "draft", "--steps-scale", str(args.steps_scale), "--mesh-resolution",
            str(args.mesh_resolution), "--texture-size", str(args.texture_size)]


def sequential_child(args) -> None:
    """Run in a child process: the fits one after another; prints JSON."""
    started = time.perf_counter()
    import torch

    from gan2x.config import parse_seeds
    from gan2x.pipeline import build_request, reconstruct

    torch.set_num_threads(1)
    imports = time.perf_counter() - started
    settings = {"preset": "draft", "steps_scale": args.steps_scale, "mesh_resolution": args.mesh_resolution,
                "texture_size": args.texture_size, "generator": args.generator, "device": "cpu"}
    seconds = []
    for seed in parse_seeds(args.seeds):
        start = time.perf_counter()
        reconstruct(build_request({**settings, "seed": seed}), Path(args.out) / f"seed_{seed:06d}")
        seconds.append(time.perf_counter() - start)
    print(json.dumps({"start_s": imports, "fit_s": seconds}))


def run_sequential(args, out: Path) -> dict:
    command = [sys.executable, __file__, "--sequential-child", "--seeds", args.seeds, "--generator", args.generator,
               "--steps-scale", str(args.steps_scale), "--mesh-resolution", str(args.mesh_resolution),
               "--texture-size", str(args.texture_size), "--out", str(out)]
    started = time.perf_counter()
    result = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - started
    child = json.loads(result.stdout.strip().splitlines()[-1])
    return figures("sequential (one process)", 1, wall, child["start_s"], child["fit_s"])


def run_batch(args, out: Path, workers: int) -> dict:
    command = [sys.executable, "-m", "gan2x.cli", "batch", "--generator", args.generator, "--seeds", args.seeds,
               "--out", str(out), "--ray", "local", "--local-cpus", str(workers), "--cpus-per-fit", "1",
               *fit_settings(args)]
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - started
    summary = json.loads((out / "summary.json").read_text())
    items = summary["items"]
    assert all(item["state"] == "succeeded" for item in items), [item["error"] for item in items]
    row = figures(f"gan2x batch, {workers} worker{'s' if workers > 1 else ''}", workers, wall,
                  summary["ray"]["start_seconds"], [item["seconds"] for item in items])
    cold = [item["seconds"] for item in items if item["generator_cached"] is False]
    warm = [item["seconds"] for item in items if item["generator_cached"] is True]
    row["worker_processes"] = len({item["node"]["pid"] for item in items})
    row["cold_item_s"] = statistics.mean(cold) if cold else None
    row["warm_item_s"] = statistics.mean(warm) if warm else None
    row["driver_wall_s"] = summary["wall_seconds"]
    return row


def figures(label: str, workers: int, wall: float, start: float, fits: list[float]) -> dict:
    return {"run": label, "workers": workers, "fits": len(fits), "wall_s": wall, "start_s": start,
            "fit_s_total": sum(fits), "per_fit_s": statistics.mean(fits),
            "overhead_per_task_s": (workers * (wall - start) - sum(fits)) / len(fits),
            "fits_per_min": 60.0 * len(fits) / wall}


def print_table(rows: list[dict]) -> None:
    print("| run | wall s | start-up s | fits s (sum) | per fit s | warm / cold item s | overhead per task s "
          "| fits/min |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        warm_cold = "-"
        if row.get("warm_item_s") is not None or row.get("cold_item_s") is not None:
            warm_cold = " / ".join("-" if row.get(key) is None else f"{row[key]:.1f}"
                                   for key in ("warm_item_s", "cold_item_s"))
        print(f"| {row['run']} | {row['wall_s']:.1f} | {row['start_s']:.1f} | {row['fit_s_total']:.1f} "
              f"| {row['per_fit_s']:.1f} | {warm_cold} | {row['overhead_per_task_s']:.2f} "
              f"| {row['fits_per_min']:.1f} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="0-5")
    parser.add_argument("--generator", default="synthetic:faces")
    parser.add_argument("--steps-scale", type=float, default=0.05)
    parser.add_argument("--mesh-resolution", type=int, default=32)
    parser.add_argument("--texture-size", type=int, default=64)
    parser.add_argument("--json", default=None, help="write the figures here too")
    parser.add_argument("--out", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--sequential-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sequential_child:
        sequential_child(args)
        return 0
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with open("/proc/loadavg") as stream:
        load = stream.read().split()[0]
    print(f"{args.generator} seeds {args.seeds}, draft, steps x{args.steps_scale}, mesh {args.mesh_resolution}, "
          f"textures {args.texture_size}; {os.cpu_count()} cores, load average {load} at the start", flush=True)
    root = Path(tempfile.mkdtemp(prefix="gan2x-batch-bench-"))
    try:
        rows = [run_sequential(args, root / "sequential")]
        print_table(rows[-1:])
        for workers in (1, 2):
            rows.append(run_batch(args, root / f"batch{workers}", workers))
            print_table(rows[-1:])
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print()
    print_table(rows)
    with open("/proc/loadavg") as stream:
        print(f"load average {stream.read().split()[0]} at the end")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

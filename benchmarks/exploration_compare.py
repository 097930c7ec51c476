"""Projection vs style-mixing exploration (FitSettings.exploration) on the built-in faces.

For each exploration and seed: the ``full`` row of ``gan2x bench``
(``gan2x.bench.run.evaluate_sample``: the draft fit, refinement included,
and its ground-truth metrics; also the record before refinement), with the
fit's own seed (``FitSettings.seed``) as given and the time its exploration
took. Tuning seeds only: never pass held-out seeds (1000 and up).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/exploration_compare.py \\
        --modes projection,style_mixing --seeds 1,2,3,13,18 --fit-seed 1 --json out/exploration.json
"""
from __future__ import annotations

import argparse
import json
from dataclasses import replace

import torch

import gan2x.bench.run as run
from gan2x.generators import load_generator
from gan2x.pipeline import resolve_settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", default="projection,style_mixing")
    parser.add_argument("--seeds", default="1,2,3,13,18")
    parser.add_argument("--fit-seed", type=int, default=0, help="FitSettings.seed (default 0, as gan2x bench)")
    parser.add_argument("--preset", default="draft")
    parser.add_argument("--entanglement", type=float, default=0.15)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    if any(seed >= 1000 for seed in seeds):
        raise SystemExit("seeds from 1000 up are the benchmark's held-out seeds: compare on tuning seeds")
    torch.set_num_threads(args.threads)
    generator = load_generator("synthetic:faces", entanglement=args.entanglement)

    fit_target = run.fit_target
    last = {}

    def timed_fit(*positional, **keywords):   # evaluate_sample's fit, keeping its timings
        result = fit_target(*positional, **keywords)
        last["timings"] = result.timings
        return result

    run.fit_target = timed_fit
    records = []
    for mode in args.modes.split(","):
        settings = replace(resolve_settings(args.preset), seed=args.fit_seed, exploration=mode)
        for seed in seeds:
            for record in run.evaluate_sample(generator, seed, "full", settings, torch.device("cpu")):
                record.update(mode=mode, fit_seed=args.fit_seed, timings=last["timings"])
                records.append(record)
                print(f"{mode} {seed} {record['row']} MAD {record['mad_degrees']:.2f} "
                      f"SIDE {record['side_x100']:.3f} {record['seconds']:.0f}s "
                      f"exploration {last['timings']['exploration']:.1f}s", flush=True)
            if args.json:
                with open(args.json, "w") as handle:
                    json.dump(records, handle, indent=1)


if __name__ == "__main__":
    main()

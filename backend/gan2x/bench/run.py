"""``gan2x bench``: fits held-out samples of the built-in generator and reports
ground-truth metrics per category and method (METHOD.md section 5).

Rows (all on the same seeds, in one run):

* ``ellipsoid``: the prior, no fit (its materials and light are the
  initial ones, so only its shape rows say much);
* ``lambertian``: the fit with ks = 0 everywhere (GAN2Shape's shading model);
* ``full``: the fit of METHOD.md as implemented (Phong shading).

Seeds: 1-3 of each category were used while tuning the draft preset and
0-39 for the projection probe (``benchmarks/projection_probe.py``); the
benchmark draws from 1000 upwards, never used for tuning.
"""
from __future__ import annotations

import math
import statistics
import time
from dataclasses import replace
from typing import Callable

import torch

from ..fit.asset_model import AssetModel
from ..fit.image_state import ImageState
from ..fit.schedule import FitSettings, fit_target
from ..generators import load_generator
from . import metrics
from .evaluate import appearance_metrics, ground_truth_maps, material_metrics, shape_metrics

QUICK_SEEDS = (1000, 1001, 1002)
FULL_SEEDS = tuple(range(1000, 1010))
CATEGORIES = ("faces", "objects")
ROWS = ("ellipsoid", "lambertian", "full")

REPORTED = (
    ("side_x100", "SIDE x1e-2", "{:.3f}"),
    ("mad_degrees", "MAD deg", "{:.2f}"),
    ("albedo_error", "albedo err", "{:.4f}"),
    ("specular_error", "ks err", "{:.4f}"),
    ("shininess_log_error", "log n err", "{:.3f}"),
    ("relight_psnr_db", "relight dB", "{:.2f}"),
    ("novel_view_psnr_db", "novel view dB", "{:.2f}"),
    ("target_psnr_db", "target dB", "{:.2f}"),
    ("seconds", "s / fit", "{:.1f}"),
)


def evaluate_sample(generator, seed: int, row: str, settings: FitSettings, device) -> dict:
    """One seed, one row: fit (unless ``ellipsoid``) and every metric."""
    with torch.no_grad():
        ws = generator.mapping(generator.z_from_seed(seed).to(device))
        target = generator.synthesis(ws)[0]
    truth = ground_truth_maps(generator, ws)
    resolution = target.shape[-1]
    start = time.perf_counter()
    if row == "ellipsoid":
        model, state = AssetModel().to(device), ImageState(camera_fixed=True).to(device)
    else:
        shading = "lambertian" if row == "lambertian" else "phong"
        result = fit_target(generator, ws, target, replace(settings, shading=shading))
        model, state = result.model, result.target_state
    seconds = time.perf_counter() - start
    render = model.render_image(state, resolution, settings.sampling)
    target_rgb = ((target + 1) / 2).clamp(0, 1).permute(1, 2, 0)
    record = {"seed": seed, "row": row, "seconds": seconds,
              "target_psnr_db": metrics.masked_psnr(render["rgb"], target_rgb, metrics.erode(truth["mask"]))}
    record.update(shape_metrics(render, truth))
    record.update(material_metrics(render, truth))
    record.update(appearance_metrics(model, state, generator, ws, truth, settings.sampling))
    return record


def run_bench(categories, seeds, rows, settings: FitSettings, device,
              on_record: Callable[[str, dict], None] | None = None) -> dict:
    """Every (category, seed, row); returns ``{"records": {category: [...]},
    "summary": {category: {row: {metric: {"mean", "std"}}}}}``."""
    records: dict[str, list[dict]] = {}
    for category in categories:
        generator = load_generator(f"synthetic:{category}", device=device)
        records[category] = []
        for seed in seeds:
            for row in rows:
                record = evaluate_sample(generator, seed, row, settings, device)
                records[category].append(record)
                if on_record is not None:
                    on_record(category, record)
    return {"records": records, "summary": summarise(records, rows)}


def summarise(records: dict[str, list[dict]], rows) -> dict:
    summary: dict = {}
    for category, items in records.items():
        summary[category] = {}
        for row in rows:
            chosen = [item for item in items if item["row"] == row]
            summary[category][row] = {
                key: {"mean": statistics.fmean(item[key] for item in chosen),
                      "std": statistics.pstdev(item[key] for item in chosen)}
                for key, _, _ in REPORTED if chosen and all(math.isfinite(item[key]) for item in chosen)}
    return summary


def markdown_table(summary: dict, seeds) -> str:
    """Mean ± spread (population standard deviation) over ``seeds``."""
    header = "| category | method | " + " | ".join(label for _, label, _ in REPORTED) + " |"
    lines = [header, "|" + " --- |" * 2 + " ---: |" * len(REPORTED)]
    for category, rows in summary.items():
        for row, values in rows.items():
            cells = []
            for key, _, number in REPORTED:
                if key in values:
                    cells.append(f"{number.format(values[key]['mean'])} ± {number.format(values[key]['std'])}")
                else:
                    cells.append("n/a")
            lines.append(f"| {category} | {row} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"Seeds {', '.join(str(s) for s in seeds)}; mean ± standard deviation over seeds.")
    return "\n".join(lines)

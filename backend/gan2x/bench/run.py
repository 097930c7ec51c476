"""``gan2x bench``: fits held-out samples of the built-in generator and reports
ground-truth metrics per category and method (METHOD.md section 5); with
``--generator``, any other generator, without ground truth.

Rows (all on the same seeds, in one run):

* ``ellipsoid``: the prior, no fit (its materials and light are the
  initial ones, so only its shape rows say much);
* ``lambertian``: the fit with ks = 0 everywhere (GAN2Shape's shading model);
* ``no_refinement``: the full fit read off before its refinement step (the
  same run as ``full``, so it costs nothing extra);
* ``full``: the fit of METHOD.md as implemented (Phong shading, refinement);
* ``baseline`` (opt-in): ``full`` as it was before the fidelity changes
  (``BASELINE_OVERRIDES``: no density ceiling, every pseudo sample weighing
  1) and exported without the target image baked into the albedo.

Every record also measures the exported asset (``pipeline.build_exported_asset``
at ``ExportSettings``' sizes, ``pipeline.AssetViews``): ``asset_psnr_db`` and
``asset_ssim`` (its render over the fitted background against the target,
whole image), ``region_psnr_db``, ``region_coverage`` and ``mask_coverage``
(docs/benchmark.md, "Fidelity"); novel-view GAN consistency renders the
asset too.

Seeds: 1-3 of each category were used while tuning the draft preset and
0-39 for the projection probe (``benchmarks/projection_probe.py``); the
benchmark draws from 1000 upwards, never used for tuning.

Other generators (``run_generator_bench``, ``gan2x bench --generator SPEC``)
have no ground truth: their records hold ``target_psnr_db``, taken over the
whole image (the fit's render, background included, against the
generator's image, as ``gan2x fit``'s ``rerender_psnr_db``), and
``seconds``; the ground-truth metrics are absent, not zero.

Every generator's records (ground truth or not) also hold the metrics that
need none (``evaluation/consistency.py``, docs/benchmark.md "Metrics without
ground truth"): ``target_ssim`` (whole image), projection reach
(``projection_fidelity_psnr_db``, ``projection_target_psnr_db`` and their
per-sample lists; fitted rows only) and novel-view GAN consistency
(``novel_view_consistency_psnr_db``, with ``consistency_seconds``, its cost,
which is not fit time).
"""
from __future__ import annotations

import math
import statistics
import time
from dataclasses import replace
from typing import Callable

import torch

from ..conventions import unit_rgb_from_generator
from ..evaluation.consistency import CONSISTENCY, ConsistencySettings, novel_view_consistency, projection_reach
from ..fit.asset_model import AssetModel
from ..fit.image_state import ImageState
from ..fit.schedule import FitSettings, fit_target
from ..generators import load_generator
from ..measure import metrics
from ..measure.ground_truth import ground_truth_maps, ground_truth_metrics
from ..pipeline import AssetViews, ExportSettings, build_exported_asset, bundle_camera_and_light
from .figure import sample_panels

QUICK_SEEDS = (1000, 1001, 1002)
FULL_SEEDS = tuple(range(1000, 1010))
CATEGORIES = ("faces", "objects", "detailed")
"""The categories ``--categories`` accepts."""
DEFAULT_CATEGORIES = ("faces", "objects")
"""The categories a bench runs without ``--categories``: ``detailed`` is
opt-in (``--categories faces,objects,detailed``), so the published tables
stay comparable and the default bench costs what it did (its generator
renders ~5x slower than ``faces``: docs/benchmark.md)."""
ROWS = ("ellipsoid", "lambertian", "full")
"""The default rows; ``full`` also yields ``no_refinement``. ``full:ENCODING``
(e.g. ``full:triplane``, ``full:hashgrid``) is the full fit with another
field encoding (``FitSettings.encoding``)."""
KNOWN_ROWS = ROWS + ("full:fourier", "full:triplane", "full:hashgrid", "baseline")
REPORTED_ROWS = ("ellipsoid", "baseline", "lambertian", "no_refinement", "full", "full:fourier", "full:triplane",
                 "full:hashgrid")
BASELINE_OVERRIDES = {"max_beta_metres": None, "reach_margin_db": None}
"""The ``baseline`` row's fit settings: the fit before the fidelity changes."""
from ..config import ENTANGLEMENT  # noqa: E402

DEFAULT_ENTANGLEMENT = ENTANGLEMENT.default
"""The built-in generator's identity drift with view and light in the
benchmark (``SyntheticGenerator``'s ``entanglement``, ``gan2x.config.ENTANGLEMENT``):
a one-sigma view or light change moves each identity parameter by this many sigma."""

REPORTED = (
    ("side_x100", "SIDE x1e-2", "{:.3f}"),
    ("mad_degrees", "MAD deg", "{:.2f}"),
    ("detail_normal_mad_degrees", "detail MAD deg", "{:.2f}"),
    ("true_detail_normal_degrees", "true detail deg", "{:.2f}"),
    ("albedo_error", "albedo err", "{:.4f}"),
    ("albedo_psnr_db", "albedo dB", "{:.2f}"),
    ("asset_albedo_psnr_db", "asset albedo dB", "{:.2f}"),
    ("asset_detail_normal_mad_degrees", "asset detail MAD deg", "{:.2f}"),
    ("specular_error", "ks err", "{:.4f}"),
    ("shininess_log_error", "log n err", "{:.3f}"),
    ("relight_psnr_db", "relight dB", "{:.2f}"),
    ("novel_view_psnr_db", "novel view dB", "{:.2f}"),
    ("target_psnr_db", "target dB", "{:.2f}"),
    ("target_ssim", "SSIM", "{:.3f}"),  # the fields' render
    ("asset_psnr_db", "asset dB", "{:.2f}"),  # = gan2x fit's rerender_psnr_db
    ("asset_ssim", "asset SSIM", "{:.3f}"),  # = gan2x fit's rerender_ssim
    ("region_psnr_db", "region dB", "{:.2f}"),
    ("region_coverage", "region cover", "{:.3f}"),
    ("projection_fidelity_psnr_db", "reach vs render dB", "{:.2f}"),
    ("projection_target_psnr_db", "reach vs target dB", "{:.2f}"),
    ("novel_view_consistency_psnr_db", "GAN consistency dB", "{:.2f}"),
    ("seconds", "s / fit", "{:.1f}"),
)


def evaluate_sample(generator, seed: int, row: str, settings: FitSettings, device,
                    figure_rows: list | None = None,
                    consistency: ConsistencySettings | None = CONSISTENCY) -> list[dict]:
    """One seed, one row: fit (unless ``ellipsoid``) and every metric. The
    ``full`` row gives two records, ``no_refinement`` first, and appends its
    figure row (``figure.sample_panels``) to ``figure_rows`` when given.
    A generator without ground truth gives ``target_psnr_db`` over the whole
    image, ``seconds`` and the metrics that need no ground truth only (and
    no figure row). Those, for every generator: ``target_ssim``; projection
    reach of the fit's last stage (not for ``ellipsoid``, which has no fit;
    ``no_refinement`` shares its run's); novel-view GAN consistency with
    ``consistency`` (None leaves it out) and its cost ``consistency_seconds``."""
    with torch.no_grad():
        ws = generator.mapping(generator.z_from_seed(seed).to(device))
        target = generator.synthesis(ws)[0]
    truth = ground_truth_maps(generator, ws)
    resolution = target.shape[-1]
    records = []

    def record(name: str, model, state, seconds: float):
        render = model.render_image(state, resolution, settings.sampling)
        target_rgb = unit_rgb_from_generator(target)
        compared = metrics.erode(truth["mask"]) if truth is not None else torch.ones(resolution, resolution)
        values = {"seed": seed, "row": name, "seconds": seconds,
                  "target_psnr_db": metrics.masked_psnr(render["rgb"], target_rgb, compared),
                  "target_ssim": metrics.ssim(render["rgb"], target_rgb)}
        views = exported_views(model, state, target_rgb, render["opacity"] if name != "baseline" else None)
        asset_render = views.render(state)["rgb"]
        values.update({"asset_psnr_db": metrics.psnr(asset_render, target_rgb.cpu()),
                       "asset_ssim": metrics.ssim(asset_render, target_rgb.cpu())})
        values.update(views.region_metrics(state, target_rgb))
        if consistency is not None:
            check = novel_view_consistency(generator, ws, model, state, resolution, settings.sampling,
                                           seed=settings.seed, settings=consistency,
                                           render_view=lambda view: views.render(view)["rgb"].to(target.device))
            values.update(check.to_metrics())
            values["consistency_seconds"] = check.seconds
        if truth is not None:
            values.update(ground_truth_metrics(render, model, state, generator, ws, truth, settings.sampling))
            values.update(views.material_metrics(truth))
        records.append(values)

    start = time.perf_counter()
    if row == "ellipsoid":
        # The prior's initial weights from settings.seed, as fit_target draws a fit's: the same row in every
        # process (from torch's global generator, whose state differs between processes, it moved).
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(settings.seed)
            prior = AssetModel()
        record(row, prior.to(device), ImageState(camera_fixed=True).to(device), 0.0)
        return records
    shading = "lambertian" if row == "lambertian" else "phong"
    encoding = row.split(":", 1)[1] if ":" in row else settings.encoding
    row_settings = replace(settings, shading=shading, encoding=encoding,
                           **(BASELINE_OVERRIDES if row == "baseline" else {}))

    def record_before_refinement(model, state):
        nonlocal start
        paused = time.perf_counter()
        record("no_refinement", model, state, paused - start)
        start += time.perf_counter() - paused  # evaluation time is not fit time

    refines = row == "full" and settings.refinement_steps > 0
    result = fit_target(generator, ws, target, row_settings,
                        before_refinement=record_before_refinement if refines else None)
    record(row, result.model, result.target_state, time.perf_counter() - start)
    reach = projection_reach(result, target)  # the last stage's: the same before and after refinement
    for values in records:
        values.update(reach)
    if figure_rows is not None and row == "full" and truth is not None:  # one row per sample, default encoding
        figure_rows.append((f"{generator.spec} {seed}",
                            sample_panels(result.model, result.target_state, generator, ws, truth, target,
                                          settings.sampling)))
    return records


def exported_views(model, state, target_rgb: torch.Tensor, mask: torch.Tensor | None) -> AssetViews:
    """The model exported as ``gan2x fit`` exports it (``ExportSettings``'
    defaults), with the target ``target_rgb`` [R, R, 3] baked into the albedo
    where ``mask`` (the fields' opacity) is sure (None: no image bake)."""
    camera, light = bundle_camera_and_light(state, target_rgb.shape[0])
    return AssetViews(build_exported_asset(model, target_rgb, mask, ExportSettings(), camera, light), camera)


def run_bench(categories, seeds, rows, settings: FitSettings, device,
              on_record: Callable[[str, dict], None] | None = None,
              entanglement: float = DEFAULT_ENTANGLEMENT, figure_seeds: int = 0,
              highlight_scale: float = 1.0, consistency: ConsistencySettings | None = CONSISTENCY) -> dict:
    """Every (category, seed, row); returns ``{"records": {category: [...]},
    "summary": {category: {row: {metric: {"mean", "std"}}}}, "figure_rows":
    [(label, panels)]}`` (figure rows of the first ``figure_seeds`` seeds of
    each category, from the ``full`` row; not JSON). ``consistency``: the
    novel-view consistency metric's settings (None leaves it out)."""
    loaders = {category: lambda category=category: load_generator(f"synthetic:{category}", device=device,
                                                                  entanglement=entanglement,
                                                                  highlight_scale=highlight_scale)
               for category in categories}
    return _run(loaders, seeds, rows, settings, device, on_record, figure_seeds, consistency)


def run_generator_bench(spec: str, seeds, rows, settings: FitSettings, device,
                        on_record: Callable[[str, dict], None] | None = None,
                        consistency: ConsistencySettings | None = CONSISTENCY) -> dict:
    """``run_bench`` for any generator spec (``load_generator``), e.g. a
    StyleGAN2 checkpoint: every (seed, row), keyed by ``spec`` where
    ``run_bench`` has categories. Without ground truth, records and summary
    hold ``target_psnr_db`` (whole image), ``seconds`` and the metrics that
    need no ground truth only."""
    return _run({spec: lambda: load_generator(spec, device=device)}, seeds, rows, settings, device, on_record, 0,
                consistency)


def _run(loaders: dict[str, Callable], seeds, rows, settings: FitSettings, device,
         on_record: Callable[[str, dict], None] | None, figure_seeds: int,
         consistency: ConsistencySettings | None = CONSISTENCY) -> dict:
    """Every (label, seed, row), loading each label's generator when its turn comes."""
    records: dict[str, list[dict]] = {}
    figure_rows: list = []
    for label, load in loaders.items():
        generator = load()
        records[label] = []
        for index, seed in enumerate(seeds):
            for row in rows:
                chosen = figure_rows if index < figure_seeds else None
                for record in evaluate_sample(generator, seed, row, settings, device, chosen, consistency):
                    records[label].append(record)
                    if on_record is not None:
                        on_record(label, record)
    reported = [r for r in REPORTED_ROWS if r in rows or (r == "no_refinement" and "full" in rows)]
    return {"records": records, "figure_rows": figure_rows, "summary": summarise(records, reported)}


def summarise(records: dict[str, list[dict]], rows) -> dict:
    summary: dict = {}
    for category, items in records.items():
        summary[category] = {}
        for row in rows:
            chosen = [item for item in items if item["row"] == row]
            if not chosen:
                continue
            summary[category][row] = {
                key: {"mean": statistics.fmean(item[key] for item in chosen),
                      "std": statistics.pstdev(item[key] for item in chosen)}
                for key, _, _ in REPORTED if all(key in item and math.isfinite(item[key]) for item in chosen)}
    return summary


def markdown_table(summary: dict, seeds, first_column: str = "category", note: str = "") -> str:
    """Mean ± spread (population standard deviation) over ``seeds``; a metric
    a row lacks (no ground truth, or not finite) shows as "n/a". ``note``
    ends the text after the seeds line."""
    header = f"| {first_column} | method | " + " | ".join(label for _, label, _ in REPORTED) + " |"
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
    if note:
        lines.append(note)
    return "\n".join(lines)

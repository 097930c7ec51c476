"""Metrics that need no ground truth (evaluation/consistency.py, measure/metrics.ssim)
and the report picture of every fit (export/report.py, images/report.png)."""
from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from gan2x.evaluation.consistency import (CONSISTENCY, ConsistencySettings, novel_view_consistency, projection_reach,
                                          scaled_consistency_settings)
from gan2x.export.bundle import validate_bundle
from gan2x.export.report import MIN_PANEL_PX, Panel, Section, compose_report
from gan2x.fit.schedule import PRESETS, fit_target
from gan2x.generators import load_generator
from gan2x.measure import metrics
from gan2x.render.volume import SamplingSettings

RESOLUTION = 24
SAMPLING = SamplingSettings(coarse_samples=24, fine_samples=8, coarse_grid=24)
TINY_FIT = dict(stages=1, target_steps=4, projection_steps=2, exploitation_steps=4, pseudo_samples=2,
                rays_per_image=64, refinement_steps=0)
TINY_CONSISTENCY = ConsistencySettings(steps=3)


def _tiny_sample(seed: int = 1):
    generator = load_generator("synthetic:faces", resolution=RESOLUTION, supersample=1)
    with torch.no_grad():
        ws = generator.mapping(generator.z_from_seed(seed))
        target = generator.synthesis(ws)[0]
    return generator, ws, target


@pytest.fixture(scope="module")
def tiny_fit():
    generator, ws, target = _tiny_sample()
    settings = replace(PRESETS["draft"], sampling=SAMPLING, **TINY_FIT)
    return generator, ws, target, fit_target(generator, ws, target, settings)


def test_ssim_is_one_for_identical_images_and_drops_with_noise():
    image = np.random.default_rng(0).random((32, 32, 3))
    assert metrics.ssim(image, image) == pytest.approx(1.0)
    noisy = np.clip(image + np.random.default_rng(1).normal(0.0, 0.1, image.shape), 0.0, 1.0)
    noisier = np.clip(image + np.random.default_rng(1).normal(0.0, 0.3, image.shape), 0.0, 1.0)
    assert metrics.ssim(image, noisier) < metrics.ssim(image, noisy) < 0.99
    assert metrics.ssim(torch.from_numpy(image), torch.from_numpy(noisy)) == pytest.approx(metrics.ssim(image, noisy))
    with pytest.raises(ValueError, match="one shape"):
        metrics.ssim(image, image[:16])
    assert math.isnan(metrics.ssim(image[:6, :6], image[:6, :6]))  # smaller than the 7-pixel window
    assert metrics.psnr(image, image) == math.inf
    assert metrics.psnr(image, noisy) == pytest.approx(metrics.masked_psnr(image, noisy, np.ones((32, 32))))


def test_the_fit_keeps_its_last_stage_renders_and_their_yaws(tiny_fit):
    _, _, _, result = tiny_fit
    assert result.pseudo_images.shape == result.projected_images.shape == (2, 3, RESOLUTION, RESOLUTION)
    assert result.pseudo_images.min() >= -1.0 and result.pseudo_images.max() <= 1.0
    assert len(result.pseudo_yaws_degrees) == 2
    assert all(abs(yaw) <= PRESETS["draft"].max_yaw_degrees for yaw in result.pseudo_yaws_degrees)


def test_projection_reach_keys_are_finite_and_deterministic(tiny_fit):
    _, _, target, result = tiny_fit
    reach = projection_reach(result, target)
    assert set(reach) == {"projection_fidelity_psnr_db", "projection_fidelity_psnr_db_each",
                          "projection_target_psnr_db", "projection_target_psnr_db_each", "projection_yaws_degrees"}
    assert len(reach["projection_fidelity_psnr_db_each"]) == len(reach["projection_target_psnr_db_each"]) == 2
    assert all(math.isfinite(v) and v > 0 for v in reach["projection_fidelity_psnr_db_each"]
               + reach["projection_target_psnr_db_each"])
    assert reach["projection_target_psnr_db"] == pytest.approx(np.mean(reach["projection_target_psnr_db_each"]))
    assert projection_reach(result, target) == reach


def test_novel_view_consistency_is_finite_deterministic_and_leaves_the_global_rng_alone(tiny_fit):
    generator, ws, _, result = tiny_fit
    runs = []
    for global_seed in (1, 2):  # a different global state each time: the figure must not depend on it
        torch.manual_seed(global_seed)
        before = torch.get_rng_state()
        runs.append(novel_view_consistency(generator, ws, result.model, result.target_state, RESOLUTION,
                                           SAMPLING, seed=0, settings=TINY_CONSISTENCY))
        assert torch.equal(torch.get_rng_state(), before)
    first, second = runs
    assert first.yaws_degrees == [-30.0, -15.0, 15.0, 30.0] == list(CONSISTENCY.yaws_degrees)
    assert first.renders.shape == first.projections.shape == (4, RESOLUTION, RESOLUTION, 3)
    assert all(math.isfinite(v) and v > 0 for v in first.psnr_db)
    assert first.psnr_db == second.psnr_db and torch.equal(first.projections, second.projections)
    values = first.to_metrics()
    assert values["novel_view_consistency_psnr_db"] == pytest.approx(np.mean(first.psnr_db))
    assert values["novel_view_consistency_psnr_db_each"] == first.psnr_db
    assert first.seconds > 0.0
    # the renders differ from view to view: the camera turns
    assert (first.renders[0] - first.renders[-1]).abs().max() > 0.01
    assert scaled_consistency_settings(0.01).steps == 2 and scaled_consistency_settings(1.0) == CONSISTENCY


def test_style_mixing_has_no_rendered_pseudo_samples_so_no_fidelity_figure():
    generator, ws, target = _tiny_sample()
    settings = replace(PRESETS["draft"], sampling=SAMPLING, exploration="style_mixing", **TINY_FIT)
    result = fit_target(generator, ws, target, settings)
    assert result.pseudo_images is None and len(result.pseudo_yaws_degrees) == 2
    reach = projection_reach(result, target)
    assert "projection_fidelity_psnr_db" not in reach and len(reach["projection_target_psnr_db_each"]) == 2


def test_compose_report_enlarges_small_panels_and_labels_them():
    small = np.zeros((16, 16, 3))
    small[:8] = 1.0
    picture = compose_report([Section("first", [[Panel(small, "a\nb"), Panel(small, "c")]]),
                              Section("second", [[Panel(small, "x")] * 9, [Panel(small, "y")] * 9])],
                             title="title")
    assert picture.dtype == np.uint8 and picture.ndim == 3 and picture.shape[2] == 3
    assert picture.shape[0] > 3 * MIN_PANEL_PX  # the wide section wrapped onto further rows
    assert (picture == 0).any() and (picture == 255).any()
    with pytest.raises(ValueError, match="report panel"):
        compose_report([Section("bad", [[Panel(np.zeros((4, 4, 2)))]])])


def test_reconstruct_writes_a_report_named_in_the_manifest(tmp_path):
    from gan2x.pipeline import ExportSettings, ReconstructionRequest, reconstruct

    request = ReconstructionRequest(generator="synthetic:faces", seed=1, fit_overrides=TINY_FIT,
                                    export=ExportSettings(mesh_resolution=24, texture_size=32),
                                    generator_options={"resolution": RESOLUTION, "supersample": 1},
                                    consistency_overrides={"steps": 2})
    result = reconstruct(request, tmp_path / "bundle")
    manifest = validate_bundle(result.bundle)
    assert manifest["images"]["report"] == "images/report.png"
    assert result.report == result.bundle / "images" / "report.png"
    with Image.open(result.report) as image:
        assert image.mode == "RGB" and min(image.size) >= MIN_PANEL_PX
    provenance = manifest["provenance"]
    for key in ("rerender_psnr_db", "rerender_ssim", "projection_fidelity_psnr_db", "projection_target_psnr_db",
                "novel_view_consistency_psnr_db"):
        assert math.isfinite(provenance["metrics"][key]), key
    assert len(provenance["metrics"]["projection_yaws_degrees"]) == 2
    assert provenance["metrics"]["novel_view_consistency_settings"]["steps"] == 2
    assert provenance["timings"]["consistency"] > 0.0 and "report" in provenance["timings"]
    json.dumps(result.metrics)  # the service stores them as JSON


def test_the_fit_command_prints_the_report_after_the_bundle(tmp_path, capsys):
    from gan2x.cli import main

    with pytest.raises(SystemExit) as done:
        main(["fit", "--help"])
    assert done.value.code == 0 and "--steps-scale" in capsys.readouterr().out
    with pytest.raises(SystemExit) as done:
        main(["bench", "--help"])
    assert done.value.code == 0 and "--consistency-steps" in capsys.readouterr().out
    assert main(["fit", "--seed", "1", "--steps-scale", "0.01", "--mesh-resolution", "32", "--texture-size", "64",
                 "--device", "cpu", "--out", str(tmp_path / "bundle")]) == 0
    lines = capsys.readouterr().out.splitlines()
    bundle_line = next(i for i, line in enumerate(lines) if line.startswith("bundle: "))
    assert lines[bundle_line + 1] == f"report: {tmp_path / 'bundle' / 'images' / 'report.png'}"
    text = "\n".join(lines)
    assert "SSIM" in text and "projection reach" in text and "novel-view GAN consistency" in text


def test_a_photo_report_shows_the_inversion_above_the_novel_views(tiny_fit):
    from gan2x.pipeline import InvertedImages, fit_report

    generator, ws, target, result = tiny_fit
    settings = replace(PRESETS["draft"], sampling=SAMPLING, **TINY_FIT)
    rerender = result.model.render_image(result.target_state, RESOLUTION, SAMPLING)
    target_rgb = ((target + 1) / 2).clamp(0, 1).permute(1, 2, 0)
    figures = dict(rerender_psnr_db=20.0, rerender_ssim=0.5, **projection_reach(result, target))
    consistency = novel_view_consistency(generator, ws, result.model, result.target_state, RESOLUTION, SAMPLING,
                                         settings=TINY_CONSISTENCY)
    sample_report = fit_report(result, target_rgb, rerender, figures, consistency, settings, RESOLUTION)
    black = -torch.ones_like(target)          # an inversion image no other panel holds
    inverted = InvertedImages(image=black, latent_image=black, psnr_db=12.0, latent_psnr_db=11.0, latent="W")
    photo_report = fit_report(result, target_rgb, rerender, figures, consistency, settings, RESOLUTION,
                              inverted=inverted)
    assert photo_report.shape[1] == sample_report.shape[1] and photo_report.shape[0] > sample_report.shape[0]
    # the report gains the two (black) inversion panels, enlarged: columns with a panel's height of black pixels
    def black_columns(report):
        return int(((report == 0).all(axis=2).sum(axis=0) >= MIN_PANEL_PX).sum())

    assert black_columns(photo_report) >= black_columns(sample_report) + 2 * MIN_PANEL_PX

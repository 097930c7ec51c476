"""One reconstruction, end to end: generator sample -> fit -> metrics -> bundle.

This is what ``gan2x fit`` runs (and, later, the service's worker)."""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from . import __version__, conventions
from .bench import metrics
from .bench.evaluate import ground_truth_maps, ground_truth_metrics, shape_metrics
from .export.bundle import CameraSpec, LightSpec
from .export.pipeline import export_bundle as write_asset_bundle
from .fit.asset_model import AssetModel
from .fit.image_state import ImageState
from .fit.schedule import PRESETS, FitResult, FitSettings, ProgressCallback, SnapshotCallback, fit_target
from .generators import load_generator


@dataclass
class ExportSettings:
    mesh_resolution: int = 192
    """Marching-cubes grid cells a side over the bounding cube."""
    texture_size: int = 1024


@dataclass
class ReconstructionRequest:
    generator: str = "synthetic"
    seed: int = 0
    truncation: float = 1.0
    preset: str = "draft"
    device: str = "cpu"
    fit_overrides: dict = field(default_factory=dict)
    export: ExportSettings = field(default_factory=ExportSettings)


@dataclass
class Reconstruction:
    bundle: Path
    metrics: dict
    timings: dict
    fit: FitResult


def resolve_settings(preset: str, overrides: dict | None = None) -> FitSettings:
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    return replace(PRESETS[preset], **(overrides or {}))


SCALED_STEP_FIELDS = ("target_steps", "projection_steps", "exploitation_steps", "refinement_steps")


def scaled_step_overrides(preset: str, steps_scale: float) -> dict:
    """Overrides that multiply each step count of ``preset`` by ``steps_scale``
    (at least one step each, and a step count of 0, a part turned off, stays
    0); stages, samples and rays are left as they are."""
    base = resolve_settings(preset)
    return {name: max(1, round(getattr(base, name) * steps_scale)) if getattr(base, name) > 0 else 0
            for name in SCALED_STEP_FIELDS if hasattr(base, name)}


def reconstruct(request: ReconstructionRequest, out_dir: Path,
                progress: ProgressCallback | None = None,
                log: Callable[[str], None] = print,
                snapshot: SnapshotCallback | None = None) -> Reconstruction:
    """Fit one sample of ``request.generator`` and write its bundle to ``out_dir``.

    ``progress`` and ``snapshot`` are passed to ``fit_target`` (see
    ``gan2x.fit.schedule``): called after every fit step."""
    device = torch.device(request.device)
    settings = resolve_settings(request.preset, request.fit_overrides)
    timings: dict[str, float] = {}
    started = time.perf_counter()

    generator = load_generator(request.generator, device=device)
    with torch.no_grad():
        z = generator.z_from_seed(request.seed).to(device)
        target_ws = generator.mapping(z, truncation_psi=request.truncation)
        target_image = generator.synthesis(target_ws)[0]
    timings["generator"] = time.perf_counter() - started

    # The ellipsoid prior, before any fitting, for comparison.
    resolution = target_image.shape[-1]
    ground_truth = ground_truth_maps(generator, target_ws)
    prior_metrics = None
    if ground_truth is not None:
        prior_render = AssetModel().to(device).render_image(ImageState(camera_fixed=True).to(device),
                                                            resolution, settings.sampling)
        prior_metrics = shape_metrics(prior_render, ground_truth)

    result = fit_target(generator, target_ws, target_image, settings, progress=progress, snapshot=snapshot)
    timings.update(result.timings)

    start = time.perf_counter()
    rerender = result.model.render_image(result.target_state, resolution, settings.sampling)
    target_rgb = ((target_image + 1) / 2).clamp(0, 1).permute(1, 2, 0)
    fit_metrics = {
        "rerender_psnr_db": metrics.masked_psnr(rerender["rgb"], target_rgb, torch.ones(resolution, resolution)),
    }
    if ground_truth is not None:
        fit_metrics.update(ground_truth_metrics(rerender, result.model, result.target_state, generator, target_ws,
                                                ground_truth, settings.sampling))
        fit_metrics["ellipsoid_prior"] = prior_metrics
    timings["evaluation"] = time.perf_counter() - start

    start = time.perf_counter()
    bundle = export_bundle(result, target_rgb, rerender, request, settings, out_dir,
                           fit_metrics, timings, target_ws)
    timings["export"] = time.perf_counter() - start
    timings["total"] = time.perf_counter() - started
    return Reconstruction(bundle=bundle, metrics=fit_metrics, timings=timings, fit=result)


def export_bundle(result: FitResult, target_rgb: torch.Tensor, rerender: dict, request: ReconstructionRequest,
                  settings: FitSettings, out_dir: Path, fit_metrics: dict, timings: dict,
                  target_ws: torch.Tensor) -> Path:
    """Mesh, UVs, baked textures, camera and light of the target -> bundle at ``out_dir``."""
    model = result.model
    device = next(model.parameters()).device

    def sdf(points: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model.sdf(torch.from_numpy(points).to(device, torch.float32)).cpu().numpy()

    def materials(points: np.ndarray) -> dict[str, np.ndarray]:
        with torch.no_grad():
            values = model.materials(torch.from_numpy(points).to(device, torch.float32))
        return {key: value.cpu().numpy() for key, value in values.items()}

    state = result.target_state
    resolution = target_rgb.shape[0]
    camera = CameraSpec(image_width=resolution, image_height=resolution,
                        fov_y_degrees=conventions.FOV_DEGREES,
                        world_from_camera=state.world_from_camera().detach().cpu().numpy().astype(np.float64))
    light = LightSpec(towards_light=state.towards_light().detach().cpu().numpy().astype(np.float64),
                      diffuse_strength=float(state.diffuse().detach()), ambient_strength=float(state.ambient().detach()))
    provenance = {
        "generator": request.generator,
        "seed": request.seed,
        "truncation": request.truncation,
        "preset": request.preset,
        "settings": settings.to_dict(),
        "export": {"mesh_resolution": request.export.mesh_resolution,
                   "texture_size": request.export.texture_size},
        "metrics": _json_safe(fit_metrics),
        "timings": {key: round(value, 3) for key, value in timings.items()},
        "gan2x_version": __version__,
    }
    return write_asset_bundle(Path(out_dir), sdf=sdf, materials=materials, camera=camera, light=light,
                              target_image=target_rgb.cpu().numpy(),
                              rerender_image=rerender["rgb"].cpu().numpy(),
                              mask=rerender["opacity"].cpu().numpy(), provenance=provenance,
                              latent=target_ws.cpu().numpy(), resolution=request.export.mesh_resolution,
                              texture_size=request.export.texture_size)


def _json_safe(value):
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value

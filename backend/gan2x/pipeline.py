"""One reconstruction, end to end: generator sample -> fit -> metrics -> bundle.

This is what ``gan2x fit`` runs (and the service's worker). ``reconstruct``
fits a generator sample; ``reconstruct_image`` a photo: crop, invert into
the generator's latent space (``gan2x.invert``), then the same fit."""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from . import __version__, conventions
from .conventions import unit_rgb_from_generator
from .evaluation.consistency import (CONSISTENCY, ConsistencyResult, novel_view_consistency, projection_reach,
                                     scaled_consistency_settings)
from .export.asset import BuiltAsset, ImageBakeInput, build_asset, write_built_asset
from .export.mesh_render import composite_srgb, render_asset, surface_maps
from .export.bundle import CameraSpec, LightSpec
from .export.report import Panel, Section, compose_report
from .fit.asset_model import AssetModel
from .fit.image_state import ImageState, pixel_grid_xy, pseudo_state
from .fit.schedule import PRESETS, FitResult, FitSettings, ProgressCallback, SnapshotCallback, fit_target
from .generators import load_generator
from .invert import CropSettings, InversionSettings, crop_for_generator, invert_image, load_photo
from .measure import metrics
from .measure.ground_truth import ground_truth_maps, ground_truth_metrics, shape_metrics
from .measure.regions import ellipsoid_silhouette


from collections.abc import Mapping  # noqa: E402

from . import config as request_config  # noqa: E402  (the request-level ranges and defaults; no torch)


@dataclass
class ExportSettings:
    mesh_resolution: int = request_config.MESH_RESOLUTION.default
    """Marching-cubes grid cells a side over the bounding cube."""
    texture_size: int = request_config.TEXTURE_SIZE.default


@dataclass
class ReconstructionRequest:
    generator: str = request_config.DEFAULT_GENERATOR
    seed: int = request_config.SEED.default
    truncation: float = request_config.TRUNCATION.default
    preset: str = request_config.PRESET.default
    device: str = "cpu"
    fit_overrides: dict = field(default_factory=dict)
    export: ExportSettings = field(default_factory=ExportSettings)
    crop: CropSettings = field(default_factory=CropSettings)
    """Photos only: how the photo is cut to the generator's framing."""
    inversion_overrides: dict = field(default_factory=dict)
    """Photos only: overrides of ``InversionSettings``."""
    generator_options: dict = field(default_factory=dict)
    """Passed to ``load_generator`` (e.g. ``{"resolution": 128}`` for the
    built-in generator)."""
    consistency_overrides: dict = field(default_factory=dict)
    """Overrides of the novel-view consistency metric's settings
    (``evaluation.consistency.ConsistencySettings``, e.g. ``{"steps": 20}``);
    ``scaled_consistency_overrides`` scales its steps with the fit's."""


@dataclass
class Reconstruction:
    bundle: Path
    metrics: dict
    timings: dict
    fit: FitResult
    report: Path | None = None
    """The bundle's report picture (images/report.png)."""


RELIT_LIGHT_TURN_DEGREES = 60.0
"""The report's relit view: the target's light turned this far about the
vertical (world +Y) axis, towards the camera's right."""


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
                snapshot: SnapshotCallback | None = None, generator: torch.nn.Module | None = None) -> Reconstruction:
    """Fit one sample of ``request.generator`` and write its bundle to ``out_dir``.

    ``progress`` and ``snapshot`` are passed to ``fit_target`` (see
    ``gan2x.fit.schedule``): called after every fit step. ``generator``:
    ``request.generator`` already loaded on ``request.device`` (a batch
    worker's cache, ``gan2x.scale.task``); None loads it."""
    device = torch.device(request.device)
    settings = resolve_settings(request.preset, request.fit_overrides)
    timings: dict[str, float] = {}
    started = time.perf_counter()

    if generator is None:
        generator = load_generator(request.generator, device=device, **request.generator_options)
    with torch.no_grad():
        z = generator.z_from_seed(request.seed).to(device)
        target_ws = generator.mapping(z, truncation_psi=request.truncation)
        target_image = generator.synthesis(target_ws)[0]
    timings["generator"] = time.perf_counter() - started
    return _fit_and_export(generator, target_ws, target_image, request, settings, out_dir, progress, snapshot,
                           timings, started, source={"kind": "sample", "seed": request.seed})


def scaled_consistency_overrides(steps_scale: float) -> dict:
    """Overrides that multiply the consistency metric's projection steps by ``steps_scale`` (at least one)."""
    return {"steps": scaled_consistency_settings(steps_scale).steps}


def scaled_inversion_overrides(steps_scale: float) -> dict:
    """Overrides that multiply the inversion's step counts (the start
    evaluation's and both stages') by ``steps_scale`` (at least one each, and
    a count of 0, a part turned off, stays 0)."""
    base = InversionSettings()
    return {name: max(1, round(getattr(base, name) * steps_scale)) if getattr(base, name) > 0 else 0
            for name in ("start_steps", "w_steps", "wplus_steps")}


def build_request(settings: Mapping, *, photo: bool = False) -> ReconstructionRequest:
    """The one way to make a ``ReconstructionRequest`` from parsed or stored
    settings: the CLI's arguments (``vars(args)``), a service job's source and
    settings merged (``service.worker``), the benchmark's.

    ``settings`` holds the flat names of ``gan2x.config``: generator, seed,
    truncation, device, preset, steps_scale, stages, pseudo_samples,
    exploration, mesh_resolution, texture_size and, with ``photo``, crop_x,
    crop_y, crop_scale; a missing key or None takes ``gan2x.config``'s
    default (stages, pseudo_samples, exploration: the preset's). Other keys
    are ignored. ``steps_scale`` other than 1 scales the preset's step counts
    (``scaled_step_overrides``), the consistency metric's projection
    (``scaled_consistency_overrides``) and, for photos, the inversion's
    (``scaled_inversion_overrides``). Ranges are the callers' to check (the
    API's models, the CLI's argument types): this checks only the preset."""
    def value(name: str, default):
        found = settings.get(name)
        return default if found is None else found

    preset = str(value("preset", request_config.PRESET.default))
    resolve_settings(preset)  # a clear error for an unknown preset
    steps_scale = float(value("steps_scale", request_config.STEPS_SCALE.default))
    overrides = scaled_step_overrides(preset, steps_scale) if steps_scale != 1.0 else {}
    for name in ("stages", "pseudo_samples"):
        if settings.get(name) is not None:
            overrides[name] = int(settings[name])
    if settings.get("exploration") is not None:
        overrides["exploration"] = str(settings["exploration"])
    extra = {}
    if steps_scale != 1.0:  # the consistency metric's projection scales with the fit
        extra["consistency_overrides"] = scaled_consistency_overrides(steps_scale)
    if photo:
        crop = request_config.RECONSTRUCTION.crop
        extra["crop"] = CropSettings(float(value("crop_x", crop.x.default)), float(value("crop_y", crop.y.default)),
                                     float(value("crop_scale", crop.scale.default)))
        if steps_scale != 1.0:
            extra["inversion_overrides"] = scaled_inversion_overrides(steps_scale)
    export = ExportSettings(int(value("mesh_resolution", request_config.MESH_RESOLUTION.default)),
                            int(value("texture_size", request_config.TEXTURE_SIZE.default)))
    return ReconstructionRequest(generator=str(value("generator", request_config.DEFAULT_GENERATOR)),
                                 seed=int(value("seed", request_config.SEED.default)),
                                 truncation=float(value("truncation", request_config.TRUNCATION.default)),
                                 preset=preset, device=str(value("device", ReconstructionRequest.device)),
                                 fit_overrides=overrides, export=export, **extra)


def reconstruct_image(image_path, request: ReconstructionRequest, out_dir: Path,
                      progress: ProgressCallback | None = None,
                      log: Callable[[str], None] | None = print,
                      snapshot: SnapshotCallback | None = None,
                      generator: torch.nn.Module | None = None) -> Reconstruction:
    """Fit a photo: crop it to the generator's framing (``request.crop``),
    invert it into the generator's latent space (``gan2x.invert``: the best
    of several starts, then W or z, then W+ or a feature offset), then fit
    the asset to the photo's crop with the inverted latent as the target's
    ``w``, and write the bundle to ``out_dir``. ``request.seed`` and
    ``request.truncation`` play no part. Metrics add ``inversion_psnr_db``
    (and ``inversion_w_psnr_db``, of the first stage's latent alone). The
    inversion reports its steps through ``progress`` first (stages
    "inversion (starts)", "inversion (W)" or "(z)", "inversion (W+)" or
    "(features)"), then the fit's follow; ``total`` counts both. The
    provenance's ``source["inversion"]`` records the settings, the start
    candidates and the choice, the stages, the feature layer and both PSNRs.
    ``generator``: as for ``reconstruct``."""
    device = torch.device(request.device)
    settings = resolve_settings(request.preset, request.fit_overrides)
    inversion_settings = replace(InversionSettings(), **(request.inversion_overrides or {}))
    timings: dict[str, float] = {}
    started = time.perf_counter()
    photo = load_photo(image_path)
    if generator is None:
        generator = load_generator(request.generator, device=device, **request.generator_options)
    target_image = crop_for_generator(photo, generator.img_resolution, request.crop).to(device)
    timings["generator"] = time.perf_counter() - started
    # one count over the inversion and the fit, so a progress bar runs once from 0 to the end
    inversion_steps, fit_steps = inversion_settings.total_steps(), settings.total_steps()
    inversion_progress = fit_progress = None
    if progress is not None:
        inversion_progress = lambda stage, done, total: progress(stage, done, inversion_steps + fit_steps)  # noqa: E731
        fit_progress = lambda stage, done, total: progress(stage, inversion_steps + done,  # noqa: E731
                                                           inversion_steps + total)
    inversion = invert_image(generator, target_image, inversion_settings, progress=inversion_progress, log=log)
    timings.update(inversion.timings)
    source = {"kind": "image", "file": Path(image_path).name, "photo_size": [photo.shape[1], photo.shape[0]],
              "crop": request.crop.to_dict(),
              "inversion": {"settings": inversion_settings.to_dict(), "psnr_db": inversion.psnr_db,
                            "w_psnr_db": inversion.w_psnr_db, "used_discriminator": inversion.used_discriminator,
                            "optimised_noise": inversion.optimised_noise, "latent": inversion.latent,
                            "stages": list(inversion.stages), "start": inversion.start,
                            "feature_layer": inversion.feature_layer,
                            "feature_offset_rms": inversion.feature_offset_rms}}
    extra_metrics = {"inversion_psnr_db": inversion.psnr_db, "inversion_w_psnr_db": inversion.w_psnr_db}
    with torch.no_grad():
        latent_image = generator.synthesis(inversion.ws)[0]
    inverted = InvertedImages(image=inversion.image, latent_image=latent_image, psnr_db=inversion.psnr_db,
                              latent_psnr_db=metrics.psnr(unit_rgb_from_generator(latent_image),
                                                          unit_rgb_from_generator(target_image)),
                              latent=inversion.latent)
    return _fit_and_export(generator, inversion.ws, target_image, request, settings, out_dir, fit_progress, snapshot,
                           timings, started, source=source, extra_metrics=extra_metrics, inverted=inverted)


@dataclass
class InvertedImages:
    """What a photo's inversion made, for the report: the generator's images
    [3, R, R] in [-1, 1] of the final inversion (with any feature offset) and
    of its latent ``ws`` alone (what the fit starts its projections from),
    and their PSNR (dB, whole image) against the photo's crop."""
    image: torch.Tensor
    latent_image: torch.Tensor
    psnr_db: float
    latent_psnr_db: float
    latent: str
    """What the latent is: "W" or "z"."""


def _fit_and_export(generator, target_ws: torch.Tensor, target_image: torch.Tensor, request: ReconstructionRequest,
                    settings: FitSettings, out_dir: Path, progress, snapshot, timings: dict, started: float,
                    source: dict, extra_metrics: dict | None = None,
                    inverted: InvertedImages | None = None) -> Reconstruction:
    """The fit of ``target_image`` [3, R, R] (in [-1, 1]) with latent
    ``target_ws`` [1, num_ws, w_dim], its metrics (ground-truth ones only for
    generators that have ground truth) and its bundle. ``inverted``: a
    photo's inversion, shown in the report."""
    device = target_image.device
    # The ellipsoid prior, before any fitting, for comparison.
    resolution = target_image.shape[-1]
    ground_truth = ground_truth_maps(generator, target_ws) if source["kind"] == "sample" else None
    prior_metrics = None
    if ground_truth is not None:
        prior_render = AssetModel().to(device).render_image(ImageState(camera_fixed=True).to(device),
                                                            resolution, settings.sampling)
        prior_metrics = shape_metrics(prior_render, ground_truth)

    result = fit_target(generator, target_ws, target_image, settings, progress=progress, snapshot=snapshot)
    timings.update(result.timings)

    start = time.perf_counter()
    target_rgb = unit_rgb_from_generator(target_image)
    fields_render = result.model.render_image(result.target_state, resolution, settings.sampling)
    camera, light = bundle_camera_and_light(result.target_state, resolution)
    asset = build_exported_asset(result.model, target_rgb, fields_render["opacity"], request.export, camera, light)
    timings["export_build"] = time.perf_counter() - start

    start = time.perf_counter()
    views = AssetViews(asset, camera)
    rerender = views.render(result.target_state)
    target_cpu, fields_cpu = target_rgb.cpu(), fields_render["rgb"].cpu()
    fit_metrics = {
        "rerender_psnr_db": metrics.psnr(rerender["rgb"], target_cpu),
        "rerender_ssim": metrics.ssim(rerender["rgb"], target_cpu),
        "fields_rerender_psnr_db": metrics.psnr(fields_cpu, target_cpu),
        "fields_rerender_ssim": metrics.ssim(fields_cpu, target_cpu),
    }
    fit_metrics.update(views.region_metrics(result.target_state, target_rgb))
    fit_metrics.update(projection_reach(result, target_image))
    fit_metrics.update(extra_metrics or {})
    if ground_truth is not None:
        fit_metrics.update(ground_truth_metrics(fields_render, result.model, result.target_state, generator,
                                                target_ws, ground_truth, settings.sampling))
        fit_metrics.update(views.material_metrics(ground_truth))
        fit_metrics["ellipsoid_prior"] = prior_metrics
    timings["evaluation"] = time.perf_counter() - start

    # Novel-view GAN consistency (no ground truth needed), of the exported asset's views, timed on its own.
    consistency_settings = replace(CONSISTENCY, **(request.consistency_overrides or {}))
    consistency = novel_view_consistency(generator, target_ws, result.model, result.target_state, resolution,
                                         settings.sampling, seed=settings.seed, settings=consistency_settings,
                                         render_view=lambda state: views.render(state)["rgb"].to(device))
    fit_metrics.update(consistency.to_metrics())
    fit_metrics["novel_view_consistency_settings"] = consistency_settings.to_dict()
    timings["consistency"] = consistency.seconds

    start = time.perf_counter()
    report_image = fit_report(result, target_rgb, rerender, fit_metrics, consistency, settings, resolution,
                              title=_report_title(request, source, resolution), inverted=inverted,
                              views=views, fields_render=fields_render)
    timings["report"] = time.perf_counter() - start

    start = time.perf_counter()
    bundle = export_bundle(result, target_rgb, rerender, request, settings, out_dir,
                           fit_metrics, timings, target_ws, source=source, report_image=report_image,
                           asset=asset, camera=camera, light=light)
    timings["export"] = time.perf_counter() - start + timings["export_build"]
    timings["total"] = time.perf_counter() - started
    return Reconstruction(bundle=bundle, metrics=fit_metrics, timings=timings, fit=result,
                          report=Path(bundle) / "images" / "report.png")


def relit_state(state: ImageState, degrees: float = RELIT_LIGHT_TURN_DEGREES) -> ImageState:
    """A copy of ``state`` whose light is turned ``degrees`` about the world
    +Y (vertical) axis: a light along the camera axis (+Z) moves to the
    camera's right (+X) for positive angles."""
    relit = copy.deepcopy(state)
    angle = math.radians(degrees)
    rotation = torch.tensor([[math.cos(angle), 0.0, math.sin(angle)], [0.0, 1.0, 0.0],
                             [-math.sin(angle), 0.0, math.cos(angle)]], device=state.light_vector.device)
    with torch.no_grad():
        relit.light_vector.copy_(rotation @ state.towards_light())
    return relit


def fit_report(result: FitResult, target_rgb: torch.Tensor, rerender: dict, fit_metrics: dict,
               consistency: ConsistencyResult, settings: FitSettings, resolution: int, title: str = "",
               inverted: InvertedImages | None = None, views: "AssetViews | None" = None,
               fields_render: dict | None = None):
    """The bundle's report picture (``export.report``), [H, W, 3] uint8:
    target, re-render (PSNR, SSIM) and a relit view (``relit_state``), both
    of the exported asset when ``views`` is given (else of the fields), the
    fields' own re-render (``fields_render``, when given), and turntable
    views of the asset over flat grey (``TURNTABLE_YAWS_DEGREES``); for a
    photo, its inversion (the final image and its latent's alone); the
    novel views of the consistency metric, each above its projection (PSNR);
    the last stage's pseudo samples, each render (when there is one) above
    its projection G(w') (reach: PSNR against the render and the target)."""
    def array(image: torch.Tensor):  # [R, R, 3] in [0, 1]
        return image.detach().clamp(0, 1).cpu().numpy()

    def srgb(images: torch.Tensor):  # [N, 3, R, R] in [-1, 1] -> [N, R, R, 3] in [0, 1]
        return unit_rgb_from_generator(images.detach()).cpu().numpy()

    if views is not None:
        relit = views.render(relit_state(result.target_state))["rgb"]
    else:
        relit = result.model.render_image(relit_state(result.target_state), resolution, settings.sampling)["rgb"]
    first_row = [
        Panel(array(target_rgb), "target (the GAN's image)"),
        Panel(array(rerender["rgb"]), "re-render at the target view\n{:.2f} dB, SSIM {:.3f}".format(
            fit_metrics["rerender_psnr_db"], fit_metrics["rerender_ssim"])),
        Panel(array(relit), "relit: the target's light turned {:.0f} deg about the vertical".format(
            RELIT_LIGHT_TURN_DEGREES)),
    ]
    if fields_render is not None:
        first_row.append(Panel(array(fields_render["rgb"]), "the fields before export\n{:.2f} dB".format(
            fit_metrics.get("fields_rerender_psnr_db", float("nan")))))
    sections = [Section("Target and fit (the exported asset)" if views is not None else "Target and fit",
                        [first_row])]
    if views is not None:
        sections.append(Section("Turntable of the exported asset over flat grey, the target's light", [[
            Panel(array(views.turntable(result.target_state, yaw)), "yaw {:+.0f} deg".format(yaw))
            for yaw in TURNTABLE_YAWS_DEGREES]]))
    if inverted is not None:
        sections[0].rows[0][0] = Panel(array(target_rgb), "target (the photo's crop)")
        sections.append(Section("Inversion of the photo into the GAN", [[
            Panel(srgb(inverted.image[None])[0], "inverted G: {:.2f} dB".format(inverted.psnr_db)),
            Panel(srgb(inverted.latent_image[None])[0],
                  "its latent ({}) alone: {:.2f} dB\n(the fit projects from it)".format(
                      inverted.latent, inverted.latent_psnr_db)),
        ]]))
    steps = consistency.settings.steps
    sections.append(Section(
        "Novel-view GAN consistency {:.2f} dB: each render (top) projected into the GAN, G(w') below "
        "({} steps from the target's w, offset weight {:g})".format(
            consistency.mean_psnr_db, steps, consistency.settings.offset_weight),
        [[Panel(array(render), "render, yaw {:+.0f} deg".format(yaw))
          for render, yaw in zip(consistency.renders, consistency.yaws_degrees)],
         [Panel(array(projection), "G(w') vs render\n{:.2f} dB".format(psnr))
          for projection, psnr in zip(consistency.projections, consistency.psnr_db)]]))
    projected = result.projected_images
    if projected is not None and projected.shape[0] > 0:
        yaws = list(result.pseudo_yaws_degrees) + [float("nan")] * projected.shape[0]
        against_target = fit_metrics.get("projection_target_psnr_db_each", [])
        fidelity = fit_metrics.get("projection_fidelity_psnr_db_each")
        rows = []
        if result.pseudo_images is not None and fidelity is not None:
            rows.append([Panel(image, "pseudo sample, yaw {:+.1f} deg".format(yaw))
                         for image, yaw in zip(srgb(result.pseudo_images), yaws)])
            rows.append([Panel(image, "G(w') vs render {:.2f} dB\nvs target {:.2f} dB".format(a, b))
                         for image, a, b in zip(srgb(projected), fidelity, against_target)])
            heading = ("Projection reach, last stage: G(w') vs its render {:.2f} dB, vs the target {:.2f} dB"
                       .format(fit_metrics["projection_fidelity_psnr_db"], fit_metrics["projection_target_psnr_db"]))
        else:
            rows.append([Panel(image, "style-mixed G(w), yaw {:+.1f} deg\nvs target {:.2f} dB".format(yaw, b))
                         for image, yaw, b in zip(srgb(projected), yaws, against_target)])
            heading = ("Last stage's style-mixed pseudo samples (nothing projected): vs the target {:.2f} dB"
                       .format(fit_metrics["projection_target_psnr_db"]))
        sections.append(Section(heading, rows))
    return compose_report(sections, title=title)


def _report_title(request: ReconstructionRequest, source: dict, resolution: int) -> str:
    what = (f"seed {source.get('seed')}, truncation {request.truncation:g}" if source.get("kind") == "sample"
            else f"photo {source.get('file')}")
    return f"GAN2X fit of {request.generator} ({what}), preset {request.preset}, {resolution} px"


NORMAL_CHUNK = 1 << 15
"""Points per autograd pass of ``sdf_normals`` (bounds the activations kept
for the backward pass to a few hundred MB)."""


def sdf_normals(sdf: torch.nn.Module, points: torch.Tensor, chunk: int = NORMAL_CHUNK) -> np.ndarray:
    """The normalised gradient of ``sdf`` (``EllipsoidPriorSDF``) at
    ``points`` [N, 3]: unit outward normals [N, 3] float32, world frame, for
    the bake's normal map; NaN rows where the gradient vanishes (the bake
    leaves those texels flat). Autograd in chunks, no graph kept."""
    out = np.empty((len(points), 3), dtype=np.float32)
    for start in range(0, len(points), chunk):
        part = points[start:start + chunk].detach()
        _, gradient = sdf.with_gradient(part, create_graph=False)
        gradient = gradient.detach()
        length = gradient.norm(dim=-1, keepdim=True)
        unit = torch.where(length > 1e-12, gradient / length.clamp_min(1e-12), torch.full_like(gradient, float("nan")))
        out[start:start + len(part)] = unit.cpu().numpy()
    return out


def export_bundle(result: FitResult, target_rgb: torch.Tensor, rerender: dict, request: ReconstructionRequest,
                  settings: FitSettings, out_dir: Path, fit_metrics: dict, timings: dict,
                  target_ws: torch.Tensor, source: dict | None = None, report_image: np.ndarray | None = None,
                  asset: BuiltAsset | None = None, camera: CameraSpec | None = None,
                  light: LightSpec | None = None) -> Path:
    """Mesh, UVs, baked textures, camera and light of the target -> bundle at ``out_dir``.
    ``source``: what was fitted (a sample by seed, or a photo: file, crop, inversion);
    ``report_image``: the picture of the fit ([H, W, 3] uint8, ``fit_report``), or None for none;
    ``asset``: the asset ``build_exported_asset`` made (with ``camera`` and
    ``light``), whose re-render ``rerender`` is (its ``coverage`` is the mask);
    without it the asset is built here without the image bake."""
    state = result.target_state
    resolution = target_rgb.shape[0]
    if asset is None:
        camera, light = bundle_camera_and_light(state, resolution)
        asset = build_exported_asset(result.model, target_rgb, None, request.export, camera, light)
    provenance = {
        "generator": request.generator,
        "seed": request.seed if (source or {}).get("kind", "sample") == "sample" else None,
        "truncation": request.truncation if (source or {}).get("kind", "sample") == "sample" else None,
        "preset": request.preset,
        "settings": settings.to_dict(),
        "metrics": _json_safe(fit_metrics),
        "timings": {key: round(value, 3) for key, value in timings.items()},
        "gan2x_version": __version__,
    }
    if source is not None and source.get("kind") != "sample":
        provenance["source"] = _json_safe(source)
    mask = rerender["coverage"] if "coverage" in rerender else rerender["opacity"]
    return write_built_asset(Path(out_dir), asset, camera=camera, light=light,
                             target_image=target_rgb.cpu().numpy(), rerender_image=rerender["rgb"].cpu().numpy(),
                             mask=mask.cpu().numpy(), provenance=provenance, latent=target_ws.cpu().numpy(),
                             report_image=report_image)


def bundle_camera_and_light(state: ImageState, resolution: int) -> tuple[CameraSpec, LightSpec]:
    """The bundle's camera and light (docs/bundle.md) from an image's fitted state."""
    camera = CameraSpec(image_width=resolution, image_height=resolution,
                        fov_y_degrees=conventions.FOV_DEGREES,
                        world_from_camera=state.world_from_camera().detach().cpu().numpy().astype(np.float64))
    light = LightSpec(towards_light=state.towards_light().detach().cpu().numpy().astype(np.float64),
                      diffuse_strength=float(state.diffuse().detach()), ambient_strength=float(state.ambient().detach()))
    return camera, light


def build_exported_asset(model: AssetModel, target_rgb: torch.Tensor, mask: torch.Tensor | None,
                         export: ExportSettings, camera: CameraSpec, light: LightSpec) -> BuiltAsset:
    """The asset in memory (``export.asset.build_asset``): mesh, UVs,
    textures baked from the fields (with the normal map's field normals),
    the target image ``target_rgb`` [R, R, 3] (sRGB in [0, 1]) baked into the
    albedo where the fit's object ``mask`` [R, R] (the fields' opacity) is
    sure (none when ``mask`` is None), and the AO texture; ``export``: the
    mesh and texture sizes."""
    device = next(model.parameters()).device

    def sdf(points: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model.sdf(torch.from_numpy(points).to(device, torch.float32)).cpu().numpy()

    def materials(points: np.ndarray) -> dict[str, np.ndarray]:
        points_tensor = torch.from_numpy(points).to(device, torch.float32)
        with torch.no_grad():
            values = model.materials(points_tensor)
        values = {key: value.cpu().numpy() for key, value in values.items()}
        values["normal"] = sdf_normals(model.sdf, points_tensor)  # the normal map's detail (export/bake.py)
        return values

    image_bake = None
    if mask is not None:
        image_bake = ImageBakeInput(image_linear=conventions.linear_from_srgb(target_rgb.double()).cpu().numpy(),
                                    mask=mask.detach().cpu().numpy())
    return build_asset(sdf=sdf, materials=materials, resolution=export.mesh_resolution,
                       texture_size=export.texture_size, camera=camera, light=light, image_bake=image_bake)


TURNTABLE_YAWS_DEGREES = (-60.0, -30.0, 0.0, 30.0, 60.0)
"""The report's turntable of the exported asset (degrees about the vertical)."""

FLAT_GREY_SRGB = 0.5
"""The flat background (sRGB-encoded) of the turntable and of the region metric."""


class AssetViews:
    """The exported asset (``BuiltAsset``) seen through fitted image states:
    ``export.mesh_render`` with the state's camera, light and background.
    Images are torch tensors [R, R, 3] sRGB-encoded in [0, 1], on the CPU."""

    def __init__(self, asset: BuiltAsset, camera: CameraSpec):
        self.asset = asset
        self.camera = camera
        self.resolution = camera.image_width

    def _render(self, state: ImageState) -> dict:
        _, light = bundle_camera_and_light(state, self.resolution)
        return render_asset(self.asset.mesh, self.asset.textures, self.camera, light,
                            world_from_camera=state.world_from_camera().detach().cpu().numpy().astype(np.float64))

    def render(self, state: ImageState) -> dict:
        """``rgb`` over the state's fitted background and ``coverage`` [R, R]."""
        render = self._render(state)
        resolution = self.resolution
        pixel_ids = torch.arange(resolution * resolution, device=state.background_logit.device)
        with torch.no_grad():
            background = state.background(pixel_grid_xy(pixel_ids, resolution)).reshape(resolution, resolution, 3)
        rgb = composite_srgb(render, background.double().cpu().numpy())
        return {"rgb": torch.from_numpy(rgb), "coverage": torch.from_numpy(render["coverage"])}

    def over_grey(self, state: ImageState) -> dict:
        """``rgb`` over flat grey (``FLAT_GREY_SRGB``) and ``coverage``."""
        render = self._render(state)
        grey = float(conventions.linear_from_srgb(np.float64(FLAT_GREY_SRGB)))
        return {"rgb": torch.from_numpy(composite_srgb(render, [grey] * 3)),
                "coverage": torch.from_numpy(render["coverage"])}

    def turntable(self, state: ImageState, yaw_degrees: float) -> torch.Tensor:
        """The asset over grey from ``yaw_degrees`` about the vertical, under ``state``'s light."""
        turned = pseudo_state(state, math.radians(yaw_degrees), 0.0,
                              towards_light=[float(v) for v in state.towards_light().detach().cpu()])
        return self.over_grey(turned)["rgb"]

    def material_metrics(self, truth: dict) -> dict:
        """The exported textures against the built-in generator's truth
        (``measure.ground_truth.ground_truth_maps``) in the target view, over
        the true mask shrunk by one pixel where the asset covers:
        ``asset_albedo_psnr_db``, ``asset_albedo_error`` (after the
        per-channel scale) and ``asset_detail_normal_mad_degrees`` (the
        normal map included)."""
        maps = surface_maps(self.asset.mesh, self.asset.textures, self.camera)
        inner = metrics.erode(truth["mask"]) & maps["covered"]
        return {"asset_albedo_psnr_db": metrics.albedo_psnr(maps["albedo"], truth["albedo"], inner),
                "asset_albedo_error": metrics.scaled_albedo_error(maps["albedo"], truth["albedo"], inner),
                "asset_detail_normal_mad_degrees": metrics.detail_normal_mad(maps["normal"], truth["normal"], inner)}

    def region_metrics(self, state: ImageState, target_rgb: torch.Tensor) -> dict:
        """The fidelity figure counted over a fixed region (docs/benchmark.md,
        "Fidelity"): the asset alone over flat grey against the target
        (``target_rgb`` [R, R, 3] sRGB) over the initial ellipsoid's
        silhouette (``measure.regions.ellipsoid_silhouette``), and the
        asset's coverage of that region and of the image."""
        region = torch.from_numpy(ellipsoid_silhouette(self.resolution))
        alone = self.over_grey(state)
        return {"region_psnr_db": metrics.masked_psnr(alone["rgb"], target_rgb.cpu(), region.float()),
                "region_coverage": float(alone["coverage"][region].mean()),
                "mask_coverage": float(alone["coverage"].mean())}


def _json_safe(value):
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value

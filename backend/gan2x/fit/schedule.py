"""The fitting schedule: stages of target fit, exploration and exploitation.

METHOD.md section 3. Each stage:

1. target fit: materials, the target's light and background, shape frozen;
2. exploration: pseudo samples of the current estimate under random views and
   lights, projected through the generator (``projection.py``), or, with
   ``exploration="style_mixing"``, the generator's own images with the view
   layers of other samples (``style_mixing.py``);
3. exploitation: shape, materials, density sharpness, and every image's camera
   (the target's stays fixed), light and background, over the target and the
   projected samples.

Shading-based refinement and the larger presets come with the full method.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import torch

from ..render.volume import SamplingSettings, SDFGridCache
from . import losses
from .asset_model import AssetModel
from .features import FitFeatureLoss
from .image_state import ImageState, pseudo_state, random_light_in_camera
from .optim import guarded_step
from .projection import project_to_generator
from .style_mixing import ViewSearchGrid, check_exploration, explore_by_style_mixing


REFINEMENT_FIELDS = ("residual", "detail")
"""What shading-based refinement may change (``FitSettings.refinement_field``)."""


@dataclass
class FitSettings:
    stages: int = 2
    target_steps: int = 100
    projection_steps: int = 40
    exploitation_steps: int = 200
    pseudo_samples: int = 6
    rays_per_image: int = 384
    max_yaw_degrees: float = 30.0
    max_pitch_degrees: float = 15.0
    max_light_angle_degrees: float = 50.0
    offset_weight: float = 0.01
    learning_rate: float = 5e-3
    eikonal_weight: float = 0.1
    specular_sparsity_weight: float = 0.0
    """Weight of the mean ks of the surface points seen (an L1 sparsity prior
    on the specular intensity). Off by default: on the tuning seeds it kept
    ks near zero even where highlights are plain, and without it the fit
    had lower MAD and albedo error (docs/benchmark.md, "The
    specular-sparsity prior, and how strong highlights must be")."""
    material_smoothness_weight: float = 0.05
    normal_smoothness_weight: float = 0.02
    target_weight: float = 2.0
    grid_refresh_steps: int = 10
    specular_start_stage: int = 0
    """Stages before this one fit with ks = 0 (Lambertian); the specular
    term joins from this stage on, once shape, light and albedo are
    roughly right (and in the last stage whatever this says). 0 fits it
    from the start."""
    refinement_steps: int = 0
    """Shading-based refinement on the target alone (0 turns it off; the
    presets turn it on). See ``_refine``."""
    refinement_field: str = "residual"
    """What refinement changes: 'residual' (the shape's own residual field,
    the default) or 'detail' (the separate higher-frequency detail field,
    which measured worse: docs/benchmark.md)."""
    refinement_learning_rate: float = 1e-3
    refinement_change_weight: float = 1e3
    """Weight of the mean square change of the signed distance (metres^2)
    since refinement began, over random points of the bounding ball: the
    refinement's strong regulariser."""
    sampling: SamplingSettings = field(default_factory=SamplingSettings)
    seed: int = 0
    shading: str = "phong"
    """'phong' (METHOD.md) or 'lambertian' (no specular term: the ablation)."""
    encoding: str = "fourier"
    """The fields' input encoding: 'fourier', 'triplane' (SphereHead's
    spherical tri-plane) or 'hashgrid' (fields/encodings.py)."""
    exploration: str = "projection"
    """Step 2's pseudo samples: 'projection' (the estimate under random views
    and lights, projected through the generator), 'style_mixing' (the
    target's later style layers with other samples' view layers; cameras and
    lights from a coarse search; needs a generator with ``view_layers``) or
    'mixed' (style mixing, then the estimate at the searched views projected
    from the mixed latents). See fit/style_mixing.py and docs/generators.md."""
    feature_weight: float = 0.1
    """Weight of the discriminator's feature distance in the projection and
    the photometric steps (fit/features.py); used only when the generator
    holds D, 0 turns it off. Not tuned: no real checkpoint is at hand here."""
    feature_every: int = 10
    """The photometric steps add the feature term every this many steps (the
    projection, every step): one feature step runs D forward and backward on
    every image, about 5 s for 7 images with a 64 px D and 15 s with a 256 px
    one on one CPU thread (docs/generators.md), against 0.1-0.3 s for a
    photometric step."""

    def total_steps(self) -> int:
        return (self.stages * (self.target_steps + self.projection_steps + self.exploitation_steps)
                + self.refinement_steps)

    def to_dict(self) -> dict:
        return asdict(self)


PRESETS: dict[str, FitSettings] = {
    # What each costs (docs/performance.md, "Presets"): at 64x64 on the 2-core
    # CPU draft 69 s of fitting, standard 347 s; high is meant for a GPU.
    "draft": FitSettings(specular_start_stage=1, refinement_steps=150),
    "standard": FitSettings(stages=3, target_steps=150, projection_steps=60, exploitation_steps=400,
                            pseudo_samples=8, rays_per_image=768, specular_start_stage=1, refinement_steps=300),
    "high": FitSettings(stages=4, target_steps=200, projection_steps=80, exploitation_steps=500,
                        pseudo_samples=12, rays_per_image=1024, specular_start_stage=1, refinement_steps=400),
}


ProgressCallback = Callable[[str, int, int], None]
"""progress(stage_name, steps_done_overall, steps_total)."""

SnapshotCallback = Callable[[AssetModel, ImageState], None]
"""snapshot(model, target_state), after every step (right after ``progress``):
the current estimate, to look at (e.g. render a preview), never to modify. It
runs in the fit's thread, so it should be cheap or throttle itself."""


@dataclass
class FitResult:
    model: AssetModel
    target_state: ImageState
    pseudo_states: list[ImageState]
    projected_images: torch.Tensor
    """[N, 3, R, R] in [-1, 1], from the last stage: the generator's images
    G(w') of the pseudo samples (with ``exploration="style_mixing"``, the
    style-mixed images)."""
    timings: dict[str, float]
    history: list[dict]
    skipped_steps: int = 0
    """Steps skipped for a non-finite loss or gradient (``guarded_step``)."""
    pseudo_images: torch.Tensor | None = None
    """[N, 3, R, R] in [-1, 1], from the last stage: the asset's renders
    that were projected into ``projected_images`` (the pseudo samples before
    projection). None with ``exploration="style_mixing"``, where nothing is
    rendered or projected (the generator's style-mixed images are the pseudo
    samples), so the projection-fidelity figure (render against G(w'),
    bench/consistency.py) does not exist there."""
    pseudo_yaws_degrees: list[float] = field(default_factory=list)
    """Each last-stage pseudo sample's camera yaw relative to the target's,
    in degrees, as it was when its image was rendered or searched (before
    exploitation refines the cameras; ``pseudo_states`` hold the refined
    ones)."""


def fit_target(generator, target_ws: torch.Tensor, target_image: torch.Tensor,
               settings: FitSettings, progress: ProgressCallback | None = None,
               model: AssetModel | None = None, snapshot: SnapshotCallback | None = None,
               before_refinement: SnapshotCallback | None = None) -> FitResult:
    """Fit the asset to ``target_image`` [3, R, R] in [-1, 1] (sRGB-encoded),
    the generator's image of ``target_ws`` [1, num_ws, w_dim].

    ``progress`` and ``snapshot`` (see their types above) are called after
    every step; ``before_refinement(model, target_state)`` once, after the
    last stage and before refinement (the benchmark's ablation row)."""
    device = target_image.device
    resolution = target_image.shape[-1]
    # All of the fit's randomness comes from settings.seed, none from torch's
    # global generator (which torch seeds differently in every process): rng
    # (CPU) draws pixels and pseudo-sample views, noise (on the device) the
    # regularisers' points and jitter.
    rng = torch.Generator(device="cpu").manual_seed(settings.seed)
    noise = torch.Generator(device=device).manual_seed(settings.seed)
    if settings.shading not in ("phong", "lambertian"):
        raise ValueError(f"unknown shading {settings.shading!r}; choose 'phong' or 'lambertian'")
    if settings.refinement_field not in REFINEMENT_FIELDS:
        raise ValueError(f"unknown refinement_field {settings.refinement_field!r}; choose one of "
                         f"{list(REFINEMENT_FIELDS)}")
    check_exploration(settings.exploration, generator)
    features = FitFeatureLoss.for_generator(generator, settings.feature_weight, settings.feature_every)
    if model is None:
        # The fields' initial weights come from settings.seed too: one seed, one fit.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(settings.seed)
            model = AssetModel(specular=settings.shading == "phong", encoding=settings.encoding)
    model.to(device)
    target_rgb = ((target_image + 1.0) / 2.0).clamp(0, 1).permute(1, 2, 0).reshape(-1, 3)
    corner_rgb = _linear_corner_colour(target_image)
    target_state = ImageState(camera_fixed=True, background_rgb=corner_rgb).to(device)
    timings = {"target_fit": 0.0, "exploration": 0.0, "exploitation": 0.0, "refinement": 0.0}
    history: list[dict] = []
    skipped = [0, 0]  # steps skipped for a non-finite loss or gradient: in all, in a row
    done = 0
    total = settings.total_steps()

    def tick(stage_name: str):
        nonlocal done
        done += 1
        if progress is not None:
            progress(stage_name, done, total)
        if snapshot is not None:
            snapshot(model, target_state)

    pseudo_states: list[ImageState] = []
    projected = torch.empty(0, 3, resolution, resolution, device=device)
    pseudo_images: torch.Tensor | None = None  # the last stage's renders that were projected
    pseudo_yaws: list[float] = []
    for stage in range(settings.stages):
        # Step 1: target only, shape fixed.
        start = time.perf_counter()
        optimiser = torch.optim.Adam([
            {"params": model.material_parameters(), "lr": settings.learning_rate},
            {"params": target_state.light_parameters(), "lr": 2e-2},
            {"params": target_state.background_parameters(), "lr": 5e-2},
        ])
        coarse = _coarse_sdf(model, settings)
        if settings.shading == "phong":
            lambertian_stages = min(settings.specular_start_stage, settings.stages - 1)  # the last has it always
            model.materials.max_specular = 0.0 if stage < lambertian_stages else 1.0
        for _ in range(settings.target_steps):
            loss, terms = _photometric_step(model, [target_state], target_rgb[None], resolution, settings,
                                            rng, noise, shape_grad=False, coarse_sdf=coarse, features=features)
            guarded_step(optimiser, loss, skipped)
            tick(f"stage {stage + 1}: target fit")
        history.append({"stage": stage + 1, "step": "target_fit", **_read_back(terms)})
        timings["target_fit"] += time.perf_counter() - start

        # Step 2: exploration.
        start = time.perf_counter()
        explored: dict = {"stage": stage + 1, "step": "exploration", "exploration": settings.exploration}
        start_ws = target_ws
        if settings.exploration == "projection":
            pseudo_states = _sample_pseudo_states(target_state, settings, rng)
        else:  # style mixing (fit/style_mixing.py): the generator draws the views, a coarse search finds them
            mixing = explore_by_style_mixing(
                generator, target_ws, model, target_state, settings.pseudo_samples, rng,
                ViewSearchGrid.for_ranges(settings.max_yaw_degrees, settings.max_pitch_degrees,
                                          settings.max_light_angle_degrees, min(32, resolution)), settings.sampling,
                coarse_sdf=coarse)  # the target fit's grid: the shape has not moved since
            pseudo_states, projected, start_ws = mixing.states, mixing.images, mixing.ws
            explored["view_search_l1"] = float(mixing.search.l1.mean())
        pseudo_yaws = [math.degrees(float(state.yaw.detach()) - float(target_state.yaw.detach()))
                       for state in pseudo_states]
        if settings.exploration == "style_mixing":
            pseudo_images = None
            for _ in range(settings.projection_steps):  # no projection: its steps count as done
                tick(f"stage {stage + 1}: exploration")
        else:
            with torch.no_grad():
                pseudo_images = torch.stack([
                    model.render_image(state, resolution, settings.sampling)["rgb"].permute(2, 0, 1) * 2 - 1
                    for state in pseudo_states])
            projected, _ = project_to_generator(generator, start_ws, pseudo_images, settings.projection_steps,
                                                offset_weight=settings.offset_weight,
                                                on_step=lambda _: tick(f"stage {stage + 1}: exploration"),
                                                feature_loss=features.loss if features is not None else None,
                                                feature_weight=settings.feature_weight, record=explored)
        history.append(explored)
        timings["exploration"] += time.perf_counter() - start

        # Step 3: exploitation over the target and the projected samples.
        start = time.perf_counter()
        states = [target_state] + pseudo_states
        images_rgb = torch.cat([target_rgb[None], ((projected + 1) / 2).clamp(0, 1)
                                .permute(0, 2, 3, 1).reshape(len(pseudo_states), -1, 3)])
        optimiser = torch.optim.Adam([
            {"params": model.sdf.residual_parameters(), "lr": settings.learning_rate},
            {"params": [model.sdf.log_semi_axes], "lr": 1e-2},
            {"params": model.density.parameters(), "lr": 1e-2},
            {"params": model.material_parameters(), "lr": settings.learning_rate},
            {"params": [p for s in states for p in s.camera_parameters() if p.requires_grad], "lr": 5e-3},
            {"params": [p for s in states for p in s.light_parameters()], "lr": 1e-2},
            {"params": [p for s in states for p in s.background_parameters()], "lr": 5e-2},
        ])
        for step in range(settings.exploitation_steps):
            if step % settings.grid_refresh_steps == 0:
                coarse = _coarse_sdf(model, settings)
            loss, terms = _photometric_step(model, states, images_rgb, resolution, settings, rng, noise,
                                            shape_grad=True, coarse_sdf=coarse, features=features)
            guarded_step(optimiser, loss, skipped)
            tick(f"stage {stage + 1}: exploitation")
        history.append({"stage": stage + 1, "step": "exploitation", **_read_back(terms)})
        timings["exploitation"] += time.perf_counter() - start

    if before_refinement is not None:
        before_refinement(model, target_state)
    if settings.refinement_steps > 0:
        start = time.perf_counter()
        terms = _refine(model, target_state, target_rgb, resolution, settings, rng, noise,
                        on_step=lambda: tick("refinement"), skipped=skipped)
        history.append({"stage": settings.stages, "step": "refinement", **_read_back(terms)})
        timings["refinement"] = time.perf_counter() - start

    return FitResult(model=model, target_state=target_state, pseudo_states=pseudo_states,
                     projected_images=projected.detach(), timings=timings, history=history,
                     skipped_steps=skipped[0], pseudo_images=pseudo_images, pseudo_yaws_degrees=pseudo_yaws)


def _photometric_step(model: AssetModel, states: list[ImageState], images_rgb: torch.Tensor,
                      resolution: int, settings: FitSettings, rng: torch.Generator, noise: torch.Generator,
                      shape_grad: bool, coarse_sdf=None, trainable: list | None = None,
                      features: FitFeatureLoss | None = None):
    """One loss evaluation on a random subset of pixels of every image.
    images_rgb [B, R*R, 3] sRGB-encoded in [0, 1]. Returns (loss, terms):
    the terms are detached 0-d tensors, left on the device (``_read_back``
    turns the last step's into floats for the history), so a step never
    waits for the device to report them. ``trainable``: the shape
    parameters that learn (default: all of them); the others keep their
    ``requires_grad``. ``features`` (fit/features.py): adds the weighted
    discriminator feature distance of each image's composite (term
    ``features``) on the steps it computes one."""
    device = images_rgb.device
    count = len(states)
    pixel_ids = torch.stack([torch.randperm(resolution * resolution, generator=rng)[:settings.rays_per_image]
                             for _ in range(count)]).to(device)
    shape = model.shape_parameters() if trainable is None else trainable
    for parameter in shape:
        parameter.requires_grad_(shape_grad)
    out = model.render_pixels(states, pixel_ids, resolution, settings.sampling, create_graph=shape_grad,
                              coarse_sdf=coarse_sdf)
    expected = torch.gather(images_rgb, 1, pixel_ids[..., None].expand(-1, -1, 3))
    weights = torch.ones(count, device=device)
    weights[0] = settings.target_weight
    per_image = (out["rgb"] - expected).abs().mean(dim=(1, 2))
    photometric = (per_image * weights).sum() / weights.sum()
    surface = out["points"].reshape(-1, 3)
    terms = {"photometric": photometric.detach()}
    loss = photometric
    feature = features(out["rgb"], pixel_ids, images_rgb, resolution) if features is not None else None
    if feature is not None:
        feature = (feature * weights).sum() / weights.sum()
        loss = loss + features.weight * feature
        terms["features"] = feature.detach()
    if settings.specular_sparsity_weight > 0:
        loss = loss + settings.specular_sparsity_weight * out["specular"].mean()
    smooth = losses.material_smoothness(model.materials, surface.detach(), generator=noise)
    loss = loss + settings.material_smoothness_weight * smooth
    if shape_grad:
        free = losses.random_points_in_ball(1024, 1.0, device, generator=noise)
        _, free_gradient = model.sdf.with_gradient(free)
        eik = losses.eikonal(torch.cat([out["sdf_gradient"].reshape(-1, 3), free_gradient]))
        normal_smooth = losses.normal_smoothness(model.sdf, surface[:512].detach(),
                                                 out["normal"].reshape(-1, 3)[:512], generator=noise)
        loss = loss + settings.eikonal_weight * eik + settings.normal_smoothness_weight * normal_smooth
        terms["eikonal"] = eik.detach()
    for parameter in shape:
        parameter.requires_grad_(True)
    terms["loss"] = loss.detach()
    return loss, terms


def _refine(model: AssetModel, target_state: ImageState, target_rgb: torch.Tensor, resolution: int,
            settings: FitSettings, rng: torch.Generator, noise: torch.Generator, on_step: Callable[[], None],
            skipped: list[int]) -> dict:
    """Shading-based refinement (METHOD.md section 3, step 5) on the target
    alone: materials, light, camera and density frozen; only the shape field
    named by ``settings.refinement_field`` learns, under the photometric loss
    with the Eikonal and normal-smoothness terms of every shape step, plus
    ``refinement_change_weight`` times the mean square change of the signed
    distance since refinement began (a copy of the field taken at its start),
    which keeps the shape the exploitation found and lets only what the
    target's shading asks for move."""
    if settings.refinement_field == "detail":  # fit_target checked it is one of REFINEMENT_FIELDS
        trainable = list(model.sdf.detail.parameters())
        model.sdf.detail_enabled = True
    else:
        trainable = model.sdf.residual_parameters()
    before = copy.deepcopy(model.sdf).requires_grad_(False)
    frozen = [p for p in list(model.parameters()) + list(target_state.parameters())
              if p.requires_grad and all(p is not t for t in trainable)]
    for parameter in frozen:
        parameter.requires_grad_(False)
    optimiser = torch.optim.Adam(trainable, lr=settings.refinement_learning_rate)
    terms: dict = {}
    try:
        for step in range(settings.refinement_steps):
            if step % settings.grid_refresh_steps == 0:
                coarse = _coarse_sdf(model, settings)
            loss, terms = _photometric_step(model, [target_state], target_rgb[None], resolution, settings, rng,
                                            noise, shape_grad=True, coarse_sdf=coarse, trainable=trainable)
            points = losses.random_points_in_ball(2048, 1.0, target_rgb.device, generator=noise)
            change = (model.sdf(points) - before(points)).square().mean()
            loss = loss + settings.refinement_change_weight * change
            terms["sdf_change_rms_metres"] = change.detach().sqrt()
            guarded_step(optimiser, loss, skipped)
            on_step()
    finally:
        for parameter in frozen:
            parameter.requires_grad_(True)
    return terms


def _read_back(terms: dict) -> dict:
    """A step's terms (0-d tensors, on the fit's device) as floats."""
    return {name: float(value) for name, value in terms.items()}


def _coarse_sdf(model: AssetModel, settings: FitSettings):
    if settings.sampling.coarse_grid <= 0:
        return None
    return SDFGridCache(model.sdf, settings.sampling.coarse_grid)


def _sample_pseudo_states(target_state: ImageState, settings: FitSettings,
                          rng: torch.Generator) -> list[ImageState]:
    states = []
    for _ in range(settings.pseudo_samples):
        yaw = math.radians(settings.max_yaw_degrees) * (2 * torch.rand((), generator=rng).item() - 1)
        pitch = math.radians(settings.max_pitch_degrees) * (2 * torch.rand((), generator=rng).item() - 1)
        state = pseudo_state(target_state, yaw, pitch)
        with torch.no_grad():
            state.light_vector.copy_(random_light_in_camera(rng, state.world_from_camera().detach().cpu(),
                                                            settings.max_light_angle_degrees))
        states.append(state)
    return states


def _linear_corner_colour(image: torch.Tensor) -> tuple[float, float, float]:
    """Mean linear colour of the image's four corner patches, the usual
    background of a GAN crop: initialises the background model."""
    from ..conventions import linear_from_srgb

    srgb = ((image + 1) / 2).clamp(0, 1)
    size = max(2, image.shape[-1] // 8)
    corners = torch.cat([srgb[:, :size, :size].reshape(3, -1), srgb[:, :size, -size:].reshape(3, -1),
                         srgb[:, -size:, :size].reshape(3, -1), srgb[:, -size:, -size:].reshape(3, -1)], 1)
    return tuple(float(v) for v in linear_from_srgb(corners.mean(1)))

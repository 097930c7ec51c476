"""Step 2, exploration (METHOD.md section 3): the stage's pseudo samples.

``settings.exploration`` chooses how they are made:

- 'projection' (METHOD.md): the current estimate rendered under random views
  and lights (``sample_pseudo_states``), projected through the generator
  (``projection.project_to_generator``, Adam on W offsets at
  ``learning_rates.projection``);
- 'style_mixing': the generator's images with the view layers of other
  samples, cameras and lights from a coarse search (``style_mixing.py``);
  nothing is rendered or projected;
- 'mixed': style mixing, then the estimate rendered at the searched views and
  projected, starting from the mixed latents.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..image_state import ImageState, pseudo_state, random_light_in_camera
from ..projection import project_to_generator
from ..settings import FitSettings
from ..style_mixing import ViewSearchGrid, explore_by_style_mixing
from .context import FitContext

VIEW_SEARCH_RESOLUTION = 32
"""Style mixing's camera and light search renders at most this many pixels a side."""


@dataclass
class Exploration:
    """A stage's pseudo samples."""
    states: list[ImageState]
    """Their cameras and lights (exploitation refines them)."""
    projected: torch.Tensor
    """[N, 3, R, R] in [-1, 1]: the generator's images G(w') (style-mixed
    images with 'style_mixing'), what exploitation fits."""
    pseudo_images: torch.Tensor | None
    """[N, 3, R, R] in [-1, 1]: the renders that were projected; None with
    'style_mixing'."""
    yaws_degrees: list[float]
    """Each sample's camera yaw relative to the target's when it was
    rendered or searched."""
    record: dict
    """The history entry."""
    weights: torch.Tensor | None = None
    """[N] each sample's weight in exploitation (None: 1 each):
    ``reach_weights``, so a projection that stayed near the target's own
    view does not teach the fit that a turned view looks frontal."""


def reach_weights(projected: torch.Tensor, pseudo_images: torch.Tensor, target_image: torch.Tensor,
                  margin_db: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Weights [N] in [0, 1] of projected samples [N, 3, R, R] from how far
    each projection followed its render (pseudo_images [N, 3, R, R]) rather
    than staying at the target (target_image [3, R, R]; all in [-1, 1]):
    with ``d = PSNR(G(w'), render) - PSNR(G(w'), target)`` in dB, the weight
    is ``clip(0.5 + d / margin_db, 0, 1)``: 1 once the projection is
    ``margin_db / 2`` closer to its render, 0 once it is that much closer to
    the target. Also returns both PSNRs [N] (all on the images' device: no
    read back)."""
    def psnr(a, b):
        error = ((a - b) / 2).pow(2).mean(dim=(1, 2, 3)).clamp(min=1e-10)
        return -10 * torch.log10(error)
    to_render = psnr(projected, pseudo_images)
    to_target = psnr(projected, target_image[None].expand_as(projected))
    weights = (0.5 + (to_render - to_target) / margin_db).clamp(0.0, 1.0)
    return weights, to_render, to_target


def no_exploration(fit: FitContext) -> Exploration:
    """No pseudo samples yet (before the first stage)."""
    empty = torch.empty(0, 3, fit.resolution, fit.resolution, device=fit.target_rgb.device)
    return Exploration(states=[], projected=empty, pseudo_images=None, yaws_degrees=[], record={})


def explore(fit: FitContext, stage: int, coarse) -> Exploration:
    """The pseudo samples of stage ``stage`` (from 0), counting
    ``settings.projection_steps`` steps (style mixing alone projects nothing:
    its steps count as done). ``coarse``: the target fit's SDF grid (the
    shape has not moved since), for style mixing's view search."""
    settings, target_state = fit.settings, fit.target_state
    record: dict = {"stage": stage + 1, "step": "exploration", "exploration": settings.exploration}
    name = f"stage {stage + 1}: exploration"
    start_ws = fit.target_ws
    projected = None
    if settings.exploration == "projection":
        states = sample_pseudo_states(target_state, settings, fit.rng)
    else:  # style mixing (fit/style_mixing.py): the generator draws the views, a coarse search finds them
        grid = ViewSearchGrid.for_ranges(settings.max_yaw_degrees, settings.max_pitch_degrees,
                                         settings.max_light_angle_degrees,
                                         min(VIEW_SEARCH_RESOLUTION, fit.resolution))
        mixing = explore_by_style_mixing(fit.generator, fit.target_ws, fit.model, target_state,
                                         settings.pseudo_samples, fit.rng, grid, settings.sampling,
                                         coarse_sdf=coarse)
        states, projected, start_ws = mixing.states, mixing.images, mixing.ws
        record["view_search_l1"] = float(mixing.search.l1.mean())
    yaws = [math.degrees(float(state.yaw.detach()) - float(target_state.yaw.detach())) for state in states]
    if settings.exploration == "style_mixing":
        for _ in range(settings.projection_steps):
            fit.tick(name)
        return Exploration(states, projected, None, yaws, record)
    with torch.no_grad():
        pseudo_images = torch.stack([
            fit.model.render_image(state, fit.resolution, settings.sampling)["rgb"].permute(2, 0, 1) * 2 - 1
            for state in states])
    features = fit.features
    projected, _ = project_to_generator(fit.generator, start_ws, pseudo_images, settings.projection_steps,
                                        learning_rate=settings.learning_rates.projection,
                                        offset_weight=settings.offset_weight, on_step=lambda _: fit.tick(name),
                                        feature_loss=features.loss if features is not None else None,
                                        feature_weight=settings.feature_weight, record=record)
    weights = None
    if settings.reach_margin_db is not None:
        target_image = fit.target_rgb.reshape(fit.resolution, fit.resolution, 3).permute(2, 0, 1) * 2 - 1
        weights, _, _ = reach_weights(projected, pseudo_images, target_image, settings.reach_margin_db)
        record["reach_weights"] = [round(w, 4) for w in weights.tolist()]  # one read back
    return Exploration(states, projected, pseudo_images, yaws, record, weights)


def sample_pseudo_states(target_state: ImageState, settings: FitSettings,
                         rng: torch.Generator) -> list[ImageState]:
    """``settings.pseudo_samples`` image states around the target's: yaw,
    pitch and light direction uniform within the settings' ranges, drawn from
    ``rng`` (yaw, pitch, then the light, for each sample in turn)."""
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

"""The photometric loss step of the target fit, exploitation and refinement
(METHOD.md section 3, steps 1, 3 and 5), and the coarse SDF grid it marches."""
from __future__ import annotations

import torch

from ...render.volume import SDFGridCache
from .. import losses
from ..asset_model import AssetModel
from ..features import FitFeatureLoss
from ..image_state import ImageState
from ..settings import FitSettings


def photometric_step(model: AssetModel, states: list[ImageState], images_rgb: torch.Tensor,
                     resolution: int, settings: FitSettings, rng: torch.Generator, noise: torch.Generator,
                     shape_grad: bool, coarse_sdf=None, trainable: list | None = None,
                     features: FitFeatureLoss | None = None, image_weights: torch.Tensor | None = None):
    """One loss evaluation on a random subset of pixels of every image.
    images_rgb [B, R*R, 3] sRGB-encoded in [0, 1]. Returns (loss, terms):
    the terms are detached 0-d tensors, left on the device (``read_back``
    turns the last step's into floats for the history), so a step never
    waits for the device to report them. ``trainable``: the shape
    parameters that learn (default: all of them); the others keep their
    ``requires_grad``. ``features`` (fit/features.py): adds the weighted
    discriminator feature distance of each image's composite (term
    ``features``) on the steps it computes one. ``image_weights`` [B-1]:
    the pseudo samples' weights (default 1 each); the target's is
    ``settings.target_weight``."""
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
    if image_weights is not None:
        weights[1:] = image_weights.to(device)
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


def coarse_sdf(model: AssetModel, settings: FitSettings) -> SDFGridCache | None:
    """The SDF's grid for the coarse march now (None when
    ``settings.sampling.coarse_grid`` is 0: march the field itself)."""
    if settings.sampling.coarse_grid <= 0:
        return None
    return SDFGridCache(model.sdf, settings.sampling.coarse_grid)


def read_back(terms: dict) -> dict:
    """A step's terms (0-d tensors, on the fit's device) as floats."""
    return {name: float(value) for name, value in terms.items()}

"""Step 5, shading-based refinement (METHOD.md section 3), on the target
alone: materials, light, camera and density frozen; only the shape field
named by ``settings.refinement_field`` learns (Adam at
``refinement_learning_rate``), under the photometric loss with the Eikonal
and normal-smoothness terms of every shape step, plus
``refinement_change_weight`` times the mean square change of the signed
distance since refinement began (a copy of the field taken at its start),
which keeps the shape the exploitation found and lets only what the target's
shading asks for move."""
from __future__ import annotations

import copy

import torch

from .. import losses
from ..asset_model import AssetModel
from .context import FitContext
from .photometric import coarse_sdf, read_back


def refinement_trainable(model: AssetModel, refinement_field: str) -> list[torch.nn.Parameter]:
    """The parameters refinement changes: the residual field's, or the detail
    field's (which this turns on)."""
    if refinement_field == "detail":  # FitSettings checked it is one of REFINEMENT_FIELDS
        model.sdf.detail_enabled = True
        return list(model.sdf.detail.parameters())
    return model.sdf.residual_parameters()


def refine(fit: FitContext) -> dict:
    """``settings.refinement_steps`` steps; every other parameter of the model
    and the target's state is frozen meanwhile and learns again after.
    Returns the history entry."""
    settings, model, target_state = fit.settings, fit.model, fit.target_state
    trainable = refinement_trainable(model, settings.refinement_field)
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
                coarse = coarse_sdf(model, settings)
            loss, terms = fit.photometric_step([target_state], fit.target_rgb[None], shape_grad=True,
                                               coarse_sdf=coarse, trainable=trainable)
            points = losses.random_points_in_ball(2048, 1.0, fit.target_rgb.device, generator=fit.noise)
            change = (model.sdf(points) - before(points)).square().mean()
            loss = loss + settings.refinement_change_weight * change
            terms["sdf_change_rms_metres"] = change.detach().sqrt()
            fit.step(optimiser, loss)
            fit.tick("refinement")
    finally:
        for parameter in frozen:
            parameter.requires_grad_(True)
    return {"stage": settings.stages, "step": "refinement", **read_back(terms)}

"""Step 1, the target fit (METHOD.md section 3): the materials and the
target's light and background, on the target image alone; the shape stays
as it is. Sets the stage's shading (``FitSettings.specular_in_stage``)."""
from __future__ import annotations

import torch

from ..asset_model import AssetModel
from ..image_state import ImageState
from ..settings import FitSettings
from .context import FitContext
from .photometric import coarse_sdf, read_back


def target_fit_optimiser(model: AssetModel, target_state: ImageState, settings: FitSettings) -> torch.optim.Adam:
    """Adam over the material field (``learning_rate``) and the target's light
    and background (``learning_rates.target_light``, ``.target_background``)."""
    rates = settings.learning_rates
    return torch.optim.Adam([
        {"params": model.material_parameters(), "lr": settings.learning_rate},
        {"params": target_state.light_parameters(), "lr": rates.target_light},
        {"params": target_state.background_parameters(), "lr": rates.target_background},
    ])


def fit_to_target(fit: FitContext, stage: int):
    """``settings.target_steps`` steps of stage ``stage`` (from 0). Returns
    (the SDF's coarse grid, unchanged since the shape is frozen, the history
    entry)."""
    settings, model = fit.settings, fit.model
    optimiser = target_fit_optimiser(model, fit.target_state, settings)
    coarse = coarse_sdf(model, settings)
    if settings.shading == "phong":  # a Lambertian model has ks = 0 from the start
        model.set_specular(settings.specular_in_stage(stage))
    terms: dict = {}
    for _ in range(settings.target_steps):
        loss, terms = fit.photometric_step([fit.target_state], fit.target_rgb[None], shape_grad=False,
                                           coarse_sdf=coarse, features=fit.features)
        fit.step(optimiser, loss)
        fit.tick(f"stage {stage + 1}: target fit")
    return coarse, {"stage": stage + 1, "step": "target_fit", **read_back(terms)}

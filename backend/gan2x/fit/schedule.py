"""The fitting schedule (METHOD.md section 3): ``fit_target`` runs
``settings.stages`` rounds of

1. the target fit (``stages/target_fit.py``): materials, the target's light
   and background, shape frozen;
2. exploration (``stages/exploration.py``): pseudo samples of the current
   estimate under random views and lights, projected through the generator
   (``projection.py``), or, with ``exploration="style_mixing"`` or
   ``"mixed"``, made by mixing the generator's view layers
   (``style_mixing.py``);
3. exploitation (``stages/exploitation.py``): shape, materials, density
   sharpness, and every image's camera (the target's stays fixed), light and
   background, over the target and the projected samples;

then step 5, shading-based refinement of the shape on the target alone
(``stages/refinement.py``; ``refinement_steps`` 0 turns it off). Each stage
builds its own optimiser; the learning rates are settings
(``FitSettings.learning_rate``, ``.learning_rates``, ``.refinement_learning_rate``).
The settings and the presets ``draft``, ``standard`` and ``high`` are in
``settings.py`` (re-exported here).
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

from .asset_model import AssetModel
from .image_state import ImageState
from .settings import PRESETS, REFINEMENT_FIELDS, SHADINGS, FitSettings, LearningRates
from .stages import FitContext, exploit, explore, fit_to_target, no_exploration, refine
from .stages.context import ProgressCallback, SnapshotCallback
from .stages.photometric import photometric_step as _photometric_step  # noqa: F401 (its old name here)
from .style_mixing import check_exploration

__all__ = ["PRESETS", "REFINEMENT_FIELDS", "SHADINGS", "FitResult", "FitSettings", "LearningRates",
           "ProgressCallback", "SnapshotCallback", "fit_target"]


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
    evaluation/consistency.py) does not exist there."""
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

    ``progress`` and ``snapshot`` (see their types) are called after every
    step; ``before_refinement(model, target_state)`` once, after the last
    stage and before refinement (the benchmark's ablation row). Every random
    draw comes from ``settings.seed``."""
    settings.validate()  # FitSettings checks itself when made; this catches fields changed since
    check_exploration(settings.exploration, generator)
    fit = FitContext.start(generator, target_ws, target_image, settings, model, progress, snapshot)
    timings = dict.fromkeys(("target_fit", "exploration", "exploitation", "refinement"), 0.0)
    history: list[dict] = []
    explored = no_exploration(fit)
    for stage in range(settings.stages):
        with _timed(timings, "target_fit"):
            coarse, entry = fit_to_target(fit, stage)
            history.append(entry)
        with _timed(timings, "exploration"):
            explored = explore(fit, stage, coarse)
            history.append(explored.record)
        with _timed(timings, "exploitation"):
            history.append(exploit(fit, stage, explored))
    if before_refinement is not None:
        before_refinement(fit.model, fit.target_state)
    if settings.refinement_steps > 0:
        with _timed(timings, "refinement"):
            history.append(refine(fit))
    return FitResult(model=fit.model, target_state=fit.target_state, pseudo_states=explored.states,
                     projected_images=explored.projected.detach(), timings=timings, history=history,
                     skipped_steps=fit.skipped.total, pseudo_images=explored.pseudo_images,
                     pseudo_yaws_degrees=explored.yaws_degrees)


@contextmanager
def _timed(timings: dict[str, float], name: str):
    """Add the seconds the block takes to ``timings[name]``."""
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[name] += time.perf_counter() - start

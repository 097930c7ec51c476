"""Metrics that need no ground truth: they work for any generator.

* **Projection reach** (``projection_reach``): for each pseudo sample of the
  fit's last stage, PSNR between the asset's render that was projected and
  its projection G(w') ("does the GAN reproduce the new view?"), and between
  G(w') and the target image ("did it just return the target?").
* **Novel-view GAN consistency** (``novel_view_consistency``): the fitted
  asset rendered over its fitted background at ``CONSISTENCY.yaws_degrees``
  under the target's light, each render projected into the generator with a
  fresh, strong projection from the target's latent, and the PSNR between
  each render and its projection: how well the generator can reproduce the
  asset's new views, i.e. how much they look like the generator's images.

Images are compared sRGB-encoded in [0, 1] over every pixel (PSNR, peak 1).
docs/benchmark.md ("Metrics without ground truth") defines each figure.
The projection used for consistency is in one place (``_project``, with
``ConsistencySettings``), so that another projection method can be swapped
in.
"""
from __future__ import annotations

import math
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace

import torch

from ..conventions import unit_rgb_from_generator
from ..fit.image_state import ImageState, pseudo_state
from ..fit.projection import project_to_generator
from ..measure import metrics
from ..render.volume import SamplingSettings


@dataclass(frozen=True)
class ConsistencySettings:
    """The novel-view consistency metric's views and projection."""
    yaws_degrees: tuple = (-30.0, -15.0, 15.0, 30.0)
    """Yaw of each novel view about the object, degrees from the target's
    camera (pitch 0)."""
    steps: int = 200
    """Adam steps of the projection (the draft fit projects with 40)."""
    learning_rate: float = 0.05
    offset_weight: float = 1e-3
    """Weight of the W offset's mean square (the draft fit uses 0.01): small,
    so the projection may move far from the target's latent to reproduce
    the view."""

    def to_dict(self) -> dict:
        return asdict(self)


CONSISTENCY = ConsistencySettings()
"""The settings every reported figure uses (docs/benchmark.md)."""


def scaled_consistency_settings(steps_scale: float, base: ConsistencySettings = CONSISTENCY) -> ConsistencySettings:
    """``base`` with its projection steps multiplied by ``steps_scale`` (at
    least one), as ``gan2x fit --steps-scale`` scales the fit's."""
    return replace(base, steps=max(1, round(base.steps * steps_scale)))


@dataclass
class ConsistencyResult:
    yaws_degrees: list
    renders: torch.Tensor
    """[V, R, R, 3] sRGB in [0, 1]: the asset over its background at each yaw."""
    projections: torch.Tensor
    """[V, R, R, 3] sRGB in [0, 1]: the generator's image G(w') of each render's projection."""
    psnr_db: list
    """PSNR (dB, whole image) between each render and its projection."""
    seconds: float
    settings: ConsistencySettings

    @property
    def mean_psnr_db(self) -> float:
        return sum(self.psnr_db) / len(self.psnr_db)

    def to_metrics(self) -> dict:
        """The figures under their metric names (the bench records' and
        the bundle provenance's)."""
        return {"novel_view_consistency_psnr_db": self.mean_psnr_db,
                "novel_view_consistency_psnr_db_each": list(self.psnr_db),
                "novel_view_consistency_yaws_degrees": list(self.yaws_degrees)}


def novel_view_consistency(generator, target_ws: torch.Tensor, model, target_state: ImageState, resolution: int,
                           sampling: SamplingSettings, seed: int = 0,
                           settings: ConsistencySettings = CONSISTENCY,
                           render_view=None) -> ConsistencyResult:
    """Renders ``model`` (or, given ``render_view``, calls it with each view's
    ``ImageState`` for an sRGB image [R, R, 3] in [0, 1]: the exported
    asset's render) at each of ``settings.yaws_degrees`` (pitch 0, the
    target's light direction in the world frame, its ambient and diffuse
    strengths and its background), projects the renders, in one batch, into
    ``generator`` from ``target_ws`` [1, num_ws, w_dim] (``_project``), and
    returns the renders, the projections and the PSNR of each pair.

    Deterministic: nothing here draws from torch's global generator, and a
    generator that draws noise itself (e.g. StyleGAN2 with ``noise_mode=
    "random"``) draws it from a generator seeded with ``seed`` inside a
    forked RNG state (the caller's global state is left as it was)."""
    started = time.perf_counter()
    towards_light = [float(v) for v in target_state.towards_light().detach().cpu()]
    renders = []
    for yaw in settings.yaws_degrees:
        state = pseudo_state(target_state, math.radians(yaw), 0.0, towards_light=towards_light)
        if render_view is not None:
            renders.append(render_view(state).clamp(0, 1))
        else:
            renders.append(model.render_image(state, resolution, sampling)["rgb"].clamp(0, 1))
    renders = torch.stack(renders)
    with _seeded(seed, renders.device):
        projected = _project(generator, target_ws, renders.permute(0, 3, 1, 2) * 2 - 1, settings)
    projections = unit_rgb_from_generator(projected).detach()
    psnr = [metrics.psnr(render, projection) for render, projection in zip(renders, projections)]
    return ConsistencyResult(yaws_degrees=list(settings.yaws_degrees), renders=renders.detach(),
                             projections=projections, psnr_db=psnr, seconds=time.perf_counter() - started,
                             settings=settings)


def _project(generator, target_ws: torch.Tensor, images: torch.Tensor, settings: ConsistencySettings):
    """The consistency metric's projection: images [V, 3, R, R] in [-1, 1]
    -> the generator's images [V, 3, R, R] in [-1, 1]. A W-space offset per
    image from ``target_ws``, L1 in image space plus ``offset_weight`` times
    the offset's mean square, ``steps`` Adam steps (``fit.projection``); no
    discriminator features, so the figure means the same for generators with
    and without D."""
    projected, _ = project_to_generator(generator, target_ws.detach(), images, settings.steps,
                                        learning_rate=settings.learning_rate, offset_weight=settings.offset_weight)
    return projected


@contextmanager
def _seeded(seed: int, device: torch.device):
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def projection_reach(result, target_image: torch.Tensor) -> dict:
    """Projection reach of a fit's last stage (``FitResult``): per pseudo
    sample, ``projection_fidelity_psnr_db_each`` (its render, the image that
    was projected, against its projection G(w')) and
    ``projection_target_psnr_db_each`` (G(w') against ``target_image``
    [3, R, R] in [-1, 1]), their means without ``_each``, and
    ``projection_yaws_degrees`` (each pseudo sample's yaw from the target's
    camera when it was rendered). With style-mixing exploration there is no
    render (``result.pseudo_images`` is None): the fidelity figures are
    absent. Empty when the fit made no pseudo samples."""
    projected = result.projected_images
    if projected is None or projected.shape[0] == 0:
        return {}

    values: dict = {}
    projections = unit_rgb_from_generator(projected.detach())
    if result.pseudo_images is not None:
        fidelity = [metrics.psnr(render, projection)
                    for render, projection in zip(unit_rgb_from_generator(result.pseudo_images.detach()), projections)]
        values["projection_fidelity_psnr_db"] = sum(fidelity) / len(fidelity)
        values["projection_fidelity_psnr_db_each"] = fidelity
    target = unit_rgb_from_generator(target_image.detach())
    against_target = [metrics.psnr(projection, target) for projection in projections]
    values["projection_target_psnr_db"] = sum(against_target) / len(against_target)
    values["projection_target_psnr_db_each"] = against_target
    values["projection_yaws_degrees"] = [float(yaw) for yaw in result.pseudo_yaws_degrees]
    return values

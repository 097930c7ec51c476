"""What every stage of one fit shares (``FitContext``): the generator and
the target, the asset model and the target's image state, the fit's random
generators, the feature loss, the count of skipped steps and the progress
report."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from ...optim import SkipCounter, guarded_step
from ..asset_model import AssetModel
from ..features import FitFeatureLoss
from ..image_state import ImageState
from ..settings import FitSettings
from .photometric import photometric_step

ProgressCallback = Callable[[str, int, int], None]
"""progress(stage_name, steps_done_overall, steps_total)."""

SnapshotCallback = Callable[[AssetModel, ImageState], None]
"""snapshot(model, target_state), after every step (right after ``progress``):
the current estimate, to look at (e.g. render a preview), never to modify. It
runs in the fit's thread, so it should be cheap or throttle itself."""


@dataclass
class FitContext:
    generator: object
    """The GAN: ``synthesis`` (ws -> images in [-1, 1]), ``mapping``."""
    target_ws: torch.Tensor
    """[1, num_ws, w_dim]: the target's latents."""
    target_rgb: torch.Tensor
    """[R*R, 3]: the target image, sRGB-encoded in [0, 1], flat row-major."""
    resolution: int
    settings: FitSettings
    model: AssetModel
    target_state: ImageState
    """The target's camera (fixed: it defines the world frame), light and background."""
    rng: torch.Generator
    """CPU: draws pixels and pseudo-sample views."""
    noise: torch.Generator
    """On the fit's device: the regularisers' points and jitter."""
    features: FitFeatureLoss | None
    """The discriminator's feature loss, None without D or with weight 0."""
    progress: ProgressCallback | None = None
    snapshot: SnapshotCallback | None = None
    skipped: SkipCounter = field(default_factory=SkipCounter)
    """Steps skipped for a non-finite loss or gradient (``guarded_step``)."""
    done: int = 0
    """Steps done so far, over every stage."""

    @classmethod
    def start(cls, generator, target_ws: torch.Tensor, target_image: torch.Tensor, settings: FitSettings,
              model: AssetModel | None = None, progress: ProgressCallback | None = None,
              snapshot: SnapshotCallback | None = None) -> "FitContext":
        """A fit of ``target_image`` [3, R, R] in [-1, 1] (sRGB-encoded), the
        generator's image of ``target_ws``: the model (``model``, or the
        prior made from ``settings.seed``) on the image's device, and the
        target's state with its background from the image's corners."""
        device = target_image.device
        # All of the fit's randomness comes from settings.seed, none from torch's
        # global generator (which torch seeds differently in every process): rng
        # (CPU) draws pixels and pseudo-sample views, noise (on the device) the
        # regularisers' points and jitter.
        rng = torch.Generator(device="cpu").manual_seed(settings.seed)
        noise = torch.Generator(device=device).manual_seed(settings.seed)
        features = FitFeatureLoss.for_generator(generator, settings.feature_weight, settings.feature_every)
        if model is None:
            # The fields' initial weights come from settings.seed too: one seed, one fit.
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(settings.seed)
                model = AssetModel(specular=settings.shading == "phong", encoding=settings.encoding)
        model.to(device)
        model.density.maximum_beta = settings.max_beta_metres
        model.density.keep_under_ceiling()
        target_rgb = ((target_image + 1.0) / 2.0).clamp(0, 1).permute(1, 2, 0).reshape(-1, 3)
        target_state = ImageState(camera_fixed=True, background_rgb=linear_corner_colour(target_image),
                                  grid=settings.background_grid).to(device)
        return cls(generator=generator, target_ws=target_ws, target_rgb=target_rgb,
                   resolution=target_image.shape[-1], settings=settings, model=model, target_state=target_state,
                   rng=rng, noise=noise, features=features, progress=progress, snapshot=snapshot)

    def tick(self, stage_name: str) -> None:
        """One step done: report progress, then the snapshot."""
        self.done += 1
        if self.progress is not None:
            self.progress(stage_name, self.done, self.settings.total_steps())
        if self.snapshot is not None:
            self.snapshot(self.model, self.target_state)

    def step(self, optimiser: torch.optim.Optimizer, loss: torch.Tensor) -> bool:
        """Backward and step, skipping a non-finite one (``guarded_step``);
        then the density's width back under its ceiling."""
        stepped = guarded_step(optimiser, loss, self.skipped)
        self.model.density.keep_under_ceiling()
        return stepped

    def photometric_step(self, states: list[ImageState], images_rgb: torch.Tensor, shape_grad: bool,
                         coarse_sdf=None, trainable: list | None = None, features: FitFeatureLoss | None = None,
                         image_weights: torch.Tensor | None = None):
        """``photometric.photometric_step`` with this fit's model, settings and random generators."""
        return photometric_step(self.model, states, images_rgb, self.resolution, self.settings, self.rng,
                                self.noise, shape_grad, coarse_sdf=coarse_sdf, trainable=trainable,
                                features=features, image_weights=image_weights)


def linear_corner_colour(image: torch.Tensor) -> tuple[float, float, float]:
    """Mean linear colour of the image's four corner patches, the usual
    background of a GAN crop: initialises the background model."""
    from ...conventions import linear_from_srgb

    srgb = ((image + 1) / 2).clamp(0, 1)
    size = max(2, image.shape[-1] // 8)
    corners = torch.cat([srgb[:, :size, :size].reshape(3, -1), srgb[:, :size, -size:].reshape(3, -1),
                         srgb[:, -size:, :size].reshape(3, -1), srgb[:, -size:, -size:].reshape(3, -1)], 1)
    return tuple(float(v) for v in linear_from_srgb(corners.mean(1)))

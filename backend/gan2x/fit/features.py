"""The discriminator's feature loss inside the fit (METHOD.md section 3, step 3).

The fit renders only a random subset of each image's pixels per step
(``schedule._photometric_step``). To compare features, each image's
*composite* is formed: the real image with the rendered pixels written in at
their indices. Its feature distance to the real image (``FeatureLoss``: the
discriminator's channel-normalised block outputs) is zero where the render
matches, and its gradient reaches only the rendered pixels.

Without a discriminator (``FeatureLoss.for_generator`` gives None), or with
``weight`` 0, there is no ``FitFeatureLoss`` and the fit is unchanged.
"""
from __future__ import annotations

import torch

from ..generators.feature_loss import FeatureLoss

Tensor = torch.Tensor


def composite_images(images_rgb: Tensor, pixel_ids: Tensor, rendered_rgb: Tensor, resolution: int) -> Tensor:
    """images_rgb [B, R*R, 3] sRGB-encoded in [0, 1] (flat, row-major),
    pixel_ids [B, N], rendered_rgb [B, N, 3] in [0, 1] -> [B, 3, R, R] in
    [-1, 1]: the images with the rendered pixels written in (differentiable
    with respect to ``rendered_rgb``)."""
    index = pixel_ids[..., None].expand(-1, -1, 3)
    flat = images_rgb.detach().scatter(1, index, rendered_rgb)
    return flat.reshape(-1, resolution, resolution, 3).permute(0, 3, 1, 2) * 2 - 1


class FitFeatureLoss:
    """``weight`` times the feature distance of composites, every ``every``-th
    call (the other calls return None: no feature term that step).

    The real images' features are computed once per image batch (the fit
    passes the same tensor every step of a phase) and kept while it is."""

    def __init__(self, loss: FeatureLoss, weight: float, every: int = 1):
        if weight <= 0:
            raise ValueError(f"feature weight must be positive, got {weight}")
        if every < 1:
            raise ValueError(f"feature_every must be at least 1, got {every}")
        self.loss = loss
        self.weight = float(weight)
        self.every = int(every)
        self.calls = 0
        self._images: Tensor | None = None
        self._features: list[Tensor] | None = None

    @classmethod
    def for_generator(cls, generator, weight: float, every: int = 1) -> "FitFeatureLoss | None":
        """None when ``weight`` is 0 or the generator holds no discriminator."""
        if weight <= 0:
            return None
        loss = FeatureLoss.for_generator(generator)
        return None if loss is None else cls(loss, weight, every)

    def real_features(self, images_rgb: Tensor, resolution: int) -> list[Tensor]:
        """Features of images_rgb [B, R*R, 3] in [0, 1], cached while the fit
        passes the same tensor (a view of the same memory and shape)."""
        cached = self._images
        if cached is None or cached.data_ptr() != images_rgb.data_ptr() or cached.shape != images_rgb.shape:
            with torch.no_grad():
                real = images_rgb.reshape(-1, resolution, resolution, 3).permute(0, 3, 1, 2) * 2 - 1
                self._features = [f.detach() for f in self.loss.features(real)]
            self._images = images_rgb
        return self._features

    def __call__(self, rendered_rgb: Tensor, pixel_ids: Tensor, images_rgb: Tensor,
                 resolution: int) -> Tensor | None:
        """Per-image feature distance [B] (unweighted), or None on skipped calls."""
        call = self.calls
        self.calls += 1
        if call % self.every:
            return None
        composite = composite_images(images_rgb, pixel_ids, rendered_rgb, resolution)
        return self.loss(composite, None, self.real_features(images_rgb, resolution))

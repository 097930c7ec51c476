"""The discriminator's features as an image distance (METHOD.md section 3).

When a checkpoint holds the discriminator D, its block outputs describe an
image the way the GAN judges it; the distance between two images is the
mean over blocks of the squared difference of their channel-normalised
features (like LPIPS, with D in place of VGG, which needs no download).
Without D, ``FeatureLoss.for_generator`` gives None and callers use their
pixel losses alone.
"""
from __future__ import annotations

import torch

Tensor = torch.Tensor


class FeatureLoss:
    """``loss(images, targets)``: [B, 3, R, R] each in [-1, 1] -> [B]."""

    def __init__(self, generator, blocks: int = 3):
        self.generator = generator
        self.blocks = blocks

    @classmethod
    def for_generator(cls, generator, blocks: int = 3) -> "FeatureLoss | None":
        if getattr(generator, "discriminator", None) is None or not hasattr(generator, "discriminator_features"):
            return None
        return cls(generator, blocks)

    def features(self, images: Tensor) -> list[Tensor]:
        features = self.generator.discriminator_features(images)[:self.blocks]
        return [f / (f.square().mean(dim=1, keepdim=True) + 1e-8).sqrt() for f in features]

    def __call__(self, images: Tensor, targets: Tensor, target_features: list[Tensor] | None = None) -> Tensor:
        mine = self.features(images)
        theirs = target_features if target_features is not None else [f.detach() for f in self.features(targets)]
        return sum((a - b).square().mean(dim=(1, 2, 3)) for a, b in zip(mine, theirs)) / len(mine)

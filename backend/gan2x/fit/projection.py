"""Projection of pseudo samples onto the GAN's image manifold (METHOD.md 3, step 2).

A pseudo sample is the current estimate rendered under a new view and light:
right view, wrong details. Projecting it (finding ``w' = w0 + offset`` whose
image matches it) returns a realistic image of the same object from that view
and under that light, where the GAN's knowledge fills in the details.
"""
from __future__ import annotations

from typing import Callable

import torch

from ..generators.feature_loss import FeatureLoss
from ..optim import SkipCounter, guarded_step


def project_to_generator(generator, target_ws: torch.Tensor, pseudo_images: torch.Tensor,
                         steps: int, learning_rate: float = 0.05, offset_weight: float = 0.01,
                         on_step: Callable[[int], None] | None = None,
                         feature_loss: FeatureLoss | None = None, feature_weight: float = 0.0,
                         record: dict | None = None):
    """Optimise a W-space offset per pseudo sample.

    generator: the GAN (its ``synthesis`` maps ws [B, num_ws, w_dim] to images
    [B, 3, R, R] in [-1, 1]); target_ws [1, num_ws, w_dim] (or [N, num_ws,
    w_dim]: one start per pseudo sample, e.g. style-mixed latents);
    pseudo_images [N, 3, R, R] in [-1, 1] (sRGB-encoded). The loss is L1 in
    image space plus ``offset_weight`` times the offset's mean square, which
    keeps the object's identity, plus ``feature_weight`` times the
    discriminator's feature distance (``generators.feature_loss.FeatureLoss``)
    when a ``feature_loss`` is given. ``record``, when given, receives the last
    step's terms (``projection_l1``, and ``projection_features`` with a
    feature loss). Returns (projected images [N, 3, R, R] in [-1, 1], ws
    [N, num_ws, w_dim]).
    """
    for parameter in generator.parameters():
        parameter.requires_grad_(False)
    count = pseudo_images.shape[0]
    offset = torch.zeros(count, target_ws.shape[-1], device=target_ws.device, requires_grad=True)
    optimiser = torch.optim.Adam([offset], lr=learning_rate)
    base = target_ws.detach().expand(count, -1, -1)
    skipped = SkipCounter()
    use_features = feature_loss is not None and feature_weight > 0
    if use_features:
        with torch.no_grad():
            wanted_features = [f.detach() for f in feature_loss.features(pseudo_images)]
    for step in range(steps):
        ws = base + offset[:, None, :]
        images = generator.synthesis(ws)
        l1 = (images - pseudo_images).abs().mean()
        loss = l1 + offset_weight * offset.pow(2).mean()
        if use_features:
            features = feature_loss(images, pseudo_images, wanted_features).mean()
            loss = loss + feature_weight * features
        if record is not None and step == steps - 1:  # read back once, not every step
            record["projection_l1"] = float(l1.detach())
            if use_features:
                record["projection_features"] = float(features.detach())
        guarded_step(optimiser, loss, skipped)
        if on_step is not None:
            on_step(step)
    with torch.no_grad():
        ws = base + offset[:, None, :]
        return generator.synthesis(ws), ws.detach()

"""Projection of pseudo samples onto the GAN's image manifold (METHOD.md 3, step 2).

A pseudo sample is the current estimate rendered under a new view and light:
right view, wrong details. Projecting it (finding ``w' = w0 + offset`` whose
image matches it) returns a realistic image of the same object from that view
and under that light, where the GAN's knowledge fills in the details.
"""
from __future__ import annotations

from typing import Callable

import torch

from .optim import guarded_step


def project_to_generator(generator, target_ws: torch.Tensor, pseudo_images: torch.Tensor,
                         steps: int, learning_rate: float = 0.05, offset_weight: float = 0.01,
                         on_step: Callable[[int], None] | None = None):
    """Optimise a W-space offset per pseudo sample.

    generator: the GAN (its ``synthesis`` maps ws [B, num_ws, w_dim] to images
    [B, 3, R, R] in [-1, 1]); target_ws [1, num_ws, w_dim]; pseudo_images
    [N, 3, R, R] in [-1, 1] (sRGB-encoded). The loss is L1 in image space plus
    ``offset_weight`` times the offset's mean square, which keeps the object's
    identity. Returns (projected images [N, 3, R, R] in [-1, 1], ws [N, num_ws, w_dim]).
    """
    for parameter in generator.parameters():
        parameter.requires_grad_(False)
    count = pseudo_images.shape[0]
    offset = torch.zeros(count, target_ws.shape[-1], device=target_ws.device, requires_grad=True)
    optimiser = torch.optim.Adam([offset], lr=learning_rate)
    base = target_ws.detach().expand(count, -1, -1)
    skipped = [0, 0]
    for step in range(steps):
        ws = base + offset[:, None, :]
        images = generator.synthesis(ws)
        loss = (images - pseudo_images).abs().mean() + offset_weight * offset.pow(2).mean()
        guarded_step(optimiser, loss, skipped)
        if on_step is not None:
            on_step(step)
    with torch.no_grad():
        ws = base + offset[:, None, :]
        return generator.synthesis(ws), ws.detach()

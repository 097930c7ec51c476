"""The interface every image generator (GAN) of the project offers.

A generator is an ``nn.Module`` with a StyleGAN-like interface. Shapes use
``B`` for the batch, ``R = img_resolution``. Tensors live on the module's
device (taken from its buffers/parameters; there is no global state), and
every method is batched.

Images are sRGB-encoded and scaled to ``[-1, 1]`` (``-1`` black, ``1``
white), channels first: ``[B, 3, R, R]``, row 0 at the top (see
``gan2x.conventions``).
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch


@runtime_checkable
class Generator(Protocol):
    """What the fitting code may rely on for any generator."""

    spec: str
    """The spec string it was loaded from, e.g. ``"synthetic:faces"``."""

    z_dim: int
    """Length of a latent code ``z``."""

    w_dim: int
    """Length of one style vector ``w``."""

    num_ws: int
    """Number of style vectors the synthesis network reads (W+ has shape
    ``[B, num_ws, w_dim]``)."""

    img_resolution: int
    """Side ``R`` of the square output images, in pixels."""

    img_channels: int
    """Always 3 (RGB)."""

    w_avg: torch.Tensor
    """``[w_dim]``: the mean style vector, the centre of truncation."""

    def mapping(self, z: torch.Tensor, truncation_psi: float = 1.0) -> torch.Tensor:
        """``z [B, z_dim]`` -> ``ws [B, num_ws, w_dim]`` (one ``w`` broadcast to
        every layer), truncated: ``w_avg + psi * (w - w_avg)``."""
        ...

    def synthesis(self, ws: torch.Tensor) -> torch.Tensor:
        """``ws [B, num_ws, w_dim]`` -> images ``[B, 3, R, R]``, sRGB-encoded,
        in ``[-1, 1]``. Differentiable with respect to ``ws``."""
        ...

    def forward(self, z: torch.Tensor, truncation_psi: float = 1.0) -> torch.Tensor:
        """``synthesis(mapping(z, truncation_psi))``: ``[B, z_dim]`` -> ``[B, 3, R, R]``."""
        ...

    def z_from_seed(self, seed: int) -> torch.Tensor:
        """``[1, z_dim]`` latent of an integer seed, drawn like StyleGAN does:
        ``np.random.RandomState(seed).randn(1, z_dim)``, on the module's device."""
        ...

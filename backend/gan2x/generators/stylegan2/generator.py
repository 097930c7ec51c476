"""``StyleGAN2Generator``: a loaded StyleGAN2 checkpoint behind the project's
generator protocol (``generators/protocol.py``)."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .networks import NOISE_MODES, Discriminator, StyleGAN2Network, SynthesisLayer

Tensor = torch.Tensor

DEFAULT_VIEW_LAYERS = 4
"""Style layers that hold the viewpoint in a StyleGAN2 (GANverse3D fixes
``ws[:, :4]`` of a 512px car StyleGAN to keep the view)."""


class StyleGAN2Generator(nn.Module):
    """A StyleGAN2 generator (and its discriminator, when the checkpoint has one).

    Args:
        network: the generator network.
        discriminator: its discriminator, or None.
        spec: the spec it was loaded from.
        noise_mode: "const" (default: the per-layer noise images stored in
            the checkpoint, so ``synthesis`` is deterministic), "random"
            (fresh noise every call) or "none".
        fused: the fast modulated-convolution path (True) or the reference (False).
        source_format: where the weights came from ("nvidia-pickle", "rosinality", "safetensors").
    """

    img_channels = 3

    def __init__(self, network: StyleGAN2Network, discriminator: Discriminator | None = None,
                 spec: str = "stylegan2", noise_mode: str = "const", fused: bool = True,
                 source_format: str = "", view_layers: int = DEFAULT_VIEW_LAYERS):
        super().__init__()
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"unknown noise mode {noise_mode!r}; choose one of {NOISE_MODES}")
        config = network.config
        if config.img_channels != 3:
            raise ValueError(f"only RGB generators are supported; this one makes {config.img_channels} channels")
        self.network = network
        self.discriminator = discriminator
        self.spec = spec
        self.noise_mode = noise_mode
        self.fused = fused
        self.source_format = source_format
        self.z_dim = config.z_dim
        self.w_dim = config.w_dim
        self.num_ws = network.num_ws
        self.img_resolution = config.img_resolution
        self.view_layers = min(int(view_layers), self.num_ws)
        for parameter in self.parameters():
            parameter.requires_grad_(False)

    @property
    def w_avg(self) -> Tensor:
        return self.network.mapping.w_avg

    def mapping(self, z: Tensor, truncation_psi: float = 1.0, truncation_cutoff: int | None = None) -> Tensor:
        return self.network.mapping(z.to(self.w_avg.dtype), truncation_psi, truncation_cutoff)

    def synthesis(self, ws: Tensor, noise_mode: str | None = None) -> Tensor:
        return self.network.synthesis(ws, noise_mode or self.noise_mode, self.fused)

    def forward(self, z: Tensor, truncation_psi: float = 1.0) -> Tensor:
        return self.synthesis(self.mapping(z, truncation_psi))

    def z_from_seed(self, seed: int) -> Tensor:
        z = np.random.RandomState(int(seed)).randn(1, self.z_dim)
        return torch.from_numpy(z).to(self.w_avg.device, torch.float32)

    def noise_layers(self) -> list:
        """The synthesis layers, each with a ``noise_const`` image [res, res]
        (what ``noise_mode="const"`` adds, times its ``noise_strength``)."""
        return [module for module in self.network.synthesis.modules() if isinstance(module, SynthesisLayer)]

    def discriminator_features(self, images: Tensor) -> list[Tensor] | None:
        """The discriminator's block outputs for images [B, 3, R, R] in [-1, 1]
        (resized to its resolution), or None without a discriminator."""
        if self.discriminator is None:
            return None
        size = self.discriminator.img_resolution
        if images.shape[-1] != size:
            images = nn.functional.interpolate(images, size=(size, size), mode="bilinear", align_corners=False,
                                               antialias=images.shape[-1] > size)
        return self.discriminator.features(images)

"""Input encodings of 3D points for the fields' MLPs."""
from __future__ import annotations

import math

import torch
from torch import nn


class FourierFeatures(nn.Module):
    """NeRF-style positional encoding: [x, sin(2^k pi x), cos(2^k pi x)].

    points [..., 3] metres -> features [..., 3 + 6 * num_frequencies]."""

    def __init__(self, num_frequencies: int = 6):
        super().__init__()
        self.register_buffer("frequencies", math.pi * 2.0 ** torch.arange(num_frequencies, dtype=torch.float32),
                             persistent=False)

    @property
    def output_dim(self) -> int:
        return 3 + 6 * self.frequencies.numel()

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        scaled = points.unsqueeze(-1) * self.frequencies  # [..., 3, F]
        scaled = scaled.flatten(-2)
        return torch.cat([points, torch.sin(scaled), torch.cos(scaled)], dim=-1)


def mlp(input_dim: int, hidden_dim: int, num_hidden: int, output_dim: int,
        activation: type[nn.Module] = nn.SiLU) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = input_dim
    for _ in range(num_hidden):
        layers += [nn.Linear(width, hidden_dim), activation()]
        width = hidden_dim
    layers.append(nn.Linear(width, output_dim))
    return nn.Sequential(*layers)

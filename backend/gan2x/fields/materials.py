"""Spatially varying Phong materials: albedo, specular intensity, shininess."""
from __future__ import annotations

import math

import torch
from torch import nn

from .. import conventions
from .encodings import make_encoding, mlp


class MaterialField(nn.Module):
    """points [..., 3] metres -> dict(albedo [..., 3] linear in (0, 1),
    specular [..., ] Phong ks in (0, max_specular), shininess [...] Phong
    exponent in (SHININESS_MIN, SHININESS_MAX), log-uniform parameterisation).

    ``encoding`` names the input encoding (``make_encoding``): "fourier" (the
    default, ``num_frequencies`` octaves), "triplane" or "hashgrid", with
    ``encoding_options`` for its constructor."""

    def __init__(self, num_frequencies: int = 4, hidden_dim: int = 64, num_hidden: int = 2,
                 max_specular: float = 1.0, initial_albedo: float = 0.45,
                 initial_specular: float = 0.1, initial_shininess: float = 20.0,
                 encoding: str = "fourier", encoding_options: dict | None = None):
        super().__init__()
        options = dict(encoding_options or {})
        if encoding == "fourier":
            options.setdefault("num_frequencies", num_frequencies)
        self.encoding = make_encoding(encoding, **options)
        self.head = mlp(self.encoding.output_dim, hidden_dim, num_hidden, 5)
        self.max_specular = max_specular
        with torch.no_grad():
            self.head[-1].weight.mul_(0.1)
            self.head[-1].bias.copy_(torch.tensor([
                _logit(initial_albedo)] * 3 + [
                _logit(initial_specular / max_specular),
                _logit(float(conventions.encode_shininess(torch.tensor(initial_shininess))))]))

    def forward(self, points: torch.Tensor) -> dict[str, torch.Tensor]:
        raw = self.head(self.encoding(points))
        return {
            "albedo": torch.sigmoid(raw[..., :3]),
            "specular": self.max_specular * torch.sigmoid(raw[..., 3]),
            "shininess": conventions.decode_shininess(torch.sigmoid(raw[..., 4])),
        }


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))

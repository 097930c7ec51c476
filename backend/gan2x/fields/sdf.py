"""Signed distance field: an ellipsoid prior plus a neural residual.

The residual's last layer starts at zero, so at initialisation the field *is*
the ellipsoid (METHOD.md section 3, step 0: the convex shape prior), with no
pre-training needed; fitting then learns the deviation from it.
"""
from __future__ import annotations

import torch
from torch import nn

from .encodings import FourierFeatures, mlp


def ellipsoid_sdf(points: torch.Tensor, semi_axes: torch.Tensor) -> torch.Tensor:
    """Approximate signed distance to an origin-centred ellipsoid (exact on the
    surface, first-order accurate near it). points [..., 3], semi_axes [3] -> [...]."""
    k0 = (points / semi_axes).norm(dim=-1)
    k1 = (points / semi_axes ** 2).norm(dim=-1).clamp(min=1e-6)
    return k0 * (k0 - 1.0) / k1


class EllipsoidPriorSDF(nn.Module):
    """s(x) = ellipsoid(x; learnable semi-axes) + residual_mlp(fourier(x)).

    points [..., 3] metres (world frame) -> signed distance [...] metres, < 0 inside."""

    def __init__(self, semi_axes=(0.62, 0.75, 0.55), num_frequencies: int = 5,
                 hidden_dim: int = 64, num_hidden: int = 3, residual_scale: float = 0.1):
        super().__init__()
        self.log_semi_axes = nn.Parameter(torch.log(torch.tensor(semi_axes, dtype=torch.float32)))
        self.encoding = FourierFeatures(num_frequencies)
        self.residual = mlp(self.encoding.output_dim, hidden_dim, num_hidden, 1)
        nn.init.zeros_(self.residual[-1].weight)
        nn.init.zeros_(self.residual[-1].bias)
        self.residual_scale = residual_scale

    @property
    def semi_axes(self) -> torch.Tensor:
        return self.log_semi_axes.exp()

    def prior(self, points: torch.Tensor) -> torch.Tensor:
        return ellipsoid_sdf(points, self.semi_axes)

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        residual = self.residual(self.encoding(points)).squeeze(-1)
        return self.prior(points) + self.residual_scale * residual

    def with_gradient(self, points: torch.Tensor, create_graph: bool = True):
        """Signed distance [...] and its spatial gradient [..., 3]. With
        create_graph the gradient is itself differentiable (for normals and the
        Eikonal loss)."""
        with torch.enable_grad():
            if not points.requires_grad:
                points = points.detach().requires_grad_(True)
            distance = self(points)
            (gradient,) = torch.autograd.grad(distance.sum(), points, create_graph=create_graph)
        return distance, gradient

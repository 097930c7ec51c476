"""Signed distance field: an ellipsoid prior plus a neural residual.

The residual's last layer starts at zero, so at initialisation the field *is*
the ellipsoid (METHOD.md section 3, step 0: the convex shape prior), with no
pre-training needed; fitting then learns the deviation from it.
"""
from __future__ import annotations

import torch
from torch import nn

from .. import conventions
from .encodings import FourierFeatures, make_encoding, mlp


def ellipsoid_sdf(points: torch.Tensor, semi_axes: torch.Tensor) -> torch.Tensor:
    """Approximate signed distance to an origin-centred ellipsoid (exact on the
    surface, first-order accurate near it). points [..., 3], semi_axes [3] -> [...]."""
    k0 = (points / semi_axes).norm(dim=-1)
    k1 = (points / semi_axes ** 2).norm(dim=-1).clamp(min=1e-6)
    return k0 * (k0 - 1.0) / k1


class EllipsoidPriorSDF(nn.Module):
    """s(x) = ellipsoid(x; learnable semi-axes) + residual_mlp(encoding(x))
    + detail_mlp(fourier_fine(x)).

    ``encoding`` names the residual's input encoding (``make_encoding``):
    "fourier" (the default, ``num_frequencies`` octaves), "triplane" (the
    spherical tri-plane) or "hashgrid"; ``encoding_options`` go to its
    constructor. The encoding's own parameters (planes, hash tables) belong to
    the shape: ``residual_parameters`` lists them with the MLP's. The detail
    field stays Fourier whatever the encoding.

    The residual carries the shape; the detail field (higher frequencies,
    smaller amplitude) is trained only by shading-based refinement
    (``fit.schedule``, METHOD.md section 3 step 5). Both start at zero.

    points [..., 3] metres (world frame) -> signed distance [...] metres, < 0 inside."""

    def __init__(self, semi_axes=conventions.PRIOR_SEMI_AXES_METRES, num_frequencies: int = 5,
                 hidden_dim: int = 64, num_hidden: int = 3, residual_scale: float = 0.1,
                 detail_frequencies: int = 7, detail_scale: float = 0.02,
                 encoding: str = "fourier", encoding_options: dict | None = None):
        super().__init__()
        self.log_semi_axes = nn.Parameter(torch.log(torch.tensor(semi_axes, dtype=torch.float32)))
        options = dict(encoding_options or {})
        if encoding == "fourier":
            options.setdefault("num_frequencies", num_frequencies)
        self.encoding = make_encoding(encoding, **options)
        self.residual = mlp(self.encoding.output_dim, hidden_dim, num_hidden, 1)
        nn.init.zeros_(self.residual[-1].weight)
        nn.init.zeros_(self.residual[-1].bias)
        self.residual_scale = residual_scale
        self.detail_encoding = FourierFeatures(detail_frequencies)
        self.detail = mlp(self.detail_encoding.output_dim, hidden_dim, 2, 1)
        nn.init.zeros_(self.detail[-1].weight)
        nn.init.zeros_(self.detail[-1].bias)
        self.detail_scale = detail_scale
        self.detail_enabled = False
        """Off (and free) until refinement turns it on."""

    def detail_offset(self, points: torch.Tensor) -> torch.Tensor:
        """The refinement's contribution to the signed distance [...], metres."""
        return self.detail_scale * self.detail(self.detail_encoding(points)).squeeze(-1)

    def residual_parameters(self) -> list[nn.Parameter]:
        """What learns the shape beyond the ellipsoid: the encoding's
        parameters (none for Fourier features) and the residual MLP's."""
        return list(self.encoding.parameters()) + list(self.residual.parameters())

    @property
    def semi_axes(self) -> torch.Tensor:
        return self.log_semi_axes.exp()

    def prior(self, points: torch.Tensor) -> torch.Tensor:
        return ellipsoid_sdf(points, self.semi_axes)

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        residual = self.residual(self.encoding(points)).squeeze(-1)
        distance = self.prior(points) + self.residual_scale * residual
        if self.detail_enabled:
            distance = distance + self.detail_offset(points)
        return distance

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

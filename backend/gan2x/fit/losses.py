"""Regularisers of the fit (METHOD.md section 3, step 3)."""
from __future__ import annotations

import torch


def eikonal(sdf_gradient: torch.Tensor) -> torch.Tensor:
    """Mean of (|grad s| - 1)^2 over any [..., 3] gradients."""
    return (sdf_gradient.norm(dim=-1) - 1.0).pow(2).mean()


def random_points_in_ball(count: int, radius: float, device, generator=None) -> torch.Tensor:
    """Uniform points in the ball: [count, 3]."""
    direction = torch.randn(count, 3, device=device, generator=generator)
    direction = direction / direction.norm(dim=-1, keepdim=True).clamp(min=1e-6)
    r = radius * torch.rand(count, 1, device=device, generator=generator).pow(1.0 / 3.0)
    return direction * r


def _jitter(points: torch.Tensor, step_metres: float, generator) -> torch.Tensor:
    """Gaussian offsets of ``step_metres`` standard deviation, shaped like points."""
    return step_metres * torch.randn(points.shape, dtype=points.dtype, device=points.device, generator=generator)


def material_smoothness(material_field, points: torch.Tensor, step_metres: float = 0.02,
                        generator=None) -> torch.Tensor:
    """L1 difference of the material maps between points and jittered copies
    (``generator``: the torch.Generator of the jitter, on the points' device)."""
    jitter = _jitter(points, step_metres, generator)
    here, there = material_field(points), material_field(points + jitter)
    return ((here["albedo"] - there["albedo"]).abs().mean()
            + (here["specular"] - there["specular"]).abs().mean()
            + 0.1 * (here["shininess"].log() - there["shininess"].log()).abs().mean())


def normal_smoothness(sdf_field, points: torch.Tensor, normal: torch.Tensor,
                      step_metres: float = 0.02, generator=None) -> torch.Tensor:
    """1 - cos between normals at points and at jittered copies (``generator``
    as in ``material_smoothness``)."""
    _, gradient = sdf_field.with_gradient(points + _jitter(points, step_metres, generator))
    jittered = gradient / gradient.norm(dim=-1, keepdim=True).clamp(min=1e-6)
    return (1.0 - (normal * jittered).sum(-1)).mean()

"""Phong shading, METHOD.md section 2 (all linear colour).

    c = a * (ka + kd * max(0, n.l)) + kd * ks * max(0, r.v) ** shininess
"""
from __future__ import annotations

import torch


def phong(albedo: torch.Tensor, specular: torch.Tensor, shininess: torch.Tensor,
          normal: torch.Tensor, towards_light: torch.Tensor, towards_camera: torch.Tensor,
          ambient: torch.Tensor, diffuse: torch.Tensor) -> torch.Tensor:
    """Radiance of surface points.

    albedo [..., 3] linear; specular, shininess [...]; normal, towards_light,
    towards_camera [..., 3] unit vectors (world frame); ambient, diffuse [...]
    (broadcastable). Returns linear radiance [..., 3]."""
    n_dot_l = (normal * towards_light).sum(-1)
    mirror = 2.0 * n_dot_l.unsqueeze(-1) * normal - towards_light
    r_dot_v = (mirror * towards_camera).sum(-1).clamp(min=0.0)
    lit = (n_dot_l > 0).to(albedo.dtype)
    # Clamp keeps the power's gradient finite where r.v is exactly 0.
    highlight = lit * r_dot_v.clamp(min=1e-6) ** shininess
    shading = ambient + diffuse * n_dot_l.clamp(min=0.0)
    return albedo * shading.unsqueeze(-1) + (diffuse * specular * highlight).unsqueeze(-1)

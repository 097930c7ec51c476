"""Volume rendering of an SDF with surface-guided sampling and deferred Phong shading.

For each ray (world frame, metres):

1. ``locate_surface``: march the SDF at ``coarse_samples`` points between the
   ray's entry and exit of the bounding sphere, without gradients, to find the
   first sign change (or, for a miss, the closest approach).
2. ``fine_samples`` points in a band around it are evaluated with gradients;
   the SDF becomes a density through VolSDF's Laplace CDF with a learnable
   sharpness ``beta``, and alpha compositing gives per-sample weights,
   the object's opacity (the mask) and the expected termination distance.
3. Deferred shading: normals (SDF gradient) and materials are evaluated once,
   at the expected termination point, and shaded with Phong.

Sampling only the band makes each step several times cheaper than uniform
volume sampling; shading one point a ray instead of every sample cuts the
double-backward cost of the normals, the dominant term on a CPU.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .. import conventions
from .phong import phong


@dataclass
class SamplingSettings:
    coarse_samples: int = 48
    fine_samples: int = 16
    band_metres: float = 0.07
    """Half-width of the fine band around the located surface."""
    coarse_grid: int = 64
    """Resolution of the cached SDF grid that the coarse march reads while
    fitting (0: march the field itself)."""


class SDFGridCache:
    """The SDF sampled on a ``resolution^3`` grid over the bounding cube,
    read back by trilinear interpolation: the coarse march only needs to know
    roughly where the surface is, so it reads this cache (refreshed every few
    optimiser steps) instead of evaluating the MLP at every coarse sample."""

    def __init__(self, sdf, resolution: int = 64, radius: float = conventions.BOUNDING_RADIUS,
                 chunk: int = 65536):
        self.radius = radius
        axis = torch.linspace(-radius, radius, resolution, device=_device_of(sdf))
        grid = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)
        with torch.no_grad():
            values = torch.cat([sdf(grid[i:i + chunk]) for i in range(0, grid.shape[0], chunk)])
        # grid_sample wants [N, C, D, H, W] indexed by (x, y, z) -> (W, H, D).
        self.volume = values.reshape(resolution, resolution, resolution).permute(2, 1, 0)[None, None]

    @torch.no_grad()
    def __call__(self, points: torch.Tensor) -> torch.Tensor:
        shape = points.shape[:-1]
        coords = (points / self.radius).reshape(1, -1, 1, 1, 3)
        values = F.grid_sample(self.volume, coords, mode="bilinear", padding_mode="border",
                               align_corners=True)
        return values.reshape(shape)


def _device_of(module) -> torch.device:
    try:
        return next(module.parameters()).device
    except (AttributeError, StopIteration):
        return torch.device("cpu")


class LaplaceDensity(nn.Module):
    """VolSDF density: sigma(s) = (1 / beta) * LaplaceCDF(-s; beta). beta in metres.

    ``maximum_beta`` (None: no ceiling) bounds the learnt width: left free,
    a fit can blur the image by turning the surface into a fog many
    centimetres deep, which no mesh can reproduce (docs/benchmark.md,
    "Fidelity"). The bound is kept by projection (``keep_under_ceiling``
    after every optimiser step), so the width can still shrink freely."""

    def __init__(self, initial_beta: float = 0.02, minimum_beta: float = 0.002,
                 maximum_beta: float | None = None):
        super().__init__()
        self.log_beta = nn.Parameter(torch.tensor(float(initial_beta)).log())
        self.minimum_beta = minimum_beta
        self.maximum_beta = maximum_beta

    @property
    def beta(self) -> torch.Tensor:
        return self.log_beta.exp() + self.minimum_beta

    @torch.no_grad()
    def keep_under_ceiling(self) -> None:
        """Moves beta back to ``maximum_beta`` when it is above (no-op without one)."""
        if self.maximum_beta is not None and self.maximum_beta > self.minimum_beta:
            self.log_beta.clamp_(max=math.log(self.maximum_beta - self.minimum_beta))

    def forward(self, signed_distance: torch.Tensor) -> torch.Tensor:
        beta = self.beta
        half_exp = 0.5 * torch.exp(-signed_distance.abs() / beta)
        cdf = torch.where(signed_distance > 0, half_exp, 1.0 - half_exp)
        return cdf / beta


def sphere_interval(origins: torch.Tensor, directions: torch.Tensor,
                    radius: float = conventions.BOUNDING_RADIUS):
    """Entry and exit distances of rays through the origin-centred sphere.

    origins, directions [..., 3] (unit directions) -> near, far [...], hit [...] bool.
    For a miss near = far = the closest approach."""
    b = (origins * directions).sum(-1)
    c = (origins * origins).sum(-1) - radius ** 2
    discriminant = b * b - c
    hit = discriminant > 0
    root = discriminant.clamp(min=0.0).sqrt()
    near = (-b - root).clamp(min=0.0)
    far = -b + root
    return near, far, hit


@torch.no_grad()
def locate_surface(sdf, origins: torch.Tensor, directions: torch.Tensor,
                   near: torch.Tensor, far: torch.Tensor, num_samples: int,
                   chunk_rays: int = 16384):
    """First zero crossing of the SDF along each ray (no gradients).

    Returns t_surface [...] and crossed [...] bool; rays with no crossing get
    the distance of their smallest SDF value."""
    flat_origins = origins.reshape(-1, 3)
    flat_directions = directions.reshape(-1, 3)
    flat_near, flat_far = near.reshape(-1), far.reshape(-1)
    t_out, crossed_out = [], []
    steps = torch.linspace(0.0, 1.0, num_samples, device=origins.device, dtype=origins.dtype)
    for start in range(0, flat_origins.shape[0], chunk_rays):
        o = flat_origins[start:start + chunk_rays]
        d = flat_directions[start:start + chunk_rays]
        t0, t1 = flat_near[start:start + chunk_rays], flat_far[start:start + chunk_rays]
        t = t0[:, None] + (t1 - t0)[:, None] * steps  # [n, S]
        distance = sdf(o[:, None, :] + t[..., None] * d[:, None, :])
        sign_change = (distance[:, :-1] > 0) & (distance[:, 1:] <= 0)
        crossed = sign_change.any(dim=1)
        first = torch.argmax(sign_change.to(torch.int8), dim=1)
        rows = torch.arange(o.shape[0], device=o.device)
        s0, s1 = distance[rows, first], distance[rows, first + 1]
        ta, tb = t[rows, first], t[rows, first + 1]
        t_cross = ta + (tb - ta) * (s0 / (s0 - s1).clamp(min=1e-9))
        t_closest = t[rows, distance.argmin(dim=1)]
        t_out.append(torch.where(crossed, t_cross, t_closest))
        crossed_out.append(crossed)
    return torch.cat(t_out).reshape(near.shape), torch.cat(crossed_out).reshape(near.shape)


def render_rays(sdf_field, material_field, density: LaplaceDensity,
                origins: torch.Tensor, directions: torch.Tensor,
                towards_light: torch.Tensor, ambient: torch.Tensor, diffuse: torch.Tensor,
                settings: SamplingSettings, create_graph: bool = True,
                coarse_sdf=None) -> dict[str, torch.Tensor]:
    """Render rays of B images.

    origins, directions [B, N, 3] world frame; towards_light [B, 3] unit;
    ambient, diffuse [B]. Returns (linear colour, metres):
    ``radiance`` [B, N, 3] the object's colour at its surface, ``opacity`` [B, N]
    in [0, 1], ``distance`` [B, N] expected termination distance along the ray,
    ``points`` [B, N, 3], ``normal`` [B, N, 3] unit, ``sdf_gradient`` [B, N, 3]
    (for the Eikonal loss), the material maps ``albedo`` [B, N, 3],
    ``specular`` [B, N], ``shininess`` [B, N], and ``crossed`` [B, N] bool.
    ``coarse_sdf`` (e.g. an ``SDFGridCache``) replaces the field in the coarse march."""
    near, far, _ = sphere_interval(origins, directions)
    t_located, crossed = locate_surface(coarse_sdf or sdf_field, origins, directions, near, far,
                                        settings.coarse_samples)
    offsets = torch.linspace(-settings.band_metres, settings.band_metres, settings.fine_samples,
                             device=origins.device, dtype=origins.dtype)
    t_fine = (t_located[..., None] + offsets).clamp(min=near[..., None], max=far[..., None])
    fine_points = origins[..., None, :] + t_fine[..., None] * directions[..., None, :]
    sigma = density(sdf_field(fine_points))  # [B, N, F]
    spacing = torch.cat([t_fine[..., 1:] - t_fine[..., :-1],
                         torch.full_like(t_fine[..., :1], 2.0 * settings.band_metres / settings.fine_samples)], -1)
    alpha = 1.0 - torch.exp(-sigma * spacing)
    # Objects are solid: a ray still inside at the band's far end never leaves,
    # so its last sample absorbs with the occupancy LaplaceCDF(-s) = sigma * beta
    # (~1 inside, ~0 outside) instead of one band step's worth.
    alpha = torch.cat([alpha[..., :-1], sigma[..., -1:] * density.beta], -1)
    transmittance = torch.cumprod(torch.cat([torch.ones_like(alpha[..., :1]), 1.0 - alpha[..., :-1] + 1e-7], -1), -1)
    weights = alpha * transmittance
    opacity = weights.sum(-1).clamp(0.0, 1.0)
    # Expected termination; an empty ray falls back to the located distance so
    # the shading point is always defined (its colour is then weighted by ~0).
    distance = (weights * t_fine).sum(-1) + (1.0 - opacity) * t_located

    points = origins + distance[..., None] * directions
    _, gradient = sdf_field.with_gradient(points, create_graph=create_graph)
    normal = gradient / gradient.norm(dim=-1, keepdim=True).clamp(min=1e-6)
    materials = material_field(points)
    radiance = phong(materials["albedo"], materials["specular"], materials["shininess"], normal,
                     towards_light[:, None, :], -directions,
                     ambient[:, None], diffuse[:, None])
    return {"radiance": radiance, "opacity": opacity, "distance": distance, "points": points,
            "normal": normal, "sdf_gradient": gradient, "crossed": crossed, **materials}

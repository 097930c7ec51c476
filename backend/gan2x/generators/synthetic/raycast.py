"""Analytic ray casting of star-shaped implicit surfaces (independent of the
project's volume renderer).

Rays start at the pinhole of a ``world_from_camera`` [B, 4, 4] camera
(conventions.py: OpenGL camera axes, row 0 at the top, pixel centres at
``+0.5``, principal point at the image centre, vertical field of view
``conventions.FOV_DEGREES``). A ray ``p(t) = o + t d`` with unit ``d`` is
intersected with a bounding shell, marched with a fixed number of uniform
steps to the first sign change of ``g``, refined by bisection (no gradient),
then moved by one Newton step whose value is (almost) unchanged but whose
gradient is the implicit-function derivative ``dt/dtheta = -(dg/dtheta) / (dg/dt)``.
"""
from __future__ import annotations

from typing import Callable

import torch

from ...render.cameras import orbit_world_from_camera, pixel_directions_camera  # noqa: F401 (re-exported)

Tensor = torch.Tensor


def pixel_directions(resolution: int, supersample: int = 1, device=None,
                     dtype=torch.float32) -> Tensor:
    """Unit camera-frame ray directions (see ``render.cameras.pixel_directions_camera``)."""
    return pixel_directions_camera(resolution, device=device, dtype=dtype,
                                   supersample=supersample)


def intersect_sphere(origins: Tensor, dirs: Tensor, radius: Tensor):
    """Ray / origin-centred sphere: origins [B, 1 or N, 3], unit dirs [B, N, 3],
    radius [B] -> t_near, t_far [B, N] (garbage where missed), hit [B, N]."""
    b = (origins * dirs).sum(-1)
    c = origins.square().sum(-1) - radius[:, None].square()
    disc = b * b - c
    hit = disc > 0
    root = disc.clamp_min(0.0).sqrt()
    return -b - root, -b + root, hit


def compact(mask: Tensor) -> tuple[Tensor, Tensor]:
    """Indices [B, M] of the True entries of mask [B, N] first, in order
    (M = the most True in any row; rows are padded with the indices of their
    False entries, so every row holds distinct indices) and their validity [B, M]."""
    counts = mask.sum(1)
    m = int(counts.max()) if mask.numel() else 0
    before_true = torch.cumsum(mask, 1) - 1
    before_false = torch.cumsum(~mask, 1) - 1 + counts[:, None]
    slot = torch.where(mask, before_true, before_false)
    source = torch.arange(mask.shape[1], device=mask.device).expand_as(slot)
    order = torch.empty_like(slot).scatter_(1, slot, source)[:, :m]
    valid = torch.arange(m, device=mask.device)[None, :] < counts[:, None]
    return order, valid


def gather_rays(values: Tensor, index: Tensor) -> Tensor:
    """values [B, N] or [B, N, C] -> values at index [B, M]."""
    if values.dim() == 2:
        return torch.gather(values, 1, index)
    return torch.gather(values, 1, index[..., None].expand(-1, -1, values.shape[-1]))


def intersect_ellipsoid(origins: Tensor, dirs: Tensor, axes: Tensor):
    """Ray / origin-centred axis-aligned ellipsoid with semi-axes axes [B, 3]:
    origins [B, 1 or N, 3], unit dirs [B, N, 3] -> t_near, t_far [B, N]
    (garbage where missed), hit [B, N]."""
    inv = axes.reciprocal()[:, None, :]
    o, d = origins * inv, dirs * inv
    a = d.square().sum(-1)
    b = (o * d).sum(-1)
    c = o.square().sum(-1) - 1.0
    disc = b * b - a * c
    hit = disc > 0
    root = disc.clamp_min(0.0).sqrt()
    return (-b - root) / a, (-b + root) / a, hit


@torch.no_grad()
def march(implicit: Callable[[Tensor], Tensor], origins: Tensor, dirs: Tensor,
          t_start: Tensor, t_end: Tensor, valid: Tensor, steps: int, bisections: int,
          compact_every: int = 4):
    """First crossing of ``implicit`` (< 0 inside) along rays, no gradient.

    origins [B, 1, 3], dirs [B, M, 3], t_start / t_end / valid [B, M];
    ``implicit`` takes channels-first points [B, 3, A] and returns [B, A].
    Uniform steps of (t_end - t_start) / steps (rays still searching are
    re-compacted every ``compact_every`` steps); a ray whose start is already
    inside hits at t_start; then ``bisections`` halvings of the bracket.
    Returns t [B, M] (bisection midpoint; t_start where missed) and hit [B, M]."""
    o = origins.reshape(origins.shape[0], 3, 1)
    d = dirs.transpose(1, 2).contiguous()                                # [B, 3, M]

    def at(t, d_):
        return torch.addcmul(o, d_, t[:, None, :])

    def gather_d(index):
        return torch.gather(d, 2, index[:, None, :].expand(-1, 3, -1))

    step = (t_end - t_start) / steps
    found = valid & (implicit(at(t_start, d)) < 0)
    lo = t_start.clone()
    hi = t_start.clone()
    i = 1
    while i <= steps:
        index, ok = compact(valid & ~found)
        if index.shape[1] == 0:
            break
        d_a = gather_d(index)
        start_a, step_a = gather_rays(t_start, index), gather_rays(step, index)
        lo_a, hi_a = gather_rays(lo, index), gather_rays(hi, index)
        found_a = torch.zeros_like(ok)
        for _ in range(compact_every):
            if i > steps:
                break
            t = start_a + i * step_a
            new = ok & ~found_a & (implicit(at(t, d_a)) < 0)
            lo_a = torch.where(new, t - step_a, lo_a)
            hi_a = torch.where(new, t, hi_a)
            found_a |= new
            i += 1
        lo.scatter_(1, index, lo_a)
        hi.scatter_(1, index, hi_a)
        found.scatter_(1, index, found_a | gather_rays(found, index))
    # bisection on the rays that found a crossing
    index, ok = compact(found)
    if index.shape[1]:
        d_f = gather_d(index)
        lo_f, hi_f = gather_rays(lo, index), gather_rays(hi, index)
        for _ in range(bisections):
            mid = 0.5 * (lo_f + hi_f)
            inside = implicit(at(mid, d_f)) < 0
            hi_f = torch.where(inside, mid, hi_f)
            lo_f = torch.where(inside, lo_f, mid)
        lo.scatter_(1, index, torch.where(ok, lo_f, gather_rays(lo, index)))
        hi.scatter_(1, index, torch.where(ok, hi_f, gather_rays(hi, index)))
    return 0.5 * (lo + hi), found


def newton_step(g: Tensor, slope: Tensor, t0: Tensor) -> Tensor:
    """One Newton step from the detached root estimate t0 [B, M].

    g [B, M]: the implicit function at ``o + t0.detach() d``, evaluated WITH
    gradient (to the scene parameters, and to o and d); slope [B, M]: dg/dt
    there. Returns ``t = t0 - g / slope.detach()``: its value barely moves
    (g is ~0 after bisection) and its gradient is the implicit-function
    derivative d t / d theta = -(d g / d theta) / (dg/dt). The slope is
    clamped away from zero (grazing rays) to keep gradients finite."""
    slope = slope.detach().clamp(max=-0.05)
    return t0.detach() - g / slope

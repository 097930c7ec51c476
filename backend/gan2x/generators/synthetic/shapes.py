"""Star-shaped surfaces, their materials, and the two synthetic categories.

Everything here is in the object's canonical frame, which is the world frame
of ``gan2x.conventions`` (metres, +Y up, the face looks towards +Z).

Surface
-------
The object is star-shaped around the origin. Along a unit direction ``u`` its
radius is an ellipsoid's radius modulated by von Mises-Fisher bumps::

    R(u) = E(u) * (1 + sum_k h_k * exp(kappa_k * (u . c_k - 1)))
    E(u) = 1 / sqrt(sum_i u_i^2 / a_i^2)

(``h_k < 0`` is a dent). The implicit function ``g(p) = |p| - R(p / |p|)`` is
negative inside; its gradient, normalised, is the outward normal.

Materials
---------
Albedo (linear RGB), specular intensity ``ks`` and Phong shininess are smooth
functions of the direction ``u = p / |p|``: a base value blended with vMF
"patches" (weights ``w_k = s_k * exp(kappa_k (u . c_k - 1))``)::

    value(u) = (base + sum_k w_k * target_k) / (1 + sum_k w_k)

(shininess blended in log space). Each value is a convex combination of the
base and the patch targets, so it stays within their ranges.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from .raycast import compact, orbit_world_from_camera

Tensor = torch.Tensor

ALBEDO_RANGE = (0.05, 0.9)
"""Linear albedo of every channel stays in this range."""

EXP_FLOOR = -60.0
"""vMF exponents are clamped below at this value (exp(-60) ~ 1e-26: no visible
effect) so that float32 never produces denormals, which are ~15x slower on CPU."""


# --- the scene ------------------------------------------------------------------

@dataclass
class SyntheticScene:
    """Batched parameters of ``B`` synthetic scenes (all tensors, float32).

    Geometry (canonical = world frame, metres):
        axes [B, 3]            ellipsoid semi-axes along world x, y, z
        bump_dirs [B, K, 3]    unit bump centres c_k
        bump_kappa [B, K]      vMF concentrations (1/rad^2 roughly)
        bump_height [B, K]     relative heights h_k (negative: dent)
        radius_min [B], radius_max [B]
                               min / max of R(u) over 2000 directions
                               (radius_max <= 0.9, hence R <= 0.92 everywhere)
        detail_from            int: bumps [detail_from:] are fine relief
                               (0: none), which the ray marcher evaluates
                               only near the surface (``fast_implicit``)
    Materials (functions of the direction u, see ``material``):
        base_albedo [B, 3] linear, base_specular [B] (ks), base_shininess [B]
        patch_dirs [B, M, 3], patch_kappa [B, M], patch_strength [B, M],
        patch_albedo [B, M, 3], patch_specular [B, M], patch_shininess [B, M]
    View and light of the sample:
        yaw [B], pitch [B]     radians, camera = conventions.orbit_world_from_camera(yaw, pitch)
        towards_light [B, 3]   unit direction towards the light, WORLD frame
        ambient [B] (ka), diffuse [B] (kd)   white light strengths
    Background (image-space linear-colour gradient, see ``background``):
        background_colors [B, 2, 3] linear, background_angle [B] radians
    """

    category: str
    axes: Tensor
    bump_dirs: Tensor
    bump_kappa: Tensor
    bump_height: Tensor
    base_albedo: Tensor
    base_specular: Tensor
    base_shininess: Tensor
    patch_dirs: Tensor
    patch_kappa: Tensor
    patch_strength: Tensor
    patch_albedo: Tensor
    patch_specular: Tensor
    patch_shininess: Tensor
    yaw: Tensor
    pitch: Tensor
    towards_light: Tensor
    ambient: Tensor
    diffuse: Tensor
    background_colors: Tensor
    background_angle: Tensor
    radius_min: Tensor
    radius_max: Tensor
    detail_from: int = 0
    """Bumps from this index on are fine relief (``DetailedCategory``), of
    modulation below ``DETAIL_BOUND`` in magnitude; 0: none (faces, objects)."""

    # -- bookkeeping --
    @property
    def batch_size(self) -> int:
        return self.axes.shape[0]

    @property
    def device(self) -> torch.device:
        return self.axes.device

    def apply(self, fn: Callable[[Tensor], Tensor]) -> "SyntheticScene":
        """A new scene with ``fn`` applied to every tensor field."""
        values = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            values[field.name] = fn(value) if isinstance(value, Tensor) else value
        return SyntheticScene(**values)

    def detach(self) -> "SyntheticScene":
        return self.apply(lambda t: t.detach())

    def to(self, device) -> "SyntheticScene":
        return self.apply(lambda t: t.to(device))

    def select(self, index) -> "SyntheticScene":
        """Sub-batch, e.g. ``scene.select([0])`` or ``scene.select(slice(2, 4))``;
        an int index keeps the batch dimension."""
        if isinstance(index, int):
            index = [index]
        return self.apply(lambda t: t[index])

    def replace(self, **changes) -> "SyntheticScene":
        return dataclasses.replace(self, **changes)

    # -- camera --
    def world_from_camera(self) -> Tensor:
        """[B, 4, 4] the sample's own camera (differentiable in yaw, pitch)."""
        return orbit_world_from_camera(self.yaw, self.pitch)

    # -- geometry --
    def radius(self, u: Tensor) -> Tensor:
        """R(u): u [B, N, 3] unit directions -> [B, N] metres."""
        return star_radius(self.axes, self.bump_dirs, self.bump_kappa, self.bump_height, u)[0]

    def implicit(self, points: Tensor) -> Tensor:
        """g(p) = |p| - R(p/|p|): points [B, N, 3] world -> [B, N] metres
        (negative inside; not a true distance, but |grad g| >= 1)."""
        norm = points.norm(dim=-1).clamp_min(1e-9)
        return norm - self.radius(points / norm[..., None])

    def implicit_and_gradient(self, points: Tensor) -> tuple[Tensor, Tensor]:
        """g(p) [B, N] and its (unnormalised) gradient [B, N, 3]."""
        return implicit_and_gradient(self.axes, self.bump_dirs, self.bump_kappa,
                                     self.bump_height, points)

    def normal(self, points: Tensor) -> Tensor:
        """Outward unit normals grad g / |grad g| at points [B, N, 3] -> [B, N, 3]."""
        grad = self.implicit_and_gradient(points)[1]
        return grad / grad.norm(dim=-1, keepdim=True)

    # -- materials --
    def material(self, points: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Materials at world points [B, N, 3] (only their direction matters):
        albedo [B, N, 3] linear in [0.05, 0.9], specular ks [B, N] in [0, 1],
        shininess [B, N] in [SHININESS_MIN, SHININESS_MAX]."""
        u = points / points.norm(dim=-1, keepdim=True).clamp_min(1e-9)
        return blend_materials(self, u)

    def background(self, resolution: int) -> Tensor:
        """Linear background colour at pixel centres: [B, 3, R, R]."""
        return background_gradient(self.background_colors, self.background_angle, resolution)


# --- geometry functions -------------------------------------------------------

def fibonacci_sphere(n: int) -> np.ndarray:
    """n nearly uniform unit directions [n, 3] (float64)."""
    i = np.arange(n) + 0.5
    y = 1.0 - 2.0 * i / n
    r = np.sqrt(np.clip(1.0 - y * y, 0.0, None))
    phi = math.pi * (3.0 - math.sqrt(5.0)) * i
    return np.stack([r * np.cos(phi), y, r * np.sin(phi)], axis=1)


def star_radius(axes: Tensor, bump_dirs: Tensor, bump_kappa: Tensor, bump_height: Tensor,
                u: Tensor, with_gradient: bool = False) -> tuple[Tensor, Tensor | None]:
    """R(u) [B, N] for unit u [B, N, 3]; with ``with_gradient`` also dR/du
    [B, N, 3] of the formula's extension off the sphere (project it onto the
    tangent plane before use)."""
    inv_a2 = axes.reciprocal().square()                                  # [B, 3]
    ellipsoid = (u.square() * inv_a2[:, None, :]).sum(-1).rsqrt()         # [B, N]
    kc = bump_kappa[..., None] * bump_dirs                               # [B, K, 3]
    bumps = torch.baddbmm(-bump_kappa[:, None, :], u, kc.transpose(1, 2)).clamp(min=EXP_FLOOR).exp()  # [B, N, K]
    if not with_gradient:
        modulation = 1.0 + torch.bmm(bumps, bump_height[:, :, None])[..., 0]
        return ellipsoid * modulation, None
    weighted = bumps * bump_height[:, None, :]
    modulation = 1.0 + weighted.sum(-1)
    radius = ellipsoid * modulation
    d_ellipsoid = -(ellipsoid ** 3)[..., None] * u * inv_a2[:, None, :]   # [B, N, 3]
    d_modulation = torch.bmm(weighted, kc)                               # [B, N, 3]
    d_radius = d_ellipsoid * modulation[..., None] + ellipsoid[..., None] * d_modulation
    return radius, d_radius


def fast_implicit(scene: "SyntheticScene") -> Callable[[Tensor], Tensor]:
    """g(points) of a (frozen) scene for ray marching: no autograd, points in
    the channels-first layout [B, 3, N] (reductions over the 3 coordinates
    vectorise over N), fused in-place kernels, constants precomputed -> [B, N].
    Uses E(u) = |p| / sqrt(q(p)) with q(p) = sum_i p_i^2 / a_i^2.

    With fine relief (``scene.detail_from`` > 0) the relief's bumps are
    evaluated only at points where the rest of the surface gives
    ``|g| <= DETAIL_BOUND * E``: elsewhere the relief (modulation below
    ``DETAIL_BOUND``) cannot change g's sign, and the marcher reads only
    signs, so it finds the whole surface's crossings (the same hits; roots
    equal up to float rounding, ~1e-6 m), at about half the cost."""
    axes = scene.axes.detach()
    inv_a2 = axes.reciprocal().square()[:, :, None]                      # [B, 3, 1]
    kappa = scene.bump_kappa.detach()
    kc_aug = torch.cat([kappa[..., None] * scene.bump_dirs.detach(), -kappa[..., None]], -1)  # [B, K, 4]
    height = scene.bump_height.detach()[:, None, :]                      # [B, 1, K]
    split = int(scene.detail_from)
    if split:
        kc_detail, height_detail = kc_aug[:, split:], height[:, :, split:]
        kc_aug, height = kc_aug[:, :split], height[:, :, :split]

    @torch.no_grad()
    def implicit(points: Tensor) -> Tensor:
        B, _, n = points.shape
        square = points.square()
        r2 = square.sum(1)
        q = square.mul_(inv_a2).sum(1)
        u_aug = points.new_empty(B, 4, n)
        torch.mul(points, r2.rsqrt()[:, None, :], out=u_aug[:, :3])
        u_aug[:, 3] = 1.0
        bumps = torch.bmm(kc_aug, u_aug).clamp_(min=EXP_FLOOR).exp_()   # [B, K, n]
        modulation = torch.bmm(height, bumps)[:, 0].add_(1.0)
        ellipsoid = r2.div(q).sqrt_()
        if not split:
            return r2.sqrt_().sub_(ellipsoid.mul_(modulation))
        g = r2.sqrt_().sub_(ellipsoid * modulation)
        index, valid = compact(g.abs() <= DETAIL_BOUND * ellipsoid)
        if index.shape[1]:
            u_near = torch.gather(u_aug, 2, index[:, None, :].expand(-1, 4, -1))
            detail = torch.bmm(height_detail, torch.bmm(kc_detail, u_near).clamp_(min=EXP_FLOOR).exp_())[:, 0]
            near = torch.gather(g, 1, index) - torch.gather(ellipsoid, 1, index) * detail
            g.scatter_(1, index, torch.where(valid, near, torch.gather(g, 1, index)))
        return g

    return implicit


def modulation_bounds(scene: "SyntheticScene", u: Tensor) -> tuple[Tensor, Tensor]:
    """min and max over the unit directions u [N, 3] of R(u) / E(u) (the bump
    modulation): [B] each. The surface lies between the ellipsoids
    ``min * axes`` and ``max * axes`` (up to sampling)."""
    with torch.no_grad():
        u = u[None].expand(scene.batch_size, -1, -1)
        kc = scene.bump_kappa[..., None] * scene.bump_dirs
        bumps = torch.baddbmm(-scene.bump_kappa[:, None, :], u, kc.transpose(1, 2)).clamp_(min=EXP_FLOOR).exp_()
        modulation = 1.0 + torch.bmm(bumps, scene.bump_height[:, :, None])[..., 0]
        return modulation.min(1).values, modulation.max(1).values


def implicit_and_gradient(axes, bump_dirs, bump_kappa, bump_height, points):
    """g(p) = |p| - R(p/|p|) [B, N] and grad g [B, N, 3] at points [B, N, 3]."""
    norm = points.norm(dim=-1).clamp_min(1e-9)
    u = points / norm[..., None]
    radius, d_radius = star_radius(axes, bump_dirs, bump_kappa, bump_height, u, True)
    tangential = d_radius - (d_radius * u).sum(-1, keepdim=True) * u
    gradient = u - tangential / norm[..., None]
    return norm - radius, gradient


def blend_materials(scene: SyntheticScene, u: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Albedo [B,N,3], ks [B,N], shininess [B,N] at unit directions u [B,N,3]."""
    kc = scene.patch_kappa[..., None] * scene.patch_dirs                  # [B, M, 3]
    weights = torch.baddbmm(-scene.patch_kappa[:, None, :], u, kc.transpose(1, 2)).clamp(min=EXP_FLOOR).exp()
    weights = weights * scene.patch_strength[:, None, :]                 # [B, N, M]
    denominator = 1.0 + weights.sum(-1)                                  # [B, N]
    albedo = (scene.base_albedo[:, None, :] + torch.bmm(weights, scene.patch_albedo)) \
        / denominator[..., None]
    specular = (scene.base_specular[:, None] + torch.bmm(
        weights, scene.patch_specular[..., None])[..., 0]) / denominator
    log_shininess = (scene.base_shininess.log()[:, None] + torch.bmm(
        weights, scene.patch_shininess.log()[..., None])[..., 0]) / denominator
    return albedo, specular, log_shininess.exp()


def background_gradient(colors: Tensor, angle: Tensor, resolution: int) -> Tensor:
    """Linear two-colour gradient across the image: colors [B, 2, 3], angle [B]
    (direction of the gradient in the image plane, x right, y up) -> [B, 3, R, R]."""
    device, dtype = colors.device, colors.dtype
    centres = (torch.arange(resolution, device=device, dtype=dtype) + 0.5) / resolution * 2.0 - 1.0
    y = -centres[:, None]            # rows, +1 at the top
    x = centres[None, :]             # cols
    along = (x[None] * torch.cos(angle)[:, None, None]
             + y[None] * torch.sin(angle)[:, None, None])                # [B, R, R], in [-1.41, 1.41]
    mix = (0.5 + along / (2.0 * math.sqrt(2.0))).clamp(0.0, 1.0)
    mix = mix * mix * (3.0 - 2.0 * mix)                                  # smoothstep
    return colors[:, 0, :, None, None] * (1.0 - mix[:, None]) + colors[:, 1, :, None, None] * mix[:, None]


# --- parameter specifications ------------------------------------------------------

@dataclass(frozen=True)
class ParamSpec:
    """One group of scene parameters read from the style vectors.

    role: "view" (early ws), "shape" (middle ws) or "material" (late ws).
    kind: "lin" -> lo + (hi - lo) * sigmoid(s), "log" -> the same in log
    space, "dir" -> unit 3-vectors (size counts the vectors).
    lo, hi: scalars or per-element sequences of length ``size``."""

    name: str
    size: int
    role: str
    kind: str = "lin"
    lo: float | tuple = 0.0
    hi: float | tuple = 1.0

    @property
    def raw_size(self) -> int:
        return 3 * self.size if self.kind == "dir" else self.size


def _direction(azimuth: Tensor, elevation: Tensor) -> Tensor:
    """Unit vector from azimuth (about +Y, from +Z towards +X) and elevation
    (towards +Y), radians -> [..., 3]."""
    ce = torch.cos(elevation)
    return torch.stack([ce * torch.sin(azimuth), torch.sin(elevation), ce * torch.cos(azimuth)], -1)


def _mirror(dirs: Tensor) -> Tensor:
    return dirs * dirs.new_tensor([-1.0, 1.0, 1.0])


def _clamp_albedo(albedo: Tensor) -> Tensor:
    return albedo.clamp(*ALBEDO_RANGE)


# --- the faces category --------------------------------------------------------------

# name, azimuth deg, elevation deg, kappa, h_lo, h_hi, paired (mirrored across x = 0)
FACE_FEATURES = [
    ("forehead", 0.0, 32.0, 10.0, 0.02, 0.06, False),
    ("brow", 15.0, 17.0, 70.0, 0.03, 0.07, True),
    ("eye_socket", 14.0, 9.0, 140.0, -0.09, -0.04, True),
    ("nose_bridge", 0.0, 6.0, 200.0, 0.03, 0.06, False),
    ("nose_mid", 0.0, 0.0, 180.0, 0.06, 0.10, False),
    ("nose_tip", 0.0, -5.0, 220.0, 0.08, 0.13, False),
    ("nose_wing", 4.5, -7.0, 300.0, 0.02, 0.04, True),
    ("cheekbone", 25.0, -3.0, 25.0, 0.03, 0.07, True),
    ("upper_lip", 0.0, -16.0, 200.0, 0.02, 0.05, False),
    ("lower_lip", 0.0, -21.0, 200.0, 0.02, 0.05, False),
    ("mouth_corner", 7.0, -18.0, 300.0, -0.03, -0.01, True),
    ("chin", 0.0, -32.0, 40.0, 0.03, 0.08, False),
    ("jaw", 35.0, -30.0, 15.0, -0.04, 0.02, True),
    ("temple", 45.0, 15.0, 20.0, -0.05, -0.01, True),
    ("ear", 90.0, 0.0, 60.0, 0.04, 0.09, True),
]
FACE_EXTRA_PAIRS = 2          # random symmetric bump pairs
FACE_EXTRA_PATCH_PAIRS = 2    # random symmetric albedo-variation patch pairs

SKIN_LIGHT = (0.80, 0.58, 0.46)
SKIN_DARK = (0.22, 0.12, 0.08)


class FaceCategory:
    """``synthetic:faces``: left-right symmetric heads (x -> -x mirror)."""

    name = "faces"
    yaw_range = math.radians(30.0)
    pitch_range = math.radians(15.0)

    def __init__(self):
        self.features = FACE_FEATURES
        self.index = {f[0]: i for i, f in enumerate(self.features)}

    def param_specs(self) -> list[ParamSpec]:
        n = len(self.features)
        paired = tuple(1.0 if f[6] else 0.0 for f in self.features)
        return [
            ParamSpec("axes", 3, "shape", "lin", (0.58, 0.72, 0.60), (0.68, 0.84, 0.70)),
            ParamSpec("feature_height", n, "shape", "lin",
                      tuple(f[4] for f in self.features), tuple(f[5] for f in self.features)),
            # azimuth jitter only for paired features (midline ones stay at x = 0)
            ParamSpec("feature_dazimuth", n, "shape", "lin",
                      tuple(-2.0 * p for p in paired), tuple(2.0 * p for p in paired)),
            ParamSpec("feature_delevation", n, "shape", "lin", -2.0, 2.0),
            ParamSpec("feature_kappa", n, "shape", "log", 0.75, 1.35),
            ParamSpec("extra_dirs", FACE_EXTRA_PAIRS, "shape", "dir"),
            ParamSpec("extra_kappa", FACE_EXTRA_PAIRS, "shape", "log", 5.0, 40.0),
            ParamSpec("extra_height", FACE_EXTRA_PAIRS, "shape", "lin", -0.04, 0.04),
            # materials
            ParamSpec("skin_tone", 1, "material", "lin", 0.0, 1.0),
            ParamSpec("skin_tint", 3, "material", "lin", 0.9, 1.1),
            ParamSpec("base_specular", 1, "material", "lin", 0.03, 0.15),
            ParamSpec("base_shininess", 1, "material", "log", 5.0, 20.0),
            ParamSpec("hair_lightness", 1, "material", "lin", 0.0, 1.0),
            ParamSpec("hair_red", 1, "material", "lin", 0.0, 1.0),
            ParamSpec("hair_elevation", 1, "material", "lin", 70.0, 85.0),
            ParamSpec("hair_kappa", 1, "material", "lin", 8.0, 11.0),
            ParamSpec("hair_strength", 1, "material", "log", 100.0, 400.0),
            ParamSpec("hair_specular", 1, "material", "lin", 0.15, 0.4),
            ParamSpec("hair_shininess", 1, "material", "log", 20.0, 80.0),
            ParamSpec("brow_strength", 1, "material", "lin", 3.0, 10.0),
            ParamSpec("lip_tint", 3, "material", "lin", (1.0, 0.45, 0.5), (1.25, 0.7, 0.75)),
            ParamSpec("lip_strength", 1, "material", "lin", 4.0, 10.0),
            ParamSpec("lip_specular", 1, "material", "lin", 0.3, 0.6),
            ParamSpec("lip_shininess", 1, "material", "log", 40.0, 150.0),
            ParamSpec("cheek_tint", 2, "material", "lin", (1.05, 0.8), (1.2, 0.92)),
            ParamSpec("cheek_strength", 1, "material", "lin", 0.5, 2.0),
            ParamSpec("nose_specular", 1, "material", "lin", 0.3, 0.6),
            ParamSpec("nose_shininess", 1, "material", "log", 40.0, 150.0),
            ParamSpec("nose_strength", 1, "material", "lin", 3.0, 8.0),
            ParamSpec("forehead_specular", 1, "material", "lin", 0.3, 0.5),
            ParamSpec("forehead_shininess", 1, "material", "log", 40.0, 150.0),
            ParamSpec("forehead_strength", 1, "material", "lin", 2.0, 5.0),
            ParamSpec("socket_darkening", 1, "material", "lin", 0.65, 0.9),
            ParamSpec("socket_strength", 1, "material", "lin", 0.5, 2.0),
            ParamSpec("sclera", 1, "material", "lin", 0.55, 0.8),
            ParamSpec("iris", 3, "material", "lin", 0.05, 0.35),
            ParamSpec("eye_specular", 1, "material", "lin", 0.5, 0.8),
            ParamSpec("eye_shininess", 1, "material", "log", 150.0, 400.0),
            ParamSpec("variation_dirs", FACE_EXTRA_PATCH_PAIRS, "material", "dir"),
            ParamSpec("variation_kappa", FACE_EXTRA_PATCH_PAIRS, "material", "log", 5.0, 60.0),
            ParamSpec("variation_strength", FACE_EXTRA_PATCH_PAIRS, "material", "lin", 0.3, 2.0),
            ParamSpec("variation_tint", 3 * FACE_EXTRA_PATCH_PAIRS, "material", "lin", 0.8, 1.2),
        ]

    def build(self, p: dict[str, Tensor]) -> dict[str, Tensor]:
        """Scene geometry and material tensors from squashed parameters."""
        deg = math.pi / 180.0
        base_az = p["axes"].new_tensor([f[1] for f in self.features]) * deg
        base_el = p["axes"].new_tensor([f[2] for f in self.features]) * deg
        base_kappa = p["axes"].new_tensor([f[3] for f in self.features])
        paired = torch.tensor([f[6] for f in self.features], device=p["axes"].device)
        azimuth = base_az + p["feature_dazimuth"] * deg                     # [B, F]
        elevation = base_el + p["feature_delevation"] * deg
        dirs = _direction(azimuth, elevation)                                # [B, F, 3]
        kappa = base_kappa * p["feature_kappa"]
        height = p["feature_height"]
        # bumps: every feature, the mirror of the paired ones, extra mirrored pairs
        extra = p["extra_dirs"]
        bump_dirs = torch.cat([dirs, _mirror(dirs[:, paired]), extra, _mirror(extra)], 1)
        bump_kappa = torch.cat([kappa, kappa[:, paired], p["extra_kappa"], p["extra_kappa"]], 1)
        bump_height = torch.cat([height, height[:, paired], p["extra_height"], p["extra_height"]], 1)

        # materials
        B = height.shape[0]
        light = p["axes"].new_tensor(SKIN_LIGHT)
        dark = p["axes"].new_tensor(SKIN_DARK)
        skin = _clamp_albedo((light + (dark - light) * p["skin_tone"]) * p["skin_tint"])  # [B, 3]
        ks0 = p["base_specular"][:, 0]
        n0 = p["base_shininess"][:, 0]
        hair = 0.05 + p["hair_lightness"] * p["axes"].new_tensor([0.40, 0.28, 0.12]) \
            + p["hair_red"] * p["axes"].new_tensor([0.12, 0.03, 0.0])
        hair = _clamp_albedo(hair)

        patches = []   # (dirs [B, n, 3], kappa [B, n], strength [B, n], albedo [B, n, 3], ks [B, n], n [B, n])

        def add(dirs_, kappa_, strength_, albedo_, ks_, shin_):
            n_ = dirs_.shape[1]
            expand = lambda v: v.reshape(B, -1).expand(B, n_) if v.dim() <= 2 else v
            albedo_ = albedo_ if albedo_.dim() == 3 else albedo_[:, None, :].expand(B, n_, 3)
            patches.append((dirs_, expand(kappa_), expand(strength_), albedo_,
                            expand(ks_), expand(shin_)))

        def feature_dir(name, daz=0.0, del_=0.0, mirrored=False):
            i = self.index[name]
            d = _direction(azimuth[:, i:i + 1] + daz * deg, elevation[:, i:i + 1] + del_ * deg)
            return torch.cat([d, _mirror(d)], 1) if mirrored else d

        const = lambda v: height.new_full((B, 1), float(v))
        # hair cap (top and back of the head)
        hair_el = p["hair_elevation"][:, 0] * deg
        hair_dir = torch.stack([torch.zeros_like(hair_el), torch.sin(hair_el), -torch.cos(hair_el)], -1)[:, None]
        add(hair_dir, p["hair_kappa"], p["hair_strength"], hair, p["hair_specular"], p["hair_shininess"])
        # eyebrows: two blobs a side, hair coloured
        for daz, del_ in ((-4.0, 2.0), (5.0, 1.0)):
            add(feature_dir("brow", daz, del_, True), const(250.0), p["brow_strength"], hair,
                ks0, n0)
        # eye sockets slightly darker, sclera, glossy iris
        add(feature_dir("eye_socket", 0.0, 0.0, True), const(150.0), p["socket_strength"],
            _clamp_albedo(skin * p["socket_darkening"]), ks0, n0)
        add(feature_dir("eye_socket", 0.0, 0.0, True), const(500.0), const(8.0),
            p["sclera"].expand(B, 3), p["eye_specular"], p["eye_shininess"])
        add(feature_dir("eye_socket", 0.0, 0.0, True), const(1200.0), const(30.0),
            p["iris"], p["eye_specular"], p["eye_shininess"])
        # lips: redder and glossy
        lips = _clamp_albedo(skin * p["lip_tint"])
        for name in ("upper_lip", "lower_lip"):
            add(feature_dir(name), const(250.0), p["lip_strength"], lips,
                p["lip_specular"], p["lip_shininess"])
        # cheeks: pinker, matte
        cheek = _clamp_albedo(skin * torch.cat([p["cheek_tint"][:, :1], p["cheek_tint"][:, 1:2],
                                               p["cheek_tint"][:, 1:2]], 1))
        add(feature_dir("cheekbone", 0.0, -5.0, True), const(30.0), p["cheek_strength"], cheek,
            ks0, n0)
        # glossy nose tip and forehead
        add(feature_dir("nose_tip"), const(300.0), p["nose_strength"],
            _clamp_albedo(skin * skin.new_tensor([1.05, 0.93, 0.93])),
            p["nose_specular"], p["nose_shininess"])
        add(feature_dir("forehead"), const(30.0), p["forehead_strength"], skin,
            p["forehead_specular"], p["forehead_shininess"])
        # random symmetric albedo variation
        vdirs = p["variation_dirs"]
        tint = p["variation_tint"].reshape(B, FACE_EXTRA_PATCH_PAIRS, 3)
        valbedo = _clamp_albedo(skin[:, None, :] * tint)
        add(torch.cat([vdirs, _mirror(vdirs)], 1), p["variation_kappa"].repeat(1, 2),
            p["variation_strength"].repeat(1, 2), valbedo.repeat(1, 2, 1),
            ks0[:, None].expand(B, 2 * FACE_EXTRA_PATCH_PAIRS), n0[:, None].expand(B, 2 * FACE_EXTRA_PATCH_PAIRS))

        return dict(
            axes=p["axes"], bump_dirs=bump_dirs, bump_kappa=bump_kappa, bump_height=bump_height,
            base_albedo=skin, base_specular=ks0, base_shininess=n0,
            **_stack_patches(patches),
        )


def _stack_patches(patches) -> dict[str, Tensor]:
    return dict(
        patch_dirs=torch.cat([q[0] for q in patches], 1),
        patch_kappa=torch.cat([q[1] for q in patches], 1),
        patch_strength=torch.cat([q[2] for q in patches], 1),
        patch_albedo=torch.cat([q[3] for q in patches], 1),
        patch_specular=torch.cat([q[4] for q in patches], 1),
        patch_shininess=torch.cat([q[5] for q in patches], 1),
    )


# --- the objects category ----------------------------------------------------------

OBJECT_LOBES = 7
OBJECT_PATCHES = 6


class ObjectCategory:
    """``synthetic:objects``: asymmetric rounded pebble / gourd-like objects
    with random lobes and painted glossy or matte colour patches."""

    name = "objects"
    yaw_range = math.radians(45.0)
    pitch_range = math.radians(20.0)

    def param_specs(self) -> list[ParamSpec]:
        L, M = OBJECT_LOBES, OBJECT_PATCHES
        return [
            ParamSpec("axes", 3, "shape", "lin", 0.42, 0.72),
            ParamSpec("lobe_dirs", L, "shape", "dir"),
            ParamSpec("lobe_kappa", L, "shape", "log", 1.5, 25.0),
            ParamSpec("lobe_height", L, "shape", "lin", -0.2, 0.45),
            ParamSpec("base_albedo", 3, "material", "lin", *ALBEDO_RANGE),
            ParamSpec("base_specular", 1, "material", "lin", 0.0, 0.2),
            ParamSpec("base_shininess", 1, "material", "log", 2.0, 40.0),
            ParamSpec("patch_dirs", M, "material", "dir"),
            ParamSpec("patch_kappa", M, "material", "log", 3.0, 40.0),
            ParamSpec("patch_strength", M, "material", "log", 1.0, 20.0),
            ParamSpec("patch_albedo", 3 * M, "material", "lin", *ALBEDO_RANGE),
            ParamSpec("patch_specular", M, "material", "lin", 0.0, 0.9),
            ParamSpec("patch_shininess", M, "material", "log", 2.0, 400.0),
        ]

    def build(self, p: dict[str, Tensor]) -> dict[str, Tensor]:
        B = p["axes"].shape[0]
        return dict(
            axes=p["axes"], bump_dirs=p["lobe_dirs"], bump_kappa=p["lobe_kappa"],
            bump_height=p["lobe_height"],
            base_albedo=p["base_albedo"], base_specular=p["base_specular"][:, 0],
            base_shininess=p["base_shininess"][:, 0],
            patch_dirs=p["patch_dirs"], patch_kappa=p["patch_kappa"],
            patch_strength=p["patch_strength"],
            patch_albedo=p["patch_albedo"].reshape(B, OBJECT_PATCHES, 3),
            patch_specular=p["patch_specular"], patch_shininess=p["patch_shininess"],
        )


CATEGORIES = {"faces": FaceCategory, "objects": ObjectCategory}



# --- the detailed category ------------------------------------------------------------

DETAIL_SEED = 20230
"""Seed of the detailed category's fixed banks of candidate positions (the
'architecture'; which candidates show, how strongly, in which colour, comes
from the latent)."""
WRINKLES = 4                  # forehead creases
WRINKLE_DENTS = 25            # dents per crease (a chain: the groove)
WRINKLE_KAPPA = 1100.0        # dent width ~ 1 / sqrt(kappa) = 0.030 rad
CROW_LINES = 3                # crow's-feet lines per eye
CROW_DENTS = 5
FOLD_DENTS = 9                # nasolabial fold, per side
FOLD_KAPPA = 1300.0
RELIEF_BUMPS = 64             # bank of small bumps / dents (moles, warts, pits)
FRECKLES = 64                 # bank of freckle positions (cheeks, nose)
PORES = 40                    # bank of pore positions (nose, cheeks; show from ~128 px)
STRIPES = 2                   # face-paint stripes per side
STRIPE_PATCHES = 12
STRIPE_KAPPA = 3000.0
MARKS = 8                     # bank of small printed glossy marks
SHEEN_SPOTS = 16              # bank of glossy (oily) spots: ks and shininess only
_CHAIN_OVERLAP = 1.0 / 1.7    # a chain of Gaussians at these spacings sums to ~1.7x one dent
DETAIL_BOUND = 0.1
"""Bound on |the fine relief's modulation| (relative radius; it stays below
~0.05: tests/backend/test_synthetic_generator.py checks 0.08 on dense
directions), used by ``fast_implicit`` to skip the relief away from the surface."""


def _bank(rng, n, az_range, el_range, kappa_range) -> np.ndarray:
    """n rows (azimuth deg, elevation deg, kappa) drawn uniformly in the
    ranges (kappa log-uniform): a fixed bank of candidate positions."""
    az = rng.uniform(*az_range, n)
    el = rng.uniform(*el_range, n)
    kappa = np.exp(rng.uniform(math.log(kappa_range[0]), math.log(kappa_range[1]), n))
    return np.stack([az, el, kappa], 1)


def _chain(az0: Tensor, el0: Tensor, az1: Tensor, el1: Tensor, n: int) -> Tensor:
    """n unit directions [B, n, 3] evenly between (az0, el0) and (az1, el1)
    (radians, [B] each), linear in azimuth and elevation."""
    t = torch.linspace(0.0, 1.0, n, dtype=az0.dtype, device=az0.device)
    az = az0[:, None] + (az1 - az0)[:, None] * t
    el = el0[:, None] + (el1 - el0)[:, None] * t
    return _direction(az, el)


def _taper(n: int, like: Tensor) -> Tensor:
    """[n] weights, 1 in the middle of a chain and ~0.4 at its ends (creases fade out)."""
    t = torch.linspace(-1.0, 1.0, n, dtype=like.dtype, device=like.device)
    return 1.0 - 0.6 * t * t


class DetailedCategory(FaceCategory):
    """``synthetic:detailed``: the heads of ``faces`` (same features, own
    mapping) with fine detail a smooth shape cannot reproduce.

    Relief (vMF dents and bumps of the star-shaped surface, so the
    ground-truth normals and the shading carry them): four forehead
    wrinkles (chains of narrow dents, each a groove), crow's feet at the
    eyes' outer corners, nasolabial folds, and a bank of small bumps and
    dents (moles, warts, pits). Albedo: freckles (sparse, from a bank on the
    cheeks and nose), pores (small dark dots, sub-pixel at 64 px), face-paint
    stripes (two a side, sharp-edged, their own colour, gloss and
    shininess), small printed glossy marks with sharp edges. Specular: the
    stripes and marks carry their own ks and Phong exponent, matte freckles,
    and a bank of oily spots (skin albedo, high ks and shininess). The
    relief reads the shape layers, the paint the material layers, as in
    ``faces``; the detail is not left-right symmetric (freckles, bumps,
    marks)."""

    name = "detailed"
    shell_margin = 0.04
    """Extra relative margin of the ray caster's bounding shells: the narrow
    bumps can fall between the 2000 directions the bounds are sampled on."""

    def __init__(self):
        super().__init__()
        rng = np.random.RandomState(DETAIL_SEED)
        self.relief_bank = _bank(rng, RELIEF_BUMPS, (-60.0, 60.0), (-35.0, 42.0), (1500.0, 4000.0))
        self.freckle_bank = _bank(rng, FRECKLES, (-42.0, 42.0), (-16.0, 9.0), (2000.0, 5000.0))
        self.pore_bank = _bank(rng, PORES, (-30.0, 30.0), (-12.0, 6.0), (10000.0, 14000.0))
        self.mark_bank = _bank(rng, MARKS, (-45.0, 45.0), (-30.0, 38.0), (3500.0, 6000.0))
        self.sheen_bank = _bank(rng, SHEEN_SPOTS, (-40.0, 40.0), (-20.0, 40.0), (600.0, 1500.0))

    def param_specs(self) -> list[ParamSpec]:
        return super().param_specs() + [
            # relief (shape layers)
            ParamSpec("wrinkle_elevation", 1, "shape", "lin", 17.0, 21.0),      # deg, lowest crease
            ParamSpec("wrinkle_spacing", 1, "shape", "lin", 8.0, 10.0),         # deg between creases
            ParamSpec("wrinkle_halfwidth", 1, "shape", "lin", 22.0, 34.0),      # deg of azimuth
            ParamSpec("wrinkle_depth", WRINKLES, "shape", "lin", 0.018, 0.032),  # relative radius
            ParamSpec("wrinkle_wave", 2, "shape", "lin", (0.0, -math.pi), (2.5, math.pi)),
            ParamSpec("crow_depth", 1, "shape", "lin", 0.014, 0.024),
            ParamSpec("crow_spread", 1, "shape", "lin", 18.0, 30.0),            # deg between lines
            ParamSpec("fold_depth", 1, "shape", "lin", 0.018, 0.03),
            ParamSpec("fold_offset", 2, "shape", "lin", -2.0, 2.0),             # deg (az, el)
            ParamSpec("relief_height", RELIEF_BUMPS, "shape", "lin", -1.0, 1.0),
            # paint and gloss (material layers)
            ParamSpec("freckle_amount", 1, "material", "lin", 0.3, 1.0),
            ParamSpec("freckle_strength", FRECKLES, "material", "lin", 0.0, 1.0),
            ParamSpec("freckle_tint", 3, "material", "lin", (0.40, 0.30, 0.25), (0.65, 0.50, 0.45)),
            ParamSpec("pore_strength", PORES, "material", "lin", 0.0, 1.0),
            ParamSpec("stripe_albedo", 3 * STRIPES, "material", "lin", *ALBEDO_RANGE),
            ParamSpec("stripe_strength", STRIPES, "material", "log", 30.0, 300.0),
            ParamSpec("stripe_specular", STRIPES, "material", "lin", 0.0, 0.8),
            ParamSpec("stripe_shininess", STRIPES, "material", "log", 10.0, 300.0),
            ParamSpec("stripe_offset", 4, "material", "lin", -4.0, 4.0),        # deg: start az, el, end az, el
            ParamSpec("mark_albedo", 3, "material", "lin", *ALBEDO_RANGE),
            ParamSpec("mark_strength", MARKS, "material", "lin", 0.0, 1.0),
            ParamSpec("mark_specular", 1, "material", "lin", 0.5, 0.9),
            ParamSpec("mark_shininess", 1, "material", "log", 100.0, 400.0),
            ParamSpec("sheen_strength", SHEEN_SPOTS, "material", "lin", 0.0, 1.0),
            ParamSpec("sheen_specular", 1, "material", "lin", 0.4, 0.9),
            ParamSpec("sheen_shininess", 1, "material", "log", 60.0, 300.0),
        ]

    def build(self, p: dict[str, Tensor]) -> dict[str, Tensor]:
        built = super().build(p)
        deg = math.pi / 180.0
        ref = p["axes"]
        B = ref.shape[0]
        bank = lambda rows: ref.new_tensor(rows)
        sparse = lambda t, power: t.clamp(0.0, 1.0) ** power   # most small, a few strong

        # --- relief: dents and bumps of the surface -----------------------------------
        dirs, kappas, heights = [], [], []

        def per_item(v: Tensor, n: int) -> Tensor:
            """A scalar, a [B] (one per sample), a [1, n] or a [B, n] tensor as [B, n]."""
            return v[:, None].expand(B, n) if v.dim() == 1 else v.expand(B, n)

        def add_bumps(d, kappa, height):
            n = d.shape[1]
            dirs.append(d.expand(B, n, 3))
            kappas.append(per_item(kappa, n))
            heights.append(per_item(height, n))

        # forehead wrinkles: horizontal grooves, gently waving
        half = p["wrinkle_halfwidth"][:, 0] * deg
        amplitude, phase = p["wrinkle_wave"][:, 0] * deg, p["wrinkle_wave"][:, 1]
        t = torch.linspace(-1.0, 1.0, WRINKLE_DENTS, dtype=ref.dtype, device=ref.device)
        taper = _taper(WRINKLE_DENTS, ref)
        for i in range(WRINKLES):
            az = half[:, None] * t
            el = (p["wrinkle_elevation"][:, 0] + i * p["wrinkle_spacing"][:, 0])[:, None] * deg \
                + amplitude[:, None] * torch.sin(3.0 * az + phase[:, None] + i)
            depth = p["wrinkle_depth"][:, i:i + 1] * _CHAIN_OVERLAP * taper
            add_bumps(_direction(az, el), ref.new_tensor(WRINKLE_KAPPA), -depth)
        # crow's feet: short lines fanning out from each eye's outer corner
        spread = p["crow_spread"][:, 0] * deg
        corner_az, corner_el = 24.0 * deg, 9.0 * deg
        for j in range(CROW_LINES):
            angle = (j - (CROW_LINES - 1) / 2.0) * spread
            start_az = torch.full_like(angle, corner_az)
            lines = _chain(start_az, torch.full_like(angle, corner_el),
                           start_az + 11.0 * deg * torch.cos(angle), corner_el + 11.0 * deg * torch.sin(angle),
                           CROW_DENTS)
            depth = (p["crow_depth"] * _CHAIN_OVERLAP * 1.3) * _taper(CROW_DENTS, ref)
            add_bumps(torch.cat([lines, _mirror(lines)], 1), ref.new_tensor(1600.0), -depth.repeat(1, 2))
        # nasolabial folds: from the nose wing down to beside the mouth corner
        d_az, d_el = p["fold_offset"][:, 0] * deg, p["fold_offset"][:, 1] * deg
        fold = _chain(6.5 * deg + d_az, -6.0 * deg + d_el, 12.0 * deg + d_az, -24.0 * deg + d_el, FOLD_DENTS)
        depth = (p["fold_depth"] * _CHAIN_OVERLAP) * _taper(FOLD_DENTS, ref)
        add_bumps(torch.cat([fold, _mirror(fold)], 1), ref.new_tensor(FOLD_KAPPA), -depth.repeat(1, 2))
        # small bumps and dents: h = 0.03 x |x|, x in [-1, 1]
        relief = bank(self.relief_bank)
        add_bumps(_direction(relief[:, 0] * deg, relief[:, 1] * deg)[None],
                  relief[:, 2][None], 0.03 * p["relief_height"] * p["relief_height"].abs())

        built["detail_from"] = built["bump_dirs"].shape[1]
        built["bump_dirs"] = torch.cat([built["bump_dirs"]] + dirs, 1)
        built["bump_kappa"] = torch.cat([built["bump_kappa"]] + kappas, 1)
        built["bump_height"] = torch.cat([built["bump_height"]] + heights, 1)

        # --- paint and gloss: more material patches --------------------------------------
        skin = built["base_albedo"]
        ks0, n0 = built["base_specular"], built["base_shininess"]
        patches = [(built["patch_dirs"], built["patch_kappa"], built["patch_strength"],
                    built["patch_albedo"], built["patch_specular"], built["patch_shininess"])]

        def add(d, kappa, strength, albedo, ks, shin):
            n = d.shape[1]
            albedo = albedo if albedo.dim() == 3 else albedo[:, None, :].expand(B, n, 3)
            patches.append((d.expand(B, n, 3), per_item(kappa, n), per_item(strength, n), albedo,
                            per_item(ks, n), per_item(shin, n)))

        on_bank = lambda rows: _direction(rows[:, 0] * deg, rows[:, 1] * deg)[None]
        # freckles: matte, darker skin; sparse strengths up to 40
        freckles = bank(self.freckle_bank)
        add(on_bank(freckles), freckles[:, 2][None],
            40.0 * sparse(p["freckle_strength"] * p["freckle_amount"], 3),
            _clamp_albedo(skin * p["freckle_tint"]), torch.full_like(ks0, 0.02), n0)
        # pores: tiny dark dots
        pores = bank(self.pore_bank)
        add(on_bank(pores), pores[:, 2][None], 6.0 * sparse(p["pore_strength"], 2),
            _clamp_albedo(skin * 0.6), ks0, n0)
        # face-paint stripes across the cheeks (mirrored), each a chain of sharp-edged patches
        off = p["stripe_offset"] * deg
        stripe_albedo = p["stripe_albedo"].reshape(B, STRIPES, 3)
        for k in range(STRIPES):
            drop = -7.0 * k * deg
            line = _chain(14.0 * deg + off[:, 0], -3.0 * deg + drop + off[:, 1],
                          44.0 * deg + off[:, 2], -10.0 * deg + drop + off[:, 3], STRIPE_PATCHES)
            add(torch.cat([line, _mirror(line)], 1), ref.new_tensor(STRIPE_KAPPA),
                p["stripe_strength"][:, k], stripe_albedo[:, k], p["stripe_specular"][:, k],
                p["stripe_shininess"][:, k])
        # small printed glossy marks with sharp edges
        marks = bank(self.mark_bank)
        add(on_bank(marks), marks[:, 2][None], 400.0 * sparse(p["mark_strength"], 2),
            p["mark_albedo"], p["mark_specular"][:, 0], p["mark_shininess"][:, 0])
        # oily spots: skin albedo, glossy
        sheen = bank(self.sheen_bank)
        add(on_bank(sheen), sheen[:, 2][None], 6.0 * sparse(p["sheen_strength"], 2),
            skin, p["sheen_specular"][:, 0], p["sheen_shininess"][:, 0])

        built.update(_stack_patches(patches))
        return built


CATEGORIES["detailed"] = DetailedCategory

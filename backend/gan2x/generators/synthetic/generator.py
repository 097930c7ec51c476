"""The synthetic generator: a procedural, differentiable stand-in for a GAN.

``z [B, z_dim] --mapping--> ws [B, num_ws, w_dim] --scene--> SyntheticScene
--render--> images [B, 3, R, R]`` (sRGB-encoded, in [-1, 1]) plus ground truth.

Its fixed "weights" come from a fixed internal seed per category, so every
construction gives the same network (like loading a checkpoint).

* mapping: normalise z, two leaky-ReLU dense layers and a linear one (fixed
  random weights), broadcast to ``num_ws``; truncation towards ``w_avg``
  (mean over 8192 latents of a fixed seed).
* scene: each group of scene parameters reads a block of style layers through
  a fixed dense random matrix (so every parameter depends on many latent
  coordinates, and no coordinate is a view or light knob), then is squashed
  into its range. Layer roles (GANverse3D: early layers hold the viewpoint):
  ws[:, 0:2] -> view and light, ws[:, 2:4] -> shape, ws[:, 4:6] ->
  materials and background.
* render: analytic ray casting with S x S supersampling (raycast.py), Phong
  shading exactly as in conventions.py, background gradient composited with
  the coverage mask, ``conventions.srgb_from_linear``, mapped to [-1, 1].
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ... import conventions
from . import raycast
from .shapes import (CATEGORIES, ParamSpec, SyntheticScene, fast_implicit, fibonacci_sphere,
                     modulation_bounds, star_radius)

Tensor = torch.Tensor

_CATEGORY_SEEDS = {"faces": 20221, "objects": 20222, "detailed": 20223}
ROLE_LAYERS = {"view": (0, 2), "shape": (2, 4), "material": (4, 6)}
"""Which style layers (ws[:, a:b]) each role of parameters reads."""

ENTANGLED_ROLES = ("shape", "material")
"""With ``entanglement`` e > 0, these roles' raw (unit-variance, pre-squash)
parameters get ``e * view_raw @ drift`` added, ``drift`` a fixed random
matrix with unit-variance columns: whatever moves the view or the light also
drifts the object's identity, by e standard deviations per standard
deviation of view change, as in real GANs."""

MAX_RADIUS = 0.9
"""Objects are rescaled so that R(u) <= MAX_RADIUS on 2000 sample directions
(the true maximum stays below 0.92 m)."""

LIGHT_POLAR_MAX = math.radians(60.0)
LIGHT_AZIMUTH_MAX = math.radians(120.0)
AMBIENT_RANGE = (0.2, 0.5)
DIFFUSE_RANGE = (0.5, 0.9)
BACKGROUND_RANGE = (0.03, 0.6)

_SQUASH_GAIN = 1.6   # sigmoid(1.6 s) of a unit normal s is close to uniform on (0, 1)


def common_specs(category) -> list[ParamSpec]:
    """View, light and background parameters shared by the categories."""
    return [
        ParamSpec("yaw", 1, "view", "lin", -category.yaw_range, category.yaw_range),
        ParamSpec("pitch", 1, "view", "lin", -category.pitch_range, category.pitch_range),
        # light in the camera frame: polar angle from the viewing direction
        # (camera +Z) and azimuth from camera +Y (up) towards +X
        ParamSpec("light_polar", 1, "view", "lin", 0.0, LIGHT_POLAR_MAX),
        ParamSpec("light_azimuth", 1, "view", "lin", -LIGHT_AZIMUTH_MAX, LIGHT_AZIMUTH_MAX),
        ParamSpec("ambient", 1, "view", "lin", *AMBIENT_RANGE),
        ParamSpec("diffuse", 1, "view", "lin", *DIFFUSE_RANGE),
        ParamSpec("background_colors", 6, "material", "lin", *BACKGROUND_RANGE),
        ParamSpec("background_angle", 1, "material", "lin", -math.pi, math.pi),
    ]


class SyntheticGenerator(nn.Module):
    """Procedural differentiable generator with ground truth (see module doc).

    Args:
        category: "faces", "objects" or "detailed" (faces with fine relief,
            paint and gloss: shapes.DetailedCategory).
        resolution: output side R in pixels.
        supersample: S, rays per pixel side (S x S averaged for the image).
        march_steps, bisections: ray-marching precision.
        entanglement: identity drift with view and light, 0..1 (above).
        highlight_scale: multiplies every specular intensity ks of the
            scene (clamped to [0, 1]; ground truth included). 1, the default,
            is the generator as designed; the benchmark's diagnostic of how
            strong highlights must be for a fit to use them
            (docs/benchmark.md) raises it.
    """

    img_channels = 3
    view_layers = ROLE_LAYERS["view"][1]
    """Style layers ws[:, :view_layers] that hold view and light (and only
    them): what style-mixing exploration swaps (``gan2x.fit.style_mixing``)."""

    def __init__(self, category: str = "faces", resolution: int = 64, supersample: int = 2,
                 z_dim: int = 64, w_dim: int = 64, num_ws: int = 6,
                 march_steps: int = 16, bisections: int = 6, entanglement: float = 0.0,
                 highlight_scale: float = 1.0):
        super().__init__()
        if not 0.0 <= float(entanglement) <= 1.0:
            raise ValueError(f"entanglement must be in [0, 1], got {entanglement}")
        if not (math.isfinite(float(highlight_scale)) and float(highlight_scale) >= 0.0):
            raise ValueError(f"highlight_scale must be a finite number >= 0, got {highlight_scale}")
        self.entanglement = float(entanglement)
        self.highlight_scale = float(highlight_scale)
        if category not in CATEGORIES:
            raise ValueError(f"unknown synthetic category {category!r}; known: {sorted(CATEGORIES)}")
        if num_ws < 6:
            raise ValueError("num_ws must be at least 6")
        self.category = category
        self.spec = f"synthetic:{category}"
        self.template = CATEGORIES[category]()
        self.z_dim, self.w_dim, self.num_ws = int(z_dim), int(w_dim), int(num_ws)
        self.img_resolution = int(resolution)
        self.supersample = int(supersample)
        self.march_steps = int(march_steps)
        self.bisections = int(bisections)
        self.specs = common_specs(self.template) + self.template.param_specs()

        rng = np.random.RandomState(_CATEGORY_SEEDS[category])
        as_buffer = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32)
        # mapping network
        dims = [self.z_dim, self.w_dim, self.w_dim, self.w_dim]
        for i in range(3):
            gain = math.sqrt(2.0) if i < 2 else 1.0
            self.register_buffer(f"map_weight{i}", as_buffer(
                rng.randn(dims[i], dims[i + 1]) * gain / math.sqrt(dims[i])))
            self.register_buffer(f"map_bias{i}", as_buffer(0.1 * rng.randn(dims[i + 1])))
        # mixing matrices, one per role
        for role, (a, b) in ROLE_LAYERS.items():
            fan_in = (b - a) * self.w_dim
            n_out = sum(s.raw_size for s in self.specs if s.role == role)
            self.register_buffer(f"mix_{role}", as_buffer(rng.randn(fan_in, n_out) / math.sqrt(fan_in)))
        # fixed offsets of direction parameters (so that w_avg gives valid directions)
        for spec in self.specs:
            if spec.kind == "dir":
                bias = rng.randn(spec.size, 3)
                bias *= 0.6 / np.linalg.norm(bias, axis=1, keepdims=True)
                self.register_buffer(f"dir_bias_{spec.name}", as_buffer(bias))
        self.register_buffer("sphere_dirs", as_buffer(fibonacci_sphere(2000)))
        # identity drift with view and light (see ``entanglement``); its own
        # random stream, so the samples at entanglement 0 do not change
        drift_rng = np.random.RandomState(_CATEGORY_SEEDS[category] + 2000)
        n_view = sum(s.raw_size for s in self.specs if s.role == "view")
        for role in ENTANGLED_ROLES:
            n_out = sum(s.raw_size for s in self.specs if s.role == role)
            self.register_buffer(f"drift_{role}", as_buffer(drift_rng.randn(n_view, n_out) / math.sqrt(n_view)))

        # statistics of W (like StyleGAN's w_avg) and of the raw mixed outputs,
        # computed in float64 from the float32 weights: the same bits on any machine
        z = np.random.RandomState(_CATEGORY_SEEDS[category] + 1000).randn(8192, self.z_dim)
        w = self._map(torch.as_tensor(z, dtype=torch.float64), dtype=torch.float64)
        w_avg, w_std = w.mean(0), w.std(0).clamp_min(1e-6)
        self.register_buffer("w_avg", w_avg.float())
        self.register_buffer("w_std", w_std.float())
        x = (w - w_avg) / w_std
        for role, (a, b) in ROLE_LAYERS.items():
            mix = getattr(self, f"mix_{role}").double()
            raw = x @ mix.reshape(b - a, self.w_dim, -1).sum(0)     # broadcast w in every layer
            self.register_buffer(f"mix_scale_{role}", raw.std(0).clamp_min(1e-6).float())

    # --- StyleGAN-like interface --------------------------------------------------

    @property
    def device(self) -> torch.device:
        return self.w_avg.device

    def z_from_seed(self, seed: int) -> Tensor:
        """[1, z_dim]: ``np.random.RandomState(seed).randn(1, z_dim)``."""
        z = np.random.RandomState(int(seed)).randn(1, self.z_dim)
        return torch.as_tensor(z, dtype=torch.float32, device=self.device)

    def _map(self, z: Tensor, dtype=torch.float32) -> Tensor:
        x = z * torch.rsqrt(z.square().mean(1, keepdim=True) + 1e-8)
        for i in range(3):
            x = x @ getattr(self, f"map_weight{i}").to(dtype) + getattr(self, f"map_bias{i}").to(dtype)
            if i < 2:
                x = F.leaky_relu(x, 0.2)
        return x

    def mapping(self, z: Tensor, truncation_psi: float = 1.0) -> Tensor:
        """z [B, z_dim] -> ws [B, num_ws, w_dim] (one w broadcast to every
        layer), truncated towards ``w_avg``: ``w_avg + psi (w - w_avg)``."""
        if z.dim() != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must be [B, {self.z_dim}], got {tuple(z.shape)}")
        w = self._map(z.to(self.device, torch.float32))
        w = self.w_avg + truncation_psi * (w - self.w_avg)
        return w[:, None, :].repeat(1, self.num_ws, 1)

    def synthesis(self, ws: Tensor) -> Tensor:
        """ws [B, num_ws, w_dim] -> images [B, 3, R, R], sRGB-encoded in [-1, 1].
        Equal to ``ground_truth(ws)["image"]``."""
        return self._render(self.scene(ws), None, None, None, None, None, maps=False)["image"]

    def forward(self, z: Tensor, truncation_psi: float = 1.0) -> Tensor:
        """``synthesis(mapping(z, truncation_psi))``."""
        return self.synthesis(self.mapping(z, truncation_psi))

    # --- latents -> scene -----------------------------------------------------------

    def _mix(self, x: Tensor, role: str) -> Tensor:
        a, b = ROLE_LAYERS[role]
        raw = x[:, a:b].reshape(x.shape[0], -1) @ getattr(self, f"mix_{role}")
        return raw / getattr(self, f"mix_scale_{role}")

    def parameters_from_ws(self, ws: Tensor) -> dict[str, Tensor]:
        """Squashed parameter groups (see shapes.ParamSpec): name -> [B, size]
        (``dir`` groups: [B, size, 3] unit vectors)."""
        if ws.dim() == 2:
            ws = ws[:, None, :].expand(-1, self.num_ws, -1)
        if ws.dim() != 3 or ws.shape[1] != self.num_ws or ws.shape[2] != self.w_dim:
            raise ValueError(f"ws must be [B, {self.num_ws}, {self.w_dim}], got {tuple(ws.shape)}")
        x = (ws - self.w_avg) / self.w_std
        params = {}
        raws = {role: self._mix(x, role) for role in ROLE_LAYERS}
        if self.entanglement > 0.0:
            for role in ENTANGLED_ROLES:
                raws[role] = raws[role] + self.entanglement * raws["view"] @ getattr(self, f"drift_{role}")
        for role in ROLE_LAYERS:
            raw = raws[role]
            offset = 0
            for spec in (s for s in self.specs if s.role == role):
                s = raw[:, offset:offset + spec.raw_size]
                offset += spec.raw_size
                if spec.kind == "dir":
                    v = s.reshape(-1, spec.size, 3) + getattr(self, f"dir_bias_{spec.name}")
                    params[spec.name] = v / v.norm(dim=-1, keepdim=True).clamp_min(1e-6)
                    continue
                lo = torch.as_tensor(spec.lo, dtype=s.dtype, device=s.device)
                hi = torch.as_tensor(spec.hi, dtype=s.dtype, device=s.device)
                t = torch.sigmoid(_SQUASH_GAIN * s)
                if spec.kind == "log":
                    params[spec.name] = torch.exp(lo.log() + (hi.log() - lo.log()) * t)
                else:
                    params[spec.name] = lo + (hi - lo) * t
        return params

    def scene(self, ws: Tensor) -> SyntheticScene:
        """ws [B, num_ws, w_dim] -> the batch's SyntheticScene (differentiable)."""
        p = self.parameters_from_ws(ws.to(self.device, torch.float32))
        built = self.template.build(p)
        B = ws.shape[0]
        # rescale so that the object stays inside the unit sphere
        u = self.sphere_dirs[None].expand(B, -1, -1)
        radius = star_radius(built["axes"], built["bump_dirs"], built["bump_kappa"],
                             built["bump_height"], u)[0]
        r_max = radius.max(1).values
        scale = (MAX_RADIUS / r_max).clamp(max=1.0)
        built["axes"] = built["axes"] * scale[:, None]
        if self.highlight_scale != 1.0:
            for name in ("base_specular", "patch_specular"):
                built[name] = (built[name] * self.highlight_scale).clamp(0.0, 1.0)
        yaw, pitch = p["yaw"][:, 0], p["pitch"][:, 0]
        polar, azimuth = p["light_polar"][:, 0], p["light_azimuth"][:, 0]
        light_camera = torch.stack([torch.sin(polar) * torch.sin(azimuth),
                                    torch.sin(polar) * torch.cos(azimuth),
                                    torch.cos(polar)], -1)
        rotation = raycast.orbit_world_from_camera(yaw, pitch)[:, :3, :3]
        towards_light = (rotation @ light_camera[..., None])[..., 0]
        return SyntheticScene(
            category=self.category, **built,
            yaw=yaw, pitch=pitch, towards_light=towards_light,
            ambient=p["ambient"][:, 0], diffuse=p["diffuse"][:, 0],
            background_colors=p["background_colors"].reshape(B, 2, 3),
            background_angle=p["background_angle"][:, 0],
            radius_min=radius.min(1).values * scale, radius_max=r_max * scale,
        )

    # --- rendering ---------------------------------------------------------------------

    def ground_truth(self, ws: Tensor) -> dict[str, Tensor]:
        """``render(scene(ws))``: every map at the sample's own view and light."""
        return self.render(self.scene(ws))

    def render(self, scene: SyntheticScene, world_from_camera: Tensor | None = None,
               towards_light: Tensor | None = None, ambient: Tensor | None = None,
               diffuse: Tensor | None = None, resolution: int | None = None) -> dict[str, Tensor]:
        """Render ``scene`` (B samples), optionally under another camera / light.

        Args (None = the sample's own):
            world_from_camera [B, 4, 4]: camera-to-world (conventions.py; the
                field of view is always conventions.FOV_DEGREES).
            towards_light [B, 3]: unit direction towards the light, WORLD frame.
            ambient [B], diffuse [B]: ka, kd (white light).
            resolution: R (default img_resolution).

        Returns a dict (maps are 0 where the centre ray misses):
            image [B, 3, R, R]: sRGB-encoded in [-1, 1], the supersampled
                average of clamped linear radiance over the background.
            radiance [B, 3, R, R]: linear Phong colour of the centre ray's
                surface point, before clamping and background.
            depth [B, R, R]: metres along the camera's -Z axis.
            normal [B, 3, R, R]: unit outward normal in the CAMERA frame.
            normal_world [B, 3, R, R]: the same in the world frame.
            position [B, 3, R, R]: world-frame surface point (metres).
            albedo [B, 3, R, R]: linear; specular [B, R, R]: ks;
            shininess [B, R, R]: Phong exponent.
            mask [B, R, R]: coverage (fraction of the S x S subsample rays hitting).
            hit [B, R, R] bool: the centre ray hits.
            background [B, 3, R, R]: the linear background colour.
            world_from_camera [B, 4, 4], towards_light [B, 3] (world),
            ambient [B], diffuse [B]: what was used.
        """
        return self._render(scene, world_from_camera, towards_light, ambient, diffuse,
                            resolution, maps=True)

    def _render(self, scene: SyntheticScene, world_from_camera: Tensor | None,
                towards_light: Tensor | None, ambient: Tensor | None, diffuse: Tensor | None,
                resolution: int | None, maps: bool) -> dict[str, Tensor]:
        """``render``; with ``maps=False`` only the image (the same values)."""
        device = scene.device
        B = scene.batch_size
        R = int(resolution or self.img_resolution)
        S = self.supersample
        dtype = torch.float32
        if world_from_camera is None:
            world_from_camera = scene.world_from_camera()
        world_from_camera = world_from_camera.to(device, dtype)
        light = scene.towards_light if towards_light is None else towards_light.to(device, dtype)
        light = light / light.norm(dim=-1, keepdim=True)
        ka = scene.ambient if ambient is None else torch.as_tensor(ambient, dtype=dtype, device=device).expand(B)
        kd = scene.diffuse if diffuse is None else torch.as_tensor(diffuse, dtype=dtype, device=device).expand(B)

        # rays: centre of every pixel, then the S x S subsamples
        dirs_camera = raycast.pixel_directions(R, 1, device, dtype)
        n_centre = dirs_camera.shape[0]
        if S > 1:
            dirs_camera = torch.cat([dirs_camera, raycast.pixel_directions(R, S, device, dtype)], 0)
        rotation = world_from_camera[:, :3, :3]
        origins = world_from_camera[:, None, :3, 3]                           # [B, 1, 3]
        dirs = dirs_camera[None] @ rotation.transpose(1, 2)                  # [B, N, 3]
        n_rays = dirs.shape[1]

        # march without gradient, inside the shell between two ellipsoids
        # (the bump modulation's sampled min and max, with margins)
        with torch.no_grad():
            frozen = scene.detach()
            low, high = modulation_bounds(frozen, self.sphere_dirs)
            margin = getattr(self.template, "shell_margin", 0.0)
            if margin:  # narrow bumps may fall between the sampled directions
                low, high = low - margin, high + margin
            o, d = origins.detach(), dirs.detach()
            outer = frozen.axes * (high * 1.03 + 0.005)[:, None]
            t_near, t_far, meets = raycast.intersect_ellipsoid(o, d, outer)
            meets = meets & (t_far > 0)
            index, valid = raycast.compact(meets)
            d_c = raycast.gather_rays(d, index)
            t_start = raycast.gather_rays(t_near, index).clamp_min(0.0)
            t_stop = raycast.gather_rays(t_far, index)
            inner = frozen.axes * (low * 0.95)[:, None]
            t_inner, _, meets_inner = raycast.intersect_ellipsoid(o, d_c, inner)
            t_stop = torch.where(meets_inner & (t_inner > t_start), t_inner, t_stop)
            t_stop = torch.maximum(t_stop, t_start)
            t_root, hit_c = raycast.march(fast_implicit(frozen), o, d_c, t_start, t_stop, valid,
                                          self.march_steps, self.bisections)
            index_h, valid_h = raycast.compact(hit_c & valid)
            ray_index = torch.gather(index, 1, index_h)                      # [B, H] into n_rays
            t0 = torch.gather(t_root, 1, index_h)

        # differentiable part, on the hit rays only
        d_h = raycast.gather_rays(dirs, ray_index)                           # [B, H, 3]
        p0 = origins + t0[..., None] * d_h
        g0, grad0 = scene.implicit_and_gradient(p0)
        slope = (grad0 * d_h).sum(-1)
        t = raycast.newton_step(g0, slope, t0)
        points = origins + t[..., None] * d_h
        normal_w = grad0 / grad0.norm(dim=-1, keepdim=True)
        albedo, specular, shininess = scene.material(points)
        radiance = phong(albedo, specular, shininess, normal_w, light[:, None, :], -d_h,
                         ka[:, None], kd[:, None])
        forward = -world_from_camera[:, None, :3, 2]
        depth = t * (d_h * forward).sum(-1)
        normal_c = normal_w @ rotation                                       # R^T n, as rows

        # back to all rays
        keep = valid_h.to(dtype)

        def scatter(values: Tensor) -> Tensor:
            values = values * (keep if values.dim() == 2 else keep[..., None])
            if values.dim() == 2:
                return torch.zeros(B, n_rays, dtype=dtype, device=device).scatter(1, ray_index, values)
            c = values.shape[-1]
            return torch.zeros(B, n_rays, c, dtype=dtype, device=device).scatter(
                1, ray_index[..., None].expand(-1, -1, c), values)

        hit_all = torch.zeros(B, n_rays, dtype=torch.bool, device=device).scatter(1, ray_index, valid_h)
        to_map = lambda v: v[:, :n_centre].reshape(B, R, R)
        to_image = lambda v: v[:, :n_centre].reshape(B, R, R, -1).permute(0, 3, 1, 2)

        # the image: supersampled average of clamped radiance over the background
        colour = scatter(radiance.clamp(0.0, 1.0))
        background = scene.background(R)
        if S > 1:
            sub = colour[:, n_centre:].reshape(B, R, S, R, S, 3)
            covered = hit_all[:, n_centre:].reshape(B, R, S, R, S).to(dtype)
            foreground = sub.mean((2, 4)).permute(0, 3, 1, 2)
            mask = covered.mean((2, 4))
        else:
            foreground = to_image(colour)
            mask = to_map(hit_all).to(dtype)
        linear = foreground + (1.0 - mask[:, None]) * background
        image = conventions.srgb_from_linear(linear) * 2.0 - 1.0

        if not maps:
            return dict(image=image)
        return dict(
            image=image,
            radiance=to_image(scatter(radiance)),
            depth=to_map(scatter(depth)),
            normal=to_image(scatter(normal_c)),
            normal_world=to_image(scatter(normal_w)),
            position=to_image(scatter(points)),
            albedo=to_image(scatter(albedo)),
            specular=to_map(scatter(specular)),
            shininess=to_map(scatter(shininess)),
            mask=mask,
            hit=to_map(hit_all),
            background=background,
            world_from_camera=world_from_camera,
            towards_light=light,
            ambient=ka,
            diffuse=kd,
        )


def phong(albedo: Tensor, specular: Tensor, shininess: Tensor, normal: Tensor,
          towards_light: Tensor, towards_camera: Tensor, ambient: Tensor, diffuse: Tensor) -> Tensor:
    """conventions.py's Phong equation, per point (linear colour, unclamped)::

        c = a * (ka + kd * max(0, n.l)) + kd * ks * max(0, r.v) ** shininess,  r = 2 (n.l) n - l

    albedo [..., 3], specular / shininess [...], unit normal / towards_light /
    towards_camera [..., 3] (broadcastable), ambient / diffuse broadcastable to [...]."""
    n_dot_l = (normal * towards_light).sum(-1)
    mirror = 2.0 * n_dot_l[..., None] * normal - towards_light
    r_dot_v = (mirror * towards_camera).sum(-1)
    # max(0, x) ** n with finite gradients at x = 0 (also w.r.t. n)
    lobe = torch.where(r_dot_v > 0, r_dot_v.clamp_min(1e-12) ** shininess, torch.zeros_like(r_dot_v))
    shade = ambient + diffuse * n_dot_l.clamp_min(0.0)
    return albedo * shade[..., None] + (diffuse * specular * lobe)[..., None]

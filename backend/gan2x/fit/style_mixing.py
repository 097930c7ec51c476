"""Style-mixing exploration (METHOD.md section 3, step 2; GANverse3D).

An alternative to projection (``projection.py``) for generators with
per-layer latents (W+) whose early style layers hold the viewpoint: a pseudo
sample keeps the target's later layers (identity: shape, materials) and
takes its first ``generator.view_layers`` layers from another sample (a
random ``z`` through the mapping, drawn from the fit's random generator so a
fit stays deterministic). The generator itself then draws the same object
from another view and under another light; no optimisation is needed.

The view and light of such a sample are unknown, so each pseudo sample's
camera (yaw, pitch) and light direction are initialised by a coarse search
(GANverse3D initialises cameras from coarse viewpoint bins): the current
estimate is rendered once at low resolution for every camera of a small grid,
reshaded under a few light directions per camera, and the candidate with the
lowest L1 difference to the (downsampled) mixed image wins. The fit's
exploitation step then refines these cameras and lights as it does for any
pseudo sample.

Units: angles in degrees in ``ViewSearchGrid`` and radians in ``ImageState``;
cameras are orbits relative to the target's (fixed, frontal) camera, which
defines the world frame. Images are sRGB-encoded: ``[-1, 1]`` for the
generator's, ``[0, 1]`` for rendered colours.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from .. import conventions
from ..render.cameras import camera_rays, orbit_world_from_camera, pixel_directions_camera
from ..render.phong import phong
from ..render.volume import SamplingSettings
from .asset_model import AssetModel
from .image_state import ImageState, pseudo_state

Tensor = torch.Tensor

# ``FitSettings.exploration`` values, stated in gan2x.config with the other request-level settings: projection
# of rendered pseudo samples (METHOD.md); style mixing alone; style mixing, then projection of the estimate
# rendered at the searched views, starting from the mixed latents.
from ..config import EXPLORATIONS  # noqa: E402


def check_exploration(exploration: str, generator) -> None:
    """Raise a ValueError a person can act on when ``exploration`` is unknown,
    or needs per-layer view latents that ``generator`` does not offer."""
    if exploration not in EXPLORATIONS:
        raise ValueError(f"unknown exploration {exploration!r}; choose one of {list(EXPLORATIONS)}")
    if exploration != "projection":
        view_layer_count(generator, exploration)


def view_layer_count(generator, exploration: str = "style_mixing") -> int:
    """``generator.view_layers``: how many leading style layers hold the view,
    checked to leave at least one identity layer."""
    layers = getattr(generator, "view_layers", None)
    spec = getattr(generator, "spec", type(generator).__name__)
    if layers is None:
        raise ValueError(f"exploration {exploration!r} needs a generator with per-layer latents (W+) that "
                         f"names its viewpoint layers (a view_layers attribute, e.g. StyleGAN2's 4); {spec} has "
                         f"none: use exploration 'projection'")
    layers = int(layers)
    if not 0 < layers < int(generator.num_ws):
        raise ValueError(f"exploration {exploration!r} needs 0 < view_layers < num_ws; {spec} has view_layers "
                         f"{layers} and num_ws {generator.num_ws}: use exploration 'projection'")
    return layers


def mix_view_layers(generator, target_ws: Tensor, count: int, rng: torch.Generator,
                    truncation_psi: float = 1.0) -> Tensor:
    """ws [count, num_ws, w_dim]: ``target_ws`` [1, num_ws, w_dim] with its
    first ``view_layers`` layers replaced by those of ``count`` random samples
    (``z ~ N(0, 1)`` drawn from ``rng``, a CPU generator, then the mapping
    with ``truncation_psi``)."""
    layers = view_layer_count(generator)
    z = torch.randn(count, int(generator.z_dim), generator=rng).to(target_ws.device, target_ws.dtype)
    with torch.no_grad():
        others = generator.mapping(z, truncation_psi=truncation_psi)
    ws = target_ws.detach().expand(count, -1, -1).clone()
    ws[:, :layers] = others[:, :layers].to(ws.dtype)
    return ws


@dataclass(frozen=True)
class ViewSearchGrid:
    """The candidates of the coarse search: every (yaw, pitch) camera, each
    under every light direction (in that camera's frame: polar angle from the
    direction towards the camera, ``light_azimuths`` evenly spaced azimuths
    per non-zero polar angle). ``resolution``: side of the search's renders."""

    yaw_degrees: tuple[float, ...]
    pitch_degrees: tuple[float, ...]
    light_polar_degrees: tuple[float, ...] = (0.0, 25.0, 50.0)
    light_azimuths: int = 6
    resolution: int = 32

    @classmethod
    def for_ranges(cls, max_yaw_degrees: float, max_pitch_degrees: float, max_light_angle_degrees: float,
                   resolution: int = 32) -> "ViewSearchGrid":
        """9 yaws over +-2 max_yaw (capped at 180: a mixed sample's view is
        relative to the target's, which may itself sit at the edge of the
        range), 5 pitches over +-2 max_pitch (capped at 80), lights at 0,
        half and all of ``max_light_angle_degrees``."""
        yaw = min(2.0 * max_yaw_degrees, 180.0)
        pitch = min(2.0 * max_pitch_degrees, 80.0)
        return cls(yaw_degrees=tuple(torch.linspace(-yaw, yaw, 9).tolist()),
                   pitch_degrees=tuple(torch.linspace(-pitch, pitch, 5).tolist()),
                   light_polar_degrees=(0.0, 0.5 * max_light_angle_degrees, max_light_angle_degrees),
                   resolution=resolution)

    def lights_in_camera(self) -> Tensor:
        """[L, 3] unit directions towards the light, camera frame (+Z towards the camera)."""
        lights = []
        for polar in self.light_polar_degrees:
            azimuths = [0.0] if polar == 0.0 else [2 * math.pi * k / self.light_azimuths
                                                   for k in range(self.light_azimuths)]
            theta = math.radians(polar)
            lights.extend([math.sin(theta) * math.cos(a), math.sin(theta) * math.sin(a), math.cos(theta)]
                          for a in azimuths)
        return torch.tensor(lights, dtype=torch.float32)


@dataclass
class ViewSearchResult:
    yaw: Tensor
    """[N] radians."""
    pitch: Tensor
    """[N] radians."""
    towards_light: Tensor
    """[N, 3] unit, world frame."""
    l1: Tensor
    """[N] the winning candidate's mean absolute sRGB difference, in [0, 1]."""


def coarse_view_search(model: AssetModel, target_state: ImageState, images: Tensor, grid: ViewSearchGrid,
                       sampling: SamplingSettings, coarse_sdf=None) -> ViewSearchResult:
    """Best (camera, light) of ``grid`` for each of ``images`` [N, 3, R, R]
    (in [-1, 1], sRGB-encoded): the current estimate rendered at
    ``grid.resolution`` with the target's background, ambient and diffuse,
    compared by L1 to the images area-downsampled to that resolution.

    One render per camera (geometry and materials), reshaded under every
    light with the fit's Phong model (``render.phong``). ``coarse_sdf`` (an
    ``SDFGridCache``) speeds up the coarse march, as in the fit's steps."""
    device = images.device
    size = grid.resolution
    yaws = torch.tensor([math.radians(y) for y in grid.yaw_degrees for _ in grid.pitch_degrees])
    pitches = torch.tensor([math.radians(p) for _ in grid.yaw_degrees for p in grid.pitch_degrees])
    ambient, diffuse = float(target_state.ambient().detach()), float(target_state.diffuse().detach())
    states = [pseudo_state(target_state, yaw, pitch) for yaw, pitch in zip(yaws.tolist(), pitches.tolist())]
    cameras = len(states)
    pixel_ids = torch.arange(size * size, device=device)[None].expand(cameras, -1)
    out = model.render_pixels(states, pixel_ids, size, sampling, create_graph=False,  # needs autograd on
                              coarse_sdf=coarse_sdf)
    with torch.no_grad():
        world_from_camera = orbit_world_from_camera(yaws, pitches).to(device)           # [C, 4, 4]
        _, directions = camera_rays(world_from_camera, pixel_directions_camera(size, device=device)[pixel_ids])
        lights = (world_from_camera[:, None, :3, :3]
                  @ grid.lights_in_camera().to(device)[None, :, :, None])[..., 0]     # [C, L, 3] world
        radiance = phong(out["albedo"].detach()[:, None], out["specular"].detach()[:, None],
                         out["shininess"].detach()[:, None], out["normal"].detach()[:, None],
                         lights[:, :, None, :], -directions[:, None], ambient, diffuse)  # [C, L, P, 3]
        opacity = out["opacity"].detach()[:, None, :, None]
        linear = opacity * radiance + (1 - opacity) * out["background"].detach()[:, None]
        candidates = conventions.srgb_from_linear(linear)                               # [C, L, P, 3]
        wanted = F.interpolate(((images + 1) / 2).clamp(0, 1), size=(size, size), mode="area")
        wanted = wanted.permute(0, 2, 3, 1).reshape(images.shape[0], 1, 1, size * size, 3)
        errors = (candidates[None] - wanted).abs().mean(dim=(-1, -2))                   # [N, C, L]
        best = errors.reshape(images.shape[0], -1).argmin(dim=1)
        camera, light = best // lights.shape[1], best % lights.shape[1]
        return ViewSearchResult(yaw=yaws.to(device)[camera], pitch=pitches.to(device)[camera],
                                towards_light=lights[camera, light],
                                l1=errors.reshape(images.shape[0], -1).gather(1, best[:, None])[:, 0])


@dataclass
class StyleMixingResult:
    images: Tensor
    """[N, 3, R, R] in [-1, 1]: the generator's images of ``ws``."""
    ws: Tensor
    """[N, num_ws, w_dim] the mixed latents."""
    states: list[ImageState]
    """Each image's camera and light from the coarse search (background,
    ambient and diffuse: the target's); cameras free to move."""
    search: ViewSearchResult


def explore_by_style_mixing(generator, target_ws: Tensor, model: AssetModel, target_state: ImageState,
                            count: int, rng: torch.Generator, grid: ViewSearchGrid,
                            sampling: SamplingSettings, coarse_sdf=None) -> StyleMixingResult:
    """``count`` pseudo samples by style mixing (``mix_view_layers``), their
    images, and cameras and lights from ``coarse_view_search``."""
    ws = mix_view_layers(generator, target_ws, count, rng)
    with torch.no_grad():
        images = generator.synthesis(ws)
    search = coarse_view_search(model, target_state, images, grid, sampling, coarse_sdf)
    states = [pseudo_state(target_state, yaw, pitch, tuple(light))
              for yaw, pitch, light in zip(search.yaw.tolist(), search.pitch.tolist(), search.towards_light.tolist())]
    return StyleMixingResult(images=images.detach(), ws=ws, states=states, search=search)

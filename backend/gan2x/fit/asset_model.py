"""The asset being recovered: shape, materials and the SDF's density, shared
by every image; plus rendering of images through their ``ImageState``."""
from __future__ import annotations

import torch
from torch import nn

from .. import conventions
from ..fields import EllipsoidPriorSDF, MaterialField
from ..render.cameras import camera_rays, forward_axis, pixel_directions_camera
from ..render.volume import LaplaceDensity, SamplingSettings, render_rays
from .image_state import ImageState, pixel_grid_xy, stack_lights


class AssetModel(nn.Module):
    def __init__(self, semi_axes=conventions.PRIOR_SEMI_AXES_METRES, specular: bool = True, encoding: str = "fourier"):
        """``specular=False`` is the Lambertian model of GAN2Shape (ks = 0
        everywhere), the benchmark's ablation. ``encoding`` is the input
        encoding of both fields: "fourier", "triplane" or "hashgrid"
        (``gan2x.fields.encodings.make_encoding``)."""
        super().__init__()
        self.sdf = EllipsoidPriorSDF(semi_axes=semi_axes, encoding=encoding)
        self.materials = MaterialField(encoding=encoding)
        if not specular:
            self.set_specular(False)
        self.density = LaplaceDensity()

    def set_specular(self, enabled: bool) -> None:
        """Turn the specular term on (ks in (0, 1), Phong) or off (ks = 0,
        Lambertian) without touching the material field's weights: the
        fit's shading schedule (``FitSettings.specular_in_stage``)."""
        self.materials.max_specular = 1.0 if enabled else 0.0

    def shape_parameters(self):
        return list(self.sdf.parameters()) + list(self.density.parameters())

    def material_parameters(self):
        return list(self.materials.parameters())

    def render_pixels(self, states: list[ImageState], pixel_ids: torch.Tensor, resolution: int,
                      settings: SamplingSettings, create_graph: bool = True,
                      coarse_sdf=None) -> dict[str, torch.Tensor]:
        """Render the pixels ``pixel_ids`` [B, N] (flat, row-major) of B images.

        Adds to render_rays' outputs: ``rgb`` [B, N, 3] the composited pixel,
        sRGB-encoded in [0, 1]; ``depth`` [B, N] metres along each camera's axis."""
        device = pixel_ids.device
        world_from_camera = torch.stack([s.world_from_camera() for s in states]).to(device)
        directions_camera = pixel_directions_camera(resolution, device=device)[pixel_ids]  # [B, N, 3]
        origins, directions = camera_rays(world_from_camera, directions_camera)
        towards_light, ambient, diffuse = stack_lights(states)
        out = render_rays(self.sdf, self.materials, self.density, origins, directions,
                          towards_light, ambient, diffuse, settings, create_graph=create_graph,
                          coarse_sdf=coarse_sdf)
        pixel_xy = pixel_grid_xy(pixel_ids, resolution)
        background = torch.stack([s.background(xy) for s, xy in zip(states, pixel_xy)])
        opacity = out["opacity"][..., None]
        linear = opacity * out["radiance"] + (1.0 - opacity) * background
        out["rgb"] = conventions.srgb_from_linear(linear)
        out["background"] = background
        out["depth"] = out["distance"] * (directions * forward_axis(world_from_camera)[:, None, :]).sum(-1)
        return out

    def render_image(self, state: ImageState, resolution: int, settings: SamplingSettings,
                     chunk: int = 4096) -> dict[str, torch.Tensor]:
        """A whole image without parameter gradients; maps reshaped to [R, R, ...]."""
        device = next(self.parameters()).device
        pieces: dict[str, list[torch.Tensor]] = {}
        all_ids = torch.arange(resolution * resolution, device=device)
        for start in range(0, all_ids.numel(), chunk):
            out = self.render_pixels([state], all_ids[None, start:start + chunk], resolution, settings,
                                     create_graph=False)
            for key, value in out.items():
                pieces.setdefault(key, []).append(value.detach()[0])
        return {key: torch.cat(values).reshape(resolution, resolution, *values[0].shape[1:])
                for key, values in pieces.items()}

"""What is estimated per image: camera, light and background.

The target image's camera is fixed (frontal): it defines the world frame, as in
GAN2Shape, so the asset comes out posed as the target shows it. Pseudo samples
get their own camera (an orbit relative to the target), light and background.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..render.cameras import orbit_world_from_camera


class ImageState(nn.Module):
    """One image's camera (yaw, pitch radians), light (unit direction towards
    the light, world frame; ambient ka and diffuse kd) and background (a
    ``grid x grid`` linear-RGB image, bilinearly upsampled)."""

    def __init__(self, yaw: float = 0.0, pitch: float = 0.0,
                 towards_light=(0.0, 0.0, 1.0), ambient: float = 0.4, diffuse: float = 0.6,
                 background_rgb=(0.5, 0.5, 0.5), grid: int = 4, camera_fixed: bool = False):
        super().__init__()
        self.yaw = nn.Parameter(torch.tensor(float(yaw)), requires_grad=not camera_fixed)
        self.pitch = nn.Parameter(torch.tensor(float(pitch)), requires_grad=not camera_fixed)
        self.light_vector = nn.Parameter(torch.tensor(towards_light, dtype=torch.float32))
        self.log_ambient = nn.Parameter(torch.tensor(math.log(ambient)))
        self.log_diffuse = nn.Parameter(torch.tensor(math.log(diffuse)))
        rgb = torch.tensor(background_rgb, dtype=torch.float32).clamp(0.02, 0.98)
        self.background_logit = nn.Parameter(torch.logit(rgb)[:, None, None].repeat(1, grid, grid))

    def world_from_camera(self) -> torch.Tensor:
        """[4, 4]."""
        return orbit_world_from_camera(self.yaw[None], self.pitch[None])[0]

    def towards_light(self) -> torch.Tensor:
        """[3] unit, world frame."""
        return F.normalize(self.light_vector, dim=0)

    def ambient(self) -> torch.Tensor:
        return self.log_ambient.exp()

    def diffuse(self) -> torch.Tensor:
        return self.log_diffuse.exp()

    def background(self, pixel_xy: torch.Tensor) -> torch.Tensor:
        """pixel_xy [N, 2] in [-1, 1] (x right, y down) -> linear RGB [N, 3]."""
        grid = pixel_xy.reshape(1, 1, -1, 2)
        sampled = F.grid_sample(torch.sigmoid(self.background_logit)[None], grid,
                                mode="bilinear", align_corners=True)
        return sampled[0, :, 0, :].transpose(0, 1)

    def camera_parameters(self):
        return [self.yaw, self.pitch]

    def light_parameters(self):
        return [self.light_vector, self.log_ambient, self.log_diffuse]

    def background_parameters(self):
        return [self.background_logit]


def pseudo_state(target_state: ImageState, yaw: float, pitch: float,
                 towards_light=(0.0, 0.0, 1.0)) -> ImageState:
    """A pseudo sample's state: camera at (yaw, pitch) radians, light
    ``towards_light`` (world frame), and the target's ambient, diffuse and
    background as its start; on the target's device."""
    state = ImageState(yaw=yaw, pitch=pitch, towards_light=towards_light,
                       ambient=float(target_state.ambient().detach()),
                       diffuse=float(target_state.diffuse().detach()),
                       grid=target_state.background_logit.shape[-1])
    with torch.no_grad():
        state.background_logit.copy_(target_state.background_logit)
    return state.to(target_state.background_logit.device)


def stack_lights(states: list[ImageState]):
    """towards_light [B, 3], ambient [B], diffuse [B]."""
    return (torch.stack([s.towards_light() for s in states]),
            torch.stack([s.ambient() for s in states]),
            torch.stack([s.diffuse() for s in states]))


def random_light_in_camera(generator: torch.Generator, world_from_camera: torch.Tensor,
                           max_angle_degrees: float = 60.0) -> torch.Tensor:
    """A unit direction towards a light within ``max_angle_degrees`` of the
    camera's own direction, in the world frame: [3]."""
    angle = math.radians(max_angle_degrees) * torch.rand((), generator=generator).sqrt()
    azimuth = 2 * math.pi * torch.rand((), generator=generator)
    local = torch.stack([torch.sin(angle) * torch.cos(azimuth), torch.sin(angle) * torch.sin(azimuth),
                         torch.cos(angle)])
    return world_from_camera[:3, :3].to(local.dtype) @ local


def pixel_grid_xy(pixel_ids: torch.Tensor, resolution: int) -> torch.Tensor:
    """Flat pixel indices [...] -> grid_sample coordinates [..., 2] in [-1, 1]."""
    rows = torch.div(pixel_ids, resolution, rounding_mode="floor")
    cols = pixel_ids % resolution
    return torch.stack([(cols + 0.5) / resolution * 2 - 1, (rows + 0.5) / resolution * 2 - 1], -1)

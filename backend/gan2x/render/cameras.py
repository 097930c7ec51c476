"""Pinhole cameras and their rays, in the frames of ``gan2x.conventions``.

Shapes: ``B`` images, ``R`` pixels a side, ``N = R * R`` rays an image.
Angles are radians, distances metres.
"""
from __future__ import annotations

import math

import torch

from .. import conventions


def orbit_world_from_camera(yaw: torch.Tensor, pitch: torch.Tensor,
                            distance: float = conventions.CAMERA_DISTANCE) -> torch.Tensor:
    """Differentiable twin of ``conventions.orbit_world_from_camera``.

    yaw, pitch: [B] radians -> world_from_camera [B, 4, 4]."""
    cos_yaw, sin_yaw = torch.cos(yaw), torch.sin(yaw)
    cos_pitch, sin_pitch = torch.cos(pitch), torch.sin(pitch)
    zeros, ones = torch.zeros_like(yaw), torch.ones_like(yaw)
    rot_yaw = torch.stack([
        torch.stack([cos_yaw, zeros, sin_yaw], -1),
        torch.stack([zeros, ones, zeros], -1),
        torch.stack([-sin_yaw, zeros, cos_yaw], -1)], -2)
    rot_pitch = torch.stack([
        torch.stack([ones, zeros, zeros], -1),
        torch.stack([zeros, cos_pitch, sin_pitch], -1),
        torch.stack([zeros, -sin_pitch, cos_pitch], -1)], -2)
    rotation = rot_yaw @ rot_pitch
    world_from_camera = torch.zeros(yaw.shape[0], 4, 4, dtype=yaw.dtype, device=yaw.device)
    world_from_camera[:, :3, :3] = rotation
    world_from_camera[:, :3, 3] = rotation[:, :, 2] * distance
    world_from_camera[:, 3, 3] = 1.0
    return world_from_camera


def pixel_directions_camera(resolution: int, fov_degrees: float = conventions.FOV_DEGREES,
                            device=None, dtype=torch.float32,
                            supersample: int = 1) -> torch.Tensor:
    """Unit ray directions in the camera frame, row 0 at the top.

    supersample == 1: one ray through each pixel centre, [R * R, 3] row-major.
    supersample == S > 1: an S x S grid inside each pixel at offsets
    ``(j + 0.5) / S``, ordered as the row-major image of side ``R * S``
    ([(R S)^2, 3]); reshape to [R, S, R, S] to average a pixel."""
    focal = conventions.focal_length_px(resolution, fov_degrees)
    samples = resolution * supersample
    centres = (torch.arange(samples, device=device, dtype=torch.float64) + 0.5) / supersample
    rows, cols = torch.meshgrid(centres, centres, indexing="ij")
    x = (cols - resolution / 2.0) / focal
    y = -(rows - resolution / 2.0) / focal
    directions = torch.stack([x, y, -torch.ones_like(x)], -1).reshape(-1, 3)
    return (directions / directions.norm(dim=-1, keepdim=True)).to(dtype)


def camera_rays(world_from_camera: torch.Tensor, directions_camera: torch.Tensor):
    """World-frame rays of each camera.

    world_from_camera: [B, 4, 4]; directions_camera: [N, 3] or [B, N, 3].
    Returns origins [B, N, 3] and unit directions [B, N, 3]."""
    rotation = world_from_camera[:, :3, :3]
    if directions_camera.dim() == 2:
        directions_camera = directions_camera.unsqueeze(0).expand(rotation.shape[0], -1, -1)
    directions = directions_camera @ rotation.transpose(1, 2)
    origins = world_from_camera[:, None, :3, 3].expand_as(directions)
    return origins, directions


def forward_axis(world_from_camera: torch.Tensor) -> torch.Tensor:
    """The camera's viewing direction (its -Z) in the world: [B, 3]."""
    return -world_from_camera[:, :3, 2]


def half_angle_of_view(fov_degrees: float = conventions.FOV_DEGREES) -> float:
    return math.radians(fov_degrees) / 2.0

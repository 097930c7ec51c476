"""The one place for the conventions every backend stage shares.

Frames and units
----------------
* World ("bundle") frame: right-handed, metres, origin at the object centre,
  +Y up, +Z towards the target camera. The object lies inside the unit sphere.
  This is glTF's frame; the add-on turns it into Blender's Z-up frame.
* Camera frame: OpenGL axes (+X right, +Y up, the camera looks along -Z),
  which is also Blender's camera convention. ``world_from_camera`` is a 4x4
  matrix taking camera-frame points to world points.
* Image: row 0 is the top row; pixel (row, col) centre is at (col + 0.5,
  row + 0.5) in pixel units; the principal point is the image centre.
* Depth: distance along the camera's viewing axis (-Z of the camera), metres.
* Colours: images that cross a module boundary as ``[-1, 1]`` tensors are
  sRGB-encoded (like a GAN's output); albedo, radiance and light strengths are
  linear.

Shading (METHOD.md section 2), per surface point::

    c = a * (ka + kd * max(0, n.l)) + kd * ks * max(0, r.v) ** shininess

with ``a`` the linear albedo, ``ks`` the specular intensity, ``shininess`` the
Phong exponent, ``l`` the unit direction towards the light, ``v`` towards the
camera and ``r = 2 (n.l) n - l``. The highlight term is zero where
``n.l <= 0`` (a light behind the surface gives no highlight), as in Blender.

Blender mapping (the add-on's ``addon/bundle/conventions.py`` mirrors these
and the tests compare them):

* sun strength ``E = pi * kd`` renders ``a * kd * max(0, n.l)`` in Cycles;
  a uniform world of strength ``ka`` renders ``a * ka``;
* Phong exponent to GGX roughness: ``r = (2 / (n + 2)) ** 0.25`` (Blinn-Phong
  to Beckmann width ``alpha = r**2``);
* Phong ``ks`` to specular reflectance at normal incidence, matched at the
  peak of the lobe: ``F0 = min(1, 8 ks / (n + 2))``.
"""
from __future__ import annotations

import math

import numpy as np

# --- camera -----------------------------------------------------------------

FOV_DEGREES = 10.0
"""Vertical (and horizontal: images are square) field of view of GAN crops."""

CAMERA_DISTANCE = 12.0
"""Distance in metres from the camera to the object centre (unit-sphere object
fills about 90% of the frame at FOV_DEGREES)."""

BOUNDING_RADIUS = 1.0
"""Every object lies inside this sphere around the origin (metres)."""

PRIOR_SEMI_AXES_METRES = (0.62, 0.75, 0.55)
"""The fit's initial shape, an ellipsoid (x, y, z semi-axes): the asset
model's prior and the fixed region of the fidelity metric
(``measure.regions``)."""


def focal_length_px(image_size: int, fov_degrees: float = FOV_DEGREES) -> float:
    """Focal length in pixels for a square image of ``image_size`` pixels."""
    return 0.5 * image_size / math.tan(math.radians(fov_degrees) / 2.0)


def rotation_yaw_pitch(yaw: float, pitch: float) -> np.ndarray:
    """3x3 rotation that orbits the frontal camera by ``yaw`` about +Y then
    ``pitch`` about the camera's +X (radians). Positive yaw moves the camera
    towards +X, positive pitch moves it up (it then looks down)."""
    cy, sy = math.cos(yaw), math.sin(yaw)
    cp, sp = math.cos(pitch), math.sin(pitch)
    rot_yaw = np.array([[cy, 0.0, sy], [0.0, 1.0, 0.0], [-sy, 0.0, cy]])
    # rotation by -pitch about +X, so that positive pitch lifts the camera
    rot_pitch = np.array([[1.0, 0.0, 0.0], [0.0, cp, sp], [0.0, -sp, cp]])
    return rot_yaw @ rot_pitch


def orbit_world_from_camera(yaw: float = 0.0, pitch: float = 0.0,
                            distance: float = CAMERA_DISTANCE) -> np.ndarray:
    """4x4 world_from_camera of a camera on a sphere of ``distance`` metres,
    looking at the origin, rolled so that world +Y stays up in the image.
    yaw = pitch = 0 is the frontal camera at (0, 0, distance)."""
    rotation = rotation_yaw_pitch(yaw, pitch)
    world_from_camera = np.eye(4)
    world_from_camera[:3, :3] = rotation
    world_from_camera[:3, 3] = rotation @ np.array([0.0, 0.0, distance])
    return world_from_camera


# --- materials ----------------------------------------------------------------

SHININESS_MIN = 1.0
SHININESS_MAX = 500.0
"""Phong exponents are kept in [SHININESS_MIN, SHININESS_MAX]; textures store
them log-encoded: value = log(n / MIN) / log(MAX / MIN), in [0, 1]."""


def _xp(values):
    """numpy or torch, whichever ``values`` belongs to."""
    if type(values).__module__.startswith("torch"):
        import torch

        return torch
    return np


def encode_shininess(shininess):
    """Phong exponent -> [0, 1] texture value (log scale). numpy or torch."""
    xp = _xp(shininess)
    clipped = xp.clip(shininess, SHININESS_MIN, SHININESS_MAX)
    return xp.log(clipped / SHININESS_MIN) / math.log(SHININESS_MAX / SHININESS_MIN)


def decode_shininess(encoded):
    """[0, 1] texture value -> Phong exponent. numpy or torch."""
    xp = _xp(encoded)
    return SHININESS_MIN * xp.exp(xp.clip(encoded, 0.0, 1.0) * math.log(SHININESS_MAX / SHININESS_MIN))


def shininess_to_roughness(shininess):
    """Phong exponent -> GGX/Principled roughness (alpha = roughness**2)."""
    return (2.0 / (shininess + 2.0)) ** 0.25


def specular_f0(specular_intensity, shininess):
    """Phong ks (with its exponent) -> reflectance at normal incidence that
    gives the same peak radiance under a Cook-Torrance lobe of matching width."""
    xp = _xp(specular_intensity)
    return xp.clip(8.0 * specular_intensity / (shininess + 2.0), 0.0, 1.0)


# --- lights -------------------------------------------------------------------

def sun_strength_from_diffuse(kd: float) -> float:
    """Blender sun strength (W/m^2) for the Phong diffuse strength ``kd``."""
    return math.pi * kd


def world_strength_from_ambient(ka: float) -> float:
    """Blender uniform world strength for the Phong ambient strength ``ka``."""
    return ka


# --- colour -------------------------------------------------------------------

def srgb_from_linear(linear):
    """IEC 61966-2-1 encoding; input clipped to [0, 1]. numpy or torch."""
    xp = _xp(linear)
    linear = xp.clip(linear, 0.0, 1.0)
    low = linear * 12.92
    high = 1.055 * xp.clip(linear, 0.0031308, None) ** (1.0 / 2.4) - 0.055
    return xp.where(linear <= 0.0031308, low, high)


def unit_rgb_from_generator(images):
    """A generator's images, channels first and sRGB-encoded in [-1, 1]
    (``[..., 3, H, W]``, torch), as sRGB-encoded [0, 1] channels last
    (``[..., H, W, 3]``): how the metrics, the report and the fit compare them."""
    return ((images + 1) / 2).clamp(0, 1).movedim(-3, -1)


def linear_from_srgb(encoded):
    """Inverse of srgb_from_linear; input clipped to [0, 1]. numpy or torch."""
    xp = _xp(encoded)
    encoded = xp.clip(encoded, 0.0, 1.0)
    low = encoded / 12.92
    high = ((xp.clip(encoded, 0.04045, None) + 0.055) / 1.055) ** 2.4
    return xp.where(encoded <= 0.04045, low, high)

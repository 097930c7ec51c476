"""The add-on's one place for the maths of the bundle contract (docs/bundle.md).

Mirrors ``backend/gan2x/conventions.py`` without importing it (Blender's
Python has no torch and no backend); ``tests/addon/test_conventions_match_backend.py``
checks that both sides agree.

Frames
------
* Bundle frame: right-handed, metres, +Y up, +Z towards the target camera
  (glTF's frame).
* Blender frame: right-handed, metres, +Z up. ``BLENDER_FROM_BUNDLE`` is a
  +90 degree rotation about X: ``(x, y, z) -> (x, -z, y)``.
* Camera frame: OpenGL axes (+X right, +Y up, looking along -Z), which is
  Blender's camera convention too, so a camera only needs the frame change.

Everything here is bpy-free (numpy and the standard library only).
"""
from __future__ import annotations

import math

import numpy as np

# --- frames -------------------------------------------------------------------

BLENDER_FROM_BUNDLE = np.array([
    [1.0, 0.0, 0.0, 0.0],
    [0.0, 0.0, -1.0, 0.0],
    [0.0, 1.0, 0.0, 0.0],
    [0.0, 0.0, 0.0, 1.0],
])
"""4x4 rigid transform from the bundle frame (+Y up) to Blender's (+Z up)."""


def blender_points(points_bundle: np.ndarray) -> np.ndarray:
    """Points or directions [..., 3] in the bundle frame -> Blender frame
    (a pure rotation, so the same for both), float32."""
    rotation = BLENDER_FROM_BUNDLE[:3, :3].astype(np.float32)
    return np.asarray(points_bundle, dtype=np.float32) @ rotation.T


def blender_direction(direction_bundle) -> np.ndarray:
    """One direction [3] in the bundle frame -> unit direction in Blender's."""
    direction = BLENDER_FROM_BUNDLE[:3, :3] @ np.asarray(direction_bundle, dtype=np.float64)
    length = float(np.linalg.norm(direction))
    if not math.isfinite(length) or length == 0.0:
        raise ValueError("a direction must be a finite, non-zero 3-vector")
    return direction / length


# --- camera -------------------------------------------------------------------

def focal_length_px(image_size: float, fov_degrees: float) -> float:
    """Focal length in pixels for an image ``image_size`` pixels along the
    axis the field of view ``fov_degrees`` spans."""
    return 0.5 * image_size / math.tan(math.radians(fov_degrees) / 2.0)


def blender_camera_matrix(world_from_camera) -> np.ndarray:
    """The bundle camera's 4x4 ``world_from_camera`` (bundle frame, OpenGL
    camera axes) -> Blender ``Object.matrix_world`` of the camera."""
    return BLENDER_FROM_BUNDLE @ np.asarray(world_from_camera, dtype=np.float64)


def camera_angle_y(fov_y_degrees: float) -> float:
    """Vertical field of view (degrees) -> Blender ``Camera.angle_y``
    (radians), used with ``sensor_fit = 'VERTICAL'``. The principal point
    is the image centre in schema 1, so the lens shift stays 0."""
    return math.radians(fov_y_degrees)


# --- materials ----------------------------------------------------------------

SHININESS_MIN = 1.0
SHININESS_MAX = 500.0
"""Default Phong exponent range of the shininess texture's log encoding."""


def decode_shininess(encoded, shininess_min: float = SHININESS_MIN,
                     shininess_max: float = SHININESS_MAX):
    """Shininess texture value in [0, 1] (16-bit value / 65535) -> Phong
    exponent ``n = min * (max / min) ** value``. Arrays or floats."""
    encoded = np.clip(encoded, 0.0, 1.0)
    return shininess_min * np.exp(encoded * math.log(shininess_max / shininess_min))


def decode_specular(encoded, scale: float = 1.0):
    """Specular texture value in [0, 1] -> Phong ``ks = scale * value``."""
    return scale * np.asarray(encoded)


def shininess_to_roughness(shininess):
    """Phong exponent -> Principled BSDF roughness (GGX alpha = roughness**2),
    ``(2 / (n + 2)) ** 0.25``."""
    return (2.0 / (np.asarray(shininess) + 2.0)) ** 0.25


def specular_f0(specular_intensity, shininess):
    """Phong ``ks`` with its exponent ``n`` -> reflectance at normal incidence
    ``min(1, 8 ks / (n + 2))`` (same peak radiance as the Phong lobe); goes in
    the Principled BSDF's Specular Tint with IOR 1000, Specular IOR Level 0.5."""
    return np.clip(8.0 * np.asarray(specular_intensity) / (np.asarray(shininess) + 2.0), 0.0, 1.0)


PRINCIPLED_IOR = 1000.0
"""With this IOR the dielectric Fresnel is ~1, so Specular Tint alone sets F0."""
PRINCIPLED_SPECULAR_IOR_LEVEL = 0.5
"""0.5 leaves the IOR's reflectance unchanged."""


# --- lights -------------------------------------------------------------------

def sun_strength_from_diffuse(kd: float) -> float:
    """Phong diffuse strength ``kd`` -> Blender sun strength (W/m^2): a sun of
    strength E renders ``a * E / pi`` on a Lambertian surface of albedo a."""
    return math.pi * kd


def world_strength_from_ambient(ka: float) -> float:
    """Phong ambient strength ``ka`` -> strength of a uniform white world,
    which renders ``a * ka``."""
    return ka


def sun_rotation_matrix(towards_light_blender) -> np.ndarray:
    """3x3 rotation for a sun lamp whose light travels along
    ``-towards_light``: its +Z axis is ``towards_light`` (Blender frame) and
    so its -Z axis, the direction Blender's sun shines, points away from the
    light. The roll is fixed (X stays horizontal when possible) so the result
    is deterministic."""
    z_axis = np.asarray(towards_light_blender, dtype=np.float64)
    length = float(np.linalg.norm(z_axis))
    if not math.isfinite(length) or length == 0.0:
        raise ValueError("towards_light must be a finite, non-zero 3-vector")
    z_axis = z_axis / length
    up = np.array([0.0, 0.0, 1.0])
    if abs(float(z_axis @ up)) > 0.999:
        up = np.array([0.0, 1.0, 0.0])
    x_axis = np.cross(up, z_axis)
    x_axis /= np.linalg.norm(x_axis)
    y_axis = np.cross(z_axis, x_axis)
    return np.stack([x_axis, y_axis, z_axis], axis=1)


# --- colour -------------------------------------------------------------------

def linear_from_srgb(encoded):
    """IEC 61966-2-1 decoding of values in [0, 1] (clipped)."""
    encoded = np.clip(encoded, 0.0, 1.0)
    low = encoded / 12.92
    high = ((np.clip(encoded, 0.04045, None) + 0.055) / 1.055) ** 2.4
    return np.where(encoded <= 0.04045, low, high)


def srgb_from_linear(linear):
    """IEC 61966-2-1 encoding of values in [0, 1] (clipped)."""
    linear = np.clip(linear, 0.0, 1.0)
    low = linear * 12.92
    high = 1.055 * np.clip(linear, 0.0031308, None) ** (1.0 / 2.4) - 0.055
    return np.where(linear <= 0.0031308, low, high)

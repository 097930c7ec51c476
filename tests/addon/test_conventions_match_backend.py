"""The add-on's conventions (addon/bundle/conventions.py) agree with the
backend's (backend/gan2x/conventions.py) on a grid of values. Both are
imported here: the backend as the installed ``gan2x`` package, the add-on
from the repository as ``addon``."""
from __future__ import annotations

import math

import numpy as np
import pytest

from addon.bundle import conventions as addon_conventions

backend_conventions = pytest.importorskip("gan2x.conventions")

ENCODED = np.linspace(0.0, 1.0, 257)
SHININESS = np.geomspace(1.0, 500.0, 101)
KS = np.linspace(0.0, 1.0, 41)


def test_shininess_range_and_decoding_agree():
    assert addon_conventions.SHININESS_MIN == backend_conventions.SHININESS_MIN
    assert addon_conventions.SHININESS_MAX == backend_conventions.SHININESS_MAX
    np.testing.assert_allclose(addon_conventions.decode_shininess(ENCODED),
                               backend_conventions.decode_shininess(ENCODED), rtol=1e-12)
    # and the add-on inverts the backend's encoder
    np.testing.assert_allclose(
        addon_conventions.decode_shininess(backend_conventions.encode_shininess(SHININESS)),
        SHININESS, rtol=1e-10)


def test_roughness_agrees():
    np.testing.assert_allclose(addon_conventions.shininess_to_roughness(SHININESS),
                               backend_conventions.shininess_to_roughness(SHININESS), rtol=1e-12)


def test_specular_reflectance_agrees():
    ks, shininess = np.meshgrid(KS, SHININESS)
    np.testing.assert_allclose(addon_conventions.specular_f0(ks, shininess),
                               backend_conventions.specular_f0(ks, shininess), rtol=1e-12)


@pytest.mark.parametrize("strength", [0.0, 0.2, 0.35, 0.7, 1.0, 2.5])
def test_light_strengths_agree(strength):
    assert addon_conventions.sun_strength_from_diffuse(strength) == pytest.approx(
        backend_conventions.sun_strength_from_diffuse(strength), rel=1e-12)
    assert addon_conventions.world_strength_from_ambient(strength) == pytest.approx(
        backend_conventions.world_strength_from_ambient(strength), rel=1e-12)


@pytest.mark.parametrize("size", [32, 64, 128, 256, 512])
@pytest.mark.parametrize("fov", [5.0, 10.0, 30.0])
def test_focal_length_agrees(size, fov):
    assert addon_conventions.focal_length_px(size, fov) == pytest.approx(
        backend_conventions.focal_length_px(size, fov), rel=1e-12)


def test_colour_transfer_functions_agree():
    values = np.linspace(0.0, 1.0, 1001)
    np.testing.assert_allclose(addon_conventions.linear_from_srgb(values),
                               backend_conventions.linear_from_srgb(values), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(addon_conventions.srgb_from_linear(values),
                               backend_conventions.srgb_from_linear(values), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("yaw", np.radians([-60.0, -15.0, 0.0, 20.0, 90.0]))
@pytest.mark.parametrize("pitch", np.radians([-30.0, 0.0, 25.0]))
def test_backend_orbit_cameras_look_at_the_origin_in_blender(yaw, pitch):
    """A backend camera, converted by the add-on, sits at the same place in
    Blender's Z-up frame, looks at the origin and keeps world-up up."""
    world_from_camera = backend_conventions.orbit_world_from_camera(yaw, pitch)
    matrix = addon_conventions.blender_camera_matrix(world_from_camera)
    position = matrix[:3, 3]
    forward = -matrix[:3, 2]  # Blender cameras look along their -Z
    up = matrix[:3, 1]
    np.testing.assert_allclose(position, addon_conventions.blender_points(world_from_camera[:3, 3]),
                               atol=1e-6)
    assert np.linalg.norm(position) == pytest.approx(backend_conventions.CAMERA_DISTANCE)
    np.testing.assert_allclose(forward, -position / np.linalg.norm(position), atol=1e-9)
    assert up[2] > 0.0  # Blender's +Z is the bundle's +Y
    np.testing.assert_allclose(matrix[:3, :3].T @ matrix[:3, :3], np.eye(3), atol=1e-12)
    assert math.isclose(np.linalg.det(matrix[:3, :3]), 1.0, rel_tol=1e-12)

"""The add-on's frame and light maths (bpy-free)."""
from __future__ import annotations

import numpy as np
import pytest

from addon.bundle import conventions


def test_blender_from_bundle_is_plus_90_degrees_about_x():
    # (x, y, z) -> (x, -z, y): bundle +Y (up) becomes Blender +Z, bundle +Z
    # (towards the camera) becomes Blender -Y (Blender's front view).
    point = np.array([1.0, 2.0, 3.0, 1.0])
    np.testing.assert_array_equal(conventions.BLENDER_FROM_BUNDLE @ point, [1.0, -3.0, 2.0, 1.0])
    np.testing.assert_array_equal(conventions.blender_points([[1.0, 2.0, 3.0]]), [[1.0, -3.0, 2.0]])
    angle = np.radians(90.0)
    rotation_x = np.array([[1, 0, 0], [0, np.cos(angle), -np.sin(angle)], [0, np.sin(angle), np.cos(angle)]])
    np.testing.assert_allclose(conventions.BLENDER_FROM_BUNDLE[:3, :3], rotation_x, atol=1e-15)


@pytest.mark.parametrize("towards", [(0.3, -0.81, 0.5), (0, 0, 1), (0, 0, -1), (1, 0, 0),
                                     (0, 1, 0), (-0.2, 0.1, 0.97), (0.001, 0.0, 0.9999995)])
def test_sun_rotation_has_plus_z_towards_the_light(towards):
    towards = np.asarray(towards, float) / np.linalg.norm(towards)
    rotation = conventions.sun_rotation_matrix(towards)
    np.testing.assert_allclose(rotation.T @ rotation, np.eye(3), atol=1e-12)
    assert np.linalg.det(rotation) == pytest.approx(1.0)
    np.testing.assert_allclose(rotation[:, 2], towards, atol=1e-12)      # +Z to the light
    np.testing.assert_allclose(-rotation[:, 2], -towards, atol=1e-12)    # light travels along -Z


def test_sun_rotation_refuses_a_zero_direction():
    with pytest.raises(ValueError):
        conventions.sun_rotation_matrix((0.0, 0.0, 0.0))


def test_frontal_bundle_camera_becomes_blenders_front_view():
    world_from_camera = np.eye(4)
    world_from_camera[2, 3] = 12.0
    matrix = conventions.blender_camera_matrix(world_from_camera)
    np.testing.assert_allclose(matrix[:3, 3], [0.0, -12.0, 0.0])
    np.testing.assert_allclose(-matrix[:3, 2], [0.0, 1.0, 0.0])  # looks along +Y
    np.testing.assert_allclose(matrix[:3, 1], [0.0, 0.0, 1.0])   # up is +Z
    assert conventions.camera_angle_y(10.0) == pytest.approx(np.radians(10.0))


def test_material_maps_at_the_ends_of_the_range():
    assert conventions.decode_shininess(0.0) == pytest.approx(1.0)
    assert conventions.decode_shininess(1.0) == pytest.approx(500.0)
    assert conventions.decode_shininess(0.5, 2.0, 8.0) == pytest.approx(4.0)
    assert conventions.shininess_to_roughness(0.0) == pytest.approx(1.0)
    assert conventions.specular_f0(1.0, 1.0) == 1.0  # clipped
    assert conventions.specular_f0(0.0, 50.0) == 0.0
    assert conventions.specular_f0(0.5, 98.0) == pytest.approx(0.04)

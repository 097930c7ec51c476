"""Ground-truth metrics (METHOD.md section 5) and the shared conventions."""
import math

import numpy as np
import pytest
import torch

from gan2x import conventions
from gan2x.measure import metrics


def test_side_is_scale_invariant_and_detects_relief_errors():
    rng = np.random.default_rng(0)
    depth = 11.5 + rng.random((16, 16))
    mask = np.ones((16, 16), bool)
    assert metrics.side(depth * 1.7, depth, mask) == pytest.approx(0.0, abs=1e-6)
    noisy = depth * np.exp(0.01 * rng.standard_normal((16, 16)))
    assert metrics.side(noisy, depth, mask) == pytest.approx(0.01, rel=0.15)


def test_mad_measures_the_angle_between_normals():
    normal = np.zeros((4, 4, 3))
    normal[..., 2] = 1
    tilted = np.zeros((4, 4, 3))
    tilted[..., 0], tilted[..., 2] = math.sin(0.3), math.cos(0.3)
    mask = np.ones((4, 4), bool)
    assert metrics.mean_angle_deviation(normal, normal, mask) == pytest.approx(0.0, abs=1e-6)
    assert metrics.mean_angle_deviation(tilted, normal, mask) == pytest.approx(math.degrees(0.3))


def test_masked_psnr_ignores_pixels_outside_the_mask():
    a = np.zeros((8, 8, 3))
    b = np.zeros((8, 8, 3))
    b[:4] = 1.0  # wrong everywhere in the top half
    b[4:] = 0.1
    mask = np.zeros((8, 8), bool)
    mask[4:] = True
    assert metrics.masked_psnr(a, b, mask) == pytest.approx(20.0)


def test_srgb_round_trip_numpy_and_torch_agree():
    values = np.linspace(0, 1, 101)
    encoded = conventions.srgb_from_linear(values)
    np.testing.assert_allclose(conventions.linear_from_srgb(encoded), values, atol=1e-12)
    torch_encoded = conventions.srgb_from_linear(torch.from_numpy(values))
    np.testing.assert_allclose(torch_encoded.numpy(), encoded, atol=1e-12)
    assert conventions.srgb_from_linear(np.array(0.5)) == pytest.approx(0.735357, abs=1e-5)


def test_shininess_encoding_and_blender_mapping():
    shininess = np.array([1.0, 10.0, 100.0, 500.0])
    np.testing.assert_allclose(conventions.decode_shininess(conventions.encode_shininess(shininess)), shininess)
    assert conventions.encode_shininess(np.array(1.0)) == 0.0
    assert conventions.encode_shininess(np.array(500.0)) == pytest.approx(1.0)
    roughness = conventions.shininess_to_roughness(shininess)
    assert np.all(np.diff(roughness) < 0)  # glossier -> smoother
    assert roughness[0] == pytest.approx((2 / 3) ** 0.25)
    # Peak-matched reflectance: 8 ks / (n + 2), capped at 1.
    assert conventions.specular_f0(np.array(0.5), np.array(38.0)) == pytest.approx(0.1)
    assert conventions.specular_f0(np.array(1.0), np.array(1.0)) == 1.0
    assert conventions.sun_strength_from_diffuse(0.5) == pytest.approx(math.pi / 2)


def test_positive_yaw_and_pitch_move_the_camera_right_and_up_looking_at_the_origin():
    world_from_camera = conventions.orbit_world_from_camera(0.3, 0.2)
    position = world_from_camera[:3, 3]
    assert position[0] > 0.0 and position[1] > 0.0
    assert np.isclose(np.linalg.norm(position), conventions.CAMERA_DISTANCE)
    forward = -world_from_camera[:3, 2]
    assert np.allclose(forward, -position / np.linalg.norm(position))
    # world +Y stays up in the image: the camera's +X has no vertical part
    assert abs(world_from_camera[1, 0]) < 1e-12


def test_erode_and_material_errors():
    mask = np.zeros((6, 6), bool)
    mask[1:5, 1:5] = True
    eroded = metrics.erode(mask)
    assert eroded.sum() == 4 and eroded[2:4, 2:4].all()
    rng = np.random.default_rng(0)
    true = rng.uniform(0.1, 0.9, (6, 6, 3))
    # albedo is known up to a per-channel scale: a scaled copy has no error
    assert metrics.scaled_albedo_error(true * np.array([0.5, 2.0, 1.5]), true, mask) < 1e-12
    assert metrics.scaled_albedo_error(true[::-1], true, mask) > 0.05
    assert metrics.mean_absolute_error(np.full((6, 6), 0.3), np.full((6, 6), 0.1), mask) == pytest.approx(0.2)
    assert metrics.log_shininess_error(np.full((6, 6), 20.0), np.full((6, 6), 10.0), mask) == pytest.approx(math.log(2))

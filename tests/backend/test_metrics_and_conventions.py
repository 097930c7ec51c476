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


def test_albedo_psnr_uses_the_scale_fit_in_linear_values_over_the_mask():
    rng = np.random.default_rng(1)
    mask = np.zeros((16, 16), bool)
    mask[2:14, 3:13] = True
    true = rng.uniform(0.05, 0.9, (16, 16, 3))
    assert metrics.albedo_psnr(true * np.array([0.5, 2.0, 1.5]), true, mask) > 200.0  # exact up to rounding
    noisy = true + rng.normal(0.0, 0.01, true.shape)
    noisy[~mask] = 5.0                                   # outside the mask: ignored
    scale = metrics.albedo_scale(noisy, true, mask)
    expected = 10 * math.log10(1.0 / np.mean((noisy[mask] * scale - true[mask]) ** 2))
    assert metrics.albedo_psnr(noisy, true, mask) == pytest.approx(expected)
    assert 38.0 < expected < 42.0                        # sigma 0.01 ~ 40 dB: linear values, peak 1
    assert metrics.albedo_psnr(true[::-1], true, mask) < 20.0


def _relief_normals(size: int, amplitude: float, wavelength: float, shift: float = 0.0) -> np.ndarray:
    """Camera-frame normals [size, size, 3] of a sphere cap (radius 1.5 x size
    px) carrying horizontal ridges z += amplitude sin(2 pi (y - shift) / wavelength)."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float64) - (size - 1) / 2.0
    radius = 1.5 * size
    z0 = np.sqrt(radius ** 2 - x ** 2 - y ** 2)
    dz_dx = -x / z0
    dz_dy = -y / z0 + amplitude * 2 * math.pi / wavelength * np.cos(2 * math.pi * (y - shift) / wavelength)
    n = np.stack([-dz_dx, -dz_dy, np.ones_like(z0)], -1)
    return n / np.linalg.norm(n, axis=-1, keepdims=True)


def test_detail_normal_mad_scores_only_the_high_frequency_part():
    size = 64
    yy, xx = np.mgrid[0:size, 0:size] - (size - 1) / 2.0
    mask = metrics.erode(xx ** 2 + yy ** 2 < 28 ** 2)
    smooth = _relief_normals(size, 0.0, 5.0)
    true = _relief_normals(size, 0.5, 5.0)              # ridges every 5 px (sigma: 2 px)
    # a smooth surface has no detail; the ridged one has plenty
    assert metrics.detail_normal_magnitude(smooth, mask) < 0.5
    magnitude = metrics.detail_normal_magnitude(true, mask)
    assert magnitude > 15.0
    # perfect: 0; the plain MAD of the smooth shape is large, as is its detail MAD: the true magnitude
    assert metrics.detail_normal_mad(true, true, mask) < 1e-6
    assert metrics.mean_angle_deviation(smooth, true, mask) > 15.0
    smooth_score = metrics.detail_normal_mad(smooth, true, mask)
    assert smooth_score == pytest.approx(magnitude, rel=0.05)
    # a different smooth shape (a flatter sphere, tilted) scores the same: the low frequencies do not count
    other = _relief_normals(size, 0.0, 5.0)[:, ::-1] * np.array([1.0, 0.8, 1.0])
    other /= np.linalg.norm(other, axis=-1, keepdims=True)
    assert metrics.detail_normal_mad(other, true, mask) == pytest.approx(magnitude, rel=0.05)
    # half-strength ridges in the right place beat the smooth shape; ridges half a period off lose to it
    assert metrics.detail_normal_mad(_relief_normals(size, 0.25, 5.0), true, mask) < 0.6 * smooth_score
    shifted = _relief_normals(size, 0.5, 5.0, shift=2.5)
    assert metrics.detail_normal_mad(shifted, true, mask) > 1.5 * smooth_score
    # the scale follows the image: sigma is 1/32 of the width unless given
    assert metrics.detail_normal_mad(smooth, true, mask, sigma=2.0) == pytest.approx(smooth_score)


def test_masked_gaussian_blur_ignores_pixels_outside_the_mask():
    mask = np.zeros((20, 20), bool)
    mask[5:15, 5:15] = True
    values = np.where(mask, 2.0, 100.0)
    blurred = metrics.masked_gaussian_blur(values, mask, 2.0)
    assert np.allclose(blurred[mask], 2.0)               # a constant inside stays constant up to the edge

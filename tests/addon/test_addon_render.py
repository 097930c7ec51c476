"""A Cycles render of the imported sample sphere reproduces the bundle's
shading equation: with ks = 0 it is Lambert plus ambient,
c = a * (ka + kd * max(0, n.l)), in linear radiance."""
from __future__ import annotations

import math

import numpy as np
import pytest

from addon.blender import render
from addon.blender.lights import set_sun_direction
from addon.blender.scene import import_bundle
from addon.bundle import conventions
from addon.bundle.reader import read_bundle
from sample_bundles import CAMERA_DISTANCE, FOV_DEGREES, SPHERE_RADIUS, write_bundle

ALBEDO_SRGB = (200, 150, 100)
KD, KA = 0.7, 0.35
SIZE = 40


def expected_lambert(size: int, towards_light) -> np.ndarray:
    """Analytic linear radiance [size, size, 3] (NaN off the sphere) seen by
    the bundle's frontal camera, pixel centres, row 0 at the top."""
    focal = conventions.focal_length_px(size, FOV_DEGREES)
    centres = np.arange(size) + 0.5
    cols, rows = np.meshgrid(centres, centres)
    directions = np.stack([(cols - size / 2) / focal, -(rows - size / 2) / focal, -np.ones_like(cols)], -1)
    directions /= np.linalg.norm(directions, axis=-1, keepdims=True)
    origin = np.array([0.0, 0.0, CAMERA_DISTANCE])
    # |o + t d| = r  ->  t^2 + 2 (o.d) t + |o|^2 - r^2 = 0
    b = directions @ origin
    discriminant = b ** 2 - (origin @ origin - SPHERE_RADIUS ** 2)
    t = -b - np.sqrt(np.where(discriminant > 0, discriminant, np.nan))
    normals = (origin + t[..., None] * directions) / SPHERE_RADIUS
    towards_light = np.asarray(towards_light, float) / np.linalg.norm(towards_light)
    albedo = conventions.linear_from_srgb(np.asarray(ALBEDO_SRGB) / 255.0)
    return albedo * (KA + KD * np.maximum(0.0, normals @ towards_light))[..., None]


@pytest.fixture
def lambert_scene(registered_addon, tmp_path):
    import bpy

    bundle = read_bundle(write_bundle(tmp_path / "lambert", albedo_srgb=ALBEDO_SRGB, specular=0.0,
                                      kd=KD, ka=KA))
    result = import_bundle(bpy.context, bundle)
    render.configure_cycles(bpy.context.scene, width=SIZE, samples=16, film_transparent=True)
    return bpy.context.scene, result, bundle


def test_render_matches_lambert_plus_ambient(lambert_scene):
    scene, _, bundle = lambert_scene
    towards_light = bundle.directional_lights[0].towards_light
    rendered = render.render_to_arrays(scene)
    assert rendered.shape == (SIZE, SIZE, 4) and rendered.dtype == np.float32
    expected = expected_lambert(SIZE, towards_light)
    centre = slice(SIZE // 2 - 2, SIZE // 2 + 2)
    np.testing.assert_allclose(rendered[centre, centre, :3], expected[centre, centre], rtol=0.03)
    # off the sphere the film is transparent; on it, opaque
    assert rendered[0, 0, 3] == 0.0 and rendered[SIZE // 2, SIZE // 2, 3] == pytest.approx(1.0)
    # row 0 is the top: the light comes from above (+Y), so the upper half is brighter
    lit = ~np.isnan(expected[..., 0])
    upper = rendered[: SIZE // 2, :, 0][lit[: SIZE // 2]].mean()
    lower = rendered[SIZE // 2:, :, 0][lit[SIZE // 2:]].mean()
    assert upper > lower * 1.2


def test_ambient_occlusion_scales_the_render_by_its_strength(registered_addon, tmp_path):
    """A uniform AO texture of value 128 (0.502) multiplies the radiance by
    1 - s + s * 0.502 for strength s; strength 0 renders as without AO."""
    import bpy

    from addon.blender.material import AO_MIX_NODE_NAME

    bundle = read_bundle(write_bundle(tmp_path / "ao", albedo_srgb=ALBEDO_SRGB, specular=0.0, kd=KD, ka=KA,
                                      ambient_occlusion=128 / 255))
    result = import_bundle(bpy.context, bundle)
    scene = bpy.context.scene
    render.configure_cycles(scene, width=SIZE, samples=16, film_transparent=True)
    expected = expected_lambert(SIZE, bundle.directional_lights[0].towards_light)
    centre = slice(SIZE // 2 - 2, SIZE // 2 + 2)
    factor = result.material.node_tree.nodes[AO_MIX_NODE_NAME].inputs[0]
    for strength in (0.0, 1.0):
        factor.default_value = strength
        rendered = render.render_to_arrays(scene)
        scale = 1.0 - strength + strength * 128 / 255
        np.testing.assert_allclose(rendered[centre, centre, :3], scale * expected[centre, centre], rtol=0.03)


def test_relighting_moves_the_light(lambert_scene):
    scene, result, _ = lambert_scene
    towards_left = (-1.0, 0.0, 0.4)
    set_sun_direction(result.suns[0], towards_left)
    rendered = render.render_to_arrays(scene)
    expected = expected_lambert(SIZE, towards_left)
    centre = slice(SIZE // 2 - 2, SIZE // 2 + 2)
    np.testing.assert_allclose(rendered[centre, centre, :3], expected[centre, centre], rtol=0.03)
    # a point on the left limb is lit, one on the right only by the ambient term
    row, left, right = SIZE // 2, SIZE // 2 - 12, SIZE // 2 + 12
    np.testing.assert_allclose(rendered[row, right, :3], expected[row, right], rtol=0.05)
    assert rendered[row, left, 0] > 2.0 * rendered[row, right, 0]


def test_png_is_the_srgb_encoding_of_the_linear_render(lambert_scene, tmp_path):
    from PIL import Image

    scene, _, _ = lambert_scene
    png_path = tmp_path / "out" / "render.png"
    rendered = render.render_to_arrays(scene, png_path=png_path)
    with Image.open(png_path) as image:
        png = np.asarray(image.convert("RGBA"), dtype=np.float64) / 255.0
    assert png.shape == (SIZE, SIZE, 4)
    mid = SIZE // 2
    np.testing.assert_allclose(png[mid, mid, :3], conventions.srgb_from_linear(rendered[mid, mid, :3]),
                               atol=1.5 / 255)
    assert math.isclose(png[0, 0, 3], 0.0)

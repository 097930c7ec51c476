"""The exported asset's own render (export/raster.py, export/mesh_render.py)
and the target image baked into its albedo (export/image_bake.py).

Analytic SDFs and procedural materials; no torch."""
from __future__ import annotations

import numpy as np
import pytest

from gan2x import conventions
from gan2x.export.bake import bake_textures
from gan2x.export.bundle import CameraSpec, LightSpec
from gan2x.export.image_bake import ImageBakeSettings, bake_image_into_albedo, erode_mask
from gan2x.export.marching_cubes import extract_mesh
from gan2x.export.mesh_render import composite_srgb, render_asset
from gan2x.export.raster import project_points, rasterize_view, triangle_coverage
from gan2x.export.uv_unwrap import unwrap
from gan2x.measure.regions import ellipsoid_silhouette

RESOLUTION = 48


def sphere_sdf(p, radius=0.6):
    return (np.linalg.norm(p, axis=1) - radius).astype(np.float32)


def striped(p):
    """Sharp stripes across the front, for a bake to keep."""
    stripes = (np.floor(p[:, 0] * 4.0) % 2).astype(np.float64)
    albedo = np.stack([0.2 + 0.6 * stripes, 0.3 + 0.2 * stripes, 0.7 - 0.5 * stripes], 1)
    return {"albedo": albedo, "specular": np.full(len(p), 0.1), "shininess": np.full(len(p), 30.0)}


def flat_grey(p):
    return {"albedo": np.full((len(p), 3), 0.5), "specular": np.full(len(p), 0.1), "shininess": np.full(len(p), 30.0)}


@pytest.fixture(scope="module")
def sphere():
    mesh = extract_mesh(sphere_sdf, resolution=48)
    return unwrap(mesh, texture_size=256, padding=2)


def frontal_camera(size=RESOLUTION):
    return CameraSpec(image_width=size, image_height=size, fov_y_degrees=conventions.FOV_DEGREES,
                      world_from_camera=conventions.orbit_world_from_camera(0.0, 0.0))


LIGHT = LightSpec(towards_light=np.array([0.3, 0.4, 0.866]), diffuse_strength=0.7, ambient_strength=0.3)


def test_triangle_coverage_counts_pixel_centres():
    xy = np.array([[-0.5, -0.5], [3.5, -0.5], [-0.5, 3.5], [3.5, 3.5]])  # a 4x4 pixel square
    pixel, face, weights = triangle_coverage(xy, np.array([[0, 1, 2], [1, 3, 2]]), 4, 4)
    assert set(pixel.tolist()) == set(range(16))
    assert np.allclose(weights.sum(axis=1), 1.0)


def test_zbuffer_keeps_the_nearest_triangle():
    # two squares facing the camera, the nearer one smaller
    far = np.array([[-0.5, -0.5, -0.2], [0.5, -0.5, -0.2], [-0.5, 0.5, -0.2], [0.5, 0.5, -0.2]])
    near = far * [0.5, 0.5, 0] + [0, 0, 0.3]
    vertices = np.concatenate([far, near])
    faces = np.array([[0, 1, 2], [1, 3, 2], [4, 5, 6], [5, 7, 6]])
    fragments = rasterize_view(vertices, faces, conventions.orbit_world_from_camera(0.0, 0.0), 32,
                               conventions.FOV_DEGREES)
    centre = 16 * 32 + 16
    assert fragments.face[centre] in (2, 3)
    assert fragments.depth[centre] == pytest.approx(conventions.CAMERA_DISTANCE - 0.3, abs=1e-6)
    assert fragments.face[16 * 32 + 2] == -1  # outside both squares
    assert fragments.face[16 * 32 + 9] in (0, 1)  # only the far square there


def test_projection_matches_the_camera_convention():
    xy, depth = project_points(np.array([[0.0, 0.0, 0.0], [0.5, 0.25, 0.0]]),
                               conventions.orbit_world_from_camera(0.0, 0.0), 64, conventions.FOV_DEGREES)
    focal = conventions.focal_length_px(64)
    assert np.allclose(xy[0], [32, 32]) and depth[0] == pytest.approx(conventions.CAMERA_DISTANCE)
    assert np.allclose(xy[1], [32 + focal * 0.5 / 12.0, 32 - focal * 0.25 / 12.0])


def test_render_matches_phong_on_a_sphere(sphere):
    textures = bake_textures(sphere, flat_grey, size=256)
    render = render_asset(sphere, textures, frontal_camera(), LIGHT, supersample=1)
    centre = render["radiance"][RESOLUTION // 2, RESOLUTION // 2]
    normal = np.array([0.0, 0.0, 1.0])  # about the sphere's front point
    light = LIGHT.towards_light / np.linalg.norm(LIGHT.towards_light)
    diffuse = 0.5 * (LIGHT.ambient_strength + LIGHT.diffuse_strength * normal @ light)
    assert np.allclose(centre, diffuse, atol=0.02)  # the highlight is far from the centre here
    # the silhouette: a sphere of radius 0.6 at 12 m
    radius_px = conventions.focal_length_px(RESOLUTION) * 0.6 / conventions.CAMERA_DISTANCE
    assert render["coverage"].sum() == pytest.approx(np.pi * radius_px ** 2, rel=0.06)


def test_bake_brings_back_the_image_and_keeps_the_background_out(sphere):
    camera = frontal_camera()
    truth = bake_textures(sphere, striped, size=256)
    render = render_asset(sphere, truth, camera, LIGHT, supersample=2)
    background = np.array([0.0, 1.0, 0.0])  # a green no albedo here has
    image = render["radiance"] + (1 - render["coverage"][..., None]) * background
    blurry = bake_textures(sphere, flat_grey, size=256)
    before = composite_srgb(render_asset(sphere, blurry, camera, LIGHT), background)
    baked, weight = bake_image_into_albedo(sphere, blurry, camera, LIGHT, image, render["coverage"],
                                           ImageBakeSettings(mirror=False))
    after = composite_srgb(render_asset(sphere, baked, camera, LIGHT), background)
    wanted = composite_srgb(render, background)
    inner = erode_mask(erode_mask(render["coverage"])) > 0.99

    def psnr(a, b):
        return -10 * np.log10(((a - b) ** 2)[inner].mean())
    assert psnr(after, wanted) > psnr(before, wanted) + 10.0
    assert psnr(after, wanted) > 28.0  # bilinear twice (image -> texels -> pixels) softens the edges
    # no green anywhere on the object, and the back keeps the fields' grey
    assert baked.albedo[..., 1].max() < 0.6
    unseen = weight == 0
    assert unseen.mean() > 0.3
    assert np.allclose(baked.albedo[unseen], 0.5, atol=1e-6)


def test_mirror_fills_the_unseen_side_from_the_seen_one(sphere):
    # a camera turned 60 degrees sees one side; the mirror fill reaches the other
    camera = CameraSpec(image_width=RESOLUTION, image_height=RESOLUTION, fov_y_degrees=conventions.FOV_DEGREES,
                        world_from_camera=conventions.orbit_world_from_camera(np.radians(60.0), 0.0))
    light = LightSpec(towards_light=camera.world_from_camera[:3, 2], diffuse_strength=0.7, ambient_strength=0.3)
    red = lambda p: {**flat_grey(p), "albedo": np.tile([0.8, 0.1, 0.1], (len(p), 1))}  # noqa: E731
    render = render_asset(sphere, bake_textures(sphere, red, size=256), camera, light)
    blurry = bake_textures(sphere, flat_grey, size=256)
    _, alone = bake_image_into_albedo(sphere, blurry, camera, light, render["radiance"], render["coverage"],
                                      ImageBakeSettings(mirror=False))
    mirrored, both = bake_image_into_albedo(sphere, blurry, camera, light, render["radiance"], render["coverage"],
                                            ImageBakeSettings(mirror=True))
    assert both.sum() > 1.5 * alone.sum()
    filled = (both > 0.9) & (alone == 0)
    assert filled.any()
    error = np.abs(mirrored.albedo[filled] - [0.8, 0.1, 0.1])
    assert error.mean() < 0.02 and np.percentile(error, 95) < 0.06


def test_ellipsoid_silhouette_is_the_prior_seen_from_the_front():
    region = ellipsoid_silhouette(64)
    focal = conventions.focal_length_px(64)
    a, b = (focal * axis / conventions.CAMERA_DISTANCE for axis in conventions.PRIOR_SEMI_AXES_METRES[:2])
    assert region.sum() == pytest.approx(np.pi * a * b, rel=0.05)
    assert region[32, 32] and not region[0, 0]
    assert np.array_equal(region, region[:, ::-1])

"""Ambient occlusion baked from the sampled SDF (export/ambient_occlusion.py):
open where nothing is near, low in cavities, the cosine-weighted fraction
it claims to be, deterministic, and carried into texels like the other
textures. Analytic SDFs, no torch."""
from __future__ import annotations

import numpy as np
import pytest

from gan2x.export.ambient_occlusion import (DIRECTIONS, MAX_DISTANCE, START_OFFSET_VOXELS, GridSampler,
                                            bake_ambient_occlusion, hemisphere_directions, normal_frames,
                                            vertex_ambient_occlusion)
from gan2x.export.bake import rasterize_uv
from gan2x.export.datatypes import SdfGrid
from gan2x.export.marching_cubes import extract_mesh, extract_mesh_and_grid, sample_grid
from gan2x.export.uv_unwrap import unwrap


def sphere_sdf(radius=0.6, centre=(0.0, 0.0, 0.0)):
    centre = np.asarray(centre, np.float32)
    return lambda p: (np.linalg.norm(p - centre, axis=1) - radius).astype(np.float32)


def two_spheres(p):
    """Spheres of radius 0.4 at x = +-0.45: a 0.1 m gap between them."""
    return np.minimum(sphere_sdf(0.4, (0.45, 0, 0))(p), sphere_sdf(0.4, (-0.45, 0, 0))(p))


FLOOR_TOP, CEILING_BOTTOM = -0.06, 0.102


def floor_and_ceiling(p):
    """Two slabs across the whole box: a floor below y = FLOOR_TOP and a
    ceiling above y = CEILING_BOTTOM (exact distances between them)."""
    y = p[:, 1]
    floor = np.maximum(y - FLOOR_TOP, -0.5 - y)
    ceiling = np.maximum(CEILING_BOTTOM - y, y - 0.5)
    return np.minimum(floor, ceiling).astype(np.float32)


@pytest.fixture(scope="module")
def pair():
    mesh, grid = extract_mesh_and_grid(two_spheres, resolution=64)
    return mesh, grid, vertex_ambient_occlusion(grid, mesh.vertices, mesh.normals)


def test_the_grid_is_the_one_marching_cubes_used():
    mesh, grid = extract_mesh_and_grid(sphere_sdf(0.6), resolution=40)
    assert isinstance(grid, SdfGrid) and grid.values.shape == (40, 40, 40) and grid.bound == 1.0
    assert grid.voxel == pytest.approx(2.0 / 39)
    np.testing.assert_array_equal(grid.values, sample_grid(sphere_sdf(0.6), resolution=40))
    plain = extract_mesh(sphere_sdf(0.6), resolution=40)
    np.testing.assert_array_equal(plain.vertices, mesh.vertices)
    np.testing.assert_array_equal(plain.faces, mesh.faces)


def test_the_sampler_is_trilinear_and_knows_the_box():
    """A linear field is reproduced exactly between grid points; points out
    of the box are flagged (value +inf)."""
    axis = np.linspace(-1.0, 1.0, 17, dtype=np.float32)
    x, y, z = np.meshgrid(axis, axis, axis, indexing="ij")
    sampler = GridSampler(SdfGrid(0.3 * x - 0.7 * y + 0.2 * z + 0.1, 1.0))
    points = np.random.default_rng(0).uniform(-1.0, 1.0, (1000, 3)).astype(np.float32)
    values, inside = sampler(np.concatenate([points, [[1.0, 1.0, 1.0], [1.2, 0.0, 0.0], [0.0, -1.01, 0.0]]]))
    expected = points @ np.array([0.3, -0.7, 0.2], np.float32) + 0.1
    np.testing.assert_allclose(values[:1000], expected, atol=2e-6)
    assert inside[:1001].all() and values[1000] == pytest.approx(0.3 - 0.7 + 0.2 + 0.1, abs=1e-6)
    assert not inside[1001:].any() and np.isinf(values[1001:]).all()


def test_the_directions_are_a_cosine_weighted_hemisphere():
    local = hemisphere_directions(DIRECTIONS)
    assert local.shape == (DIRECTIONS, 3)
    np.testing.assert_allclose(np.linalg.norm(local, axis=1), 1.0, atol=1e-12)
    assert (local[:, 2] > 0).all()
    # cosine-weighted: E[cos] = 2/3, E[cos^2] = 1/2; the set is balanced around the normal
    assert local[:, 2].mean() == pytest.approx(2.0 / 3.0, abs=0.01)
    assert (local[:, 2] ** 2).mean() == pytest.approx(0.5, abs=0.01)
    assert np.abs(local[:, :2].mean(axis=0)).max() < 0.05
    normals = np.random.default_rng(1).normal(size=(50, 3))
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    tangent, bitangent = normal_frames(normals)
    for a, b in ((tangent, normals), (bitangent, normals), (tangent, bitangent)):
        np.testing.assert_allclose(np.einsum("ij,ij->i", a, b), 0.0, atol=1e-12)
    np.testing.assert_allclose(np.cross(tangent, bitangent), normals, atol=1e-12)


def test_a_sphere_is_open_everywhere():
    mesh, grid = extract_mesh_and_grid(sphere_sdf(0.6), resolution=64)
    ao = vertex_ambient_occlusion(grid, mesh.vertices, mesh.normals)
    assert ao.shape == (len(mesh.vertices),) and ao.dtype == np.float32
    assert ao.min() >= 0.99


def test_the_gap_between_two_spheres_is_occluded_and_their_outsides_are_not(pair):
    mesh, _, ao = pair
    x, nx = mesh.vertices[:, 0], mesh.normals[:, 0]
    facing_the_gap = (np.abs(x) < 0.1) & (-np.sign(x) * nx > 0.9)  # on one sphere, looking at the other
    outside = np.abs(x) > 0.7
    assert facing_the_gap.sum() > 10 and outside.sum() > 100
    assert ao[facing_the_gap].mean() < 0.5 and ao[facing_the_gap].max() < 0.7
    assert ao[outside].min() >= 0.99
    assert 0.0 <= ao.min() and ao.max() <= 1.0


def test_under_a_ceiling_the_open_fraction_is_the_cosine_weighted_one():
    """A floor point under a parallel ceiling: a ray at angle theta from the
    normal meets the ceiling within the reach iff cos(theta) >= gap / reach,
    so AO is the fraction of the direction set below that cosine (analytic
    (gap / reach)^2 for the continuous hemisphere)."""
    grid = SdfGrid(sample_grid(floor_and_ceiling, resolution=64, narrow_band=False), 1.0)
    xz = np.random.default_rng(2).uniform(-0.4, 0.4, (40, 2))
    points = np.stack([xz[:, 0], np.full(40, FLOOR_TOP), xz[:, 1]], axis=1)
    normals = np.tile([0.0, 1.0, 0.0], (40, 1))
    ao = vertex_ambient_occlusion(grid, points, normals)
    gap = CEILING_BOTTOM - FLOOR_TOP - START_OFFSET_VOXELS * grid.voxel  # rays start above the floor
    threshold = gap / MAX_DISTANCE
    cosines = hemisphere_directions(DIRECTIONS)[:, 2]
    assert np.abs(cosines - threshold).min() > 0.02, "no direction on the edge of the test"
    expected = np.mean(cosines < threshold)
    assert 0.15 < expected < 0.5
    np.testing.assert_allclose(ao, expected, atol=1e-6)
    # farther reach, more occlusion; a higher ceiling (past the reach), none
    assert vertex_ambient_occlusion(grid, points, normals, max_distance=0.5).max() < expected
    assert vertex_ambient_occlusion(grid, points, normals, max_distance=gap * 0.9).min() == 1.0


def test_ambient_occlusion_is_deterministic(pair):
    mesh, grid, ao = pair
    again = vertex_ambient_occlusion(grid, mesh.vertices, mesh.normals)
    np.testing.assert_array_equal(ao, again)
    # the same in batches of any size (a few vertices per batch)
    np.testing.assert_array_equal(ao, vertex_ambient_occlusion(grid, mesh.vertices, mesh.normals, batch=1000))


def test_degenerate_normals_count_as_open():
    grid = SdfGrid(sample_grid(sphere_sdf(0.6), resolution=32), 1.0)
    ao = vertex_ambient_occlusion(grid, np.zeros((2, 3)), np.array([[0.0, 0.0, 0.0], [np.nan, 0.0, 1.0]]))
    np.testing.assert_array_equal(ao, [1.0, 1.0])
    with pytest.raises(ValueError, match="differ in length"):
        vertex_ambient_occlusion(grid, np.zeros((2, 3)), np.zeros((3, 3)))


def test_the_texture_interpolates_the_vertices_and_is_padded(pair):
    mesh, grid, ao = pair
    textured = unwrap(mesh, texture_size=128, padding=2, method="projected")
    size = 128
    texture = bake_ambient_occlusion(textured, grid, size=size, padding_px=2)
    assert texture.shape == (size, size) and texture.dtype == np.float32
    assert 0.0 <= texture.min() and texture.max() <= 1.0
    texels, faces, weights = rasterize_uv(textured, size)
    vertex_ao = ao[textured.source_vertex]  # seam copies carry their source's value
    expected = np.einsum("kc,kc->k", weights, vertex_ao[textured.faces[faces]])
    np.testing.assert_allclose(texture.reshape(-1)[texels], expected, atol=1e-6)
    assert texture.min() < 0.6  # the gap shows
    np.testing.assert_array_equal(texture, bake_ambient_occlusion(textured, grid, size=size, padding_px=2))
    # a precomputed rasterisation gives the same texture
    np.testing.assert_array_equal(
        texture, bake_ambient_occlusion(textured, grid, size=size, padding_px=2,
                                        raster=rasterize_uv(textured, size)))


def test_a_sphere_texture_is_white():
    mesh, grid = extract_mesh_and_grid(sphere_sdf(0.6), resolution=32)
    texture = bake_ambient_occlusion(unwrap(mesh, texture_size=64, padding=2), grid, size=64, padding_px=2)
    assert texture.min() >= 0.99

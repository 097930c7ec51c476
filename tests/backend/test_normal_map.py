"""The baked normal map (export/bake.py, export/tangents.py): the field's
normals in the mesh's MikkTSpace-style tangent frames, OpenGL +Y.

Analytic SDFs with analytic (finite-difference) normals; no torch except in
the last test, which checks the pipeline's autograd normals. Blender's own
tangents and a Cycles render are compared in
tests/addon/test_addon_normal_map.py."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from gan2x.export import images
from gan2x.export.bake import bake_textures, rasterize_uv
from gan2x.export.datatypes import TexturedMesh
from gan2x.export.marching_cubes import extract_mesh
from gan2x.export.tangents import (apply_normal_map, decode_tangent_space, encode_tangent_space, frames_at,
                                   vertex_tangents)
from gan2x.export.uv_unwrap import unwrap

BUMP_AMPLITUDE, BUMP_WAVELENGTH = 0.012, 0.25


def sphere_sdf(p):
    return (np.linalg.norm(np.asarray(p, np.float64), axis=1) - 0.6).astype(np.float32)


def bumpy_sdf(p):
    """A sphere with sinusoidal bumps finer than a 32^3 grid's cells (wavelength 4 cells)."""
    p = np.asarray(p, np.float64)
    k = 2.0 * np.pi / BUMP_WAVELENGTH
    bumps = BUMP_AMPLITUDE * np.sin(k * p[:, 0]) * np.sin(k * p[:, 1]) * np.sin(k * p[:, 2])
    return (np.linalg.norm(p, axis=1) - 0.6 - bumps).astype(np.float32)


def field_normals(sdf, points, step=1e-4):
    points = np.asarray(points, np.float64)
    gradient = np.stack([(sdf(points + step * e).astype(np.float64) - sdf(points - step * e)) / (2 * step)
                         for e in np.eye(3)], axis=1)
    return gradient / np.linalg.norm(gradient, axis=1, keepdims=True)


def materials_with_normals(sdf):
    def materials(points):
        count = len(points)
        return {"albedo": np.full((count, 3), 0.5), "specular": np.zeros(count), "shininess": np.full(count, 10.0),
                "normal": field_normals(sdf, points)}
    return materials


def angles_degrees(a, b):
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return np.degrees(np.arccos(np.clip(np.sum(a * b, axis=1), -1.0, 1.0)))


def texel_points(mesh, size):
    texels, face, weights = rasterize_uv(mesh, size)
    points = np.einsum("kc,kcd->kd", weights, mesh.vertices[mesh.faces[face]].astype(np.float64))
    return texels, face, weights, points


@pytest.fixture(scope="module")
def sphere_textured():
    return unwrap(extract_mesh(sphere_sdf, resolution=32), texture_size=128, padding=2)


@pytest.fixture(scope="module")
def bumpy_textured():
    return unwrap(extract_mesh(bumpy_sdf, resolution=32), texture_size=256, padding=2)


# --- tangent frames ------------------------------------------------------------------------

def grid_mesh(mirror: bool = False, turn_degrees: float = 0.0):
    """A 4x4-vertex patch of the plane z = 0 (normal +z) with UVs = (x, y),
    turned in UV by ``turn_degrees`` and mirrored in u when asked."""
    xs, ys = np.meshgrid(np.linspace(0, 1, 4), np.linspace(0, 1, 4))
    vertices = np.stack([xs.ravel(), ys.ravel(), np.zeros(16)], axis=1)
    turn = np.radians(turn_degrees)
    rotation = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
    uvs = 0.5 + 0.3 * (vertices[:, :2] - 0.5) @ rotation.T
    if mirror:
        uvs[:, 0] = 1.0 - uvs[:, 0]
    index = np.arange(16).reshape(4, 4)
    faces = []
    for r in range(3):
        for c in range(3):
            a, b, d, e = index[r, c], index[r, c + 1], index[r + 1, c], index[r + 1, c + 1]
            faces += [(a, b, e), (a, e, d)]  # counter-clockwise seen from +z
    return TexturedMesh(vertices=vertices, normals=np.tile([0.0, 0.0, 1.0], (16, 1)), uvs=uvs,
                        faces=np.array(faces))


@pytest.mark.parametrize("mirror", [False, True])
@pytest.mark.parametrize("turn", [0.0, 30.0])
def test_tangent_points_along_increasing_u_and_the_sign_gives_increasing_v(mirror, turn):
    mesh = grid_mesh(mirror, turn)
    tangents, signs = vertex_tangents(mesh)
    # world direction of increasing u (and v): the inverse of the linear map (x, y) -> uv
    jacobian = np.linalg.lstsq(mesh.vertices[:, :2] - mesh.vertices[:1, :2], mesh.uvs - mesh.uvs[:1], rcond=None)[0]
    world_from_uv = np.linalg.inv(jacobian.T)  # columns: dP/du, dP/dv (x, y)
    along_u = np.append(world_from_uv[:, 0], 0.0)
    along_v = np.append(world_from_uv[:, 1], 0.0)
    assert np.allclose(tangents, along_u / np.linalg.norm(along_u), atol=1e-5)
    assert np.all(signs == (-1.0 if mirror else 1.0))
    bitangents = signs[:, None] * np.cross(mesh.normals, tangents)
    assert np.allclose(bitangents, along_v / np.linalg.norm(along_v), atol=1e-5)


def test_tangents_are_unit_and_perpendicular_to_the_normals(bumpy_textured):
    tangents, signs = vertex_tangents(bumpy_textured)
    assert tangents.shape == bumpy_textured.vertices.shape and tangents.dtype == np.float32
    assert np.allclose(np.linalg.norm(tangents, axis=1), 1.0, atol=1e-5)
    assert np.abs(np.sum(tangents * bumpy_textured.normals, axis=1)).max() < 1e-5
    assert set(np.unique(signs)) <= {-1.0, 1.0}
    assert (signs > 0).mean() > 0.99  # the unwrap keeps charts counter-clockwise


def test_encoding_inverts_the_normal_map_nodes_decoding():
    rng = np.random.default_rng(3)
    count = 2000
    normals = rng.normal(size=(count, 3))
    tangents = rng.normal(size=(count, 3))
    tangents -= 0.8 * np.sum(tangents * normals, axis=1, keepdims=True) / np.sum(normals ** 2, 1)[:, None] * normals
    signs = np.where(rng.random(count) < 0.5, -1.0, 1.0)
    # tangent-space vectors with z > 0, then their world normals, then back
    encoded = rng.normal(size=(count, 3)) * [0.5, 0.5, 0.3]
    encoded[:, 2] = np.abs(encoded[:, 2]) + 0.2
    encoded /= np.linalg.norm(encoded, axis=1, keepdims=True)
    world = decode_tangent_space(encoded, tangents, normals, signs)
    assert np.allclose(encode_tangent_space(world, tangents, normals, signs, min_z=0.0), encoded, atol=1e-5)
    # a normal facing away from the surface is tilted back to z = min_z, keeping its tangent direction
    away = decode_tangent_space(encoded * [1, 1, -1], tangents, normals, signs)
    clamped = encode_tangent_space(away, tangents, normals, signs, min_z=0.05)
    assert np.allclose(clamped[:, 2], 0.05, atol=1e-6) and np.allclose(np.linalg.norm(clamped, axis=1), 1.0)
    assert np.all(np.sum(clamped[:, :2] * encoded[:, :2], axis=1) > 0)
    # no normal: flat
    nan = encode_tangent_space(np.full((3, 3), np.nan), tangents[:3], normals[:3], signs[:3])
    assert np.array_equal(nan, np.tile([0.0, 0.0, 1.0], (3, 1)).astype(np.float32))


# --- the bake --------------------------------------------------------------------------------

def test_without_normals_the_map_stays_flat(sphere_textured):
    def materials(points):
        count = len(points)
        return {"albedo": np.full((count, 3), 0.5), "specular": np.zeros(count), "shininess": np.full(count, 10.0)}
    baked = bake_textures(sphere_textured, materials, size=64, padding_px=2)
    assert np.array_equal(baked.normal, np.broadcast_to(np.float32([0, 0, 1]), (64, 64, 3)))


def test_texels_without_a_field_normal_are_flat(sphere_textured):
    def materials(points):
        values = materials_with_normals(sphere_sdf)(points)
        values["normal"][::2] = np.nan
        values["normal"][1::4] = 0.0
        return values
    baked = bake_textures(sphere_textured, materials, size=64, padding_px=2)
    assert np.all(np.isfinite(baked.normal)) and np.allclose(np.linalg.norm(baked.normal, axis=-1), 1.0, atol=1e-5)
    assert np.all(baked.normal[..., 2] > 0.999)


def test_a_sphere_whose_mesh_follows_the_sdf_bakes_a_nearly_flat_map(sphere_textured, tmp_path):
    size = 128
    baked = bake_textures(sphere_textured, materials_with_normals(sphere_sdf), size=size, padding_px=2)
    deviation = np.degrees(np.arccos(np.clip(baked.normal[..., 2], -1.0, 1.0)))
    assert deviation[baked.coverage].mean() < 2.0 and np.percentile(deviation[baked.coverage], 99) < 4.0
    assert np.allclose(np.linalg.norm(baked.normal, axis=-1), 1.0, atol=1e-5)
    images.write_normal_png(tmp_path / "normal.png", baked.normal)
    with Image.open(tmp_path / "normal.png") as png:
        codes = np.asarray(png)
    # deviations under FLAT_BELOW_DEGREES are stored exactly flat: no 127/128 dither from noise
    assert np.mean(np.all(codes[baked.coverage] == [128, 128, 255], axis=-1)) > 0.99


def test_a_bumpy_sdfs_map_decodes_to_the_field_normals(bumpy_textured, tmp_path):
    size = 256
    baked = bake_textures(bumpy_textured, materials_with_normals(bumpy_sdf), size=size, padding_px=2)
    texels, face, weights, points = texel_points(bumpy_textured, size)
    truth = field_normals(bumpy_sdf, points)
    interpolated = frames_at(bumpy_textured, face, weights)[1]
    mesh_error = angles_degrees(interpolated, truth)
    assert mesh_error.mean() > 3.0  # the 32^3 mesh misses the bumps: there is detail to bake

    # through the 8-bit PNG, as a reader gets it; decoded with the frames (Blender's Normal Map node)
    stored = images.read_normal_png(images.write_normal_png(tmp_path / "normal.png", baked.normal))
    decoded = apply_normal_map(bumpy_textured, face, weights, stored.reshape(-1, 3)[texels])
    error = angles_degrees(decoded, truth)
    assert error.mean() < 1.0 and np.percentile(error, 99) < 2.0, (error.mean(), np.percentile(error, 99))
    # tangent space: z > 0 everywhere, unit length
    assert baked.normal[..., 2].min() > 0.0
    assert np.allclose(np.linalg.norm(baked.normal, axis=-1), 1.0, atol=1e-5)


def test_opengl_y_points_along_increasing_v():
    """A field normal tilted towards +v on a flat patch reads as +y in the map (OpenGL), +u as +x."""
    mesh = grid_mesh()
    tilt = np.array([0.3, -0.2, 1.0]) / np.linalg.norm([0.3, -0.2, 1.0])  # dP/du = +x, dP/dv = +y here

    def materials(points):
        count = len(points)
        return {"albedo": np.full((count, 3), 0.5), "specular": np.zeros(count), "shininess": np.full(count, 10.0),
                "normal": np.tile(tilt, (count, 1))}
    baked = bake_textures(mesh, materials, size=32, padding_px=1)
    assert np.allclose(baked.normal[baked.coverage], tilt, atol=1e-5)


# --- the pipeline's normals (torch) ----------------------------------------------------------

def test_pipeline_normals_are_the_unit_sdf_gradient():
    torch = pytest.importorskip("torch")
    from gan2x.fit.asset_model import AssetModel
    from gan2x.pipeline import sdf_normals

    torch.manual_seed(0)
    model = AssetModel()
    with torch.no_grad():  # a shape with some relief, not the bare ellipsoid
        for parameter in model.sdf.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    points = torch.rand(300, 3) * 1.2 - 0.6
    normals = sdf_normals(model.sdf, points, chunk=64)
    assert normals.shape == (300, 3) and normals.dtype == np.float32
    assert np.allclose(np.linalg.norm(normals, axis=1), 1.0, atol=1e-5)
    step = 1e-3
    with torch.no_grad():
        gradient = torch.stack([(model.sdf(points + step * e) - model.sdf(points - step * e)) / (2 * step)
                                for e in torch.eye(3)], dim=1).double().numpy()
    assert np.percentile(angles_degrees(normals.astype(np.float64), gradient), 95) < 1.0
    assert all(parameter.grad is None for parameter in model.parameters())  # no graph, no parameter gradients


def test_noise_below_the_8_bit_step_stays_exactly_flat_and_larger_tilts_do_not(sphere_textured):
    rng = np.random.default_rng(5)

    def materials_tilted(degrees):
        def materials(points):
            values = materials_with_normals(sphere_sdf)(points)
            jitter = rng.normal(size=values["normal"].shape)
            jitter -= np.sum(jitter * values["normal"], axis=1, keepdims=True) * values["normal"]
            jitter /= np.linalg.norm(jitter, axis=1, keepdims=True)
            values["normal"] = values["normal"] + np.tan(np.radians(degrees)) * jitter
            return values
        return materials
    noisy = bake_textures(sphere_textured, materials_tilted(0.2), size=64, padding_px=2)
    assert np.mean(np.all(noisy.normal[noisy.coverage] == [0, 0, 1], axis=-1)) > 0.99
    tilted = bake_textures(sphere_textured, materials_tilted(3.0), size=64, padding_px=2)
    deviation = np.degrees(np.arccos(np.clip(tilted.normal[tilted.coverage][:, 2], -1, 1)))
    assert np.all(deviation > 2.5) and deviation.mean() == pytest.approx(3.0, abs=0.2)


def test_a_meshs_tangent_frames_are_computed_once_and_equal_a_fresh_computation(bumpy_textured):
    first = bumpy_textured.tangent_frames
    assert bumpy_textured.tangent_frames is first  # cached: every bake and render of the mesh reuses them
    tangents, signs = vertex_tangents(bumpy_textured)
    np.testing.assert_array_equal(first[0], tangents)
    np.testing.assert_array_equal(first[1], signs)
    texels, face, weights = rasterize_uv(bumpy_textured, 32)
    cached = frames_at(bumpy_textured, face, weights)
    given = frames_at(bumpy_textured, face, weights, (tangents, signs))
    for a, b in zip(cached, given):
        np.testing.assert_array_equal(a, b)

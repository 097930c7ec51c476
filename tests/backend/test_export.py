"""Export stage: marching cubes, UV unwrap, baking, PNG/PLY/GLB files.

Analytic SDFs (sphere, ellipsoid, unions of spheres) and procedural
materials; no torch. The bundle writer and validator are tested in
test_bundle_writer.py.
"""
from __future__ import annotations

import io
import json
import struct
import sys
import time

import numpy as np
import pytest
from PIL import Image

from gan2x import conventions
from gan2x.export import images
from gan2x.export.bake import bake_textures, dilate, rasterize_uv
from gan2x.export.datatypes import BundleError, ExportError, TexturedMesh
from gan2x.export.gltf import read_glb, write_glb
from gan2x.export.marching_cubes import connected_components, extract_mesh, sample_grid, signed_volume
from gan2x.export.ply import read_ply, write_ply
from gan2x.export.uv_unwrap import unwrap


# --- analytic fields -------------------------------------------------------------------

def sphere_sdf(radius=0.6, centre=(0.0, 0.0, 0.0)):
    centre = np.asarray(centre, np.float32)
    return lambda p: (np.linalg.norm(p - centre, axis=1) - radius).astype(np.float32)


def union_sdf(*sdfs):
    return lambda p: np.min(np.stack([f(p) for f in sdfs]), axis=0)


def ellipsoid_sdf(axes=(0.8, 0.5, 0.6)):
    """Cheap approximate ellipsoid SDF (exact sign, good near the surface)."""
    axes = np.asarray(axes, np.float32)

    def sdf(p):
        q = p / axes
        k0 = np.linalg.norm(q, axis=1)
        k1 = np.linalg.norm(q / axes, axis=1)
        return (k0 * (k0 - 1.0) / np.maximum(k1, 1e-9)).astype(np.float32)
    return sdf


def albedo_of(p):
    """A smooth known albedo in (0, 1) as a function of position."""
    p = np.asarray(p, np.float64)
    return np.stack([0.5 + 0.4 * np.sin(3.0 * p[:, 0]), 0.5 + 0.4 * p[:, 1], 0.3 + 0.2 * np.cos(2.0 * p[:, 2])], 1)


def procedural_materials(p):
    return {"albedo": albedo_of(p), "specular": 0.2 + 0.1 * p[:, 1], "shininess": 20.0 + 10.0 * p[:, 0]}


def edge_counts(faces):
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    _, undirected = np.unique(np.sort(edges, axis=1), axis=0, return_counts=True)
    _, directed = np.unique(edges, axis=0, return_counts=True)
    return undirected, directed


@pytest.fixture(scope="module")
def sphere_mesh():
    return extract_mesh(sphere_sdf(0.6), resolution=32)


@pytest.fixture(scope="module")
def sphere_textured(sphere_mesh):
    return unwrap(sphere_mesh, texture_size=128, padding=2)


# --- marching cubes --------------------------------------------------------------------

def test_sphere_mesh_is_watertight_outward_and_on_the_surface(sphere_mesh):
    mesh = sphere_mesh
    voxel = 2.0 / (32 - 1)
    undirected, directed = edge_counts(mesh.faces)
    assert np.all(undirected == 2), "every edge must be shared by exactly two faces"
    assert np.all(directed == 1), "neighbouring faces must wind consistently"
    volume = signed_volume(mesh.vertices, mesh.faces)
    assert volume > 0
    assert volume == pytest.approx(4.0 / 3.0 * np.pi * 0.6 ** 3, rel=0.03)
    radii = np.linalg.norm(mesh.vertices, axis=1)
    assert np.all(np.abs(radii - 0.6) <= voxel)
    radial = mesh.vertices / radii[:, None]
    assert np.all(np.einsum("ij,ij->i", mesh.normals, radial) > 0.99)
    assert np.allclose(np.linalg.norm(mesh.normals, axis=1), 1.0, atol=1e-5)
    # face normals point outwards too
    v = mesh.vertices.astype(np.float64)
    cross = np.cross(v[mesh.faces[:, 1]] - v[mesh.faces[:, 0]], v[mesh.faces[:, 2]] - v[mesh.faces[:, 0]])
    assert np.all(np.einsum("ij,ij->i", cross, v[mesh.faces].mean(axis=1)) > 0)
    assert mesh.vertices.dtype == np.float32 and mesh.faces.dtype == np.int32


def test_union_of_two_spheres_is_one_closed_component():
    sdf = union_sdf(sphere_sdf(0.4, (-0.25, 0, 0)), sphere_sdf(0.35, (0.3, 0.1, 0)))
    mesh = extract_mesh(sdf, resolution=32)
    undirected, _ = edge_counts(mesh.faces)
    assert np.all(undirected == 2)
    assert len(np.unique(connected_components(len(mesh.vertices), mesh.faces))) == 1
    assert signed_volume(mesh.vertices, mesh.faces) > 0


def test_largest_component_drops_the_floater():
    sdf = union_sdf(sphere_sdf(0.4, (-0.4, 0, 0)), sphere_sdf(0.15, (0.6, 0, 0)))
    both = extract_mesh(sdf, resolution=32)
    assert len(np.unique(connected_components(len(both.vertices), both.faces))) == 2
    largest = extract_mesh(sdf, resolution=32, largest_component=True)
    assert len(np.unique(connected_components(len(largest.vertices), largest.faces))) == 1
    assert largest.vertices[:, 0].max() < 0.1  # only the big sphere on the -x side remains
    assert np.all(edge_counts(largest.faces)[0] == 2)


def bumpy_sdf(p):
    """A sphere with ripples (gradient norm up to about 1.3) and a small floater."""
    p = np.asarray(p, np.float32)
    radius = np.linalg.norm(p, axis=1)
    ripples = 0.03 * np.sin(9.0 * p[:, 0]) * np.cos(7.0 * p[:, 1])
    return np.minimum(radius - 0.55 - ripples, sphere_sdf(0.06, (0.75, 0.3, 0.2))(p)).astype(np.float32)


@pytest.mark.parametrize("sdf", [bumpy_sdf, ellipsoid_sdf()], ids=["bumpy", "ellipsoid"])
def test_narrow_band_grid_equals_the_dense_grid_near_the_surface(sdf):
    calls = []

    def counted(points):
        calls.append(len(points))
        return sdf(points)
    dense = sample_grid(sdf, resolution=96, narrow_band=False)
    banded = sample_grid(counted, resolution=96)
    assert sum(calls) < 0.5 * 96 ** 3  # it skipped most of the grid
    assert np.array_equal(np.sign(banded), np.sign(dense))
    near = np.abs(dense) < 3 * 2.0 / 95  # every value marching cubes can use, and more
    assert np.array_equal(banded[near], dense[near])  # so marching cubes gives the dense grid's mesh


def test_sdf_is_called_in_chunks():
    calls = []
    base = sphere_sdf(0.5)

    def sdf(points):
        calls.append(len(points))
        return base(points)
    extract_mesh(sdf, resolution=16, chunk=1000)
    assert max(calls) <= 1000 and len(calls) > 16 ** 3 // 1000


@pytest.mark.parametrize("value", [1.0, -1.0])
def test_sdf_without_zero_crossing_is_a_clear_error(value):
    with pytest.raises(ExportError, match="no zero crossing"):
        extract_mesh(lambda p: np.full(len(p), value, np.float32), resolution=8)


# --- UV unwrap -------------------------------------------------------------------------

def face_areas(vertices, faces):
    v = vertices.astype(np.float64)
    return 0.5 * np.linalg.norm(np.cross(v[faces[:, 1]] - v[faces[:, 0]], v[faces[:, 2]] - v[faces[:, 0]]), axis=1)


def uv_areas(uvs, faces):
    a, b, c = (uvs[faces[:, k]].astype(np.float64) for k in range(3))
    return 0.5 * ((b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (c[:, 0] - a[:, 0]) * (b[:, 1] - a[:, 1]))


@pytest.mark.parametrize("method", ["xatlas", "projected"])
def test_unwrap_keeps_the_surface_and_gives_valid_uvs(sphere_mesh, method):
    textured = unwrap(sphere_mesh, texture_size=128, padding=2, method=method)
    assert textured.uvs.min() >= 0.0 and textured.uvs.max() <= 1.0
    assert len(textured.faces) == len(sphere_mesh.faces)
    assert np.all(face_areas(textured.vertices, textured.faces) > 0)
    # every output vertex copies its source vertex exactly, and faces keep their order
    assert np.array_equal(textured.vertices, sphere_mesh.vertices[textured.source_vertex])
    assert np.array_equal(textured.normals, sphere_mesh.normals[textured.source_vertex])
    assert np.array_equal(textured.source_vertex[textured.faces], sphere_mesh.faces)
    assert len(textured.vertices) > len(sphere_mesh.vertices)  # seams duplicate vertices
    # charts wind counter-clockwise in UV like the faces seen from outside
    areas = uv_areas(textured.uvs, textured.faces)
    assert areas[areas > 0].sum() > 0.999 * np.abs(areas).sum()
    # no two faces overlap in UV: the total UV area fits in the unit square
    assert np.abs(areas).sum() < 1.0


# --- baking ----------------------------------------------------------------------------

def test_baked_albedo_matches_the_field_at_the_texel_surface_point(sphere_textured):
    size = 128
    baked = bake_textures(sphere_textured, procedural_materials, size=size, padding_px=2, chunk=5000)
    assert baked.albedo.shape == (size, size, 3) and baked.specular.shape == (size, size)
    assert baked.shininess.shape == (size, size) and baked.normal.shape == (size, size, 3)
    assert baked.coverage.shape == (size, size) and baked.coverage.mean() > 0.3
    assert np.allclose(baked.normal, [0.0, 0.0, 1.0])

    # Independent reconstruction: texel centre -> UV (bundle.md) -> containing triangle (brute force) -> 3D.
    rows, cols = np.nonzero(baked.coverage)
    pick = np.random.default_rng(0).choice(len(rows), 200, replace=False)
    rows, cols = rows[pick], cols[pick]
    uv = np.stack([(cols + 0.5) / size, 1.0 - (rows + 0.5) / size], axis=1)
    mesh = sphere_textured
    a, b, c = (mesh.uvs[mesh.faces[:, k]].astype(np.float64) for k in range(3))
    det = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (c[:, 0] - a[:, 0]) * (b[:, 1] - a[:, 1])
    ok = np.abs(det) > 1e-15
    dx = uv[:, None, 0] - a[None, :, 0]
    dy = uv[:, None, 1] - a[None, :, 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        w1 = (dx * (c[:, 1] - a[:, 1]) - (c[:, 0] - a[:, 0]) * dy) / det
        w2 = ((b[:, 0] - a[:, 0]) * dy - dx * (b[:, 1] - a[:, 1])) / det
    inside = ok & (w1 >= -1e-7) & (w2 >= -1e-7) & (1 - w1 - w2 >= -1e-7)
    assert inside.any(axis=1).all(), "every covered texel centre lies in some UV triangle"
    face = inside.argmax(axis=1)
    k = np.arange(len(face))
    weights = np.stack([1 - w1[k, face] - w2[k, face], w1[k, face], w2[k, face]], axis=1)
    points = np.einsum("kc,kcd->kd", weights, mesh.vertices[mesh.faces[face]].astype(np.float64))
    assert np.all(np.abs(np.linalg.norm(points, axis=1) - 0.6) < 0.02)  # on the sphere
    assert np.allclose(baked.albedo[rows, cols], albedo_of(points), atol=2e-4)
    assert np.allclose(baked.specular[rows, cols], 0.2 + 0.1 * points[:, 1], atol=2e-4)
    assert np.allclose(baked.shininess[rows, cols], 20.0 + 10.0 * points[:, 0], atol=2e-3)


def test_texel_centres_and_row_order_follow_the_bundle_convention():
    # A quad covering the bottom half of UV space, positioned at (u, v, 0) in 3D.
    uvs = np.array([[0, 0], [1, 0], [1, 0.5], [0, 0.5]], np.float32)
    mesh = TexturedMesh(vertices=np.c_[uvs, np.zeros(4)], normals=np.tile([0, 0, 1.0], (4, 1)), uvs=uvs,
                        faces=np.array([[0, 1, 2], [0, 2, 3]]))
    size = 8
    baked = bake_textures(mesh, lambda p: {"albedo": np.c_[p[:, 0], p[:, 1], np.zeros(len(p))],
                                           "specular": np.zeros(len(p)), "shininess": np.ones(len(p))},
                          size=size, padding_px=0)
    assert not baked.coverage[: size // 2].any() and baked.coverage[size // 2:].all()
    rows, cols = np.mgrid[size // 2:size, 0:size]
    assert np.allclose(baked.albedo[rows, cols, 0], (cols + 0.5) / size, atol=1e-6)
    assert np.allclose(baked.albedo[rows, cols, 1], 1.0 - (rows + 0.5) / size, atol=1e-6)


def test_padding_fills_texels_next_to_charts(sphere_textured):
    size, padding = 128, 3
    baked = bake_textures(sphere_textured, procedural_materials, size=size, padding_px=padding)
    covered = baked.coverage
    # Chebyshev distance to the nearest covered texel (by repeated 8-neighbour growth)
    distance = np.where(covered, 0, 99)
    grown = covered.copy()
    for step in range(1, padding + 2):
        padded = np.pad(grown, 1)
        neighbour = np.zeros_like(grown)
        for dr in range(3):
            for dc in range(3):
                neighbour |= padded[dr:dr + size, dc:dc + size]
        distance[neighbour & ~grown] = step
        grown |= neighbour
    ring = np.argwhere(distance == 1)
    assert len(ring) > 0
    padded_albedo = np.pad(baked.albedo, ((1, 1), (1, 1), (0, 0)))
    padded_cover = np.pad(covered, 1)
    for row, col in ring[:: max(1, len(ring) // 200)]:
        window = padded_albedo[row:row + 3, col:col + 3][padded_cover[row:row + 3, col:col + 3]]
        assert np.all(baked.albedo[row, col] >= window.min(axis=0) - 1e-6)
        assert np.all(baked.albedo[row, col] <= window.max(axis=0) + 1e-6)
    # texels beyond the padding hold the mean of the covered texels
    far = distance > padding
    assert far.any()
    assert np.allclose(baked.albedo[far], baked.albedo[covered].mean(axis=0), atol=1e-5)


def test_dilate_grows_by_the_requested_number_of_texels():
    values = np.zeros((9, 9, 1), np.float32)
    filled = np.zeros((9, 9), bool)
    values[4, 4], filled[4, 4] = 2.0, True
    grown = dilate(values, filled, 2)
    rows, cols = np.mgrid[0:9, 0:9]
    assert np.array_equal(grown, np.maximum(abs(rows - 4), abs(cols - 4)) <= 2)
    assert np.allclose(values[grown], 2.0) and np.allclose(values[~grown], 0.0)


def test_materials_errors_are_clear(sphere_textured):
    with pytest.raises(ExportError, match="specular"):
        bake_textures(sphere_textured, lambda p: {"albedo": np.zeros((len(p), 3)), "shininess": np.ones(len(p))},
                      size=32)


def test_rasterizer_covers_each_texel_once(sphere_textured):
    texels, faces, weights = rasterize_uv(sphere_textured, 64, batch=1000)  # many small batches
    assert len(np.unique(texels)) == len(texels)
    assert np.allclose(weights.sum(axis=1), 1.0) and weights.min() >= 0.0
    again, _, _ = rasterize_uv(sphere_textured, 64)
    assert np.array_equal(texels, again)


# --- PNG --------------------------------------------------------------------------------

def test_albedo_png_is_srgb_8_bit(tmp_path):
    linear = np.random.default_rng(1).random((8, 12, 3))
    path = images.write_albedo_png(tmp_path / "albedo.png", linear)
    with Image.open(path) as image:
        assert image.mode == "RGB" and image.size == (12, 8)
        stored = np.array(image)
    assert np.array_equal(stored, np.round(conventions.srgb_from_linear(linear) * 255).astype(np.uint8))
    back = images.read_albedo_png(path)
    # within sRGB quantisation: half a step of 1/255 in the encoded domain
    assert np.abs(conventions.srgb_from_linear(back) - conventions.srgb_from_linear(linear)).max() <= 0.5 / 255 + 1e-6
    assert np.abs(back - conventions.linear_from_srgb(stored / 255.0)).max() < 1e-6


def test_specular_and_shininess_pngs_are_16_bit(tmp_path):
    rng = np.random.default_rng(2)
    ks = rng.random((6, 5)) * 0.8
    shininess = np.exp(rng.uniform(0.0, np.log(500.0), (6, 5)))
    spec_path = images.write_specular_png(tmp_path / "specular.png", ks)
    shin_path = images.write_shininess_png(tmp_path / "shininess.png", shininess)
    for path in (spec_path, shin_path):
        with Image.open(path) as image:
            assert image.mode == "I;16"
        assert images.png_info(path)["bit_depth"] == 16 and images.png_info(path)["colour"] == "grey"
    with Image.open(spec_path) as image:
        assert np.array_equal(np.array(image), np.round(ks * 65535).astype(np.uint16))
    with Image.open(shin_path) as image:
        expected = np.round(conventions.encode_shininess(shininess) * 65535).astype(np.uint16)
        assert np.array_equal(np.array(image), expected)
    assert np.abs(images.read_specular_png(spec_path) - ks).max() <= 0.5 / 65535 + 1e-7
    assert np.allclose(images.read_shininess_png(shin_path), shininess, rtol=1e-4)


def test_mask_and_normal_pngs(tmp_path):
    mask = np.zeros((4, 4))
    mask[1:3, 1:3] = 1.0
    path = images.write_mask_png(tmp_path / "mask.png", mask)
    with Image.open(path) as image:
        assert image.mode == "L" and np.array(image).max() == 255
    assert np.array_equal(images.read_mask_png(path), mask)
    flat = np.zeros((3, 3, 3))
    flat[..., 2] = 1.0
    path = images.write_normal_png(tmp_path / "normal.png", flat)
    with Image.open(path) as image:
        assert np.all(np.array(image) == [128, 128, 255])
    assert np.allclose(images.read_normal_png(path), flat, atol=1.5 / 255)  # 128 decodes to 1/255
    with pytest.raises(BundleError, match="normal.png"):
        images.read_grey16_png(path)  # an 8-bit RGB file is not a 16-bit texture


# --- PLY ---------------------------------------------------------------------------------

def test_ply_round_trip_is_exact(tmp_path, sphere_textured):
    path = write_ply(tmp_path / "mesh.ply", sphere_textured)
    back = read_ply(path)
    for name in ("vertices", "normals", "uvs", "faces"):
        assert np.array_equal(getattr(back, name), getattr(sphere_textured, name)), name
    header = path.read_bytes().split(b"end_header\n")[0].decode("ascii").splitlines()
    assert header[:3] == ["ply", "format binary_little_endian 1.0", "element vertex {}".format(
        len(sphere_textured.vertices))]
    assert header[-1] == "property list uchar uint vertex_indices"
    expected_size = len(b"\n".join(line.encode() for line in header)) + len(b"\nend_header\n") \
        + 32 * len(sphere_textured.vertices) + 13 * len(sphere_textured.faces)
    assert path.stat().st_size == expected_size


def test_ply_refuses_a_truncated_or_foreign_file(tmp_path, sphere_textured):
    path = write_ply(tmp_path / "mesh.ply", sphere_textured)
    data = path.read_bytes()
    path.write_bytes(data[:-7])
    with pytest.raises(BundleError, match=r"mesh\.ply.*truncated"):
        read_ply(path)
    path.write_bytes(data.replace(b"property float s\n", b"property double s\n"))
    with pytest.raises(BundleError, match=r"mesh\.ply.*header"):
        read_ply(path)
    bad = TexturedMesh(sphere_textured.vertices.copy(), sphere_textured.normals, sphere_textured.uvs,
                       sphere_textured.faces)
    bad.vertices[0, 0] = np.nan
    with pytest.raises(BundleError, match="non-finite"):
        write_ply(tmp_path / "nan.ply", bad)


# --- GLB ---------------------------------------------------------------------------------

def test_glb_parses_back_and_matches_the_mesh(tmp_path, sphere_textured):
    mesh = sphere_textured
    textures = bake_textures(mesh, procedural_materials, size=64, padding_px=2)
    path = write_glb(tmp_path / "asset.glb", mesh, textures)
    data = path.read_bytes()
    magic, version, length = struct.unpack_from("<III", data, 0)
    assert (magic, version, length) == (0x46546C67, 2, len(data))
    json_length, json_type = struct.unpack_from("<II", data, 12)
    assert json_type == 0x4E4F534A and json_length % 4 == 0
    bin_length, bin_type = struct.unpack_from("<II", data, 20 + json_length)
    assert bin_type == 0x004E4942 and bin_length % 4 == 0 and 28 + json_length + bin_length == len(data)
    document = json.loads(data[20:20 + json_length])
    document_again, binary = read_glb(path)
    assert document == document_again and len(binary) == bin_length == document["buffers"][0]["byteLength"]

    assert document["asset"]["version"] == "2.0"
    assert "KHR_materials_specular" in document["extensionsUsed"]
    primitive = document["meshes"][0]["primitives"][0]
    accessors = document["accessors"]

    def read(index):
        accessor = accessors[index]
        view = document["bufferViews"][accessor["bufferView"]]
        assert view["byteOffset"] % 4 == 0
        dtype = {5126: "<f4", 5125: "<u4"}[accessor["componentType"]]
        width = {"VEC3": 3, "VEC2": 2, "SCALAR": 1}[accessor["type"]]
        array = np.frombuffer(binary, dtype, count=accessor["count"] * width, offset=view["byteOffset"])
        assert array.nbytes == view["byteLength"]
        return array.reshape(accessor["count"], width) if width > 1 else array

    position = accessors[primitive["attributes"]["POSITION"]]
    assert position["count"] == len(mesh.vertices)
    assert np.array_equal(position["min"], mesh.vertices.min(axis=0).astype(np.float64))
    assert np.array_equal(position["max"], mesh.vertices.max(axis=0).astype(np.float64))
    assert np.array_equal(read(primitive["attributes"]["POSITION"]), mesh.vertices)
    assert np.allclose(read(primitive["attributes"]["NORMAL"]), mesh.normals, atol=1e-6)
    texcoord = read(primitive["attributes"]["TEXCOORD_0"])
    assert np.allclose(texcoord[:, 0], mesh.uvs[:, 0]) and np.allclose(texcoord[:, 1], 1.0 - mesh.uvs[:, 1])
    assert accessors[primitive["indices"]]["count"] == mesh.faces.size
    assert np.array_equal(read(primitive["indices"]).reshape(-1, 3), mesh.faces)

    material = document["materials"][primitive["material"]]
    pbr = material["pbrMetallicRoughness"]
    assert pbr["metallicFactor"] == 0.0
    for texture_info in (pbr["baseColorTexture"], pbr["metallicRoughnessTexture"], material["normalTexture"],
                         material["extensions"]["KHR_materials_specular"]["specularColorTexture"]):
        image = document["images"][document["textures"][texture_info["index"]]["source"]]
        view = document["bufferViews"][image["bufferView"]]
        png = binary[view["byteOffset"]:view["byteOffset"] + view["byteLength"]]
        with Image.open(io.BytesIO(png)) as decoded:
            assert decoded.size == (64, 64)
    # roughness in G follows conventions.shininess_to_roughness
    image = document["images"][document["textures"][pbr["metallicRoughnessTexture"]["index"]]["source"]]
    view = document["bufferViews"][image["bufferView"]]
    with Image.open(io.BytesIO(binary[view["byteOffset"]:view["byteOffset"] + view["byteLength"]])) as decoded:
        rgb = np.array(decoded)
    expected = np.round(conventions.shininess_to_roughness(textures.shininess.astype(np.float64)) * 255)
    assert np.abs(rgb[..., 1] - expected).max() <= 1 and np.all(rgb[..., 2] == 0)


# --- timings (printed, not asserted) -------------------------------------------------------

def test_print_timings(capsys):
    lines = []
    sdf = ellipsoid_sdf()
    meshes = {}
    for resolution in (128, 256):
        start = time.perf_counter()
        meshes[resolution] = extract_mesh(sdf, resolution=resolution)
        lines.append("marching cubes {0}^3 ellipsoid: {1:.2f} s ({2} vertices, {3} faces)".format(
            resolution, time.perf_counter() - start, len(meshes[resolution].vertices), len(meshes[resolution].faces)))
    unwrapped = {}
    for resolution, method in ((128, "xatlas"), (128, "projected"), (256, "projected")):
        start = time.perf_counter()
        unwrapped[resolution, method] = unwrap(meshes[resolution], texture_size=1024, method=method)
        lines.append("unwrap ({}) of the {}^3 mesh: {:.2f} s ({} vertices)".format(
            method, resolution, time.perf_counter() - start, len(unwrapped[resolution, method].vertices)))
    for key in ((128, "xatlas"), (256, "projected")):
        start = time.perf_counter()
        baked = bake_textures(unwrapped[key], procedural_materials, size=1024)
        lines.append("bake 1024x1024 of the {}^3 mesh ({} unwrap, {} faces): {:.2f} s (coverage {:.0%})".format(
            key[0], key[1], len(unwrapped[key].faces), time.perf_counter() - start, baked.coverage.mean()))
    with capsys.disabled():
        print("\n" + "\n".join("  [export timing] " + line for line in lines))


def test_export_does_not_import_torch():
    import subprocess

    code = ("import sys, gan2x.export, gan2x.export.asset, gan2x.export.bundle; "
            "sys.exit(1 if 'torch' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0

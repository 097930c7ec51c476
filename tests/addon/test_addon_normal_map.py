"""The backend's baked normal map as Blender reads it: the backend's tangent
frames (gan2x.export.tangents) are Blender's own (``Mesh.calc_tangents``
on the imported UV map, MikkTSpace), and a coarse mesh of a bumpy SDF with
its baked map renders in Cycles much closer to a fine mesh of the same
surface than the coarse mesh with a flat map does.

Bundles are written by the backend's export stage (``write_asset_bundle``)
from an analytic SDF, so these tests need the backend installed."""
from __future__ import annotations

import numpy as np
import pytest

from addon.blender import render
from addon.blender.scene import ImportOptions, import_bundle
from addon.bundle import conventions
from addon.bundle.reader import read_bundle
from sample_bundles import uv_sphere, write_bundle, write_ply

asset = pytest.importorskip("gan2x.export.asset")
from gan2x.export.bundle import CameraSpec, LightSpec  # noqa: E402  (after the skip)
from gan2x.export.datatypes import TexturedMesh  # noqa: E402
from gan2x.export.ply import read_ply  # noqa: E402
from gan2x.export.tangents import vertex_tangents  # noqa: E402

RADIUS, AMPLITUDE, WAVELENGTH = 0.8, 0.02, 0.3
"""A sphere with bumps of 2 cm every 30 cm: finer than the coarse grid's
cells (2 m / 19 = 10.5 cm), a few pixels wide in the render."""
COARSE, FINE = 20, 128
SIZE = 48
TOWARDS_LIGHT = np.array([0.5, 0.6, 0.62]) / np.linalg.norm([0.5, 0.6, 0.62])


def bumpy_sdf(points):
    p = np.asarray(points, np.float64)
    k = 2.0 * np.pi / WAVELENGTH
    bumps = AMPLITUDE * np.sin(k * p[:, 0]) * np.sin(k * p[:, 1]) * np.sin(k * p[:, 2])
    return (np.linalg.norm(p, axis=1) - RADIUS - bumps).astype(np.float32)


def bumpy_normals(points, step=1e-4):
    p = np.asarray(points, np.float64)
    return np.stack([(bumpy_sdf(p + step * e).astype(np.float64) - bumpy_sdf(p - step * e)) / (2 * step)
                     for e in np.eye(3)], axis=1)


def export(directory, resolution, with_normals, texture_size=256, unwrap_method="auto"):
    def materials(points):
        count = len(points)
        values = {"albedo": np.full((count, 3), 0.6), "specular": np.zeros(count), "shininess": np.full(count, 10.0)}
        if with_normals:
            values["normal"] = bumpy_normals(points)
        return values
    image = np.zeros((SIZE, SIZE, 3), np.float32)
    camera = CameraSpec(image_width=SIZE, image_height=SIZE, fov_y_degrees=10.0,
                        world_from_camera=np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 12.0], [0, 0, 0, 1]]))
    return asset.write_asset_bundle(directory, sdf=bumpy_sdf, materials=materials, camera=camera,
                                    light=LightSpec(TOWARDS_LIGHT, 0.7, 0.35), target_image=image,
                                    rerender_image=image, mask=np.ones((SIZE, SIZE), np.float32),
                                    provenance={}, resolution=resolution, texture_size=texture_size,
                                    padding_px=2, unwrap_method=unwrap_method)


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    root = tmp_path_factory.mktemp("normal-map")
    return {"map": export(root / "coarse_map", COARSE, True),
            "flat": export(root / "coarse_flat", COARSE, False),
            "fine": export(root / "fine", FINE, False, texture_size=64, unwrap_method="projected")}


def blender_tangents(mesh_object):
    """Blender's MikkTSpace frames per face corner: (tangents [L, 3] in
    Blender's frame, bitangent signs [L], vertex index [L])."""
    mesh = mesh_object.data
    mesh.calc_tangents(uvmap="UVMap")
    count = len(mesh.loops)
    tangents = np.empty(count * 3, np.float32)
    signs = np.empty(count, np.float32)
    vertex = np.empty(count, np.int32)
    mesh.loops.foreach_get("tangent", tangents)
    mesh.loops.foreach_get("bitangent_sign", signs)
    mesh.loops.foreach_get("vertex_index", vertex)
    return tangents.reshape(-1, 3), signs, vertex


def compare_tangents(bundle_path, textured: TexturedMesh):
    """(angles in degrees [L], signs agree [L]) between Blender's corner
    frames of the imported bundle and the backend's vertex frames."""
    import bpy

    result = import_bundle(bpy.context, read_bundle(bundle_path))
    theirs, their_signs, vertex = blender_tangents(result.mesh_object)
    ours, our_signs = vertex_tangents(textured)
    ours = conventions.blender_points(ours)[vertex]
    cosine = np.sum(ours * theirs, axis=1) / np.linalg.norm(theirs, axis=1)
    return np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0))), their_signs == our_signs[vertex]


def test_backend_tangents_are_blenders(registered_addon, bundles):
    angles, same_sign = compare_tangents(bundles["map"], read_ply(bundles["map"] / "mesh.ply"))
    print("\n  [normal map] tangents vs Blender's calc_tangents on {} corners: mean {:.4f} deg, p99 {:.4f} deg, "
          "max {:.4f} deg; bitangent signs agree on {:.2%}".format(
              len(angles), angles.mean(), np.percentile(angles, 99), angles.max(), same_sign.mean()))
    assert angles.mean() < 0.5 and np.percentile(angles, 99) < 2.0
    assert same_sign.mean() > 0.999


@pytest.mark.parametrize("mirror", [False, True])
def test_a_mirrored_uv_map_flips_the_sign_as_blender_does(registered_addon, tmp_path, mirror):
    directory = write_bundle(tmp_path / "sphere")
    vertices, normals, uvs, faces = uv_sphere()
    if mirror:
        uvs = uvs.copy()
        uvs[:, 0] = 1.0 - uvs[:, 0]
    write_ply(directory / "mesh.ply", vertices, normals, uvs, faces)
    textured = TexturedMesh(vertices=vertices, normals=normals, uvs=uvs, faces=faces)
    angles, same_sign = compare_tangents(directory, textured)
    assert angles.mean() < 0.5 and angles.max() < 2.0
    assert same_sign.all()
    used = np.unique(faces)
    assert np.all(vertex_tangents(textured)[1][used] == (-1.0 if mirror else 1.0))


def test_baked_map_renders_the_bumps_the_coarse_mesh_misses(registered_addon, bundles):
    import bpy

    renders = {}
    for name in ("fine", "map", "flat"):
        import_bundle(bpy.context, read_bundle(bundles[name]), ImportOptions(replace_previous=True))
        render.configure_cycles(bpy.context.scene, width=SIZE, samples=16, film_transparent=True)
        renders[name] = render.render_to_arrays(bpy.context.scene)
    # pixels fully on the object in all three renders, one pixel in from the silhouette
    inside = np.minimum.reduce([image[..., 3] for image in renders.values()]) > 0.999
    inside[1:-1, 1:-1] &= inside[:-2, 1:-1] & inside[2:, 1:-1] & inside[1:-1, :-2] & inside[1:-1, 2:]
    assert inside.sum() > 0.3 * SIZE * SIZE
    error = {name: np.abs(renders[name][..., :3] - renders["fine"][..., :3])[inside].mean() for name in ("map", "flat")}
    relief = renders["fine"][..., :3][inside].std()
    print("\n  [normal map] mean |render - fine mesh render| over {} pixels (fine render's std {:.4f}): "
          "baked map {:.4f}, flat map {:.4f}".format(int(inside.sum()), relief, error["map"], error["flat"]))
    assert error["map"] < 0.6 * error["flat"]
    assert error["map"] < 0.012

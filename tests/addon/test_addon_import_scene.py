"""Importing the sample bundle builds the scene docs/bundle.md describes:
mesh, Principled material with derived maps, sun, world and camera."""
from __future__ import annotations

import math

import numpy as np
import pytest

from addon.blender.scene import ImportOptions, find_imports, import_bundle
from addon.bundle import conventions
from addon.bundle.reader import read_bundle
from sample_bundles import TOWARDS_LIGHT, data_counts, default_shininess, default_specular, write_bundle


@pytest.fixture
def imported(registered_addon, sample_bundle):
    import bpy

    bundle = read_bundle(sample_bundle)
    return bpy, bundle, import_bundle(bpy.context, bundle)


def _pixels(image) -> np.ndarray:
    width, height = image.size
    pixels = np.empty(width * height * 4, np.float32)
    image.pixels.foreach_get(pixels)
    return pixels.reshape(height, width, 4)


def _linked_from(socket):
    assert socket.is_linked, "{} is not linked".format(socket.name)
    return socket.links[0].from_node


def test_builds_a_collection_named_after_the_bundle(imported):
    bpy, _, result = imported
    assert result.collection.name == "sample"
    assert result.collection.name in bpy.context.scene.collection.children
    assert {obj.name for obj in result.collection.objects} == {obj.name for obj in result.objects}
    assert {obj.type for obj in result.objects} == {"MESH", "LIGHT", "CAMERA"}
    assert bpy.context.scene.gan2x.last_import == result.collection


def test_mesh_matches_the_bundle_in_blenders_frame(imported):
    _, bundle, result = imported
    mesh = result.mesh_object.data
    assert len(mesh.vertices) == len(bundle.vertices) == 1225
    assert len(mesh.polygons) == len(bundle.faces) == 2208
    coordinates = np.empty(len(mesh.vertices) * 3, np.float32)
    mesh.vertices.foreach_get("co", coordinates)
    np.testing.assert_allclose(coordinates.reshape(-1, 3), conventions.blender_points(bundle.vertices),
                               atol=1e-6)
    # bundle +Y (the sphere's north pole) is Blender's +Z
    assert coordinates.reshape(-1, 3)[:, 2].max() == pytest.approx(0.9, abs=1e-6)

    corners = np.empty(len(mesh.loops), np.int32)
    mesh.loops.foreach_get("vertex_index", corners)
    np.testing.assert_array_equal(corners, bundle.faces.ravel())
    uvs = np.empty(len(mesh.loops) * 2, np.float32)
    mesh.uv_layers["UVMap"].data.foreach_get("uv", uvs)
    np.testing.assert_allclose(uvs.reshape(-1, 2), bundle.uvs[bundle.faces.ravel()], atol=1e-7)

    # faces wind counter-clockwise from outside: Blender's face normals point out
    face_normals = np.empty(len(mesh.polygons) * 3, np.float32)
    mesh.polygons.foreach_get("normal", face_normals)
    centres = np.empty(len(mesh.polygons) * 3, np.float32)
    mesh.polygons.foreach_get("center", centres)
    assert np.all(np.einsum("ij,ij->i", face_normals.reshape(-1, 3), centres.reshape(-1, 3)) > 0)

    assert mesh.has_custom_normals
    corner_normals = np.empty(len(mesh.loops) * 3, np.float32)
    mesh.corner_normals.foreach_get("vector", corner_normals)
    np.testing.assert_allclose(corner_normals.reshape(-1, 3),
                               conventions.blender_points(bundle.normals)[bundle.faces.ravel()], atol=1e-3)
    assert list(result.mesh_object.matrix_world) == list(result.mesh_object.matrix_world.Identity(4))


def test_material_is_a_principled_bsdf_with_the_bundle_textures(imported):
    _, bundle, result = imported
    assert result.mesh_object.data.materials[0] == result.material
    nodes = result.material.node_tree.nodes
    (bsdf,) = [node for node in nodes if node.bl_idname == "ShaderNodeBsdfPrincipled"]
    (output,) = [node for node in nodes if node.bl_idname == "ShaderNodeOutputMaterial"]
    assert _linked_from(output.inputs["Surface"]) == bsdf
    assert bsdf.inputs["IOR"].default_value == pytest.approx(1000.0)
    assert bsdf.inputs["Specular IOR Level"].default_value == pytest.approx(0.5)

    albedo_node = _linked_from(bsdf.inputs["Base Color"])
    assert albedo_node.bl_idname == "ShaderNodeTexImage"
    assert albedo_node.image == result.images["albedo"]
    assert albedo_node.image.colorspace_settings.name == "sRGB"

    for socket, role in (("Roughness", "roughness"), ("Specular Tint", "specular_tint")):
        node = _linked_from(bsdf.inputs[socket])
        assert node.bl_idname == "ShaderNodeTexImage" and node.image == result.images[role]
        assert node.image.colorspace_settings.name == "Non-Color"

    normal_map = _linked_from(bsdf.inputs["Normal"])
    assert normal_map.bl_idname == "ShaderNodeNormalMap"
    assert normal_map.space == "TANGENT" and normal_map.uv_map == "UVMap"
    normal_node = _linked_from(normal_map.inputs["Color"])
    assert normal_node.image == result.images["normal"]
    assert normal_node.image.colorspace_settings.name == "Non-Color"

    for image in result.images.values():
        assert image.packed_file is not None, image.name


def test_ambient_occlusion_multiplies_the_albedo_through_a_mix_node(registered_addon, tmp_path):
    """Base Color = albedo x AO through a Mix node (Color, Multiply) whose
    Factor is the import's strength; the AO image is the texture, Non-Color."""
    import bpy

    from addon.blender.material import AO_MIX_NODE_NAME

    occlusion = np.tile(np.linspace(0, 255, 32).round().astype(np.uint8), (16, 1))
    occlusion[:4] = 255  # rows differ too: the orientation is checked
    bundle = read_bundle(write_bundle(tmp_path / "with_ao", ambient_occlusion=occlusion))
    result = import_bundle(bpy.context, bundle, ImportOptions(ao_strength=0.3))
    nodes = result.material.node_tree.nodes
    (bsdf,) = [node for node in nodes if node.bl_idname == "ShaderNodeBsdfPrincipled"]
    (mix,) = [node for node in nodes if node.bl_idname == "ShaderNodeMix"]
    assert mix.name == AO_MIX_NODE_NAME and _linked_from(bsdf.inputs["Base Color"]) == mix
    assert mix.data_type == "RGBA" and mix.blend_type == "MULTIPLY"
    assert bsdf.inputs["Base Color"].links[0].from_socket.identifier == "Result_Color"
    sockets = {socket.identifier: socket for socket in mix.inputs}
    assert sockets["Factor_Float"].default_value == pytest.approx(0.3)
    assert _linked_from(sockets["A_Color"]).image == result.images["albedo"]
    occlusion_node = _linked_from(sockets["B_Color"])
    assert occlusion_node.image == result.images["ambient_occlusion"]
    image = result.images["ambient_occlusion"]
    assert image.colorspace_settings.name == "Non-Color" and image.packed_file is not None
    # Blender's row 0 is the bottom; the PNG's is the top
    np.testing.assert_allclose(_pixels(image)[:, :, 0], occlusion[::-1] / 255.0, atol=1e-6)


def test_ao_strength_is_clamped_and_defaults_to_half(registered_addon, tmp_path):
    import bpy

    from addon.blender.material import AO_MIX_NODE_NAME, AO_STRENGTH_DEFAULT

    assert ImportOptions().ao_strength == AO_STRENGTH_DEFAULT == 0.5
    path = write_bundle(tmp_path / "with_ao", ambient_occlusion=0.25)
    for options, factor in ((None, 0.5), (ImportOptions(ao_strength=0.0), 0.0),
                            (ImportOptions(ao_strength=3.0), 1.0)):
        result = import_bundle(bpy.context, read_bundle(path), options)
        assert result.material.node_tree.nodes[AO_MIX_NODE_NAME].inputs[0].default_value == factor


def test_a_bundle_without_ambient_occlusion_has_no_mix_node(imported):
    _, bundle, result = imported
    assert "ambient_occlusion" not in bundle.textures and "ambient_occlusion" not in result.images
    nodes = result.material.node_tree.nodes
    assert not [node for node in nodes if node.bl_idname == "ShaderNodeMix"]
    (bsdf,) = [node for node in nodes if node.bl_idname == "ShaderNodeBsdfPrincipled"]
    assert _linked_from(bsdf.inputs["Base Color"]).image == result.images["albedo"]


def test_roughness_and_specular_tint_hold_the_converted_texels(imported):
    _, bundle, result = imported
    height, width = 16, 32
    # the PNGs' texel (row, col) with row 0 at the top; Blender's row 0 is the bottom
    ks = default_specular(height, width)[::-1] / 65535.0
    shininess = conventions.decode_shininess(default_shininess(height, width)[::-1] / 65535.0)
    roughness = _pixels(result.images["roughness"])
    f0 = _pixels(result.images["specular_tint"])
    assert roughness.shape == f0.shape == (height, width, 4)
    for channel in range(3):
        np.testing.assert_allclose(roughness[:, :, channel], conventions.shininess_to_roughness(shininess),
                                   rtol=1e-5)
        np.testing.assert_allclose(f0[:, :, channel], conventions.specular_f0(ks, shininess), atol=1e-6)
    # the maps vary (rows for ks, columns for shininess), so orientation is checked
    assert np.ptp(f0[:, 3, 0]) > 0.01 and np.ptp(roughness[4, :, 0]) > 0.1


def test_sun_strength_and_direction(imported):
    _, _, result = imported
    (sun,) = result.suns
    assert sun.data.type == "SUN"
    assert sun.data.energy == pytest.approx(math.pi * 0.7)
    assert sun.data.angle == 0.0
    towards = np.asarray(TOWARDS_LIGHT) / np.linalg.norm(TOWARDS_LIGHT)
    towards_blender = np.array([towards[0], -towards[2], towards[1]])
    minus_z = -np.array(sun.matrix_world.to_3x3().col[2])
    np.testing.assert_allclose(minus_z, -towards_blender, atol=1e-6)  # shines away from the light


def test_world_is_uniform_with_strength_ka(imported):
    bpy, _, result = imported
    world = bpy.context.scene.world
    assert world == result.world
    (background,) = [node for node in world.node_tree.nodes if node.bl_idname == "ShaderNodeBackground"]
    assert background.inputs["Strength"].default_value == pytest.approx(0.35)
    assert tuple(background.inputs["Color"].default_value) == pytest.approx((1.0, 1.0, 1.0, 1.0))
    assert not background.inputs["Color"].is_linked


def test_camera_matches_the_bundle_camera(imported):
    bpy, bundle, result = imported
    camera = result.camera
    expected = conventions.BLENDER_FROM_BUNDLE @ bundle.camera.world_from_camera
    np.testing.assert_allclose(np.array(camera.matrix_world), expected, atol=1e-6)
    assert camera.data.sensor_fit == "VERTICAL"
    assert camera.data.angle_y == pytest.approx(math.radians(10.0))
    assert camera.data.shift_x == camera.data.shift_y == 0.0
    scene = bpy.context.scene
    assert scene.camera == camera
    assert (scene.render.resolution_x, scene.render.resolution_y) == (64, 64)


def test_options_leave_out_lights_camera_and_world(registered_addon, sample_bundle):
    import bpy

    result = import_bundle(bpy.context, read_bundle(sample_bundle),
                           ImportOptions(import_lights=False, import_camera=False, import_world=False))
    assert result.suns == [] and result.camera is None and result.world is None
    assert bpy.context.scene.world is None and bpy.context.scene.camera is None
    assert len(bpy.data.lights) == len(bpy.data.cameras) == 0


def test_reuse_world_edits_the_scenes_world(registered_addon, sample_bundle):
    import bpy

    world = bpy.data.worlds.new("Mine")
    bpy.context.scene.world = world
    background = world.node_tree.nodes["Background"]
    background.inputs["Strength"].default_value = 3.0
    result = import_bundle(bpy.context, read_bundle(sample_bundle), ImportOptions(world_mode="REUSE"))
    assert result.world == world and bpy.context.scene.world == world
    assert len(bpy.data.worlds) == 1
    assert background.inputs["Strength"].default_value == pytest.approx(0.35)


def test_replace_previous_removes_the_earlier_import(registered_addon, tmp_path):
    import bpy

    first = write_bundle(tmp_path / "first")
    second = write_bundle(tmp_path / "second")
    import_bundle(bpy.context, read_bundle(first))
    counts_after_one = data_counts()
    result = import_bundle(bpy.context, read_bundle(second), ImportOptions(replace_previous=True))
    assert [c.name for c in find_imports(bpy.context.scene)] == ["second"]
    assert data_counts() == counts_after_one
    assert not any(image.name.startswith("first") for image in bpy.data.images)
    assert bpy.context.scene.world == result.world

    import_bundle(bpy.context, read_bundle(first), ImportOptions(replace_previous=False))
    assert sorted(c.name for c in find_imports(bpy.context.scene)) == ["first", "second"]


def test_import_raises_no_deprecation_warnings(registered_addon, sample_bundle):
    """Blender 5.0 deprecates Material.use_nodes (and World.use_nodes); new
    materials and worlds already have node trees, so the importer never
    touches it."""
    import warnings

    import bpy

    bundle = read_bundle(sample_bundle)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        import_bundle(bpy.context, bundle, ImportOptions(world_mode="NEW"))
        import_bundle(bpy.context, bundle, ImportOptions(world_mode="REUSE", replace_previous=True))

"""A failed import leaves the scene and bpy.data as they were."""
from __future__ import annotations

import pytest

from addon.blender import camera as camera_builder
from addon.blender import material as material_builder
from addon.blender.scene import ImportOptions, find_imports, import_bundle
from addon.bundle.reader import BundleError, read_bundle
from sample_bundles import data_counts, edit_manifest, write_bundle


def _scene_state(bpy):
    scene = bpy.context.scene
    return (scene.world, scene.camera, scene.render.resolution_x, scene.render.resolution_y,
            scene.gan2x.last_import)


def test_operator_refuses_a_corrupt_bundle_and_changes_nothing(registered_addon, sample_bundle):
    import bpy

    mesh = sample_bundle / "mesh.ply"
    mesh.write_bytes(mesh.read_bytes()[:-100])
    before, state = data_counts(), _scene_state(bpy)
    with pytest.raises(RuntimeError, match="truncated"):
        bpy.ops.gan2x.import_bundle(filepath=str(sample_bundle / "manifest.json"))
    assert data_counts() == before and _scene_state(bpy) == state


def _raise_after_creating_the_camera(real_create):
    def create_then_fail(bundle, name, collection, rollback):
        real_create(bundle, name, collection, rollback)
        raise RuntimeError("simulated failure midway")
    return create_then_fail


def test_a_builder_raising_midway_removes_everything_created(registered_addon, sample_bundle, monkeypatch):
    import bpy

    scene = bpy.context.scene
    scene.render.resolution_x, scene.render.resolution_y = 123, 45
    before, state = data_counts(), _scene_state(bpy)
    monkeypatch.setattr(camera_builder, "create_camera",
                        _raise_after_creating_the_camera(camera_builder.create_camera))
    with pytest.raises(BundleError, match="simulated failure midway.*left as it was"):
        import_bundle(bpy.context, read_bundle(sample_bundle))
    assert data_counts() == before
    assert _scene_state(bpy) == state
    assert len(scene.collection.children) == 0


def test_a_failure_restores_a_reused_world(registered_addon, sample_bundle, monkeypatch):
    import bpy

    world = bpy.data.worlds.new("Mine")
    bpy.context.scene.world = world
    tree = world.node_tree
    background = tree.nodes["Background"]
    background.inputs["Strength"].default_value = 2.0
    sky = tree.nodes.new("ShaderNodeTexSky")
    tree.links.new(sky.outputs["Color"], background.inputs["Color"])
    before = data_counts()
    monkeypatch.setattr(camera_builder, "create_camera",
                        _raise_after_creating_the_camera(camera_builder.create_camera))
    with pytest.raises(BundleError):
        import_bundle(bpy.context, read_bundle(sample_bundle), ImportOptions(world_mode="REUSE"))
    assert data_counts() == before
    assert background.inputs["Strength"].default_value == pytest.approx(2.0)
    assert background.inputs["Color"].is_linked
    assert background.inputs["Color"].links[0].from_node == sky


def test_a_failure_keeps_the_previous_import_when_replacing(registered_addon, tmp_path, monkeypatch):
    import bpy

    import_bundle(bpy.context, read_bundle(write_bundle(tmp_path / "kept")))
    before = data_counts()

    def fail(*args, **kwargs):
        raise MemoryError("out of memory while deriving maps")
    monkeypatch.setattr(material_builder, "derived_material_maps", fail)
    with pytest.raises(BundleError, match="out of memory"):
        import_bundle(bpy.context, read_bundle(write_bundle(tmp_path / "new")),
                      ImportOptions(replace_previous=True))
    assert data_counts() == before
    assert [c.name for c in find_imports(bpy.context.scene)] == ["kept"]
    assert bpy.context.scene.gan2x.last_import.name == "kept"


def test_reader_errors_raise_before_anything_is_built(registered_addon, sample_bundle):
    import bpy

    edit_manifest(sample_bundle, lambda m: m.update(schema_version=9))
    before = data_counts()
    with pytest.raises(RuntimeError, match="newer GAN2X backend"):
        bpy.ops.gan2x.import_bundle(filepath=str(sample_bundle))
    assert data_counts() == before

"""The operator, file handler, menu entry and sidebar panel, registered by the
add-on's own register()."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from sample_bundles import zip_bundle
from ui_recording import RecordingLayout, draw, labels


def test_register_adds_and_unregister_removes_every_class(clean_blender):
    import addon
    import bpy

    names = ("GAN2X_OT_import_bundle", "GAN2X_FH_bundle", "VIEW3D_PT_gan2x")
    assert not any(hasattr(bpy.types, name) for name in names)
    assert not any(cls.is_registered for cls in addon.classes)
    addon.register()
    try:
        assert all(hasattr(bpy.types, name) for name in names)
        assert all(cls.is_registered for cls in addon.classes)
        assert hasattr(bpy.types.Scene, "gan2x")
        assert bpy.types.VIEW3D_PT_gan2x.bl_category == "GAN2X"
        assert bpy.types.VIEW3D_PT_gan2x.bl_region_type == "UI"
        assert bpy.ops.gan2x.import_bundle.get_rna_type().bl_rna.identifier == "GAN2X_OT_import_bundle"
        assert "UNDO" in addon.GAN2X_OT_import_bundle.bl_options
        assert bpy.types.GAN2X_FH_bundle.bl_import_operator == "gan2x.import_bundle"
        assert set(bpy.types.GAN2X_FH_bundle.bl_file_extensions.split(";")) == {".json", ".zip"}
        assert addon.menu_func_import in bpy.types.TOPBAR_MT_file_import._dyn_ui_initialize()
    finally:
        addon.unregister()
    assert addon.menu_func_import not in bpy.types.TOPBAR_MT_file_import._dyn_ui_initialize()
    assert not any(hasattr(bpy.types, name) for name in names)
    assert not any(cls.is_registered for cls in addon.classes)
    assert not hasattr(bpy.types.Scene, "gan2x")


def test_file_menu_entry(registered_addon):
    import bpy

    from addon.operators.import_bundle import menu_func_import

    assert menu_func_import in bpy.types.TOPBAR_MT_file_import._dyn_ui_initialize()
    layout = RecordingLayout()
    menu_func_import(SimpleNamespace(layout=layout), None)
    assert layout.log == [("operator", "gan2x.import_bundle", "GAN2X asset (.json/.zip)")]


def test_file_handler_accepts_drops_on_the_3d_viewport_only(registered_addon):
    handler = registered_addon.GAN2X_FH_bundle
    assert handler.poll_drop(SimpleNamespace(area=SimpleNamespace(type="VIEW_3D")))
    assert not handler.poll_drop(SimpleNamespace(area=SimpleNamespace(type="NODE_EDITOR")))
    assert not handler.poll_drop(SimpleNamespace(area=None))


def test_operator_imports_a_zip_and_selects_the_mesh(registered_addon, sample_bundle, tmp_path):
    import bpy

    zip_path = zip_bundle(sample_bundle, tmp_path / "sample.zip")
    assert bpy.ops.gan2x.import_bundle(filepath=str(zip_path), import_camera=False) == {"FINISHED"}
    mesh_object = bpy.data.objects["sample"]
    assert bpy.context.view_layer.objects.active == mesh_object and mesh_object.select_get()
    assert len(bpy.data.cameras) == 0 and len(bpy.data.lights) == 1
    # packed images survive the temporary folder the zip was unpacked into
    assert all(image.packed_file is not None for image in bpy.data.images)


def test_panel_draws_the_last_imports_provenance(registered_addon, sample_bundle):
    import bpy

    main = draw(bpy.types.VIEW3D_PT_gan2x, bpy.context)
    assert ("operator", "gan2x.import_bundle", "Import Asset") in main
    assert ("operator", "gan2x.reconstruct", "Reconstruct") in main
    assert ("label", "No asset imported yet") in draw(bpy.types.VIEW3D_PT_gan2x_asset, bpy.context)

    bpy.ops.gan2x.import_bundle(filepath=str(sample_bundle / "manifest.json"))
    after = labels(draw(bpy.types.VIEW3D_PT_gan2x_asset, bpy.context))
    assert "sample" in after
    assert "Generator: synthetic:sphere" in after
    assert "Seed: 7" in after
    assert "psnr: 31.25" in after and "mask_iou: 0.975" in after


def test_operator_draw_uses_real_properties(registered_addon):
    import bpy

    operator_properties = bpy.ops.gan2x.import_bundle.get_rna_type()
    operator = SimpleNamespace(layout=RecordingLayout(), bl_rna=operator_properties, import_world=True)
    registered_addon.GAN2X_OT_import_bundle.draw(operator, None)  # prop() checks every name
    drawn = {entry[1] for entry in operator.layout.log if entry[0] == "prop"}
    assert drawn == {"import_lights", "import_camera", "import_world", "world_mode", "replace_previous",
                     "ao_strength"}


def test_ao_strength_is_an_import_setting_from_0_to_1_defaulting_to_half(registered_addon, tmp_path):
    """The operator, the sidebar's import options and each job have it (the
    Factor of the AO Mix node); the operator passes it to the import."""
    import bpy

    from addon.blender.material import AO_MIX_NODE_NAME, AO_STRENGTH_DEFAULT
    from sample_bundles import write_bundle

    assert AO_STRENGTH_DEFAULT == 0.5
    from addon.properties import GAN2X_PG_job

    for rna in (bpy.ops.gan2x.import_bundle.get_rna_type(), bpy.context.scene.gan2x.bl_rna, GAN2X_PG_job.bl_rna):
        prop = rna.properties["ao_strength"]
        assert (prop.default, prop.hard_min, prop.hard_max) == (AO_STRENGTH_DEFAULT, 0.0, 1.0), rna.identifier
    description = bpy.context.scene.gan2x.bl_rna.properties["ao_strength"].description
    assert "Cycles already shadows" in description
    settings = bpy.context.scene.gan2x
    assert ("prop", "ao_strength") in draw(bpy.types.VIEW3D_PT_gan2x_import, bpy.context)
    assert settings.ao_strength == AO_STRENGTH_DEFAULT

    bundle = write_bundle(tmp_path / "with_ao", ambient_occlusion=0.5)
    assert bpy.ops.gan2x.import_bundle(filepath=str(bundle), ao_strength=0.25) == {"FINISHED"}
    factor = bpy.data.materials["with_ao"].node_tree.nodes[AO_MIX_NODE_NAME].inputs[0]
    assert factor.identifier == "Factor_Float" and factor.default_value == pytest.approx(0.25)
    assert bpy.ops.gan2x.import_bundle(filepath=str(bundle), replace_previous=True) == {"FINISHED"}
    (material,) = [m for m in bpy.data.materials if AO_MIX_NODE_NAME in m.node_tree.nodes]
    assert material.node_tree.nodes[AO_MIX_NODE_NAME].inputs[0].default_value == pytest.approx(0.5)


@pytest.mark.parametrize("mode", ["NEW", "REUSE"])
def test_operator_world_modes(registered_addon, sample_bundle, mode):
    import bpy

    existing = bpy.data.worlds.new("Existing")
    bpy.context.scene.world = existing
    bpy.ops.gan2x.import_bundle(filepath=str(sample_bundle), world_mode=mode)
    assert (bpy.context.scene.world == existing) == (mode == "REUSE")


def test_stop_operator_stops_the_local_backend(registered_addon, tmp_path):
    import time

    import bpy

    backend = registered_addon.session.local_backend
    assert not bpy.ops.gan2x.backend_stop.poll()
    process = backend.start("sleep 30", "http://127.0.0.1", tmp_path / "backend.log")
    try:
        assert bpy.ops.gan2x.backend_stop.poll()
        assert bpy.ops.gan2x.backend_stop() == {'FINISHED'}
        deadline = time.monotonic() + 10
        while process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert process.poll() is not None and not backend.running
        state = bpy.context.window_manager.gan2x
        assert state.backend_state == 'UNKNOWN' and "stopped" in state.backend_message
        assert not bpy.ops.gan2x.backend_stop.poll()
    finally:
        backend.stop()


EXIT_SCRIPT = """
import sys
sys.path.insert(0, sys.argv[1])
import bpy
import addon
addon.register()
process = addon.session.local_backend.start("sleep 60", "http://127.0.0.1", sys.argv[2])
print("PID", process.pid, flush=True)
"""  # exits without unregister(), as Blender does when it quits


def test_the_local_backend_is_stopped_when_blender_exits(tmp_path):
    import os
    import subprocess
    import sys

    from sample_bundles import ROOT

    env = {**os.environ, "BLENDER_USER_RESOURCES": str(tmp_path / "blender-user")}
    completed = subprocess.run([sys.executable, "-c", EXIT_SCRIPT, str(ROOT), str(tmp_path / "backend.log")],
                               capture_output=True, text=True, env=env, timeout=120)
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-2000:]
    pid = int(completed.stdout.split("PID ")[1].split()[0])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return  # gone: stopped (and reaped) when the interpreter exited
    os.kill(pid, 9)
    pytest.fail("the local backend (pid {}) outlived the Blender that started it".format(pid))

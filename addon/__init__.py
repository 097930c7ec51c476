"""GAN2X for Blender: imports GAN2X asset bundles as relightable scenes.

Only registration lives here; the bundle reader and its maths are in
``bundle/`` (bpy-free), the scene builders in ``blender/``.
"""
import bpy

from .operators.import_bundle import GAN2X_FH_bundle, GAN2X_OT_import_bundle, menu_func_import
from .panels.sidebar import VIEW3D_PT_gan2x
from .preferences import GAN2X_AddonPreferences
from .properties import GAN2X_PG_scene_settings, register_scene_properties, unregister_scene_properties

classes = (
    GAN2X_AddonPreferences,
    GAN2X_PG_scene_settings,
    GAN2X_OT_import_bundle,
    GAN2X_FH_bundle,
    VIEW3D_PT_gan2x,
)


def register():
    for cls in classes:
        bpy.utils.register_class(cls)
    register_scene_properties()
    bpy.types.TOPBAR_MT_file_import.append(menu_func_import)


def unregister():
    bpy.types.TOPBAR_MT_file_import.remove(menu_func_import)
    unregister_scene_properties()
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)

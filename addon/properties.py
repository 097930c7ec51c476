"""Settings the add-on keeps on the scene (``scene.gan2x``)."""

import bpy
from bpy.props import PointerProperty


class GAN2X_PG_scene_settings(bpy.types.PropertyGroup):
    last_import: PointerProperty(
        name="Last Import",
        description="Collection of the last GAN2X asset imported into this scene",
        type=bpy.types.Collection,
    )


def register_scene_properties() -> None:
    bpy.types.Scene.gan2x = PointerProperty(type=GAN2X_PG_scene_settings)


def unregister_scene_properties() -> None:
    del bpy.types.Scene.gan2x

"""Add-on preferences (Edit > Preferences > Add-ons > GAN2X)."""

import bpy
from bpy.props import StringProperty


class GAN2X_AddonPreferences(bpy.types.AddonPreferences):
    bl_idname = __package__

    backend_url: StringProperty(
        name="Backend URL",
        description="Address of the GAN2X backend service (loopback by default)",
        default="http://127.0.0.1:8765",
    )

    def draw(self, context):
        self.layout.prop(self, "backend_url")

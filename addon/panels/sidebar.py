"""3D Viewport > Sidebar > GAN2X."""

import bpy

from ..blender.scene import last_import, provenance_of
from ..bundle.provenance import generator_text, metric_lines, seed_text
from ..operators.import_bundle import GAN2X_OT_import_bundle


class VIEW3D_PT_gan2x(bpy.types.Panel):
    bl_space_type = 'VIEW_3D'
    bl_region_type = 'UI'
    bl_category = "GAN2X"
    bl_label = "GAN2X"

    def draw(self, context):
        layout = self.layout
        layout.operator(GAN2X_OT_import_bundle.bl_idname, text="Import Asset", icon='IMPORT')

        collection = last_import(context.scene)
        if collection is None:
            layout.label(text="No asset imported yet")
            return
        provenance = provenance_of(collection)
        box = layout.box()
        box.label(text=collection.name, icon='OUTLINER_COLLECTION')
        column = box.column(align=True)
        column.label(text="Generator: {}".format(generator_text(provenance) or "unknown"))
        column.label(text="Seed: {}".format(seed_text(provenance)))
        lines = metric_lines(provenance)
        if lines:
            metrics = box.column(align=True)
            metrics.label(text="Metrics")
            for name, value in lines:
                metrics.label(text="{}: {}".format(name, value))

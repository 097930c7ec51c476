"""File > Import and drag-and-drop of a GAN2X asset bundle."""

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, StringProperty
from bpy_extras.io_utils import ImportHelper

from ..blender.material import AO_STRENGTH_DEFAULT, AO_STRENGTH_DESCRIPTION
from ..blender.scene import ImportOptions, import_bundle, select_imported
from ..bundle.reader import BundleError, read_bundle


class GAN2X_OT_import_bundle(bpy.types.Operator, ImportHelper):
    """Import a GAN2X asset bundle (its folder's manifest.json, or a .zip)"""
    bl_idname = "gan2x.import_bundle"
    bl_label = "Import GAN2X Asset"
    bl_options = {'REGISTER', 'UNDO'}

    filter_glob: StringProperty(default="*.json;*.zip", options={'HIDDEN'})
    import_lights: BoolProperty(
        name="Lights", default=True,
        description="Add a sun for each estimated directional light")
    import_camera: BoolProperty(
        name="Camera", default=True,
        description="Add the camera of the target image and make it the scene camera")
    import_world: BoolProperty(
        name="World", default=True,
        description="Light the scene with the estimated ambient light as a uniform world")
    world_mode: EnumProperty(
        name="World",
        items=(
            ('NEW', "New World", "Make a new world and assign it to the scene"),
            ('REUSE', "Reuse Scene World", "Set the scene world's background colour and strength"),
        ),
        default='NEW')
    replace_previous: BoolProperty(
        name="Replace Previous Import", default=False,
        description="Remove earlier GAN2X imports in this scene once this one succeeded")
    ao_strength: FloatProperty(
        name="AO Strength", default=AO_STRENGTH_DEFAULT, min=0.0, max=1.0, subtype='FACTOR',
        description=AO_STRENGTH_DESCRIPTION)

    @classmethod
    def poll(cls, context):
        return context.scene is not None

    def invoke(self, context, event):
        if self.filepath:  # dropped on the viewport (GAN2X_FH_bundle)
            return self.invoke_popup(context)
        return ImportHelper.invoke(self, context, event)

    def draw(self, context):
        layout = self.layout
        layout.use_property_split = True
        layout.use_property_decorate = False
        column = layout.column(heading="Include")
        column.prop(self, "import_lights")
        column.prop(self, "import_camera")
        column.prop(self, "import_world")
        row = layout.row()
        row.enabled = self.import_world
        row.prop(self, "world_mode")
        layout.prop(self, "ao_strength")
        layout.prop(self, "replace_previous")

    def execute(self, context):
        try:
            with read_bundle(self.filepath) as bundle:
                result = import_bundle(context, bundle, ImportOptions.from_settings(self))
                skipped = list(bundle.skipped_members)
        except BundleError as error:
            self.report({'ERROR'}, str(error))
            return {'CANCELLED'}
        select_imported(context.view_layer, result)
        self.report({'INFO'}, "Imported {} ({} vertices, {} faces)".format(
            result.collection.name, len(result.mesh_object.data.vertices),
            len(result.mesh_object.data.polygons)))
        if skipped:
            self.report({'WARNING'}, "{}: skipped {} member(s) that manifest.json does not name: {}".format(
                self.filepath, len(skipped), ", ".join(skipped[:5]) + (", ..." if len(skipped) > 5 else "")))
        return {'FINISHED'}


class GAN2X_FH_bundle(bpy.types.FileHandler):
    bl_idname = "GAN2X_FH_bundle"
    bl_label = "GAN2X asset bundle"
    bl_import_operator = GAN2X_OT_import_bundle.bl_idname
    bl_file_extensions = ".json;.zip"

    @classmethod
    def poll_drop(cls, context):
        return context.area is not None and context.area.type == 'VIEW_3D'


def menu_func_import(self, context):
    self.layout.operator(GAN2X_OT_import_bundle.bl_idname, text="GAN2X asset (.json/.zip)")

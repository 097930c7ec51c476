"""3D Viewport > Sidebar > GAN2X: the backend's status, the source, the
quality, Reconstruct with the running job's progress, its live preview and
Cancel; below, the fit settings, the import options, this session's jobs
(with the selected job's report picture) and the last import.

Pictures come from ``session.preview_entry`` (loaded by the session's timer,
never here: draw() only shows what is loaded)."""

import bpy

from .. import session
from ..blender.scene import last_import, provenance_of
from ..bundle.provenance import generator_text, metric_lines, seed_text
from ..client.service import format_seconds
from ..operators.import_bundle import GAN2X_OT_import_bundle
from ..preferences import draw_backend_status, wrap

LIVE_PREVIEW_SCALE = 6.0
"""The live preview's size in the job box, in UI units (a 64-pixel preview: 120 pixels at 100% scale)."""
REPORT_SCALE = 12.0

_STATE_ICONS = {'SUBMITTING': 'EXPORT', 'QUEUED': 'SORTTIME', 'RUNNING': 'PLAY', 'DOWNLOADING': 'IMPORT',
                'IMPORTED': 'CHECKMARK', 'DONE': 'CHECKMARK', 'FAILED': 'ERROR', 'CANCELLED': 'CANCEL'}


def _session(context):
    return getattr(context.window_manager, "gan2x", None)


def _active_job(context):
    state = _session(context)
    if state is None or not 0 <= state.active_job_index < len(state.jobs):
        return None
    return state.jobs[state.active_job_index]


def progress_text(item) -> str:
    """``38% · ETA 9 s`` for the progress bar."""
    text = "{:.0%}".format(item.fraction)
    if item.state == 'RUNNING' and item.eta_seconds >= 0:
        text += " · ETA " + format_seconds(item.eta_seconds)
    return text


class VIEW3D_PT_gan2x(bpy.types.Panel):
    bl_space_type = 'VIEW_3D'
    bl_region_type = 'UI'
    bl_category = "GAN2X"
    bl_label = "GAN2X"

    def draw(self, context):
        layout = self.layout
        draw_backend_status(layout, context)

        settings = context.scene.gan2x
        column = layout.column()
        column.use_property_split = True
        column.use_property_decorate = False
        column.prop(settings, "source_kind")
        if settings.source_kind == 'IMAGE':
            column.prop(settings, "image_path")
        else:
            column.prop(settings, "generator")
            column.prop(settings, "seed")
            column.prop(settings, "truncation")
        column.prop(settings, "preset")

        item = _active_job(context)
        running = item is not None and item.active
        row = layout.row()
        row.scale_y = 1.4
        row.enabled = not running
        row.operator("gan2x.reconstruct", text="Reconstruct", icon='MESH_MONKEY')
        if item is not None:
            box = layout.box()
            box.label(text=item.name, icon=_STATE_ICONS.get(item.state, 'NONE'))
            if running:
                box.label(text=item.stage or item.message or "starting")
                box.progress(factor=item.fraction, type='BAR', text=progress_text(item))
                preview = session.preview_entry("live", item.key)
                if preview is not None:
                    box.template_icon(icon_value=preview.icon_id, scale=LIVE_PREVIEW_SCALE)
                box.operator("gan2x.cancel_job", text="Cancel", icon='CANCEL')
            elif item.message:
                lines = box.column(align=True)
                lines.alert = item.state == 'FAILED'
                for line in wrap(item.message, 40):
                    lines.label(text=line)
        layout.operator(GAN2X_OT_import_bundle.bl_idname, text="Import Asset", icon='IMPORT')


class VIEW3D_PT_gan2x_fit(bpy.types.Panel):
    bl_space_type = 'VIEW_3D'
    bl_region_type = 'UI'
    bl_category = "GAN2X"
    bl_label = "Fit Settings"
    bl_parent_id = "VIEW3D_PT_gan2x"
    bl_options = {'DEFAULT_CLOSED'}

    def draw(self, context):
        layout = self.layout
        layout.use_property_split = True
        layout.use_property_decorate = False
        settings = context.scene.gan2x
        for name in ("steps_scale", "stages", "pseudo_samples", "mesh_resolution", "texture_size"):
            layout.prop(settings, name)


class VIEW3D_PT_gan2x_import(bpy.types.Panel):
    bl_space_type = 'VIEW_3D'
    bl_region_type = 'UI'
    bl_category = "GAN2X"
    bl_label = "Import Options"
    bl_parent_id = "VIEW3D_PT_gan2x"
    bl_options = {'DEFAULT_CLOSED'}

    def draw(self, context):
        layout = self.layout
        layout.use_property_split = True
        layout.use_property_decorate = False
        settings = context.scene.gan2x
        column = layout.column(heading="Include")
        column.prop(settings, "import_lights")
        column.prop(settings, "import_camera")
        column.prop(settings, "import_world")
        row = layout.row()
        row.enabled = settings.import_world
        row.prop(settings, "world_mode")
        layout.prop(settings, "ao_strength")
        layout.prop(settings, "replace_previous")


class GAN2X_UL_jobs(bpy.types.UIList):
    """This session's jobs: name, state and progress."""

    def draw_item(self, context, layout, data, item, icon, active_data, active_propname, index):
        row = layout.row(align=True)
        row.label(text=item.name, icon=_STATE_ICONS.get(item.state, 'NONE'))
        if item.active:
            row.label(text=progress_text(item))
        else:
            row.label(text=item.bl_rna.properties["state"].enum_items[item.state].name)


class VIEW3D_PT_gan2x_jobs(bpy.types.Panel):
    bl_space_type = 'VIEW_3D'
    bl_region_type = 'UI'
    bl_category = "GAN2X"
    bl_label = "Jobs"
    bl_parent_id = "VIEW3D_PT_gan2x"

    def draw(self, context):
        layout = self.layout
        state = _session(context)
        if state is None or not len(state.jobs):
            layout.label(text="No jobs in this session yet")
            return
        layout.template_list("GAN2X_UL_jobs", "", state, "jobs", state, "active_job_index", rows=3)
        item = _active_job(context)
        if item is None:
            return
        row = layout.row(align=True)
        row.operator("gan2x.reimport_job", text="Import Again", icon='IMPORT')
        row.operator("gan2x.open_job_folder", text="Open Folder", icon='FILE_FOLDER')
        if item.active:
            row.operator("gan2x.cancel_job", text="", icon='CANCEL')
        report = session.preview_entry("report", item.key)
        if report is not None:
            box = layout.box()
            box.label(text="Report", icon='IMAGE_DATA')
            box.template_icon(icon_value=report.icon_id, scale=REPORT_SCALE)


class VIEW3D_PT_gan2x_asset(bpy.types.Panel):
    bl_space_type = 'VIEW_3D'
    bl_region_type = 'UI'
    bl_category = "GAN2X"
    bl_label = "Last Import"
    bl_parent_id = "VIEW3D_PT_gan2x"

    def draw(self, context):
        layout = self.layout
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


classes = (VIEW3D_PT_gan2x, VIEW3D_PT_gan2x_fit, VIEW3D_PT_gan2x_import, GAN2X_UL_jobs,
           VIEW3D_PT_gan2x_jobs, VIEW3D_PT_gan2x_asset)

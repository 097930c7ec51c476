"""The session's job list: cancel, import again, open the result's folder."""

import os

import bpy
from bpy.props import IntProperty

from .. import session
from ..bundle.reader import BundleError


def _job(context, index: int):
    """The job at ``index`` (-1: the list's active one), or None."""
    state = session.session_state(context)
    if index < 0:
        index = state.active_job_index
    return state.jobs[index] if 0 <= index < len(state.jobs) else None


class GAN2X_OT_cancel_job(bpy.types.Operator):
    """Cancel the job on the backend"""
    bl_idname = "gan2x.cancel_job"
    bl_label = "Cancel Job"
    bl_options = {'REGISTER'}

    index: IntProperty(name="Job", default=-1, description="Index in the job list (-1: the active job)")

    @classmethod
    def poll(cls, context):
        item = _job(context, -1) if hasattr(context.window_manager, "gan2x") else None
        return item is not None and item.active

    def execute(self, context):
        item = _job(context, self.index)
        if item is None or not session.cancel(item):
            self.report({'WARNING'}, "That job is not running")
            return {'CANCELLED'}
        self.report({'INFO'}, "Cancelling {}".format(item.name))
        return {'FINISHED'}


class GAN2X_OT_reimport_job(bpy.types.Operator):
    """Import the job's asset (again) into the scene with its import options"""
    bl_idname = "gan2x.reimport_job"
    bl_label = "Import Again"
    bl_options = {'REGISTER', 'UNDO'}

    index: IntProperty(name="Job", default=-1, description="Index in the job list (-1: the active job)")

    def execute(self, context):
        item = _job(context, self.index)
        if item is None:
            self.report({'ERROR'}, "No such job in this session's list")
            return {'CANCELLED'}
        item.scene_name = context.scene.name  # into the scene the person is looking at
        try:
            result = session.import_job(item, context)
        except BundleError as error:
            self.report({'ERROR'}, str(error))
            return {'CANCELLED'}
        self.report({'INFO'}, "Imported {}".format(result.collection.name))
        return {'FINISHED'}


class GAN2X_OT_open_job_folder(bpy.types.Operator):
    """Open the folder of the job's downloaded bundle in the file browser of the system"""
    bl_idname = "gan2x.open_job_folder"
    bl_label = "Open Folder"
    bl_options = {'REGISTER'}

    index: IntProperty(name="Job", default=-1, description="Index in the job list (-1: the active job)")

    def execute(self, context):
        item = _job(context, self.index)
        folder = item.bundle_dir if item is not None else ""
        if not folder or not os.path.isdir(folder):
            self.report({'ERROR'}, "This job has no downloaded bundle{}".format(
                " ({} is gone)".format(folder) if folder else " yet"))
            return {'CANCELLED'}
        return bpy.ops.wm.path_open(filepath=folder)

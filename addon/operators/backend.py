"""Preferences > Local Backend: start and stop a backend on this machine,
and check whichever backend the URL names."""

import bpy

from .. import session
from ..client.local_backend import LocalBackendError
from ..client.token import is_loopback_url


class GAN2X_OT_backend_start(bpy.types.Operator):
    """Start the local backend command (unless the one Blender started is still running)"""
    bl_idname = "gan2x.backend_start"
    bl_label = "Start Local Backend"
    bl_options = {'REGISTER'}

    def execute(self, context):
        url, _, command = session.backend_settings(context)
        if not is_loopback_url(url):
            self.report({'ERROR'}, "The backend URL {} is not on this machine; set it to http://127.0.0.1:8765 "
                        "to use a local backend".format(url))
            return {'CANCELLED'}
        if session.local_backend.running:
            self.report({'INFO'}, "The local backend is already running (pid {})".format(
                session.local_backend.process.pid))
            return {'FINISHED'}
        try:
            process = session.local_backend.start(command, url, session.user_dir("logs") / "backend.log")
        except LocalBackendError as error:
            self.report({'ERROR'}, str(error))
            return {'CANCELLED'}
        session.check_backend_async(context, wait_for_start=True)
        self.report({'INFO'}, "Started the local backend (pid {}); log: {}".format(
            process.pid, session.local_backend.log_path))
        return {'FINISHED'}


class GAN2X_OT_backend_stop(bpy.types.Operator):
    """Stop the local backend Blender started (queued jobs stay queued for its next start)"""
    bl_idname = "gan2x.backend_stop"
    bl_label = "Stop Local Backend"
    bl_options = {'REGISTER'}

    @classmethod
    def poll(cls, context):
        return session.local_backend.running

    def execute(self, context):
        session.local_backend.stop(wait=False)
        state = session.session_state(context)
        state.backend_state, state.backend_message = 'UNKNOWN', "the local backend was stopped"
        self.report({'INFO'}, "Stopping the local backend")
        return {'FINISHED'}


class GAN2X_OT_check_backend(bpy.types.Operator):
    """Check that the backend answers, is a compatible version and accepts the token"""
    bl_idname = "gan2x.check_backend"
    bl_label = "Check Backend"
    bl_options = {'REGISTER'}

    def execute(self, context):
        session.check_backend_async(context)
        return {'FINISHED'}

"""Sidebar > Reconstruct: submits the scene's source and settings to the
backend. Returns at once; the job runs on the backend and ``session.poll``
follows it and imports the asset when it is done."""

import os

import bpy

from .. import session
from ..client.jobs import JobRequest


class GAN2X_OT_reconstruct(bpy.types.Operator):
    """Reconstruct a 3D asset from the chosen source on the GAN2X backend, then import it"""
    bl_idname = "gan2x.reconstruct"
    bl_label = "Reconstruct"
    bl_options = {'REGISTER'}  # the scene changes later, when the job's asset is imported (its own undo step)

    @classmethod
    def poll(cls, context):
        return context.scene is not None and hasattr(context.scene, "gan2x")

    def execute(self, context):
        settings = context.scene.gan2x
        if settings.source_kind == 'IMAGE':
            path = bpy.path.abspath(settings.image_path)
            if not settings.image_path or not os.path.isfile(path):
                self.report({'ERROR'}, "Choose an image file first ({} is not a file)".format(
                    path or "no image chosen"))
                return {'CANCELLED'}
            request = JobRequest(image_path=path, settings=settings.job_settings())
        else:
            generator = settings.generator.strip()
            if not generator:
                self.report({'ERROR'}, "Choose a generator first (for example synthetic:faces)")
                return {'CANCELLED'}
            request = JobRequest(source={"kind": "sample", "generator": generator, "seed": settings.seed,
                                         "truncation": round(settings.truncation, 4)},
                                 settings=settings.job_settings())
        item = session.submit(context, request)
        if item.state == 'FAILED':
            self.report({'ERROR'}, item.message)
            return {'CANCELLED'}
        self.report({'INFO'}, "Submitted {} to {}".format(item.name, item.backend_url))
        return {'FINISHED'}

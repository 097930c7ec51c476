"""GAN2X for Blender: reconstructs relightable 3D assets on the GAN2X backend
and imports GAN2X asset bundles as scenes.

Only registration lives here; the bundle reader and its maths are in
``bundle/`` (bpy-free), the backend's client in ``client/`` (bpy-free, runs
on background threads), the scene builders in ``blender/``, this session's
jobs and timer in ``session.py``, batch conversion in ``convert.py``.
"""
import bpy

from . import convert, session
from .operators.backend import GAN2X_OT_backend_start, GAN2X_OT_backend_stop, GAN2X_OT_check_backend
from .operators.import_bundle import GAN2X_FH_bundle, GAN2X_OT_import_bundle, menu_func_import
from .operators.jobs import GAN2X_OT_cancel_job, GAN2X_OT_open_job_folder, GAN2X_OT_reimport_job
from .operators.reconstruct import GAN2X_OT_reconstruct
from .panels import sidebar
from .preferences import GAN2X_AddonPreferences
from .properties import classes as property_classes
from .properties import register_properties, unregister_properties

classes = (
    GAN2X_AddonPreferences,
    *property_classes,
    GAN2X_OT_import_bundle,
    GAN2X_FH_bundle,
    GAN2X_OT_reconstruct,
    GAN2X_OT_cancel_job,
    GAN2X_OT_reimport_job,
    GAN2X_OT_open_job_folder,
    GAN2X_OT_backend_start,
    GAN2X_OT_backend_stop,
    GAN2X_OT_check_backend,
    *sidebar.classes,
)

_cli_command = None
"""The handle of ``blender --command gan2x`` while registered."""


def register():
    global _cli_command
    for cls in classes:
        bpy.utils.register_class(cls)
    register_properties()
    bpy.types.TOPBAR_MT_file_import.append(menu_func_import)
    session.register()
    _cli_command = bpy.utils.register_cli_command(convert.COMMAND, convert.cli_command)


def unregister():
    global _cli_command
    if _cli_command is not None:
        bpy.utils.unregister_cli_command(_cli_command)
        _cli_command = None
    session.unregister()
    bpy.types.TOPBAR_MT_file_import.remove(menu_func_import)
    unregister_properties()
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)

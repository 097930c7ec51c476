"""Add-on preferences (Edit > Preferences > Add-ons > GAN2X): where the
backend is, its token, and the command of a backend Blender starts itself."""

import textwrap

import bpy
from bpy.props import StringProperty

from .client.local_backend import LocalBackendError, command_arguments
from .client.token import default_token_file, is_loopback_url, token_file_of_command


class GAN2X_AddonPreferences(bpy.types.AddonPreferences):
    bl_idname = __package__

    backend_url: StringProperty(
        name="Backend URL",
        description="Address of the GAN2X backend service (gan2x serve); this machine by default",
        default="http://127.0.0.1:8765",
    )
    token: StringProperty(
        name="Token", subtype='PASSWORD',
        description="The backend's bearer token. Leave empty for a backend on this machine: it is read from "
                    "the backend's token file",
    )
    backend_command: StringProperty(
        name="Local Backend Command",
        description="Command that starts a backend on this machine (Start below); --port is added from the "
                    "backend URL unless given. Use the full path of gan2x in the backend's environment",
        default="gan2x serve",
    )

    def token_source_text(self) -> str:
        if self.token.strip():
            return "Token: from these preferences"
        if not is_loopback_url(self.backend_url):
            return "Token: none set (needed for a backend on another machine)"
        path = token_file_of_command(self.backend_command) or default_token_file()
        return "Token: read from {}".format(path)

    def draw(self, context):
        from . import session  # imported here: session imports the operators' helpers

        layout = self.layout
        layout.prop(self, "backend_url")
        layout.prop(self, "token")
        layout.label(text=self.token_source_text(), icon='LOCKED')
        draw_backend_status(layout, context)

        box = layout.box()
        box.label(text="Local Backend", icon='CONSOLE')
        box.prop(self, "backend_command", text="Command")
        try:
            box.label(text="Runs: " + " ".join(command_arguments(self.backend_command, self.backend_url)))
        except LocalBackendError as error:
            row = box.row()
            row.alert = True
            row.label(text=str(error), icon='ERROR')
        row = box.row(align=True)
        row.operator("gan2x.backend_start", text="Start", icon='PLAY')
        row.operator("gan2x.backend_stop", text="Stop", icon='SNAP_FACE')
        box.label(text="Process: " + session.local_backend.describe())


def draw_backend_status(layout, context) -> None:
    """The backend's status with its reason, and a button to check again."""
    status = getattr(context.window_manager, "gan2x", None)
    row = layout.row(align=True)
    if status is None:
        row.label(text="Backend: not checked")
        return
    icons = {'OK': 'CHECKMARK', 'UNKNOWN': 'QUESTION', 'CHECKING': 'SORTTIME'}
    state_name = status.bl_rna.properties["backend_state"].enum_items[status.backend_state].name
    row.alert = status.backend_state not in icons
    row.label(text="Backend: " + state_name, icon=icons.get(status.backend_state, 'ERROR'))
    row.operator("gan2x.check_backend", text="", icon='FILE_REFRESH')
    if status.backend_message:
        message = layout.column(align=True)
        message.alert = status.backend_state not in icons
        for line in wrap(status.backend_message, 70):
            message.label(text=line)


def wrap(text: str, width: int) -> list:
    """Splits a long message into lines of about ``width`` characters for labels."""
    return textwrap.wrap(text, width) or [""]


def preferences(context=None):
    """This add-on's preferences (None when it is not registered as an add-on,
    e.g. imported by a script)."""
    context = context or bpy.context
    addon = context.preferences.addons.get(__package__)
    return addon.preferences if addon is not None else None

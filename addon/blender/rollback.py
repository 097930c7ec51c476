"""Undo for a failed import: every datablock a builder creates and every
setting it changes on existing data is recorded here, so that an exception
midway can put bpy.data back exactly as it was."""
from __future__ import annotations

import bpy


class Rollback:
    def __init__(self, import_id: str):
        self.import_id = import_id
        """Stored on every created datablock (``id["gan2x_import_id"]``) so
        that a later import can find and replace this one."""
        self.created: list = []
        self._restores: list = []

    def created_id(self, id_block):
        """Records (and tags) a datablock this import created; returns it."""
        id_block["gan2x_import_id"] = self.import_id
        self.created.append(id_block)
        return id_block

    def set(self, owner, attribute: str, value) -> None:
        """``setattr(owner, attribute, value)``, restored on rollback."""
        previous = getattr(owner, attribute)
        if isinstance(previous, bpy.types.bpy_struct) or isinstance(previous, (str, bytes)):
            pass  # a datablock or struct reference, or an immutable value
        elif hasattr(previous, "copy"):
            previous = previous.copy()  # mathutils values
        elif hasattr(previous, "__len__"):
            previous = tuple(previous)  # property arrays view live data
        self._restores.append(lambda: setattr(owner, attribute, previous))
        setattr(owner, attribute, value)

    def on_rollback(self, restore) -> None:
        """Calls ``restore()`` on rollback (last registered runs first)."""
        self._restores.append(restore)

    def rollback(self) -> None:
        """Restores changed settings, then removes every created datablock."""
        for restore in reversed(self._restores):
            try:
                restore()
            except (ReferenceError, AttributeError, TypeError, RuntimeError):
                pass  # its owner went away with the data it belonged to
        self._restores.clear()
        remove_ids(self.created)
        self.created.clear()


def is_valid(id_block) -> bool:
    """False once the datablock behind a Python reference was removed."""
    try:
        id_block.name
    except ReferenceError:
        return False
    return True


def remove_ids(id_blocks) -> None:
    """Removes datablocks (ignoring ones already gone) in one call."""
    alive = {id_block.as_pointer(): id_block for id_block in id_blocks if is_valid(id_block)}
    if alive:
        bpy.data.batch_remove(list(alive.values()))

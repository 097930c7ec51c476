"""Fixtures for the add-on tests: a sample bundle (``sample_bundles``), a
Blender reset to factory settings before each Blender test, and the add-on
package (imported from the repository as ``addon``) registered by its own
register()."""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Keep Blender away from the user's own configuration and extensions. Must be
# set before bpy is first imported (it reads the variable once).
if "bpy" not in sys.modules and "BLENDER_USER_RESOURCES" not in os.environ:
    _USER_RESOURCES = tempfile.TemporaryDirectory(prefix="gan2x-blender-user-")
    os.environ["BLENDER_USER_RESOURCES"] = _USER_RESOURCES.name

from sample_bundles import write_bundle  # noqa: E402


# --- fixtures ---------------------------------------------------------------------

@pytest.fixture
def sample_bundle(tmp_path) -> Path:
    """A valid bundle directory named 'sample'."""
    return write_bundle(tmp_path / "sample")


@pytest.fixture
def clean_blender():
    """Blender reset to factory settings with an empty scene (before the test)."""
    import bpy

    bpy.ops.wm.read_factory_settings(use_empty=True)
    yield bpy


@pytest.fixture
def registered_addon(clean_blender):
    """The add-on package (``addon``) registered for the test, unregistered after."""
    import addon

    addon.register()
    try:
        yield addon
    finally:
        addon.unregister()



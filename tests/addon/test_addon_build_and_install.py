"""build.py makes a zip that Blender's extension validator accepts, and that
Blender installs and enables the way it does for users."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import tomllib
import zipfile

import pytest

from sample_bundles import ROOT

sys.path.insert(0, str(ROOT))
import build  # noqa: E402  (the repository's build.py)


@pytest.fixture(scope="module")
def extension_zip(tmp_path_factory):
    return build.build_extension(tmp_path_factory.mktemp("dist"))


def test_build_produces_a_zip_the_validator_accepts(extension_zip):
    assert extension_zip.name == "gan2x-0.1.0.zip"
    with zipfile.ZipFile(extension_zip) as archive:
        names = set(archive.namelist())
    assert {"blender_manifest.toml", "__init__.py", "bundle/reader.py", "bundle/manifest_checks.py",
            "blender/scene.py", "operators/import_bundle.py", "operators/reconstruct.py", "panels/sidebar.py", "session.py",
            "client/service.py", "client/jobs.py", "convert.py", "headless.py"} <= names
    assert not any("__pycache__" in name or name.endswith(".pyc") for name in names)
    with zipfile.ZipFile(extension_zip) as archive:  # the shared bundle checks, as the backend has them
        assert archive.read("bundle/manifest_checks.py") == build.SHARED_FILES[0][0].read_bytes()
    with zipfile.ZipFile(extension_zip) as archive:
        manifest = tomllib.loads(archive.read("blender_manifest.toml").decode("utf-8"))
    assert set(manifest["permissions"]) == {"network", "files"}  # what it needs, said to the person installing
    assert manifest["blender_version_min"] == "4.2.0" and manifest["type"] == "add-on"
    tool = build.find_extension_tool()
    completed = subprocess.run([sys.executable, str(tool), "validate", str(extension_zip)],
                               capture_output=True, text=True)
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_build_fails_on_an_invalid_manifest(tmp_path, monkeypatch):
    manifest = tmp_path / "blender_manifest.toml"
    # the validator wants taglines without trailing punctuation
    text = re.sub(r"^tagline = .*$", 'tagline = "Ends with a full stop."', build.MANIFEST.read_text(),
                  flags=re.MULTILINE)
    assert "full stop" in text
    manifest.write_text(text)
    monkeypatch.setattr(build, "MANIFEST", manifest)
    with pytest.raises(build.BuildError, match="validate"):
        build.build_extension(tmp_path / "dist")
    assert not list((tmp_path / "dist").glob("*.zip"))


def test_build_script_exit_codes(tmp_path):
    completed = subprocess.run([sys.executable, str(ROOT / "build.py"), "--out-dir", str(tmp_path)],
                               capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == str(tmp_path / "gan2x-0.1.0.zip")


INSTALL_SCRIPT = textwrap.dedent("""
    import sys
    import bpy
    import addon_utils
    zip_path = sys.argv[1]
    module = "bl_ext.user_default.gan2x"
    names = ("GAN2X_OT_import_bundle", "GAN2X_FH_bundle", "VIEW3D_PT_gan2x", "GAN2X_OT_reconstruct",
             "GAN2X_UL_jobs", "VIEW3D_PT_gan2x_jobs")
    result = bpy.ops.extensions.package_install_files(
        filepath=zip_path, repo="user_default", enable_on_install=True)
    assert result == {"FINISHED"}, result
    assert module in bpy.context.preferences.addons, list(bpy.context.preferences.addons.keys())
    assert all(hasattr(bpy.types, name) for name in names)
    assert hasattr(bpy.types.Scene, "gan2x") and hasattr(bpy.types.WindowManager, "gan2x")
    assert bpy.context.preferences.addons[module].preferences.backend_url.startswith("http")
    assert bpy.ops.gan2x.import_bundle.poll()
    addon_utils.disable(module, default_set=True)
    assert module not in bpy.context.preferences.addons
    left = [name for name in names if hasattr(bpy.types, name)]
    assert not left, left
    assert not hasattr(bpy.types.Scene, "gan2x") and not hasattr(bpy.types.WindowManager, "gan2x")
    print("INSTALL-OK")
""")


def test_blender_installs_enables_and_disables_the_extension(extension_zip, tmp_path):
    env = {**os.environ, "BLENDER_USER_RESOURCES": str(tmp_path / "blender-user")}
    completed = subprocess.run([sys.executable, "-c", INSTALL_SCRIPT, str(extension_zip)],
                               capture_output=True, text=True, env=env, timeout=300)
    assert "INSTALL-OK" in completed.stdout, completed.stdout[-2000:] + completed.stderr[-2000:]
    installed = tmp_path / "blender-user" / "extensions" / "user_default" / "gan2x"
    assert (installed / "blender_manifest.toml").is_file()

"""addon/headless.py: in-process run() and the script entry."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from sample_bundles import ROOT, data_counts, zip_bundle


def _check_outputs(summary, size, relit):
    for key in ("blend", "render_png", "render_linear") + (("relit_png", "relit_linear") if relit else ()):
        assert os.path.isfile(summary[key]), key
    linear = np.load(summary["render_linear"])
    assert linear.shape == (size, size, 4) and linear.dtype == np.float32
    with Image.open(summary["render_png"]) as png:
        assert png.size == (size, size)
    return linear


def test_run_writes_the_blend_and_renders(clean_blender, sample_bundle, tmp_path):
    from addon import headless

    out_dir = tmp_path / "out"
    summary = headless.run(["--bundle", str(sample_bundle), "--blend", str(tmp_path / "scene.blend"),
                            "--render-size", "24", "--samples", "4", "--out-dir", str(out_dir),
                            "--relight-towards", "-1", "0", "0.3"])
    linear = _check_outputs(summary, 24, relit=True)
    relit = np.load(summary["relit_linear"])
    mid = 12
    # sample light from the upper right (+X); relit from the left (-X)
    assert linear[mid, mid + 5, 0] > linear[mid, mid - 5, 0]
    assert relit[mid, mid - 5, 0] > relit[mid, mid + 5, 0]
    assert set(summary["seconds"]) == {"reset", "import", "save", "render", "relight"}
    assert summary["objects"] == ["sample", "sample_sun", "sample_camera"]
    assert summary["blend"] == str(tmp_path / "scene.blend")
    # run() leaves the add-on as it found it (unregistered)
    import bpy
    assert not hasattr(bpy.types, "GAN2X_OT_import_bundle")


def test_saved_blend_reopens_with_packed_data(clean_blender, sample_bundle, tmp_path):
    import bpy

    from addon import headless

    zip_path = zip_bundle(sample_bundle, tmp_path / "sample.zip")
    summary = headless.run(["--bundle", str(zip_path), "--render-size", "16", "--samples", "2",
                            "--out-dir", str(tmp_path / "out")])
    assert "relit_png" not in summary
    bpy.ops.wm.read_factory_settings(use_empty=True)
    assert data_counts()["meshes"] == 0
    bpy.ops.wm.open_mainfile(filepath=summary["blend"])
    mesh = bpy.data.objects["sample"].data
    assert (len(mesh.vertices), len(mesh.polygons)) == (1225, 2208)
    material = mesh.materials[0]
    images = {node.image.name: node.image for node in material.node_tree.nodes
              if node.bl_idname == "ShaderNodeTexImage"}
    assert set(images) == {"sample_albedo", "sample_normal", "sample_roughness", "sample_specular_tint"}
    for image in images.values():
        assert image.packed_file is not None, image.name
        assert image.has_data or image.size[0] > 0
    roughness = images["sample_roughness"]
    assert tuple(roughness.size) == (32, 16)
    pixels = np.empty(32 * 16 * 4, np.float32)
    roughness.pixels.foreach_get(pixels)
    assert 0.2 < pixels[0] < 1.0  # float data survived the round trip
    assert bpy.context.scene.camera.name == "sample_camera"
    assert bpy.context.scene.world.name == "sample_world"


def test_script_entry_prints_one_json_line(sample_bundle, tmp_path):
    """``python addon/headless.py -- ...`` in a fresh interpreter (the
    add-on imports itself from its folder)."""
    out_dir = tmp_path / "cli"
    command = [sys.executable, str(ROOT / "addon" / "headless.py"), "--", "--bundle", str(sample_bundle),
               "--blend", str(out_dir / "cli.blend"), "--render-size", "16", "--samples", "2",
               "--out-dir", str(out_dir)]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=300,
                               env={**os.environ, "PYTHONPATH": ""}, cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr[-2000:]
    lines = [line for line in completed.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 1
    summary = json.loads(lines[0])
    _check_outputs(summary, 16, relit=False)


def test_script_entry_fails_cleanly_on_a_bad_bundle(tmp_path):
    (tmp_path / "empty").mkdir()
    completed = subprocess.run(
        [sys.executable, str(ROOT / "addon" / "headless.py"), "--", "--bundle", str(tmp_path / "empty"),
         "--out-dir", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert completed.returncode == 1
    assert "manifest.json" in completed.stderr and "missing" in completed.stderr


@pytest.mark.parametrize("arguments", [["--render-size", "0"], ["--relight-towards", "0", "0", "0"],
                                       ["--ao-strength", "1.5"], ["--ao-strength", "-0.1"]])
def test_run_refuses_bad_arguments(sample_bundle, tmp_path, arguments):
    from addon import headless

    with pytest.raises(SystemExit):
        headless.run(["--bundle", str(sample_bundle), "--out-dir", str(tmp_path)] + arguments)


def test_convert_passes_an_ao_strength_from_0_to_1(tmp_path):
    from addon import convert

    base = ["convert", "--seeds", "1", "--out", str(tmp_path)]
    assert convert.parse_arguments(base).ao_strength is None  # the import's default
    assert convert.parse_arguments(base + ["--ao-strength", "0.2"]).ao_strength == 0.2
    with pytest.raises(SystemExit):
        convert.parse_arguments(base + ["--ao-strength", "1.5"])

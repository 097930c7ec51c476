"""The product's path end to end, small enough for CI:

a short fit of the built-in generator -> asset bundle (validated) -> the
extension zip, installed and enabled the way Blender installs it for users ->
File > Import's operator -> a Cycles render at the bundle camera, compared in
linear radiance with the backend's own re-render over the object's mask
(imported with AO strength 0: the backend's Phong shading has no ambient
occlusion term, so the bundle's AO texture is left out of that comparison).

The fit is deliberately short (a few seconds); the comparison checks that the
bundle, the add-on's material, lights, world and camera reproduce what the
backend rendered, whatever the fit's quality."""
from __future__ import annotations

import copy
import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gan2x import conventions
from gan2x.export import images
from gan2x.export.bundle import validate_bundle
from gan2x.export.datatypes import BakedTextures
from gan2x.export.mesh_render import render_asset
from gan2x.export.ply import read_ply
from gan2x.measure import metrics
from gan2x.pipeline import ExportSettings, ReconstructionRequest, bundle_camera_and_light, reconstruct

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
import build  # noqa: E402  (the repository's build.py)

TINY_FIT = dict(stages=1, target_steps=40, projection_steps=6, exploitation_steps=60, pseudo_samples=2,
                rays_per_image=256, refinement_steps=10)
MIN_PSNR_DB = 40.0
"""The issue asked for 25 dB; the first measurements gave 54 dB as imported and 58 dB
relit, so the bar is raised to keep a real margin while catching any drift."""


RELIGHT_TOWARDS = (-0.55, 0.45, 0.70)
"""A light from the upper left (bundle frame), for the relit comparison."""


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    request = ReconstructionRequest(generator="synthetic", seed=1, preset="draft", fit_overrides=TINY_FIT,
                                    export=ExportSettings(mesh_resolution=96, texture_size=256))
    return reconstruct(request, tmp_path_factory.mktemp("fit") / "bundle")


@pytest.fixture(scope="module")
def bundle(fitted) -> Path:
    return fitted.bundle


@pytest.fixture(scope="module")
def cycles_renders(bundle, tmp_path_factory):
    """The extension's scene rendered as imported, then with the sun turned to
    RELIGHT_TOWARDS: two [H, W, 4] linear RGBA arrays, row 0 at the top."""
    work = tmp_path_factory.mktemp("blender")
    extension_zip = build.build_extension(work / "dist")
    env = {**os.environ, "BLENDER_USER_RESOURCES": str(work / "blender-user")}
    completed = subprocess.run([sys.executable, "-c", RENDER_SCRIPT, str(extension_zip),
                                str(bundle / "manifest.json"), str(work), *map(str, RELIGHT_TOWARDS)],
                               capture_output=True, text=True, env=env, timeout=600)
    assert "RENDER-OK" in completed.stdout, completed.stdout[-3000:] + completed.stderr[-3000:]
    return np.load(work / "as_imported.npy"), np.load(work / "relit.npy")


def test_the_bundle_validates_and_its_provenance_holds_the_shape_metrics(bundle):
    manifest = validate_bundle(bundle)
    provenance = json.loads((bundle / "manifest.json").read_text())["provenance"]
    assert provenance == manifest["provenance"]
    fit_metrics = provenance["metrics"]
    prior = fit_metrics["ellipsoid_prior"]
    for numbers in (fit_metrics, prior):
        assert math.isfinite(numbers["side_x100"]) and numbers["side_x100"] >= 0.0
        assert 0.0 < numbers["mad_degrees"] < 90.0
    print(f"\n  SIDE x1e-2 {fit_metrics['side_x100']:.3f} (ellipsoid {prior['side_x100']:.3f}), "
          f"MAD {fit_metrics['mad_degrees']:.2f} deg (ellipsoid {prior['mad_degrees']:.2f})")
    assert fit_metrics["rerender_psnr_db"] > 20.0
    assert set(provenance["timings"]) >= {"target_fit", "exploration", "exploitation", "export_mesh",
                                          "export_ambient_occlusion"}
    assert "ambient_occlusion" in manifest["textures"]


RENDER_SCRIPT = textwrap.dedent("""
    import importlib, json, sys
    import bpy, numpy
    zip_path, manifest_path, out_dir = sys.argv[1:4]
    relight_towards = [float(v) for v in sys.argv[4:7]]
    result = bpy.ops.extensions.package_install_files(
        filepath=zip_path, repo="user_default", enable_on_install=True)
    assert result == {"FINISHED"}, result
    for obj in list(bpy.data.objects):
        bpy.data.objects.remove(obj)
    # AO strength 0: the backend's Phong re-render has no ambient occlusion, so the
    # comparison imports without the AO Mix node's darkening (the default, 0.5, would
    # multiply the albedo by up to half of the baked occlusion; docs/bundle.md, In Blender).
    result = bpy.ops.gan2x.import_bundle(filepath=manifest_path, ao_strength=0.0)
    assert result == {"FINISHED"}, result
    scene = bpy.context.scene
    package = "bl_ext.user_default.gan2x"
    render = importlib.import_module(package + ".blender.render")
    lights = importlib.import_module(package + ".blender.lights")
    width = int(json.load(open(manifest_path))["camera"]["image_width"])
    render.configure_cycles(scene, width=width, samples=64, film_transparent=True)
    numpy.save(out_dir + "/as_imported.npy", render.render_to_arrays(scene))
    suns = [obj for obj in scene.objects if obj.type == "LIGHT" and obj.data.type == "SUN"]
    assert len(suns) == 1, suns
    lights.set_sun_direction(suns[0], relight_towards)
    numpy.save(out_dir + "/relit.npy", render.render_to_arrays(scene))
    print("RENDER-OK")
""")


def _compare(cycles: np.ndarray, backend_linear: np.ndarray, opacity: np.ndarray, label: str) -> float:
    # The object's interior in both renders, one pixel in from the silhouette
    # (where pixel filters and the density's width differ by design).
    inside = metrics.erode((opacity > 0.99) & (cycles[..., 3] > 0.99))
    assert inside.sum() > 0.1 * inside.size, inside.sum()
    psnr = metrics.masked_psnr(cycles[..., :3], backend_linear, inside)
    print(f"\n  {label}: Cycles vs backend, linear, {int(inside.sum())} object pixels: {psnr:.2f} dB")
    return psnr


def test_cycles_render_of_the_imported_extension_scene_matches_the_backend(bundle, cycles_renders):
    manifest = json.loads((bundle / "manifest.json").read_text())
    backend_srgb = np.asarray(Image.open(bundle / manifest["images"]["rerender"]).convert("RGB")) / 255.0
    opacity = np.asarray(Image.open(bundle / manifest["images"]["mask"]).convert("L")) / 255.0
    psnr = _compare(cycles_renders[0], conventions.linear_from_srgb(backend_srgb), opacity, "as imported")
    assert psnr >= MIN_PSNR_DB


def test_relighting_in_blender_matches_relighting_in_the_backend(fitted, bundle, cycles_renders):
    """The bundle's own asset (its mesh and textures, read back from the
    files) relit by the backend's renderer (export/mesh_render.py) against
    Cycles under the same new sun."""
    manifest = json.loads((bundle / "manifest.json").read_text())
    textures = {role: bundle / info["file"] for role, info in manifest["textures"].items()}
    baked = BakedTextures(albedo=images.read_albedo_png(textures["albedo"]),
                          specular=images.read_specular_png(textures["specular"],
                                                            manifest["textures"]["specular"]["encoding"]["scale"]),
                          shininess=images.read_shininess_png(textures["shininess"]),
                          normal=images.read_normal_png(textures["normal"]),
                          coverage=np.ones((1, 1), bool))
    state = copy.deepcopy(fitted.fit.target_state)
    with torch.no_grad():
        state.light_vector.copy_(torch.tensor(RELIGHT_TOWARDS))
    resolution = cycles_renders[1].shape[0]
    camera, light = bundle_camera_and_light(state, resolution)
    relit = render_asset(read_ply(bundle / manifest["mesh"]["file"]), baked, camera, light)
    psnr = _compare(cycles_renders[1], relit["radiance"], relit["coverage"], "relit")
    assert psnr >= MIN_PSNR_DB

"""Code the backend and the add-on share (build.py's SHARED_FILES): the add-on's
copy of the bundle checks is the backend's file byte for byte, the build
refuses a stale copy, and the backend's validator and the add-on's reader
refuse the same broken bundles with the same message."""
from __future__ import annotations

import ast
import json
import math
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
for folder in (ROOT, ROOT / "tests" / "addon"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
# Keep Blender (imported with the add-on package) away from the user's configuration, as tests/addon does.
if "bpy" not in sys.modules and "BLENDER_USER_RESOURCES" not in os.environ:
    _USER_RESOURCES = tempfile.TemporaryDirectory(prefix="gan2x-blender-user-")
    os.environ["BLENDER_USER_RESOURCES"] = _USER_RESOURCES.name

import build  # noqa: E402  (the repository's build.py)
from sample_bundles import edit_manifest, write_bundle  # noqa: E402

SOURCE = ROOT / "backend" / "gan2x" / "export" / "manifest_checks.py"
COPY = ROOT / "addon" / "bundle" / "manifest_checks.py"
ALLOWED_IMPORTS = {"__future__", "json", "math", "struct", "dataclasses", "pathlib", "numpy"}
"""What the shared module may import: the standard library and numpy (Blender's Python has no more)."""


# --- one source, one byte-identical copy --------------------------------------------------

def test_the_add_on_copy_is_byte_identical_to_the_backend_source():
    assert (SOURCE, COPY) in build.SHARED_FILES
    assert COPY.read_bytes() == SOURCE.read_bytes(), "run `python build.py --sync`"
    assert build.stale_copies() == []


def test_the_shared_module_imports_only_numpy_and_the_standard_library():
    imported = set()
    for node in ast.walk(ast.parse(SOURCE.read_text())):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "a relative import ties the module to one package"
            imported.add(node.module.split(".")[0])
    assert imported <= ALLOWED_IMPORTS, imported - ALLOWED_IMPORTS


def test_both_sides_run_the_shared_module():
    from addon.bundle import manifest_checks as addon_checks
    from addon.bundle import reader
    from gan2x.export import bundle, manifest_checks as backend_checks

    assert Path(backend_checks.__file__) == SOURCE and Path(addon_checks.__file__) == COPY
    assert bundle.check_bundle is backend_checks.check_bundle
    assert reader.check_bundle is addon_checks.check_bundle


def test_the_shared_constants_agree_with_each_side():
    from addon.bundle import conventions as addon_conventions
    from addon.bundle import ply as addon_ply
    from gan2x import conventions as backend_conventions
    from gan2x.export import manifest_checks as shared
    from gan2x.export import ply as backend_ply

    for ply in (addon_ply, backend_ply):
        assert ply.VERTEX_DTYPE.itemsize == shared.PLY_VERTEX_BYTES
        assert ply.FACE_DTYPE.itemsize == shared.PLY_FACE_BYTES
        assert ply._MAX_HEADER_BYTES == shared.PLY_MAX_HEADER_BYTES
    assert addon_ply.max_file_size(1000, 2000) == shared.ply_max_bytes(1000, 2000)
    for size, fov in ((64, 10.0), (1024, 10.0), (480, 37.5)):
        expected = shared.focal_length_px(size, fov)
        assert math.isclose(backend_conventions.focal_length_px(size, fov), expected, rel_tol=1e-12)
        assert math.isclose(addon_conventions.focal_length_px(size, fov), expected, rel_tol=1e-12)


def test_the_build_refuses_a_stale_copy_and_sync_repairs_it(tmp_path, monkeypatch, capsys):
    source, copy = tmp_path / "source.py", tmp_path / "copy.py"
    source.write_text("VALUE = 2\n")
    copy.write_text("VALUE = 1\n")
    monkeypatch.setattr(build, "SHARED_FILES", ((source, copy),))
    with pytest.raises(build.BuildError, match=r"build\.py --sync") as refused:
        build.build_extension(tmp_path / "dist")
    assert "copy.py != {}".format(source) in str(refused.value)
    assert not (tmp_path / "dist").exists()
    assert build.main(["--check"]) == 1
    assert "--sync" in capsys.readouterr().err
    assert build.main(["--sync"]) == 0
    assert "copy.py" in capsys.readouterr().out
    assert copy.read_bytes() == source.read_bytes()
    assert build.main(["--check"]) == 0 and build.stale_copies() == []
    copy.unlink()
    assert build.stale_copies() == [(source, copy)]


# --- the same refusal on both sides -----------------------------------------------------------

def _refusal(read, error_type, path) -> str | None:
    try:
        read(path)
    except error_type as error:
        return str(error)
    return None


def _messages(path) -> tuple:
    """(the backend validator's message, the add-on reader's message) for
    the bundle at ``path``; None where that side accepts it."""
    from addon.bundle import reader
    from gan2x.export import bundle, datatypes

    return (_refusal(bundle.validate_bundle, datatypes.BundleError, path),
            _refusal(reader.read_bundle, reader.BundleError, path))


def _camera_size(side):
    def edit(manifest):
        manifest["camera"].update(image_width=side, image_height=side, principal_point_px=[side / 2, side / 2])
    return edit


def _write_text(relative, text):
    return lambda bundle: (bundle / relative).write_text(text)


def _replace_text(relative, old, new):
    def breaker(bundle):
        path = bundle / relative
        text = path.read_text()
        assert old in text
        path.write_text(text.replace(old, new))
    return breaker


def _edit(edit):
    return lambda bundle: edit_manifest(bundle, edit)


def _image(relative, array):
    return lambda bundle: Image.fromarray(array).save(bundle / relative)


def _outside(bundle):
    (bundle.parent / "outside.png").write_bytes((bundle / "textures/albedo.png").read_bytes())
    edit_manifest(bundle, lambda m: m["textures"]["albedo"].update(file="../outside.png"))


BROKEN = {
    "missing manifest": lambda bundle: (bundle / "manifest.json").unlink(),
    "invalid JSON": _write_text("manifest.json", '{"format": "gan2x.bundle",'),
    "NaN": _replace_text("manifest.json", '"strength": 0.35', '"strength": NaN'),
    "1e999": _replace_text("manifest.json", '"strength": 0.35', '"strength": 1e999'),
    "not an object": _write_text("manifest.json", "[1, 2]"),
    "manifest too large": lambda bundle: (bundle / "manifest.json").write_text(
        (bundle / "manifest.json").read_text() + " " * (1 << 20)),
    "manifest nested too deeply": _edit(lambda m: m["provenance"].update(settings=json.loads("[" * 80 + "]" * 80))),
    "another format": _edit(lambda m: m.update(format="something.else")),
    "newer schema": _edit(lambda m: m.update(schema_version=2)),
    "unknown schema": _edit(lambda m: m.update(schema_version=0)),
    "schema as text": _edit(lambda m: m.update(schema_version="1")),
    "units": _edit(lambda m: m.update(units="centimetre")),
    "missing key": _edit(lambda m: m.pop("camera")),
    "missing nested key": _edit(lambda m: m["textures"]["albedo"].pop("bit_depth")),
    "wrong type": _edit(lambda m: m["mesh"].update(vertex_count="2000")),
    "vertex count beyond the limit": _edit(lambda m: m["mesh"].update(vertex_count=10 ** 9)),
    "texture beyond the limit": _edit(lambda m: m["textures"]["normal"].update(width=10000)),
    "odd bit depth": _edit(lambda m: m["textures"]["specular"].update(bit_depth=12)),
    "camera beyond the limit": _edit(_camera_size(2 * 8192)),
    "path leaving the bundle": _outside,
    "absolute path": _edit(lambda m: m["images"].update(mask="/etc/passwd")),
    "backslash path": _edit(lambda m: m["textures"]["albedo"].update(file="textures\\albedo.png")),
    "missing file": lambda bundle: (bundle / "textures/normal.png").unlink(),
    "texture of another size": _image("textures/albedo.png", np.zeros((8, 8, 3), np.uint8)),
    "texture of another bit depth": _image("textures/shininess.png", np.zeros((16, 32), np.uint8)),
    "texture not a PNG": _write_text("textures/normal.png", "not a png at all"),
    "image not the camera size": _image("images/target.png", np.zeros((32, 64, 3), np.uint8)),
    "specular encoding": _edit(lambda m: m["textures"]["specular"]["encoding"].update(kind="log")),
    "negative specular scale": _edit(lambda m: m["textures"]["specular"]["encoding"].update(scale=-1)),
    "shininess range": _edit(lambda m: m["textures"]["shininess"]["encoding"].update(min=600.0)),
    "normal convention": _edit(lambda m: m["textures"]["normal"]["encoding"].update(convention="directx")),
    "field of view": _edit(lambda m: m["camera"].update(fov_y_degrees=200.0)),
    "focal length": _edit(lambda m: m["camera"].update(focal_length_px=100.0)),
    "principal point": _edit(lambda m: m["camera"].update(principal_point_px=[1.0, 2.0])),
    "camera not rigid": _edit(lambda m: m["camera"]["world_from_camera"][0].__setitem__(0, 2.0)),
    "camera rows": _edit(lambda m: m["camera"].update(world_from_camera=[[1, 0, 0], [0, 1, 0]])),
    "negative light": _edit(lambda m: m["lights"]["directional"][0].update(strength=-0.5)),
    "zero light direction": _edit(lambda m: m["lights"]["directional"][0].update(towards_light=[0, 0, 0])),
    "light not an object": _edit(lambda m: m["lights"].update(directional=[3])),
    "missing ambient": _edit(lambda m: m["lights"].pop("ambient")),
    "shading model": _edit(lambda m: m["shading"].update(model="blinn")),
    "seed": _edit(lambda m: m["provenance"].update(seed="7")),
    "missing latent": _edit(lambda m: m["provenance"].update(latent_file="latent.npy")),
    "mesh counts disagree": _edit(lambda m: m["mesh"].update(face_count=m["mesh"]["face_count"] + 1)),
    "mesh larger than its counts": _edit(lambda m: m["mesh"].update(vertex_count=3)),
}


@pytest.fixture
def sample(tmp_path) -> Path:
    return write_bundle(tmp_path / "sample")


def test_both_sides_accept_the_sample_bundles(tmp_path):
    for bundle in (write_bundle(tmp_path / "plain"), write_bundle(tmp_path / "with_report", report=True)):
        assert _messages(bundle) == (None, None)


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_both_sides_refuse_a_broken_bundle_with_the_same_message(sample, case):
    BROKEN[case](sample)
    backend, addon = _messages(sample)
    assert backend is not None, "the backend accepted it"
    assert backend == addon
    assert backend.startswith(str(sample)), "the message names the file"


def test_both_sides_accept_a_bundle_with_or_without_ambient_occlusion(tmp_path):
    """The AO texture is optional: older bundles without it stay valid."""
    with_ao = write_bundle(tmp_path / "with_ao", ambient_occlusion=0.5)
    assert _messages(with_ao) == (None, None)
    edit_manifest(with_ao, lambda m: m["textures"].pop("ambient_occlusion"))
    assert _messages(with_ao) == (None, None)


@pytest.mark.parametrize("breaker, problem", [
    (_image("textures/ambient_occlusion.png", np.zeros((8, 8), np.uint8)),
     "ambient_occlusion.png: is 8x8 pixels but manifest.json says 32x16"),
    (_image("textures/ambient_occlusion.png", np.zeros((16, 32), np.uint16)),
     "ambient_occlusion.png: has 16-bit channels but manifest.json says 8-bit"),
    (_write_text("textures/ambient_occlusion.png", "not a png"), "ambient_occlusion.png: not a PNG file"),
    (lambda bundle: (bundle / "textures/ambient_occlusion.png").unlink(),
     "'textures.ambient_occlusion.file' names 'textures/ambient_occlusion.png', which is missing"),
    (_edit(lambda m: m["textures"]["ambient_occlusion"].update(height=0)),
     "'textures.ambient_occlusion.height' is 0; it must be from 1 to 8192"),
    (_edit(lambda m: m["textures"]["ambient_occlusion"].update(bit_depth=12)),
     "'textures.ambient_occlusion.bit_depth' is 12; a PNG has 1, 2, 4, 8 or 16 bits a channel"),
    (_edit(lambda m: m["textures"].update(ambient_occlusion="textures/ambient_occlusion.png")),
     "'textures.ambient_occlusion' must be an object"),
])
def test_both_sides_refuse_a_broken_ambient_occlusion_texture_with_the_same_message(tmp_path, breaker, problem):
    bundle = write_bundle(tmp_path / "with_ao", ambient_occlusion=0.5)
    breaker(bundle)
    backend, addon = _messages(bundle)
    assert backend is not None and problem in backend, backend
    assert backend == addon


def test_both_sides_refuse_an_oversized_report_with_the_same_message(tmp_path):
    bundle = write_bundle(tmp_path / "with_report", report=True)
    Image.fromarray(np.zeros((4, 40000, 3), np.uint8)).save(bundle / "images/report.png")
    backend, addon = _messages(bundle)
    assert backend is not None and "a report is at most 32768 pixels a side" in backend
    assert backend == addon


@pytest.mark.parametrize("breaker, problem", [
    (_edit(lambda m: m["textures"]["specular"].update(bit_depth=8)), "'textures.specular.bit_depth' must be 16"),
    (_image("images/mask.png", np.zeros((64, 64, 3), np.uint8)), "mask.png: must be grey 8-bit, found RGB 8-bit"),
    (_edit(lambda m: m["lights"]["directional"][0].update(towards_light=[0, 2, 0])), "must be a unit vector"),
    (_edit(lambda m: m["shading"].pop("equation")), "missing required key 'shading.equation'"),
    (_edit(lambda m: m["mesh"].update(bounds_max=[5, 5, 5])), "do not match the vertices of mesh.ply"),
])
def test_only_the_backend_checks_the_writers_exact_formats(sample, breaker, problem):
    """Checker(strict=True): what the backend's writer writes exactly; the
    add-on reads without these (docs/bundle.md, Validation)."""
    if "bit_depth" in problem:
        Image.fromarray(np.zeros((16, 32), np.uint8)).save(sample / "textures/specular.png")
    breaker(sample)
    backend, addon = _messages(sample)
    assert backend is not None and problem in backend
    assert addon is None

"""The bpy-free bundle reader: reads valid bundles in every accepted form and
refuses each malformed one with a message naming the file and the problem."""
from __future__ import annotations

import zipfile

import numpy as np
import pytest
from PIL import Image

from addon.bundle.ply import parse_ply
from addon.bundle.reader import BundleError, read_bundle
from sample_bundles import CAMERA_DISTANCE, edit_manifest, uv_sphere, write_bundle, write_ply, zip_bundle


def test_reads_a_bundle_directory(sample_bundle):
    bundle = read_bundle(sample_bundle)
    vertices, normals, uvs, faces = uv_sphere()
    assert bundle.name == "sample"
    np.testing.assert_array_equal(bundle.vertices, vertices)
    np.testing.assert_array_equal(bundle.normals, normals)
    np.testing.assert_array_equal(bundle.uvs, uvs)
    np.testing.assert_array_equal(bundle.faces, faces)
    assert bundle.faces.dtype == np.int32
    assert bundle.textures["albedo"].path == sample_bundle / "textures/albedo.png"
    assert bundle.textures["albedo"].path.is_absolute()
    assert (bundle.textures["shininess"].width, bundle.textures["shininess"].height) == (32, 16)
    assert bundle.textures["shininess"].encoding == {"kind": "log", "min": 1.0, "max": 500.0}
    assert bundle.camera.world_from_camera[2, 3] == CAMERA_DISTANCE
    assert bundle.camera.fov_y_degrees == 10.0
    light = bundle.directional_lights[0]
    assert np.linalg.norm(light.towards_light) == pytest.approx(1.0)
    assert light.strength == 0.7 and bundle.ambient_light.strength == 0.35
    assert bundle.images["mask"] == sample_bundle / "images/mask.png"
    assert bundle.glb_path == sample_bundle / "asset.glb"
    assert (bundle.generator, bundle.seed) == ("synthetic:sphere", 7)
    assert bundle.provenance["metrics"]["psnr"] == 31.25


def test_a_bundle_without_a_report_has_no_report_path(sample_bundle):
    bundle = read_bundle(sample_bundle)
    assert bundle.report_path is None and set(bundle.images) == {"target", "rerender", "mask"}


def test_reads_the_optional_report_of_any_size(tmp_path):
    directory = write_bundle(tmp_path / "with_report", report=True)
    bundle = read_bundle(directory)
    assert bundle.report_path == directory / "images/report.png" and bundle.report_path.is_absolute()
    assert set(bundle.images) == {"target", "rerender", "mask"}  # the required ones, as before
    with read_bundle(zip_bundle(directory, tmp_path / "with_report.zip")) as zipped:
        assert zipped.report_path is not None and zipped.report_path.is_file()


def test_refuses_a_named_report_that_is_missing_or_leaves_the_bundle(tmp_path):
    directory = write_bundle(tmp_path / "with_report", report=True)
    (directory / "images/report.png").unlink()
    message = _refusal(directory)
    assert "images.report" in message and "missing" in message
    (tmp_path / "outside.png").write_bytes((tmp_path / "with_report/images/target.png").read_bytes())
    edit_manifest(directory, lambda manifest: manifest["images"].update(report="../outside.png"))
    assert "leaves the bundle" in _refusal(directory)


def test_reads_the_manifest_path_like_the_directory(sample_bundle):
    bundle = read_bundle(sample_bundle / "manifest.json")
    assert bundle.root == sample_bundle and len(bundle.faces) == len(uv_sphere()[3])


@pytest.mark.parametrize("top_folder", [True, False])
def test_reads_a_zip_and_removes_its_temporary_copy_on_close(sample_bundle, tmp_path, top_folder):
    zip_path = zip_bundle(sample_bundle, tmp_path / "packed.zip", top_folder=top_folder)
    with read_bundle(zip_path) as bundle:
        assert bundle.name == ("sample" if top_folder else "packed")
        assert bundle.source == zip_path
        albedo = bundle.textures["albedo"].path
        assert albedo.is_file() and sample_bundle not in albedo.parents
        np.testing.assert_array_equal(bundle.faces, read_bundle(sample_bundle).faces)
    assert not albedo.exists()


# --- refusals ---------------------------------------------------------------------

def _refusal(path) -> str:
    with pytest.raises(BundleError) as caught:
        read_bundle(path)
    return str(caught.value)


def test_refuses_a_folder_without_manifest(tmp_path):
    (tmp_path / "empty").mkdir()
    message = _refusal(tmp_path / "empty")
    assert "manifest.json" in message and "missing" in message


def test_refuses_a_missing_path(tmp_path):
    assert "no such file" in _refusal(tmp_path / "nowhere")


def test_refuses_a_missing_texture_file(sample_bundle):
    (sample_bundle / "textures/normal.png").unlink()
    message = _refusal(sample_bundle)
    assert str(sample_bundle / "manifest.json") in message
    assert "textures.normal.file" in message and "textures/normal.png" in message and "missing" in message


def test_refuses_another_format(sample_bundle):
    edit_manifest(sample_bundle, lambda m: m.update(format="something.else"))
    assert "not a GAN2X bundle manifest" in _refusal(sample_bundle)


def test_refuses_a_newer_schema_saying_what_to_do(sample_bundle):
    edit_manifest(sample_bundle, lambda m: m.update(schema_version=2))
    message = _refusal(sample_bundle)
    assert str(sample_bundle / "manifest.json") in message
    assert ("this bundle was written by a newer GAN2X backend (schema 2); "
            "update GAN2X, this version reads schema 1") in message


@pytest.mark.parametrize("version", [0, -1, "1", 1.0, True])
def test_refuses_an_unknown_schema_version(sample_bundle, version):
    edit_manifest(sample_bundle, lambda m: m.update(schema_version=version))
    message = _refusal(sample_bundle)
    assert "schema_version" in message


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_refuses_non_finite_numbers_in_the_json(sample_bundle, literal):
    path = sample_bundle / "manifest.json"
    text = path.read_text()
    assert '"strength": 0.35' in text
    path.write_text(text.replace('"strength": 0.35', '"strength": ' + literal))
    message = _refusal(sample_bundle)
    assert str(path) in message and "finite" in message


def test_refuses_invalid_json(sample_bundle):
    (sample_bundle / "manifest.json").write_text('{"format": "gan2x.bundle",')
    assert "not valid JSON" in _refusal(sample_bundle)


@pytest.mark.parametrize("dotted", ["camera", "camera.world_from_camera", "textures.albedo.bit_depth",
                                    "lights.ambient", "mesh.face_count", "provenance", "glb"])
def test_refuses_a_missing_key_naming_it(sample_bundle, dotted):
    def remove(manifest):
        *parents, last = dotted.split(".")
        for key in parents:
            manifest = manifest[key]
        del manifest[last]
    edit_manifest(sample_bundle, remove)
    message = _refusal(sample_bundle)
    assert "missing required key '{}'".format(dotted) in message


@pytest.mark.parametrize("bad_path", ["../outside.png", "textures/../../outside.png", "/etc/passwd",
                                      "textures\\albedo.png"])
def test_refuses_paths_that_leave_the_bundle(sample_bundle, bad_path):
    (sample_bundle.parent / "outside.png").write_bytes((sample_bundle / "textures/albedo.png").read_bytes())
    edit_manifest(sample_bundle, lambda m: m["textures"]["albedo"].update(file=bad_path))
    message = _refusal(sample_bundle)
    assert "textures.albedo.file" in message
    assert any(word in message for word in ("leaves the bundle", "absolute", "relative"))


def test_refuses_a_symlink_out_of_the_bundle(sample_bundle):
    outside = sample_bundle.parent / "outside.png"
    outside.write_bytes((sample_bundle / "textures/albedo.png").read_bytes())
    (sample_bundle / "textures/albedo.png").unlink()
    (sample_bundle / "textures/albedo.png").symlink_to(outside)
    assert "leaves the bundle" in _refusal(sample_bundle)


def test_refuses_a_truncated_ply(sample_bundle):
    path = sample_bundle / "mesh.ply"
    path.write_bytes(path.read_bytes()[:-7])
    message = _refusal(sample_bundle)
    assert str(path) in message and "truncated" in message


def test_refuses_a_ply_with_another_header(sample_bundle):
    path = sample_bundle / "mesh.ply"
    path.write_bytes(path.read_bytes().replace(b"property float s\n", b"property float u\n", 1))
    message = _refusal(sample_bundle)
    assert str(path) in message and "vertex properties" in message


def test_refuses_an_ascii_ply(sample_bundle):
    path = sample_bundle / "mesh.ply"
    path.write_bytes(path.read_bytes().replace(b"binary_little_endian", b"ascii", 1))
    assert "binary_little_endian" in _refusal(sample_bundle)


def test_refuses_face_indices_out_of_range(sample_bundle):
    path = sample_bundle / "mesh.ply"
    data = bytearray(path.read_bytes())
    data[-4:] = (10 ** 6).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    message = _refusal(sample_bundle)
    assert str(path) in message and "indexes vertex 1000000" in message


def test_refuses_non_finite_vertices(sample_bundle):
    path = sample_bundle / "mesh.ply"
    data = path.read_bytes()
    body = data.index(b"end_header\n") + len(b"end_header\n")
    patched = data[:body + 4] + np.float32(np.nan).tobytes() + data[body + 8:]
    path.write_bytes(patched)
    message = _refusal(sample_bundle)
    assert "vertex 0" in message and "non-finite" in message


def test_refuses_a_mesh_that_disagrees_with_the_manifest(sample_bundle):
    edit_manifest(sample_bundle, lambda m: m["mesh"].update(face_count=m["mesh"]["face_count"] + 1))
    message = _refusal(sample_bundle)
    assert "mesh.ply" in message and "faces" in message


def test_refuses_a_texture_of_another_size(sample_bundle):
    path = sample_bundle / "textures/albedo.png"
    Image.new("RGB", (8, 8)).save(path)
    message = _refusal(sample_bundle)
    assert str(path) in message and "8x8 pixels but manifest.json says 32x16" in message


def test_refuses_a_texture_of_another_bit_depth(sample_bundle):
    path = sample_bundle / "textures/shininess.png"
    Image.new("L", (32, 16)).save(path)
    message = _refusal(sample_bundle)
    assert str(path) in message and "8-bit channels but manifest.json says 16-bit" in message


def test_refuses_a_texture_that_is_not_a_png(sample_bundle):
    path = sample_bundle / "textures/normal.png"
    path.write_bytes(b"not a png at all, just some bytes")
    assert "not a PNG" in _refusal(sample_bundle)


def test_refuses_a_camera_that_is_not_rigid(sample_bundle):
    edit_manifest(sample_bundle, lambda m: m["camera"]["world_from_camera"][0].__setitem__(0, 2.0))
    assert "rigid" in _refusal(sample_bundle)


def test_refuses_a_focal_length_that_contradicts_the_field_of_view(sample_bundle):
    edit_manifest(sample_bundle, lambda m: m["camera"].update(focal_length_px=100.0))
    assert "focal_length_px" in _refusal(sample_bundle)


def test_refuses_a_zip_member_that_escapes(sample_bundle, tmp_path):
    zip_path = zip_bundle(sample_bundle, tmp_path / "evil.zip")
    with zipfile.ZipFile(zip_path, "a") as archive:
        archive.writestr("../escaped.txt", "gotcha")
    message = _refusal(zip_path)
    assert str(zip_path) in message and "outside the bundle" in message
    assert not (tmp_path.parent / "escaped.txt").exists()


def test_refuses_a_zip_without_a_bundle(tmp_path):
    zip_path = tmp_path / "other.zip"
    with zipfile.ZipFile(zip_path, "w") as archive:
        archive.writestr("readme.txt", "hello")
    assert "no manifest.json" in _refusal(zip_path)


def test_zip_messages_name_the_archive_and_member(sample_bundle, tmp_path):
    edit_manifest(sample_bundle, lambda m: m.update(schema_version=3))
    zip_path = zip_bundle(sample_bundle, tmp_path / "newer.zip")
    message = _refusal(zip_path)
    assert message.startswith("{} (sample/manifest.json)".format(zip_path))
    assert "schema 3" in message


def test_ply_parser_reads_what_the_layout_says(tmp_path):
    vertices, normals, uvs, faces = uv_sphere(rings=3, segments=4)
    path = tmp_path / "small.ply"
    write_ply(path, vertices, normals, uvs, faces)
    mesh = parse_ply(path.read_bytes())
    np.testing.assert_array_equal(mesh.vertices, vertices)
    np.testing.assert_array_equal(mesh.normals, normals)
    np.testing.assert_array_equal(mesh.uvs, uvs)
    np.testing.assert_array_equal(mesh.faces, faces)

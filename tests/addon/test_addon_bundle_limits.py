"""Issue 17 (red team): the reader's size limits and its refusals of hostile
archives. Every hostile file here is a few bytes on disk: a PNG header that
claims a huge size, a zip member of zeros (deflate shrinks it a thousandfold),
a zip header with one flag or method patched. Nothing allocates gigabytes.

Limits: docs/bundle.md, "Limits"."""
from __future__ import annotations

import io
import json
import math
import struct
import tempfile
import zipfile
import zlib
from pathlib import Path

import pytest

from addon.bundle import reader as reader_module
from addon.bundle.reader import (MAX_IMAGE_SIDE, MAX_MANIFEST_BYTES, MAX_TEXTURE_SIDE, MAX_VERTICES, BundleError,
                                 read_bundle, unpack_bundle_zip)
from sample_bundles import data_counts, edit_manifest, write_bundle, zip_bundle

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
GREY, RGB = 0, 2


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header_only(width: int, height: int, bit_depth: int = 8, colour_type: int = RGB) -> bytes:
    """A PNG whose IHDR claims ``width`` x ``height`` but whose pixel data is
    one zero byte: ~66 bytes, whatever size it claims."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return PNG_SIGNATURE + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\0")) + _chunk(b"IEND", b"")


def _refusal(path) -> str:
    with pytest.raises(BundleError) as caught:
        read_bundle(path)
    return str(caught.value)


@pytest.fixture
def private_tmp(tmp_path, monkeypatch):
    """tempfile's directory for the test, to see that a refusal leaves nothing behind."""
    directory = tmp_path / "system-tmp"
    directory.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(directory))
    return directory


@pytest.fixture
def opened_members(monkeypatch):
    """Names of the zip members the reader opens (to read or unpack)."""
    opened = []
    real_open = zipfile.ZipFile.open

    def spy(self, name, mode="r", *args, **kwargs):
        if mode == "r":  # not the test writing its archives
            opened.append(name.filename if isinstance(name, zipfile.ZipInfo) else name)
        return real_open(self, name, mode, *args, **kwargs)
    monkeypatch.setattr(zipfile.ZipFile, "open", spy)
    return opened


def _zip_with(sample_bundle, zip_path, replace=None, extra=None) -> Path:
    """The sample bundle zipped in its folder, with members replaced (name in
    the bundle -> bytes) or added (name in the archive -> bytes), deflated."""
    replace, extra = replace or {}, extra or {}
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(sample_bundle.rglob("*")):
            if path.is_file():
                relative = path.relative_to(sample_bundle).as_posix()
                archive.writestr("sample/" + relative, replace.get(relative, path.read_bytes()))
        for name, data in extra.items():
            archive.writestr(name, data)
    return zip_path


def _patch_zip_headers(zip_path, member: str, flag_bits: int = 0, method: int | None = None) -> None:
    """Sets ``flag_bits`` and (optionally) the compression ``method`` of
    ``member`` in both its local header and its central directory entry."""
    data = bytearray(zip_path.read_bytes())
    encoded = member.encode()
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        local = archive.getinfo(member).header_offset
    assert data[local:local + 4] == b"PK\x03\x04" and data[local + 30:local + 30 + len(encoded)] == encoded
    patched = 0
    for offset in [local] + [i for i in range(len(data)) if data[i:i + 4] == b"PK\x01\x02"]:
        central = offset != local
        if central:
            name_length = struct.unpack_from("<H", data, offset + 28)[0]
            if bytes(data[offset + 46:offset + 46 + name_length]) != encoded:
                continue
        flag_at, method_at = (offset + 8, offset + 10) if central else (offset + 6, offset + 8)
        struct.pack_into("<H", data, flag_at, struct.unpack_from("<H", data, flag_at)[0] | flag_bits)
        if method is not None:
            struct.pack_into("<H", data, method_at, method)
        patched += 1
    assert patched == 2
    zip_path.write_bytes(bytes(data))


# --- defect 3: texture and image sizes -----------------------------------------------------

@pytest.mark.parametrize("name, size, bit_depth, colour_type", [
    ("albedo", (60000, 60000), 8, RGB),        # the 65-byte albedo that imported as 0x0
    ("specular", (12288, 12288), 16, GREY),    # the 16-bit pair that took 6.8 GB
    ("shininess", (12288, 12288), 16, GREY),
    ("normal", (MAX_TEXTURE_SIDE + 1, 16), 8, RGB),
])
def test_refuses_a_texture_beyond_the_maximum_size(sample_bundle, name, size, bit_depth, colour_type):
    width, height = size
    path = sample_bundle / "textures/{}.png".format(name)
    path.write_bytes(png_header_only(width, height, bit_depth, colour_type))
    edit_manifest(sample_bundle, lambda m: m["textures"][name].update(width=width, height=height))
    message = _refusal(sample_bundle)
    assert "textures.{}".format(name) in message and str(MAX_TEXTURE_SIDE) in message


def test_refuses_a_texture_header_beyond_the_declared_size(sample_bundle):
    path = sample_bundle / "textures/albedo.png"
    path.write_bytes(png_header_only(100000, 100000))
    message = _refusal(sample_bundle)
    assert str(path) in message and "100000x100000 pixels but manifest.json says 32x16" in message


@pytest.mark.parametrize("name", ["target", "rerender", "mask"])
def test_refuses_an_image_whose_header_is_not_the_camera_size(sample_bundle, name):
    path = sample_bundle / "images/{}.png".format(name)
    path.write_bytes(png_header_only(100000, 100000, 8, GREY if name == "mask" else RGB))
    message = _refusal(sample_bundle)
    assert str(path) in message and "100000x100000" in message and "64x64" in message


def test_refuses_an_image_that_is_not_a_png(sample_bundle):
    path = sample_bundle / "images/rerender.png"
    path.write_bytes(b"GIF89a, not a png")
    message = _refusal(sample_bundle)
    assert str(path) in message and "not a PNG" in message


def test_refuses_a_camera_beyond_the_maximum_image_size(sample_bundle):
    side = MAX_IMAGE_SIDE * 2

    def huge_camera(manifest):
        camera = manifest["camera"]
        camera.update(image_width=side, image_height=side, principal_point_px=[side / 2, side / 2],
                      focal_length_px=0.5 * side / math.tan(math.radians(camera["fov_y_degrees"]) / 2))
    edit_manifest(sample_bundle, huge_camera)
    for name in ("target", "rerender"):
        (sample_bundle / "images/{}.png".format(name)).write_bytes(png_header_only(side, side))
    (sample_bundle / "images/mask.png").write_bytes(png_header_only(side, side, 8, GREY))
    message = _refusal(sample_bundle)
    assert "camera.image_width" in message and str(MAX_IMAGE_SIDE) in message


def test_refuses_a_report_beyond_its_bound(tmp_path):
    directory = write_bundle(tmp_path / "with_report", report=True)
    path = directory / "images/report.png"
    path.write_bytes(png_header_only(40000, 40000))
    message = _refusal(directory)
    assert str(path) in message and "40000x40000" in message


def test_accepts_a_report_of_any_reasonable_size(tmp_path):
    directory = write_bundle(tmp_path / "with_report", report=True)
    (directory / "images/report.png").write_bytes(png_header_only(1200, 4800))  # a big fit's report
    assert read_bundle(directory).report_path == directory / "images/report.png"


@pytest.mark.parametrize("name, colour_type, bit_depth", [
    ("albedo", RGB, 8), ("normal", RGB, 8), ("specular", GREY, 16), ("shininess", GREY, 16)])
def test_import_refuses_a_texture_blender_cannot_read_at_its_size(registered_addon, sample_bundle,
                                                                   name, colour_type, bit_depth):
    """The header says the declared 32x16, so the reader passes it; Blender
    decodes nothing (0x0). The import is refused naming the file, and the
    scene is as it was."""
    import bpy

    path = sample_bundle / "textures/{}.png".format(name)
    path.write_bytes(png_header_only(32, 16, bit_depth, colour_type))
    read_bundle(sample_bundle)  # the header agrees with the manifest
    before = data_counts()
    scene = bpy.context.scene
    state = (scene.world, scene.camera, scene.render.resolution_x, scene.gan2x.last_import)
    with pytest.raises(RuntimeError) as caught:
        bpy.ops.gan2x.import_bundle(filepath=str(sample_bundle / "manifest.json"))
    message = str(caught.value)
    assert "{}.png".format(name) in message and "32x16" in message
    assert data_counts() == before
    assert (scene.world, scene.camera, scene.render.resolution_x, scene.gan2x.last_import) == state


# --- defect 4: raw exceptions from hostile archives and manifests ---------------------------

def test_refuses_a_zip_holding_a_file_and_a_folder_of_the_same_name(tmp_path):
    zip_path = tmp_path / "clash.zip"
    with zipfile.ZipFile(zip_path, "w") as archive:
        archive.writestr("b/x", "a file")
        archive.writestr("b/x/y", "a file inside a file")
    message = _refusal(zip_path)
    assert str(zip_path) in message and "'b/x'" in message and "'b/x/y'" in message


def test_refuses_a_clash_among_the_files_the_manifest_names(sample_bundle, tmp_path):
    edit_manifest(sample_bundle, lambda m: m["provenance"].update(latent_file="asset.glb/latent.npy"))
    zip_path = _zip_with(sample_bundle, tmp_path / "clash.zip", extra={"sample/asset.glb/latent.npy": b"x"})
    message = _refusal(zip_path)
    assert str(zip_path) in message and "'sample/asset.glb'" in message


def test_refuses_an_encrypted_member(sample_bundle, tmp_path):
    zip_path = tmp_path / "encrypted.zip"
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_STORED) as archive:
        for path in sorted(sample_bundle.rglob("*")):
            if path.is_file():
                archive.write(path, "sample/" + path.relative_to(sample_bundle).as_posix())
    _patch_zip_headers(zip_path, "sample/mesh.ply", flag_bits=0x1)
    message = _refusal(zip_path)
    assert str(zip_path) in message and "'sample/mesh.ply'" in message and "encrypted" in message


@pytest.mark.parametrize("method", [98, 99])  # PPMd, AES
def test_refuses_an_unsupported_compression_method(sample_bundle, tmp_path, method):
    zip_path = tmp_path / "ppmd.zip"
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_STORED) as archive:
        for path in sorted(sample_bundle.rglob("*")):
            if path.is_file():
                archive.write(path, "sample/" + path.relative_to(sample_bundle).as_posix())
    _patch_zip_headers(zip_path, "sample/textures/albedo.png", method=method)
    message = _refusal(zip_path)
    assert str(zip_path) in message and "'sample/textures/albedo.png'" in message
    assert "compression method {}".format(method) in message


@pytest.mark.parametrize("packed", [False, True])
def test_refuses_a_deeply_nested_manifest(sample_bundle, tmp_path, packed):
    (sample_bundle / "manifest.json").write_text("[" * 100000)
    path = zip_bundle(sample_bundle, tmp_path / "nested.zip") if packed else sample_bundle
    message = _refusal(path)
    assert "manifest.json" in message and "nested" in message


def test_refuses_a_manifest_nested_deeper_than_a_bundle_needs(sample_bundle):
    edit_manifest(sample_bundle, lambda m: m["provenance"].update(settings=json.loads("[" * 500 + "]" * 500)))
    message = _refusal(sample_bundle)
    assert "manifest.json" in message and "nested" in message


# --- defect 5: zip bombs ------------------------------------------------------------------

def test_reads_the_manifest_before_unpacking_anything(tmp_path, opened_members, private_tmp):
    zip_path = tmp_path / "no_manifest.zip"
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("big.bin", bytes(32 << 20))
    assert "no manifest.json" in _refusal(zip_path)
    assert opened_members == []
    assert list(private_tmp.iterdir()) == []


def test_skips_members_the_manifest_does_not_name(sample_bundle, tmp_path, opened_members):
    zip_path = _zip_with(sample_bundle, tmp_path / "extras.zip",
                         extra={"sample/padding.bin": bytes(32 << 20), "__MACOSX/sample/._mesh.ply": b"x"})
    with read_bundle(zip_path) as bundle:
        assert bundle.skipped_members == ["__MACOSX/sample/._mesh.ply", "sample/padding.bin"]
        assert not (bundle.root / "padding.bin").exists()
        assert len(bundle.faces) == 2208
    assert "sample/padding.bin" not in opened_members and "sample/manifest.json" in opened_members


@pytest.mark.parametrize("member, data", [
    ("asset.glb", bytes(32 << 20)),
    ("mesh.ply", None),                    # the real mesh with 32 MiB appended
    ("textures/albedo.png", bytes(32 << 20)),
    ("images/target.png", bytes(32 << 20)),
    ("latent.npy", bytes(32 << 20)),
])
def test_refuses_a_member_beyond_what_the_manifest_declares(sample_bundle, tmp_path, opened_members,
                                                            private_tmp, member, data):
    if member == "latent.npy":
        edit_manifest(sample_bundle, lambda m: m["provenance"].update(latent_file="latent.npy"))
        (sample_bundle / "latent.npy").write_bytes(b"")
    if data is None:
        data = (sample_bundle / member).read_bytes() + bytes(32 << 20)
    zip_path = _zip_with(sample_bundle, tmp_path / "bomb.zip", replace={member: data})
    message = _refusal(zip_path)
    assert str(zip_path) in message and "'sample/{}'".format(member) in message and "at most" in message
    assert "sample/" + member not in opened_members  # refused from its header, never unpacked
    assert list(private_tmp.iterdir()) == []


def test_refuses_a_manifest_member_beyond_the_limit(sample_bundle, tmp_path, opened_members):
    path = sample_bundle / "manifest.json"
    path.write_text(path.read_text() + " " * MAX_MANIFEST_BYTES)
    zip_path = zip_bundle(sample_bundle, tmp_path / "fat_manifest.zip")
    message = _refusal(zip_path)
    assert "sample/manifest.json" in message and "at most" in message
    assert opened_members == []


def test_refuses_a_manifest_file_beyond_the_limit(sample_bundle):
    path = sample_bundle / "manifest.json"
    path.write_text(path.read_text() + " " * MAX_MANIFEST_BYTES)
    message = _refusal(sample_bundle)
    assert str(path) in message and "at most" in message


def test_refuses_mesh_counts_beyond_the_maximum(sample_bundle):
    edit_manifest(sample_bundle, lambda m: m["mesh"].update(vertex_count=10 ** 9))
    message = _refusal(sample_bundle)
    assert "mesh.vertex_count" in message and str(MAX_VERTICES) in message


def test_refuses_a_ply_file_beyond_its_counts_before_reading_it(sample_bundle, monkeypatch):
    path = sample_bundle / "mesh.ply"
    with open(path, "ab") as stream:
        stream.truncate(path.stat().st_size + (64 << 20))  # sparse: costs no disk
    monkeypatch.setattr(reader_module, "read_ply", lambda *a, **k: pytest.fail("read the oversized PLY"))
    message = _refusal(sample_bundle)
    assert str(path) in message and "at most" in message


def test_unpacking_stops_as_soon_as_a_member_passes_its_bound(tmp_path):
    """The header's size is checked first; the copy itself is bounded too (a
    reader that trusts no header), and deletes what it wrote."""
    source = io.BytesIO(bytes(10 << 20))
    target = tmp_path / "out.bin"
    with pytest.raises(reader_module._TooLarge):
        reader_module._copy_bounded(source, target, 3 << 20)
    assert not target.exists()
    assert source.tell() <= (3 << 20) + reader_module._COPY_CHUNK_BYTES
    reader_module._copy_bounded(io.BytesIO(bytes(3 << 20)), target, 3 << 20)
    assert target.stat().st_size == 3 << 20


def test_unpack_bundle_zip_applies_the_same_bounds(sample_bundle, tmp_path):
    zip_path = _zip_with(sample_bundle, tmp_path / "bomb.zip", replace={"asset.glb": bytes(32 << 20)})
    jobs = tmp_path / "jobs"
    with pytest.raises(BundleError, match="asset.glb.*at most"):
        unpack_bundle_zip(zip_path, jobs / "bomb")
    assert list(jobs.iterdir()) == []
    extras = _zip_with(sample_bundle, tmp_path / "extras.zip", extra={"sample/padding.bin": b"x" * 1000})
    target = unpack_bundle_zip(extras, jobs / "fine")
    assert (target / "manifest.json").is_file() and not (target / "padding.bin").exists()
    assert len(read_bundle(target).faces) == 2208


def test_operator_refuses_a_zip_bomb_and_changes_nothing(registered_addon, sample_bundle, tmp_path):
    import bpy

    zip_path = _zip_with(sample_bundle, tmp_path / "bomb.zip", replace={"asset.glb": bytes(32 << 20)})
    before = data_counts()
    with pytest.raises(RuntimeError, match="asset.glb.*at most"):
        bpy.ops.gan2x.import_bundle(filepath=str(zip_path))
    assert data_counts() == before


def test_operator_imports_a_zip_with_extra_members(registered_addon, sample_bundle, tmp_path):
    import bpy

    zip_path = _zip_with(sample_bundle, tmp_path / "extras.zip", extra={"sample/notes.txt": b"hello"})
    assert bpy.ops.gan2x.import_bundle(filepath=str(zip_path)) == {"FINISHED"}
    assert "sample" in bpy.data.collections


# --- the protections that were there stay ---------------------------------------------------

def test_still_refuses_a_symbolic_link_member_even_one_the_manifest_does_not_name(sample_bundle, tmp_path):
    zip_path = _zip_with(sample_bundle, tmp_path / "link.zip")
    with zipfile.ZipFile(zip_path, "a") as archive:
        link = zipfile.ZipInfo("sample/elsewhere")
        link.external_attr = (0o120777 << 16)  # S_IFLNK
        archive.writestr(link, "/etc/passwd")
    message = _refusal(zip_path)
    assert "'sample/elsewhere'" in message and "symbolic link" in message


def test_still_refuses_a_half_written_zip(sample_bundle, tmp_path, private_tmp):
    zip_path = zip_bundle(sample_bundle, tmp_path / "half.zip")
    zip_path.write_bytes(zip_path.read_bytes()[: zip_path.stat().st_size // 2])
    assert "cannot open the archive" in _refusal(zip_path)
    assert list(private_tmp.iterdir()) == []


def test_refuses_a_member_whose_compressed_data_is_damaged(sample_bundle, tmp_path, private_tmp):
    zip_path = _zip_with(sample_bundle, tmp_path / "damaged.zip")
    data = bytearray(zip_path.read_bytes())
    with zipfile.ZipFile(zip_path) as archive:
        member = archive.getinfo("sample/mesh.ply")
    start = member.header_offset + 30 + len(member.filename) + len(member.extra)
    data[start:start + 64] = bytes(range(0xC0, 0x100))  # not a deflate stream any more
    zip_path.write_bytes(bytes(data))
    message = _refusal(zip_path)
    assert str(zip_path) in message and "'sample/mesh.ply'" in message
    assert list(private_tmp.iterdir()) == []

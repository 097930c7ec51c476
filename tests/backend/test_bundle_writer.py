"""Bundle writer (atomic) and the backend-side validator (docs/bundle.md)."""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gan2x import __version__, conventions
from gan2x.export import bundle as bundle_module
from gan2x.export import images, ply as ply_module
from gan2x.export.bake import bake_textures
from gan2x.export.bundle import SCHEMA_VERSION, CameraSpec, LightSpec, validate_bundle, write_bundle
from gan2x.export.datatypes import BundleError
from gan2x.export.marching_cubes import extract_mesh
from gan2x.export.asset import write_asset_bundle
from gan2x.export.ply import read_ply
from gan2x.export.uv_unwrap import unwrap

IMAGE_SIZE = 32


def sphere_sdf(points):
    return (np.linalg.norm(points, axis=1) - 0.6).astype(np.float32)


def materials(points):
    return {"albedo": 0.5 + 0.4 * np.tanh(points), "specular": np.full(len(points), 0.25),
            "shininess": 30.0 + 20.0 * points[:, 1]}


@pytest.fixture(scope="module")
def parts():
    mesh = unwrap(extract_mesh(sphere_sdf, resolution=20), texture_size=64, padding=2)
    textures = bake_textures(mesh, materials, size=64, padding_px=2)
    rng = np.random.default_rng(3)
    mask = np.zeros((IMAGE_SIZE, IMAGE_SIZE))
    mask[8:24, 8:24] = 1.0
    return dict(
        mesh=mesh, textures=textures,
        camera=CameraSpec(IMAGE_SIZE, IMAGE_SIZE, conventions.FOV_DEGREES,
                          conventions.orbit_world_from_camera(0.3, 0.1)),
        light=LightSpec(np.array([0.3, 0.5, 0.81]), 0.7, 0.35),
        target_image=rng.random((IMAGE_SIZE, IMAGE_SIZE, 3)), rerender_image=rng.random((IMAGE_SIZE, IMAGE_SIZE, 3)),
        mask=mask,
        provenance={"generator": "synthetic:sphere", "seed": 7, "settings": {"quality": "draft"},
                    "metrics": {"psnr": np.float32(31.5)}, "timings": {"fit": 1.25}},
    )


@pytest.fixture(scope="module")
def written(parts, tmp_path_factory):
    destination = tmp_path_factory.mktemp("bundles") / "sphere"
    return write_bundle(destination, latent=np.arange(8, dtype=np.float64), **parts)


@pytest.fixture
def copy(written, tmp_path):
    """A private copy of the written bundle to break."""
    return shutil.copytree(written, tmp_path / "copy")


def leftovers(directory):
    return sorted(p.name for p in directory.parent.iterdir() if ".tmp-" in p.name or ".old-" in p.name)


def edit_manifest(bundle, edit):
    path = bundle / "manifest.json"
    manifest = json.loads(path.read_text())
    edit(manifest)
    path.write_text(json.dumps(manifest))


# --- writing ---------------------------------------------------------------------------

def test_write_bundle_produces_a_bundle_the_validator_accepts(written, parts):
    manifest = validate_bundle(written)
    assert manifest == validate_bundle(written / "manifest.json")
    assert manifest["format"] == "gan2x.bundle" and manifest["schema_version"] == SCHEMA_VERSION == 1
    assert manifest["generator_version"] == __version__
    assert manifest["units"] == "metre" and manifest["up_axis"] == "+Y"
    for relative in ("mesh.ply", "textures/albedo.png", "textures/specular.png", "textures/shininess.png",
                     "textures/normal.png", "images/target.png", "images/rerender.png", "images/mask.png",
                     "asset.glb", "latent.npy"):
        assert (written / relative).is_file(), relative
    assert leftovers(written) == []

    mesh = parts["mesh"]
    assert manifest["mesh"]["vertex_count"] == len(mesh.vertices)
    assert manifest["mesh"]["face_count"] == len(mesh.faces)
    back = read_ply(written / "mesh.ply")
    assert np.array_equal(back.vertices, mesh.vertices) and np.array_equal(back.faces, mesh.faces)
    assert manifest["textures"]["shininess"]["encoding"] == {"kind": "log", "min": 1.0, "max": 500.0}
    assert manifest["textures"]["specular"]["encoding"] == {"kind": "linear", "scale": 1.0}
    assert manifest["textures"]["albedo"]["colour_space"] == "sRGB"
    with Image.open(written / "textures/shininess.png") as image:
        assert image.mode == "I;16" and image.size == (64, 64)
    with Image.open(written / "textures/normal.png") as image:
        assert np.all(np.array(image) == [128, 128, 255])

    camera = manifest["camera"]
    assert camera["focal_length_px"] == pytest.approx(conventions.focal_length_px(IMAGE_SIZE))
    assert camera["principal_point_px"] == [16.0, 16.0]
    assert np.allclose(camera["world_from_camera"], conventions.orbit_world_from_camera(0.3, 0.1))
    light = manifest["lights"]["directional"][0]
    assert np.linalg.norm(light["towards_light"]) == pytest.approx(1.0)
    assert light["strength"] == 0.7 and manifest["lights"]["ambient"]["strength"] == 0.35
    target = images.read_srgb_png(written / "images/target.png")
    assert np.abs(target - parts["target_image"]).max() <= 0.5 / 255 + 1e-6

    provenance = manifest["provenance"]
    assert provenance["seed"] == 7 and provenance["metrics"]["psnr"] == pytest.approx(31.5)
    assert {"python", "numpy", "gan2x"} <= set(provenance["versions"])
    assert ("torch" in provenance["versions"]) == ("torch" in sys.modules)
    assert provenance["latent_file"] == "latent.npy"
    assert np.array_equal(np.load(written / "latent.npy"), np.arange(8, dtype=np.float32))
    assert "NaN" not in (written / "manifest.json").read_text()


def test_write_asset_bundle_runs_the_whole_stage(parts, tmp_path):
    destination = write_asset_bundle(
        tmp_path / "asset", sdf=sphere_sdf, materials=materials, camera=parts["camera"], light=parts["light"],
        target_image=parts["target_image"], rerender_image=parts["rerender_image"], mask=parts["mask"],
        provenance={"generator": "synthetic:sphere", "seed": None}, resolution=20, texture_size=64, padding_px=2)
    manifest = validate_bundle(destination)
    assert {"export_mesh", "export_unwrap", "export_bake"} <= set(manifest["provenance"]["timings"])
    assert manifest["provenance"]["settings"]["export"]["resolution"] == 20
    assert manifest["textures"]["albedo"]["width"] == 64


# --- validation refusals -----------------------------------------------------------------

def _truncate_ply(bundle):
    path = bundle / "mesh.ply"
    path.write_bytes(path.read_bytes()[:-100])


def _replace_albedo(bundle):
    Image.fromarray(np.zeros((32, 48, 3), np.uint8)).save(bundle / "textures/albedo.png")


def _eight_bit_shininess(bundle):
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(bundle / "textures/shininess.png")


def _nan_in_manifest(bundle):
    path = bundle / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["mesh"]["bounds_min"][0] = float("nan")
    path.write_text(json.dumps(manifest))  # json.dumps writes NaN by default


def _infinity_in_manifest(bundle):
    path = bundle / "manifest.json"
    path.write_text(path.read_text().replace('"strength": 0.7', '"strength": 1e999'))


def _escaping_path(bundle):
    (bundle.parent / "outside.ply").write_bytes((bundle / "mesh.ply").read_bytes())
    edit_manifest(bundle, lambda m: m["mesh"].update(file="../outside.ply"))


def _face_out_of_range(bundle):
    path = bundle / "mesh.ply"
    data = bytearray(path.read_bytes())
    data[-4:] = (10 ** 6).to_bytes(4, "little")
    path.write_bytes(bytes(data))


REFUSALS = {
    "missing texture file": (lambda b: (b / "textures/specular.png").unlink(),
                             r"manifest\.json: 'textures\.specular\.file' names 'textures/specular\.png', which is missing"),
    "wrong schema_version": (lambda b: edit_manifest(b, lambda m: m.update(schema_version=2)),
                             r"manifest\.json: this bundle was written by a newer GAN2X backend \(schema 2\); "
                             r"update GAN2X, this version reads schema 1"),
    "unknown schema_version": (lambda b: edit_manifest(b, lambda m: m.update(schema_version=0)),
                               r"manifest\.json: unknown schema_version 0; GAN2X reads and writes schema 1"),
    "NaN in the manifest": (_nan_in_manifest, r"manifest\.json: NaN is not allowed"),
    "Infinity in the manifest": (_infinity_in_manifest, r"manifest\.json: 1e999 is not allowed"),
    "truncated PLY": (_truncate_ply, r"mesh\.ply: truncated"),
    "path escaping the bundle": (_escaping_path, r"manifest\.json: 'mesh\.file' \('\.\./outside\.ply'\) leaves the bundle"),
    "absolute path": (lambda b: edit_manifest(b, lambda m: m["images"].update(mask=str(b / "images/mask.png"))),
                      r"'images\.mask' is an absolute path"),
    "texture size differs": (_replace_albedo, r"albedo\.png: is 48x32 pixels but manifest\.json says 64x64"),
    "texture bit depth differs": (_eight_bit_shininess, r"shininess\.png: has 8-bit channels but manifest\.json says 16-bit"),
    "wrong format": (lambda b: edit_manifest(b, lambda m: m.update(format="something.else")), r"'format' is"),
    "missing required key": (lambda b: edit_manifest(b, lambda m: m.pop("camera")),
                             r"missing required key 'camera'"),
    "missing nested key": (lambda b: edit_manifest(b, lambda m: m["textures"]["albedo"].pop("bit_depth")),
                           r"missing required key 'textures\.albedo\.bit_depth'"),
    "face index out of range": (_face_out_of_range, r"mesh\.ply: face \d+ indexes vertex 1000000"),
    "vertex count differs": (lambda b: edit_manifest(b, lambda m: m["mesh"].update(
                                 vertex_count=m["mesh"]["vertex_count"] + 1)),
                             r"mesh\.ply: holds \d+ vertices"),
    "PLY larger than its counts": (lambda b: edit_manifest(b, lambda m: m["mesh"].update(vertex_count=3)),
                                   r"mesh\.ply: is \d+ bytes; 3 vertices and \d+ faces \(manifest\.json\) "
                                   r"take at most \d+ bytes"),
    "missing manifest": (lambda b: (b / "manifest.json").unlink(), r"manifest\.json: missing"),
    "non-rigid camera": (lambda b: edit_manifest(b, lambda m: m["camera"]["world_from_camera"][0].__setitem__(0, 2.0)),
                         r"must be rigid"),
    "texture beyond the limit": (lambda b: edit_manifest(b, lambda m: m["textures"]["albedo"].update(width=10000)),
                                 r"manifest\.json: 'textures\.albedo\.width' is 10000; it must be from 1 to 8192; "
                                 r"textures are at most 8192x8192 pixels \(docs/bundle\.md, Limits\)"),
    "mesh counts beyond the limit": (lambda b: edit_manifest(b, lambda m: m["mesh"].update(face_count=1 << 26)),
                                     r"'mesh\.face_count' is 67108864; it must be from 0 to 33554432"),
    "manifest nested too deeply": (lambda b: edit_manifest(b, lambda m: m["provenance"].update(
                                       settings=json.loads("[" * 100 + "]" * 100))),
                                   r"manifest\.json: nested too deeply"),
    "manifest too large": (lambda b: (b / "manifest.json").write_text(
                               (b / "manifest.json").read_text() + " " * (1 << 20)),
                           r"manifest\.json: is larger than a manifest may be"),
    "broken glb": (lambda b: (b / "asset.glb").write_bytes(b"glTF\x02\x00\x00\x00\x99\x00\x00\x00"),
                   r"asset\.glb: "),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_validate_refuses_with_a_clear_message(copy, case):
    validate_bundle(copy)  # the unbroken copy is fine
    breaker, message = REFUSALS[case]
    breaker(copy)
    with pytest.raises(BundleError, match=message) as raised:
        validate_bundle(copy)
    assert str(copy) in str(raised.value), "the message names the file"


# --- atomicity -----------------------------------------------------------------------------

def test_failure_while_baking_leaves_nothing(parts, tmp_path):
    def broken_materials(points):
        raise RuntimeError("material network exploded")
    destination = tmp_path / "asset"
    with pytest.raises(RuntimeError, match="exploded"):
        write_asset_bundle(destination, sdf=sphere_sdf, materials=broken_materials, camera=parts["camera"],
                           light=parts["light"], target_image=parts["target_image"],
                           rerender_image=parts["rerender_image"], mask=parts["mask"], provenance={},
                           resolution=16, texture_size=32)
    assert list(tmp_path.iterdir()) == []


def test_failure_while_writing_leaves_no_directory_and_no_temp(parts, tmp_path, monkeypatch):
    def broken_write_ply(path, mesh):
        path.write_bytes(b"ply\n")  # something half-written first
        raise OSError("disk full")
    monkeypatch.setattr(ply_module, "write_ply", broken_write_ply)
    destination = tmp_path / "asset"
    with pytest.raises(OSError, match="disk full"):
        write_bundle(destination, **parts)
    assert not destination.exists()
    assert list(tmp_path.iterdir()) == []


def test_a_bundle_that_fails_validation_is_not_moved_into_place(parts, tmp_path, monkeypatch):
    real = images.write_albedo_png
    monkeypatch.setattr(images, "write_albedo_png", lambda path, albedo: real(path, albedo[:16]))
    with pytest.raises(BundleError, match=r"albedo\.png: is 64x16 pixels"):
        write_bundle(tmp_path / "asset", **parts)
    assert list(tmp_path.iterdir()) == []


def test_non_finite_provenance_is_refused_before_anything_is_in_place(parts, tmp_path):
    broken = dict(parts, provenance={"metrics": {"psnr": float("nan")}})
    with pytest.raises(BundleError, match=r"manifest\.json: every number must be finite"):
        write_bundle(tmp_path / "asset", **broken)
    assert list(tmp_path.iterdir()) == []


def test_existing_bundle_is_replaced_only_on_success(parts, tmp_path, monkeypatch):
    destination = tmp_path / "asset"
    write_bundle(destination, **dict(parts, provenance={"seed": 1}))
    assert validate_bundle(destination)["provenance"]["seed"] == 1

    with monkeypatch.context() as patch:
        patch.setattr(bundle_module, "validate_bundle", lambda path: (_ for _ in ()).throw(BundleError("no")))
        with pytest.raises(BundleError):
            write_bundle(destination, **dict(parts, provenance={"seed": 2}))
    assert validate_bundle(destination)["provenance"]["seed"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["asset"]

    write_bundle(destination, **dict(parts, provenance={"seed": 3}))
    assert validate_bundle(destination)["provenance"]["seed"] == 3
    assert [p.name for p in tmp_path.iterdir()] == ["asset"]


def test_a_file_at_the_destination_is_not_replaced(parts, tmp_path):
    destination = tmp_path / "asset"
    destination.write_text("keep me")
    with pytest.raises(BundleError, match="not a directory"):
        write_bundle(destination, **parts)
    assert destination.read_text() == "keep me"
    assert [p.name for p in tmp_path.iterdir()] == ["asset"]


def test_inputs_beyond_the_limits_are_refused_before_anything_is_written(parts, tmp_path):
    camera = CameraSpec(9000, 9000, conventions.FOV_DEGREES, conventions.orbit_world_from_camera(0.0, 0.0))
    with pytest.raises(ValueError, match=r"the camera is 9000x9000 pixels, at most 8192 a side.*Limits"):
        write_bundle(tmp_path / "asset", **dict(parts, camera=camera))
    assert list(tmp_path.iterdir()) == []


def test_images_must_match_the_camera(parts, tmp_path):
    with pytest.raises(ValueError, match="target_image"):
        write_bundle(tmp_path / "asset", **dict(parts, target_image=np.zeros((8, 8, 3))))
    assert list(tmp_path.iterdir()) == []


# --- the optional report picture -----------------------------------------------------------

def test_a_bundle_without_a_report_names_none(written):
    manifest = validate_bundle(written)
    assert set(manifest["images"]) == {"target", "rerender", "mask"}
    assert not (written / "images/report.png").exists()


def test_a_report_of_any_size_is_written_named_and_read_by_the_add_on(parts, tmp_path):
    root = str(Path(__file__).resolve().parents[2])  # the add-on's reader is bpy-free: import it from the repository
    if root not in sys.path:
        sys.path.insert(0, root)
    from addon.bundle.reader import read_bundle

    report = np.zeros((3 * IMAGE_SIZE + 5, 2 * IMAGE_SIZE, 3), np.uint8)
    report[:, :, 1] = 200
    destination = write_bundle(tmp_path / "asset", report_image=report, **parts)
    manifest = validate_bundle(destination)
    assert manifest["images"]["report"] == "images/report.png"
    with Image.open(destination / "images/report.png") as image:
        assert image.mode == "RGB" and image.size == (2 * IMAGE_SIZE, 3 * IMAGE_SIZE + 5)
        assert np.array_equal(np.array(image), report)
    bundle = read_bundle(destination)
    assert bundle.report_path == destination / "images/report.png"
    # floats in [0, 1] are quantised like the other images
    floats = write_bundle(tmp_path / "floats", report_image=np.full((10, 12, 3), 0.5), **parts)
    assert images.read_srgb_png(floats / "images/report.png").shape == (10, 12, 3)
    with pytest.raises(ValueError, match="report_image"):
        write_bundle(tmp_path / "grey", report_image=np.zeros((10, 12)), **parts)


def test_validate_refuses_a_report_that_is_not_rgb_8_bit_or_missing(parts, tmp_path):
    destination = write_bundle(tmp_path / "asset", report_image=np.zeros((40, 50, 3), np.uint8), **parts)
    Image.fromarray(np.zeros((40, 50), np.uint8)).save(destination / "images/report.png")
    with pytest.raises(BundleError, match="report.png: must be RGB 8-bit, found grey 8-bit"):
        validate_bundle(destination)
    (destination / "images/report.png").unlink()
    with pytest.raises(BundleError, match="images.report"):
        validate_bundle(destination)


# --- the optional ambient occlusion texture --------------------------------------------------

def two_spheres_sdf(points):
    """Two spheres with a 0.1 m gap: a cavity the AO texture must show."""
    left = np.linalg.norm(points - [0.45, 0.0, 0.0], axis=1) - 0.4
    right = np.linalg.norm(points + [0.45, 0.0, 0.0], axis=1) - 0.4
    return np.minimum(left, right).astype(np.float32)


def _glb_material_and_image(path, key):
    """The .glb's material and the decoded image its ``key`` texture names
    (a 'pbrMetallicRoughness' key or a material key)."""
    import io

    from gan2x.export.gltf import read_glb

    document, binary = read_glb(path)
    material = document["materials"][0]
    info = material["pbrMetallicRoughness"].get(key) or material.get(key)
    if info is None:
        return material, None
    image = document["images"][document["textures"][info["index"]]["source"]]
    view = document["bufferViews"][image["bufferView"]]
    with Image.open(io.BytesIO(binary[view["byteOffset"]:view["byteOffset"] + view["byteLength"]])) as decoded:
        return material, np.array(decoded)


def _read_with_the_add_on(path):
    root = str(Path(__file__).resolve().parents[2])  # the add-on's reader is bpy-free
    if root not in sys.path:
        sys.path.insert(0, root)
    from addon.bundle.reader import read_bundle

    return read_bundle(path)


@pytest.fixture(scope="module")
def with_occlusion(parts, tmp_path_factory):
    destination = tmp_path_factory.mktemp("ao") / "pair"
    return write_asset_bundle(
        destination, sdf=two_spheres_sdf, materials=materials, camera=parts["camera"], light=parts["light"],
        target_image=parts["target_image"], rerender_image=parts["rerender_image"], mask=parts["mask"],
        provenance={"generator": "synthetic:pair", "seed": None}, resolution=48, texture_size=128, padding_px=2)


def test_write_asset_bundle_bakes_and_writes_the_ambient_occlusion(with_occlusion):
    manifest = validate_bundle(with_occlusion)
    entry = manifest["textures"]["ambient_occlusion"]
    assert entry == {"file": "textures/ambient_occlusion.png", "width": 128, "height": 128, "bit_depth": 8,
                     "colour_space": "linear"}
    assert manifest["provenance"]["timings"]["export_ambient_occlusion"] > 0.0
    with Image.open(with_occlusion / entry["file"]) as image:
        assert image.mode == "L" and image.size == (128, 128)
    occlusion = images.read_ambient_occlusion_png(with_occlusion / entry["file"])
    assert occlusion.max() == 1.0  # most of two spheres is open...
    assert occlusion.min() < 0.5  # ...the gap between them is not
    assert np.mean(occlusion > 0.98) > 0.5
    # the add-on reads it as an optional texture of the bundle
    bundle = _read_with_the_add_on(with_occlusion)
    info = bundle.textures["ambient_occlusion"]
    assert (info.path, info.width, info.height, info.bit_depth) == (with_occlusion / entry["file"], 128, 128, 8)


def test_the_glb_carries_the_ambient_occlusion_as_its_occlusion_texture(with_occlusion):
    """glTF reads occlusion from R: the metallic-roughness image's R channel
    holds the AO (G roughness, B metallic) and occlusionTexture names it."""
    material, packed = _glb_material_and_image(with_occlusion / "asset.glb", "metallicRoughnessTexture")
    assert material["occlusionTexture"] == {"index": material["pbrMetallicRoughness"]
                                            ["metallicRoughnessTexture"]["index"], "strength": 1.0}
    occlusion = np.array(Image.open(with_occlusion / "textures/ambient_occlusion.png"))
    np.testing.assert_array_equal(packed[..., 0], occlusion)
    assert np.all(packed[..., 2] == 0)


def test_a_bundle_without_ambient_occlusion_names_none(written, parts, tmp_path):
    """Bundles without the texture (older ones, or ambient_occlusion=False)
    stay valid on both sides; the .glb then has no occlusionTexture."""
    manifest = validate_bundle(written)
    assert set(manifest["textures"]) == {"albedo", "specular", "shininess", "normal"}
    assert not (written / "textures/ambient_occlusion.png").exists()
    material, packed = _glb_material_and_image(written / "asset.glb", "metallicRoughnessTexture")
    assert "occlusionTexture" not in material and np.all(packed[..., 0] == 255)
    assert "ambient_occlusion" not in _read_with_the_add_on(written).textures
    destination = write_asset_bundle(
        tmp_path / "plain", sdf=sphere_sdf, materials=materials, camera=parts["camera"], light=parts["light"],
        target_image=parts["target_image"], rerender_image=parts["rerender_image"], mask=parts["mask"],
        provenance={"generator": "synthetic:sphere", "seed": None}, resolution=20, texture_size=64, padding_px=2,
        ambient_occlusion=False)
    manifest = validate_bundle(destination)
    assert "ambient_occlusion" not in manifest["textures"]
    assert "export_ambient_occlusion" not in manifest["provenance"]["timings"]


def test_write_bundle_refuses_an_ambient_occlusion_of_another_size(parts, tmp_path):
    import dataclasses

    textures = dataclasses.replace(parts["textures"], ambient_occlusion=np.ones((32, 32), np.float32))
    with pytest.raises(ValueError, match="texture ambient_occlusion is"):
        write_bundle(tmp_path / "asset", **dict(parts, textures=textures))
    assert not (tmp_path / "asset").exists()


@pytest.mark.parametrize("breaker, problem", [
    (lambda bundle: Image.fromarray(np.ones((64, 128), np.uint8)).save(
        bundle / "textures/ambient_occlusion.png"),
     "ambient_occlusion.png: is 128x64 pixels but manifest.json says 128x128"),
    (lambda bundle: Image.fromarray(np.ones((128, 128), np.uint16)).save(
        bundle / "textures/ambient_occlusion.png"),
     "ambient_occlusion.png: has 16-bit channels but manifest.json says 8-bit"),
    (lambda bundle: (bundle / "textures/ambient_occlusion.png").unlink(),
     "'textures.ambient_occlusion.file' names 'textures/ambient_occlusion.png', which is missing"),
    (lambda bundle: edit_manifest(bundle, lambda m: m["textures"]["ambient_occlusion"].update(width=9000)),
     "'textures.ambient_occlusion.width' is 9000; it must be from 1 to 8192"),
    (lambda bundle: Image.fromarray(np.ones((128, 128, 3), np.uint8)).save(
        bundle / "textures/ambient_occlusion.png"),
     "ambient_occlusion.png: is a RGB PNG, expected grey"),
])
def test_a_broken_ambient_occlusion_texture_is_refused(with_occlusion, tmp_path, breaker, problem):
    bundle = shutil.copytree(with_occlusion, tmp_path / "copy")
    breaker(bundle)
    with pytest.raises(BundleError) as refused:
        validate_bundle(bundle)
    assert problem in str(refused.value)

"""Real photos (backend/gan2x/invert, pipeline.reconstruct_image): crop and
align, inversion (starts, W, W+) of a StyleGAN2, and the fit of a photo into
a valid bundle (test_inversion.py covers the other generator kinds)."""
import numpy as np
import pytest
import torch
from PIL import Image

import stylegan2_checkpoints as checkpoints
from gan2x.cli import main
from gan2x.export import validate_bundle
from gan2x.generators.stylegan2 import load_stylegan2
from gan2x.invert import CropSettings, InversionSettings, PhotoError, crop_for_generator, invert_image, load_photo
from gan2x.invert.inversion import noise_regulariser
from gan2x.pipeline import ExportSettings, ReconstructionRequest, reconstruct_image
from gan2x.render.volume import SamplingSettings


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("photo") / "network.pkl"
    checkpoints.write_nvidia_pickle(path, seed=2)
    return path


def test_crop_takes_the_chosen_square_and_resizes_it():
    photo = np.zeros((40, 60, 3), np.float32)
    photo[:, 30:] = 1.0                                  # right half white
    left = crop_for_generator(photo, 16, CropSettings(centre_x=0.25, centre_y=0.5, scale=0.5))
    right = crop_for_generator(photo, 16, CropSettings(centre_x=0.75, centre_y=0.5, scale=0.5))
    assert left.shape == (3, 16, 16) and left.max() == -1.0 and right.min() == 1.0
    middle = crop_for_generator(photo, 16)               # 40 px square in the middle: half and half
    assert middle[:, :, :6].max() < -0.9 and middle[:, :, -6:].min() > 0.9


def test_crop_errors_say_what_to_change():
    photo = np.zeros((40, 60, 3), np.float32)
    with pytest.raises(PhotoError, match=r"keep centre_x in \[0.333, 0.667\]"):
        crop_for_generator(photo, 16, CropSettings(centre_x=0.1))
    with pytest.raises(PhotoError, match="needs at least 64 px a side"):
        crop_for_generator(photo, 64)
    with pytest.raises(PhotoError, match="scale must be in"):
        crop_for_generator(photo, 16, CropSettings(scale=1.5))


def test_noise_regulariser_is_small_for_white_noise_and_large_for_smooth_noise():
    white = torch.randn(32, 32, generator=torch.Generator().manual_seed(0))
    smooth = torch.nn.functional.avg_pool2d(white[None, None], 5, 1, 2)[0, 0]
    smooth = (smooth - smooth.mean()) / smooth.std()
    assert noise_regulariser([smooth]) > 50 * noise_regulariser([white])


def test_inversion_finds_a_generator_sample_better_in_w_plus(checkpoint):
    generator = load_stylegan2(checkpoint)
    with torch.no_grad():
        target = generator.synthesis(generator.mapping(generator.z_from_seed(7), truncation_psi=0.7))[0]
        start = generator.synthesis(generator.w_avg.expand(1, generator.num_ws, -1))[0]
    start_psnr = 10 * np.log10(4.0 / float((start - target).square().mean()))
    result = invert_image(generator, target, InversionSettings(w_steps=40, wplus_steps=40))
    assert result.ws.shape == (1, generator.num_ws, generator.w_dim)
    assert result.used_discriminator and result.optimised_noise
    assert result.w_psnr_db > start_psnr + 1.0
    assert result.psnr_db > result.w_psnr_db
    with torch.no_grad():                    # the optimised noise stays in the generator
        again = generator.synthesis(result.ws)[0]
    assert (again - result.image).abs().max() < 1e-5


def test_fit_of_a_photo_writes_a_valid_bundle_with_the_inversion_psnr(checkpoint, tmp_path, capsys):
    rng = np.random.default_rng(0)
    pixels = (rng.random((48, 64, 3)) * 255).astype(np.uint8)
    Image.fromarray(pixels).save(tmp_path / "photo.png")
    request = ReconstructionRequest(
        generator=f"stylegan2:{checkpoint}", crop=CropSettings(centre_x=0.5, centre_y=0.5, scale=0.5),
        inversion_overrides={"start_steps": 3, "w_steps": 5, "wplus_steps": 5},
        fit_overrides=dict(stages=1, target_steps=4, projection_steps=2, exploitation_steps=4, pseudo_samples=1,
                           rays_per_image=64,
                           sampling=SamplingSettings(coarse_samples=24, fine_samples=8, coarse_grid=24)),
        export=ExportSettings(mesh_resolution=32, texture_size=64))
    calls = []
    result = reconstruct_image(tmp_path / "photo.png", request, tmp_path / "bundle",
                               progress=lambda stage, done, total: calls.append((stage, done, total)),
                               log=lambda message: None)
    manifest = validate_bundle(result.bundle)
    assert np.isfinite(result.metrics["inversion_psnr_db"]) and np.isfinite(result.metrics["rerender_psnr_db"])
    source = manifest["provenance"]["source"]
    assert source["kind"] == "image" and source["crop"]["scale"] == 0.5 and source["photo_size"] == [64, 48]
    assert manifest["provenance"]["seed"] is None
    assert [done for _, done, _ in calls] == list(range(1, len(calls) + 1))   # one count, inversion then fit
    assert calls[0][0] == "inversion (starts)" and {total for _, _, total in calls} == {len(calls)}
    assert [stage for stage, _, _ in calls][:13] == ["inversion (starts)"] * 3 + ["inversion (W)"] * 5 + \
        ["inversion (W+)"] * 5
    inversion = source["inversion"]
    assert inversion["stages"] == ["starts", "W", "W+"] and inversion["latent"] == "W"
    assert inversion["start"]["chosen"] in [c["name"] for c in inversion["start"]["candidates"]]
    assert len(inversion["start"]["candidates"]) == 5 and inversion["feature_layer"] is None
    assert inversion["psnr_db"] == result.metrics["inversion_psnr_db"] and np.isfinite(inversion["w_psnr_db"])
    assert manifest["images"]["report"] == "images/report.png" and result.report.is_file()
    # the target image of the bundle is the photo's crop
    target = np.asarray(Image.open(result.bundle / manifest["images"]["target"]), np.float32) / 255
    expected = (crop_for_generator(load_photo(tmp_path / "photo.png"), 16, request.crop) + 1) / 2
    assert np.abs(target - expected.permute(1, 2, 0).numpy()).max() < 1.5 / 255

    assert main(["fit", "--image", str(tmp_path / "photo.png"), "--generator", f"stylegan2:{checkpoint}",
                 "--crop-scale", "0.1", "--out", str(tmp_path / "x")]) == 2
    assert "needs at least 16 px a side" in capsys.readouterr().err

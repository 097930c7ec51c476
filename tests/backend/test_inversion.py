"""Inversion on every generator kind (backend/gan2x/invert/inversion.py):
random starts from the generator's prior and the check of ``w_avg``, z with
its prior for generators without a mapping network, the feature-offset
stage of generators with feature layers, W / W+ for the others, and the
progress count. Tiny random generators, built here."""
import numpy as np
import pytest
import torch
from torch import nn

from gan2x.generators import load_generator
from gan2x.generators.dcgan import DCGANGenerator
from gan2x.generators.torchscript import TorchScriptGenerator
from gan2x.invert import InversionSettings, invert_image
from gan2x.invert.inversion import latent_is_z, latent_prior
from gan2x.pipeline import scaled_inversion_overrides

FEW = dict(start_steps=10, w_steps=40, wplus_steps=40)


def tiny_dcgan(seed: int = 0) -> DCGANGenerator:
    """A 32 px DCGAN (nz 8) with random weights and batch-norm statistics
    measured on random latents; the first batch norm's shifts are negative,
    so at z = 0 every ReLU after it is dead (as in the development GAN)."""
    torch.manual_seed(seed)
    generator = DCGANGenerator(nz=8, channels=[16, 8, 4, 3], spec="dcgan:tiny")
    norms = [layer for layer in generator.main if isinstance(layer, nn.BatchNorm2d)]
    with torch.no_grad():
        for norm in norms:
            norm.weight.uniform_(0.8, 1.2)
            norm.bias.normal_(0, 0.1)
            norm.momentum = None
        norms[0].bias.copy_(-0.05 - 0.1 * torch.rand_like(norms[0].bias))
        generator.train()
        for _ in range(4):
            generator.main(torch.randn(32, 8, 1, 1))
        norms[0].running_mean.zero_()
    generator.eval()
    for parameter in generator.parameters():
        parameter.requires_grad_(False)
    generator.choose_w_avg()
    return generator


class ReluDecoder(nn.Module):
    """z [B, 6] -> images [B, 3, 8, 8]: a bias-free ReLU network, whose gradient is exactly 0 at z = 0."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(3)
        self.hidden = nn.Linear(6, 64, bias=False)
        self.out = nn.Linear(64, 3 * 8 * 8, bias=False)

    def forward(self, z):
        return torch.tanh(self.out(torch.relu(self.hidden(z)))).reshape(-1, 3, 8, 8)


def psnr(image, target) -> float:
    mse = float((((image + 1) / 2).clamp(0, 1) - ((target + 1) / 2).clamp(0, 1)).square().mean())
    return 10 * np.log10(1.0 / mse)


def sample(generator, seed):
    with torch.no_grad():
        return generator.synthesis(generator.mapping(generator.z_from_seed(seed)))[0]


def test_latent_priors():
    on_shell = torch.randn(4, 10_000, generator=torch.Generator().manual_seed(0))
    assert latent_prior(on_shell, "shell").max() < 1e-3 and latent_prior(torch.zeros(1, 8), "shell")[0] == 1.0
    assert torch.allclose(latent_prior(2 * torch.ones(1, 8), "gaussian"), torch.tensor([2.0]))
    assert latent_prior(on_shell, "none").abs().max() == 0
    with pytest.raises(ValueError, match="unknown latent prior"):
        latent_prior(on_shell, "uniform")


def test_a_dcgan_whose_gradient_vanishes_at_w_avg_still_inverts():
    generator = tiny_dcgan()
    generator._w_avg.zero_()                     # the bad w_avg: z = 0, every ReLU dead
    assert latent_is_z(generator)
    target = sample(generator, 5)
    with torch.no_grad():
        start_psnr = psnr(generator.synthesis(generator.w_avg[None, None]), target)
    result = invert_image(generator, target, InversionSettings(**FEW, feature_layer=None))
    w_avg = result.start["candidates"][0]
    assert w_avg["name"] == "w_avg" and w_avg["gradient_norm"] == 0.0 and not w_avg["sound"]
    assert result.start["chosen"].startswith("random ") and result.latent == "z"
    assert result.stages == ["starts", "z", "z"] and result.features is None
    assert result.psnr_db > start_psnr + 5.0
    # w_avg alone (no random starts) is refused too: one random start replaces it
    alone = invert_image(generator, target, InversionSettings(**FEW, starts=0, feature_layer=None))
    assert alone.start["chosen"] == "random 0" and alone.psnr_db > start_psnr + 5.0


def test_a_sound_w_avg_is_a_candidate():
    generator = tiny_dcgan()
    result = invert_image(generator, sample(generator, 5), InversionSettings(start_steps=5, w_steps=5,
                                                                            wplus_steps=5))
    names = [candidate["name"] for candidate in result.start["candidates"]]
    assert names == ["w_avg", "random 0", "random 1", "random 2", "random 3"]
    assert all(candidate["sound"] and np.isfinite(candidate["loss"]) for candidate in result.start["candidates"])
    assert result.start["chosen"] == min(result.start["candidates"], key=lambda c: c["loss"])["name"]


def test_starts_are_deterministic_for_a_seed_and_leave_the_global_rng_alone():
    generator = tiny_dcgan()
    target = sample(generator, 9)
    settings = InversionSettings(start_steps=5, w_steps=10, wplus_steps=5)
    torch.manual_seed(123)
    first = invert_image(generator, target, settings)
    after = torch.rand(1)
    torch.manual_seed(123)
    second = invert_image(generator, target, settings)
    assert torch.equal(torch.rand(1), after)                  # the global RNG was not drawn from
    assert first.start == second.start and torch.equal(first.ws, second.ws)
    assert torch.equal(first.image, second.image)
    other = invert_image(generator, target, InversionSettings(start_steps=5, w_steps=10, wplus_steps=5, seed=1))
    assert other.start["candidates"][1]["initial_loss"] != first.start["candidates"][1]["initial_loss"]


def test_the_feature_stage_runs_for_a_generator_with_feature_layers():
    generator = tiny_dcgan()
    target = sample(generator, 11)
    result = invert_image(generator, target, InversionSettings(**FEW))
    assert result.stages == ["starts", "z", "features"] and result.feature_layer == 1
    assert result.features.shape == (1, 8, 8, 8) and result.ws.shape == (1, 1, 8)
    assert 0 < result.feature_offset_rms < 1
    with torch.no_grad():
        assert (generator.synthesis_from_features(result.features, 1)[0] - result.image).abs().max() < 1e-5
        latent_only = generator.synthesis(result.ws)[0]
    assert abs(psnr(latent_only, target) - result.w_psnr_db) < 1e-3
    assert result.psnr_db > result.w_psnr_db                  # the offset adds what z could not
    # a layer the generator lacks falls back to the nearest; None turns the stage off
    assert invert_image(generator, target, InversionSettings(start_steps=2, w_steps=2, wplus_steps=2,
                                                             feature_layer=9)).feature_layer == 2


def test_a_torchscript_module_without_mapping_is_inverted_in_z():
    generator = TorchScriptGenerator(ReluDecoder(), "torchscript:test", z_dim=6, resolution=8)
    assert latent_is_z(generator) and not hasattr(generator, "feature_layers")
    target = sample(generator, 2)
    result = invert_image(generator, target, InversionSettings(**FEW))
    assert result.latent == "z" and result.stages == ["starts", "z", "z"] and result.feature_layer is None
    assert not result.start["candidates"][0]["sound"] and result.psnr_db > 25


def test_synthetic_generator_keeps_w_then_w_plus_and_progress_counts_every_step():
    generator = load_generator("synthetic", resolution=16)
    assert not latent_is_z(generator)
    target = sample(generator, 3)
    settings = InversionSettings(start_steps=3, w_steps=4, wplus_steps=5)
    calls = []
    result = invert_image(generator, target, settings, progress=lambda *call: calls.append(call))
    assert result.stages == ["starts", "W", "W+"] and result.latent == "W" and result.features is None
    assert [done for _, done, _ in calls] == list(range(1, settings.total_steps() + 1)) == list(range(1, 13))
    assert {total for _, _, total in calls} == {12}
    assert [stage for stage, _, _ in calls] == ["inversion (starts)"] * 3 + ["inversion (W)"] * 4 + \
        ["inversion (W+)"] * 5
    assert result.ws.shape == (1, generator.num_ws, generator.w_dim)


@pytest.mark.parametrize("starts", [0, 4])
def test_progress_total_matches_the_steps_of_a_dcgan_inversion(starts):
    generator = tiny_dcgan()
    settings = InversionSettings(starts=starts, start_steps=3, w_steps=4, wplus_steps=2)
    calls = []
    invert_image(generator, sample(generator, 1), settings, progress=lambda *call: calls.append(call))
    assert len(calls) == settings.total_steps() == (3 if starts else 0) + 6
    assert calls[-1][1] == calls[-1][2] == settings.total_steps()


def test_scaled_inversion_overrides_scale_every_step_count():
    base = InversionSettings()
    overrides = scaled_inversion_overrides(0.5)
    assert overrides == {"start_steps": round(base.start_steps / 2), "w_steps": round(base.w_steps / 2),
                         "wplus_steps": round(base.wplus_steps / 2)}
    assert InversionSettings(**overrides).total_steps() == sum(overrides.values())


def test_a_photo_fit_through_a_dcgan_records_the_start_and_the_stages(tmp_path):
    from PIL import Image

    from gan2x.export import validate_bundle
    from gan2x.pipeline import ExportSettings, ReconstructionRequest, reconstruct_image
    from gan2x.render.volume import SamplingSettings

    generator = tiny_dcgan()
    torch.save({"netG_state_dict": {f"main.{key}": value for key, value in generator.main.state_dict().items()}},
               tmp_path / "netG.pt")
    with torch.no_grad():
        pixels = ((sample(generator, 4) + 1) / 2 * 255 + 0.5).clamp(0, 255).byte().permute(1, 2, 0).numpy()
    Image.fromarray(pixels).save(tmp_path / "photo.png")
    request = ReconstructionRequest(
        generator=f"dcgan:{tmp_path / 'netG.pt'}", inversion_overrides=FEW,
        fit_overrides=dict(stages=1, target_steps=2, projection_steps=2, exploitation_steps=2, pseudo_samples=1,
                           rays_per_image=64,
                           sampling=SamplingSettings(coarse_samples=24, fine_samples=8, coarse_grid=24)),
        export=ExportSettings(mesh_resolution=32, texture_size=64))
    calls = []
    result = reconstruct_image(tmp_path / "photo.png", request, tmp_path / "bundle",
                               progress=lambda stage, done, total: calls.append((stage, done, total)),
                               log=lambda message: None)
    inversion = validate_bundle(result.bundle)["provenance"]["source"]["inversion"]
    assert inversion["stages"] == ["starts", "z", "features"] and inversion["latent"] == "z"
    assert inversion["feature_layer"] == 1 and inversion["feature_offset_rms"] > 0
    assert inversion["start"]["chosen"] in [c["name"] for c in inversion["start"]["candidates"]]
    assert inversion["psnr_db"] > inversion["w_psnr_db"] > 15
    assert [stage for stage, _, _ in calls][:90] == ["inversion (starts)"] * 10 + ["inversion (z)"] * 40 + \
        ["inversion (features)"] * 40
    assert [done for _, done, _ in calls] == list(range(1, len(calls) + 1))

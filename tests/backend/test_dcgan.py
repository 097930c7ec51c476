"""DCGAN generators (backend/gan2x/generators/dcgan.py): PyTorch's DCGAN
tutorial generator loaded from its state dict, on tiny checkpoints the tests
write themselves (nz 8, ngf 4, 32 and 64 px), checked against the tutorial's
architecture built by hand here; every checkpoint layout it accepts, the
files it refuses and what it says about them, the protocol, gradients and
the feature layers inversion uses."""
import os
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from gan2x.cli import main
from gan2x.generators import CheckpointFormatError, GeneratorLoadError, load_generator
from gan2x.generators.validation import validate_generator

NZ, NGF = 8, 4


def tutorial_generator(resolution=64, nz=NZ, ngf=NGF, nc=3, kernel=4, seed=0) -> nn.Module:
    """The tutorial's ``Generator``: ``main`` as written there (64 px; 32 px
    drops the first block, 4 * 2 ** (L - 1) pixels for L transposed
    convolutions), with random weights and batch-norm statistics measured on
    random latents, as a trained network has them. The first batch norm's
    shifts are negative, as in the development GAN (all 512 of them there):
    at z = 0 every ReLU after it is dead."""
    torch.manual_seed(seed)
    pad = 1 if kernel == 4 else 0
    if resolution == 64:
        main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 8, kernel, 1, 0, bias=False), nn.BatchNorm2d(ngf * 8), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 8, ngf * 4, kernel, 2, pad, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 4, ngf * 2, kernel, 2, pad, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, ngf, kernel, 2, pad, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
            nn.ConvTranspose2d(ngf, nc, kernel, 2, pad, bias=False), nn.Tanh())
    else:
        assert resolution == 32
        main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 4, kernel, 1, 0, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 4, ngf * 2, kernel, 2, pad, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, ngf, kernel, 2, pad, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
            nn.ConvTranspose2d(ngf, nc, kernel, 2, pad, bias=False), nn.Tanh())
    holder = nn.Module()
    holder.main = main
    norms = [layer for layer in main if isinstance(layer, nn.BatchNorm2d)]
    with torch.no_grad():
        for norm in norms:
            norm.weight.uniform_(0.8, 1.2)
            norm.bias.normal_(0, 0.1)
            norm.momentum = None  # cumulative averages
        norms[0].bias.copy_(-0.05 - 0.1 * torch.rand_like(norms[0].bias))
        holder.train()
        for _ in range(4):
            main(torch.randn(32, nz, 1, 1))
        norms[0].running_mean.zero_()  # z is symmetric and the first convolution has no bias: its true mean is 0
        for norm in norms:
            norm.momentum = 0.1
    return holder.eval()


def reference_images(holder: nn.Module, z: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return holder.main(z[:, :, None, None])


def write(path, holder: nn.Module, key: str | None = "netG_state_dict"):
    state = holder.state_dict()
    torch.save(state if key is None else {key: state}, path)
    return path


@pytest.fixture(scope="module")
def nets(tmp_path_factory):
    root = tmp_path_factory.mktemp("dcgan")
    out = {}
    for resolution in (32, 64):
        holder = tutorial_generator(resolution, seed=resolution)
        out[resolution] = (holder, write(root / f"netG_{resolution}.pth", holder))
    return out


def _images(generator, seeds=(0, 1, 2), psi=1.0):
    with torch.no_grad():
        z = torch.cat([generator.z_from_seed(seed) for seed in seeds])
        return generator(z, truncation_psi=psi)


@pytest.mark.parametrize("resolution", [32, 64])
def test_the_loaded_generator_is_the_tutorial_architecture(nets, resolution):
    holder, path = nets[resolution]
    generator = load_generator(f"dcgan:{path}")
    assert generator.spec == f"dcgan:{path}"
    assert (generator.z_dim, generator.w_dim, generator.num_ws) == (NZ, NZ, 1)
    assert (generator.img_resolution, generator.img_channels) == (resolution, 3)
    seeds = (0, 1, 2, 7)
    z = torch.cat([generator.z_from_seed(seed) for seed in seeds])
    images = _images(generator, seeds)
    assert images.dtype == torch.float32 and images.shape == (4, 3, resolution, resolution)
    assert (images - reference_images(holder, z)).abs().max() < 1e-5
    assert images.std() > 0.01  # the test network draws something, not a constant


@pytest.mark.parametrize("key", ["netG_state_dict", "state_dict", "generator", "G", None, "module."])
def test_every_container_key_a_bare_state_dict_and_dataparallel_names_load(nets, tmp_path, key):
    holder, _ = nets[32]
    path = tmp_path / "checkpoint.pt"
    if key == "module.":  # nn.DataParallel(netG).state_dict()
        torch.save({f"module.{name}": value for name, value in holder.state_dict().items()}, path)
    else:
        write(path, holder, key)
    generator = load_generator(f"dcgan:{path}")
    z = torch.cat([generator.z_from_seed(seed) for seed in (3, 4)])
    assert (_images(generator, (3, 4)) - reference_images(holder, z)).abs().max() < 1e-5


def test_a_training_checkpoint_with_the_discriminator_and_optimisers_loads_the_generator(nets, tmp_path):
    holder, _ = nets[64]
    discriminator = tutorial_discriminator()
    optimiser = {"state": {0: {"step": torch.tensor(3.0), "exp_avg": torch.zeros(2), "exp_avg_sq": torch.zeros(2)}},
                 "param_groups": [{"lr": 2e-4, "betas": (0.5, 0.999), "eps": 1e-8, "params": [0]}]}  # Adam's layout
    path = tmp_path / "training.tar"
    torch.save({"epoch": 5, "netD_state_dict": discriminator.state_dict(), "netG_state_dict": holder.state_dict(),
                "optimizerG_state_dict": optimiser, "G_losses": [1.5, 2.0]}, path)
    generator = load_generator(f"dcgan:{path}")
    z = generator.z_from_seed(5)
    assert (_images(generator, (5,)) - reference_images(holder, z)).abs().max() < 1e-5


def tutorial_discriminator(nc=3, ndf=4) -> nn.Module:
    """The tutorial's ``Discriminator``."""
    holder = nn.Module()
    holder.main = nn.Sequential(
        nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 4), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 8), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False), nn.Sigmoid())
    return holder


def test_other_networks_are_refused_saying_what_they_are(tmp_path):
    discriminator = tutorial_discriminator()
    for key in (None, "netD_state_dict"):
        path = write(tmp_path / f"netD-{key}.pth", discriminator, key)
        with pytest.raises(GeneratorLoadError, match="discriminator"):
            load_generator(f"dcgan:{path}")
    linear = tmp_path / "linear.pth"
    torch.save(nn.Linear(NZ, 3).state_dict(), linear)
    with pytest.raises(GeneratorLoadError, match=r"no DCGAN generator state dict.*\['bias', 'weight'\]"):
        load_generator(f"dcgan:{linear}")
    dense = nn.Module()
    dense.main = nn.Sequential(nn.Linear(NZ, 3))
    with pytest.raises(GeneratorLoadError, match=r"main.0.weight has shape \(3, 8\).*4x4 kernels"):
        load_generator(f"dcgan:{write(tmp_path / 'dense.pth', dense)}")
    three = write(tmp_path / "3x3.pth", tutorial_generator(64, kernel=3))
    with pytest.raises(GeneratorLoadError, match=r"shape \(8, 32, 3, 3\).*4x4 kernels"):
        load_generator(f"dcgan:{three}")
    grey = write(tmp_path / "grey.pth", tutorial_generator(64, nc=1))
    with pytest.raises(GeneratorLoadError, match="1-channel images; only RGB"):
        load_generator(f"dcgan:{grey}")
    rosinality = tmp_path / "stylegan2.pt"
    torch.save({"g_ema": {"style.1.weight": torch.zeros(2, 2)}, "latent_avg": torch.zeros(2)}, rosinality)
    with pytest.raises(GeneratorLoadError, match="rosinality StyleGAN2 checkpoint: load it with stylegan2:"):
        load_generator(f"dcgan:{rosinality}")
    broken = tutorial_generator(32)
    with torch.no_grad():
        broken.main[3].weight[0, 0, 0, 0] = float("nan")
    with pytest.raises(GeneratorLoadError, match="non-finite"):
        load_generator(f"dcgan:{write(tmp_path / 'nan.pth', broken)}")


class RunsAShell:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_files_that_are_not_state_dicts_are_refused_and_nothing_in_them_runs(nets, tmp_path, capsys):
    _, good = nets[32]
    data = good.read_bytes()
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(data[:len(data) // 2])
    with pytest.raises(CheckpointFormatError, match="corrupt or truncated"):
        load_generator(f"dcgan:{truncated}")
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointFormatError, match="is empty"):
        load_generator(f"dcgan:{empty}")
    png = tmp_path / "picture.pth"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    with pytest.raises(CheckpointFormatError, match=r"not a torch.save file \(a PNG image\)"):
        load_generator(f"dcgan:{png}")
    whole = tmp_path / "whole_module.pth"
    torch.save(tutorial_generator(32), whole)  # torch.save(netG): the module's classes are pickled
    with pytest.raises(CheckpointFormatError, match=r"pickles Python objects.*torch.nn.*netG.state_dict\(\)"):
        load_generator(f"dcgan:{whole}")
    protocol_4 = tmp_path / "protocol4.pth"
    torch.save(tutorial_generator(32).state_dict(), protocol_4, pickle_protocol=4)
    with pytest.raises(CheckpointFormatError, match="pickle protocol 4 or later"):
        load_generator(f"dcgan:{protocol_4}")
    legacy = tmp_path / "legacy.pth"  # the pre-1.6 format, protocol 2 (torch.save's default)
    torch.save(tutorial_generator(32).state_dict(), legacy, _use_new_zipfile_serialization=False)
    assert load_generator(f"dcgan:{legacy}").img_resolution == 32
    marker = tmp_path / "MARKER"
    evil = tmp_path / "evil.pth"
    torch.save({"netG_state_dict": RunsAShell(marker)}, evil)
    with pytest.raises(CheckpointFormatError, match=r"(posix|nt)\.system.*nothing in it ran"):
        load_generator(f"dcgan:{evil}")
    assert not marker.exists()
    scripted = tmp_path / "scripted.pt"
    with warnings.catch_warnings():  # torch.jit is deprecated; TorchScript files still exist
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(nn.Linear(2, 2)), scripted)
    with pytest.raises(CheckpointFormatError, match="TorchScript module.*torchscript:"):
        load_generator(f"dcgan:{scripted}")
    with pytest.raises(FileNotFoundError):
        load_generator(f"dcgan:{tmp_path / 'missing.pth'}")
    with pytest.raises(ValueError, match=r"needs a target: dcgan:PATH"):
        load_generator("dcgan:")
    with pytest.raises(ValueError, match="unknown options"):
        load_generator(f"dcgan:{good}", noise_mode="const")
    assert main(["sample", "--generator", f"dcgan:{whole}", "--seeds", "0", "--out", str(tmp_path / "x.png")]) == 2
    assert "pickles Python objects" in capsys.readouterr().err


def test_protocol_seeds_truncation_and_mapping(nets):
    _, path = nets[64]
    generator = load_generator(f"dcgan:{path}")
    validate_generator(generator, "the test DCGAN")
    z = generator.z_from_seed(7)
    assert z.dtype == torch.float32 and z.shape == (1, NZ)
    assert torch.equal(z, torch.from_numpy(np.random.RandomState(7).randn(1, NZ)).float())
    batch = torch.cat([generator.z_from_seed(seed) for seed in (0, 1, 2)])
    ws = generator.mapping(batch)
    assert ws.shape == (3, 1, NZ) and torch.allclose(ws[:, 0], batch, atol=1e-6)  # W is z
    assert generator.w_avg.shape == (NZ,)
    half = generator.mapping(batch, truncation_psi=0.5)[:, 0]
    assert torch.allclose(half, generator.w_avg + 0.5 * (batch - generator.w_avg))
    with torch.no_grad():
        mean_image = generator.synthesis(generator.w_avg[None, None])
        assert (generator(batch, truncation_psi=0.0) - mean_image).abs().max() < 1e-6
    # w_avg is the medoid latent: one of the first 128 seeds' latents, not z = 0
    medoid = [seed for seed in range(128) if torch.equal(generator.z_from_seed(seed)[0], generator.w_avg)]
    assert len(medoid) == 1 and generator.w_avg.abs().max() > 0.1
    assert not any(parameter.requires_grad for parameter in generator.parameters())
    assert not generator.training


def test_the_gradient_reaches_ws_at_w_avg_though_it_vanishes_at_zero(nets):
    """A DCGAN's first batch norm maps z = 0 to its shifts; in the
    development GAN (and this test network) they are all negative, so every
    ReLU after it is dead and the image's gradient with respect to z is
    exactly 0 there: an inversion started at z = 0 never moves. That is why
    ``w_avg`` is the medoid latent, a typical point on the prior's shell."""
    _, path = nets[64]
    generator = load_generator(f"dcgan:{path}")
    target = torch.zeros(1, 3, 64, 64)

    def gradient(ws):
        ws = ws.clone().requires_grad_(True)
        (generator.synthesis(ws) - target).square().mean().backward()
        return ws.grad

    at_w_avg = gradient(generator.w_avg[None, None])
    assert torch.isfinite(at_w_avg).all() and at_w_avg.abs().max() > 1e-6
    assert gradient(torch.zeros(1, 1, NZ)).abs().max() == 0


@pytest.mark.parametrize("resolution", [32, 64])
def test_features_of_every_layer_give_back_the_images(nets, resolution):
    _, path = nets[resolution]
    generator = load_generator(f"dcgan:{path}")
    assert generator.feature_layers == tuple(range(int(np.log2(resolution // 4))))
    ws = generator.mapping(torch.cat([generator.z_from_seed(seed) for seed in (0, 1)]))
    with torch.no_grad():
        images = generator.synthesis(ws)
    for layer in generator.feature_layers:
        features = generator.synthesis_features(ws, layer)
        side = 4 * 2 ** layer
        assert features.shape[0] == 2 and features.shape[2:] == (side, side), (layer, features.shape)
        assert features.min() >= 0  # after the block's ReLU
        features = features.detach().requires_grad_(True)
        again = generator.synthesis_from_features(features, layer)
        assert (again - images).abs().max() < 1e-6, layer
        again.square().mean().backward()
        assert features.grad.abs().max() > 0, layer
    channels = [generator.synthesis_features(ws, layer).shape[1] for layer in generator.feature_layers]
    assert channels == [NGF * 2 ** (len(channels) - 1 - k) for k in range(len(channels))]
    for bad in (-1, len(generator.feature_layers)):
        with pytest.raises(ValueError, match="feature layer"):
            generator.synthesis_features(ws, bad)


def test_sample_command_writes_the_generators_images(nets, tmp_path):
    holder, path = nets[64]
    spec = f"dcgan:{path}"
    assert main(["sample", "--generator", spec, "--seeds", "0-3", "--out", str(tmp_path / "x.png")]) == 0
    from PIL import Image

    assert Image.open(tmp_path / "x.png").size == (2 * 64, 2 * 64)
    assert main(["sample", "--generator", spec, "--seeds", "0-3", "--out", str(tmp_path / "x.npy")]) == 0
    values = np.load(tmp_path / "x.npy")
    z = torch.from_numpy(np.concatenate([np.random.RandomState(seed).randn(1, NZ) for seed in range(4)])).float()
    assert values.shape == (4, 3, 64, 64)
    assert np.abs(values - reference_images(holder, z).clamp(-1, 1).numpy()).max() < 1e-5

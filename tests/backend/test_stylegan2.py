"""StyleGAN2 (backend/gan2x/generators/stylegan2): the network, the three
checkpoint formats on tiny random checkpoints the tests write themselves,
refusal of pickles that would run code, and actionable errors."""
import math
import os
import pickle

import numpy as np
import pytest
import torch

import stylegan2_checkpoints as checkpoints
from gan2x.cli import main
from gan2x.generators import CheckpointFormatError, UnsafePickleError, load_generator
from gan2x.generators.stylegan2 import convert_checkpoint, detect_format, load_stylegan2
from gan2x.generators.stylegan2.formats.rosinality import discriminator_from_state, generator_from_state
from gan2x.generators.stylegan2.networks import Discriminator, StyleGAN2Network
from gan2x.generators.stylegan2.ops import make_resample_filter, modulated_conv2d


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The same tiny random network as an NVIDIA pickle, a rosinality .pt and
    the safetensors conversions of both."""
    root = tmp_path_factory.mktemp("stylegan2")
    marker = root / "MODULE_SOURCE_RAN"
    nvidia = checkpoints.write_nvidia_pickle(root / "network-snapshot.pkl", seed=0, marker=marker)
    checkpoints.write_rosinality(root / "rosinality.pt", nvidia)
    convert_checkpoint(root / "network-snapshot.pkl", root / "from_nvidia.safetensors")
    convert_checkpoint(root / "rosinality.pt", root / "from_rosinality.safetensors")
    return {"root": root, "marker": marker, "nvidia": nvidia,
            "paths": {"nvidia-pickle": root / "network-snapshot.pkl", "rosinality": root / "rosinality.pt",
                      "safetensors": root / "from_nvidia.safetensors",
                      "safetensors (from rosinality)": root / "from_rosinality.safetensors"}}


def _images(generator, seeds=(0, 1, 2), psi=0.7):
    with torch.no_grad():
        z = torch.cat([generator.z_from_seed(s) for s in seeds])
        return generator.synthesis(generator.mapping(z, truncation_psi=psi))


@pytest.mark.parametrize("up", [False, True])
@pytest.mark.parametrize("demodulate", [True, False])
def test_fast_modulated_convolution_matches_the_reference_path(up, demodulate):
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(3, 5, 8, 8, generator=generator)
    weight = torch.randn(7, 5, 3, 3, generator=generator)
    styles = torch.randn(3, 5, generator=generator)
    fast = modulated_conv2d(x, weight, styles, demodulate, up, make_resample_filter(), fused=True)
    reference = modulated_conv2d(x, weight, styles, demodulate, up, make_resample_filter(), fused=False)
    assert fast.shape == (3, 7, 16 if up else 8, 16 if up else 8)
    assert (fast - reference).abs().max() < 1e-4


def test_formats_are_detected_by_content_not_extension(files, tmp_path):
    for kind, path in files["paths"].items():
        renamed = tmp_path / f"checkpoint-{len(kind)}.bin"
        renamed.write_bytes(path.read_bytes())
        assert detect_format(renamed) == kind.split(" ")[0]


def test_nvidia_pickle_architecture(files):
    generator = load_generator(f"stylegan2:{files['paths']['nvidia-pickle']}")
    assert (generator.z_dim, generator.w_dim, generator.img_resolution) == (32, 32, 16)
    assert generator.num_ws == 2 * int(math.log2(16)) - 2 == 6
    config = generator.network.config
    assert config.channels == {4: 32, 8: 32, 16: 16}
    assert config.mapping_layers == 2 and config.mapping_lr_multiplier == 0.01 and config.conv_clamp == 256.0
    assert generator.discriminator is not None and generator.source_format == "nvidia-pickle"
    # every tensor of the pickled G_ema (but the fixed FIR filters) is in the network, unchanged
    stored = {k: v for k, v in files["nvidia"]["G"].tensors().items() if not k.endswith("resample_filter")}
    loaded = generator.network.state_dict()
    assert set(stored) == set(loaded)
    assert all(torch.equal(stored[name].float(), loaded[name]) for name in stored)
    assert torch.equal(generator.w_avg, stored["mapping.w_avg"])
    # the network's source code stored in the pickle never ran
    assert not files["marker"].exists()


def test_every_format_gives_the_same_images_and_discriminator(files):
    generators = {kind: load_stylegan2(path) for kind, path in files["paths"].items()}
    reference = _images(generators["nvidia-pickle"])
    assert reference.shape == (3, 3, 16, 16) and torch.isfinite(reference).all()
    assert reference.std() > 0.05
    logits = generators["nvidia-pickle"].discriminator(reference)
    for kind, generator in generators.items():
        assert (_images(generator) - reference).abs().max() < 1e-4, kind
        assert (generator.discriminator(reference) - logits).abs().max() < 1e-4, kind


def test_the_reference_path_gives_the_fast_paths_images(files):
    fast = load_stylegan2(files["paths"]["rosinality"])
    reference = load_stylegan2(files["paths"]["rosinality"], fused=False)
    assert (_images(fast) - _images(reference)).abs().max() < 1e-4


def test_truncation_and_noise_modes(files):
    generator = load_stylegan2(files["paths"]["safetensors"])
    at_mean = _images(generator, psi=0.0)
    assert (at_mean - at_mean[:1]).abs().max() < 1e-6          # every seed: the image of w_avg
    with torch.no_grad():
        mean_image = generator.synthesis(generator.w_avg.expand(1, generator.num_ws, -1))
    assert (at_mean[:1] - mean_image).abs().max() < 1e-5
    assert torch.equal(_images(generator), _images(generator))  # const noise: deterministic
    with torch.no_grad():
        ws = generator.mapping(generator.z_from_seed(0))
        random_a, random_b = generator.synthesis(ws, "random"), generator.synthesis(ws, "random")
    assert (random_a - random_b).abs().max() > 1e-3


def test_a_generator_without_discriminator_loads(files, tmp_path):
    path = tmp_path / "g_only.pkl"
    checkpoints.write_nvidia_pickle(path, seed=3, with_discriminator=False)
    generator = load_stylegan2(path)
    assert generator.discriminator is None
    assert any("no discriminator" in note for note in generator.notes)
    out = tmp_path / "g_only.safetensors"
    assert main(["convert-checkpoint", str(path), str(out)]) == 0
    assert load_stylegan2(out).discriminator is None


def _rosinality_channels(multiplier):
    """rosinality model.py's channel table."""
    return {4: 512, 8: 512, 16: 512, 32: 512, 64: 256 * multiplier, 128: 128 * multiplier,
            256: 64 * multiplier, 512: 32 * multiplier, 1024: 16 * multiplier}


def _rosinality_meta_state(size, multiplier, style_dim=512, n_mlp=8):
    """The tensor names and shapes of rosinality's Generator and Discriminator
    (model.py) for ``size``/``channel_multiplier``, as meta tensors (nothing
    allocated) but for the real blur kernels."""
    meta = lambda *shape: torch.empty(*shape, device="meta")  # noqa: E731
    blur = checkpoints.resample_filter()
    channels = _rosinality_channels(multiplier)
    log_size = int(math.log2(size))
    g = {f"style.{i}.{kind}": meta(style_dim, style_dim) if kind == "weight" else meta(style_dim)
         for i in range(1, n_mlp + 1) for kind in ("weight", "bias")}
    g["input.input"] = meta(1, channels[4], 4, 4)

    def styled(name, in_c, out_c, upsample):
        g.update({f"{name}.conv.weight": meta(1, out_c, in_c, 3, 3), f"{name}.conv.modulation.weight":
                  meta(in_c, style_dim), f"{name}.conv.modulation.bias": meta(in_c),
                  f"{name}.noise.weight": meta(1), f"{name}.activate.bias": meta(out_c)})
        if upsample:
            g[f"{name}.conv.blur.kernel"] = blur * 4

    def rgb(name, in_c, upsample):
        g.update({f"{name}.conv.weight": meta(1, 3, in_c, 1, 1), f"{name}.conv.modulation.weight":
                  meta(in_c, style_dim), f"{name}.conv.modulation.bias": meta(in_c), f"{name}.bias": meta(1, 3, 1, 1)})
        if upsample:
            g[f"{name}.upsample.kernel"] = blur * 4

    styled("conv1", channels[4], channels[4], False)
    rgb("to_rgb1", channels[4], False)
    for j in range((log_size - 2) * 2 + 1):
        res = 2 ** ((j + 5) // 2)
        g[f"noises.noise_{j}"] = meta(1, 1, res, res)
    in_c = channels[4]
    for k, i in enumerate(range(3, log_size + 1)):
        out_c = channels[2 ** i]
        styled(f"convs.{2 * k}", in_c, out_c, True)
        styled(f"convs.{2 * k + 1}", out_c, out_c, False)
        rgb(f"to_rgbs.{k}", out_c, True)
        in_c = out_c
    d = {"convs.0.0.weight": meta(channels[size], 3, 1, 1), "convs.0.1.bias": meta(channels[size])}
    in_c = channels[size]
    for j, i in enumerate(range(log_size, 2, -1), start=1):
        out_c = channels[2 ** (i - 1)]
        d.update({f"convs.{j}.conv1.0.weight": meta(in_c, in_c, 3, 3), f"convs.{j}.conv1.1.bias": meta(in_c),
                  f"convs.{j}.conv2.0.kernel": blur, f"convs.{j}.conv2.1.weight": meta(out_c, in_c, 3, 3),
                  f"convs.{j}.conv2.2.bias": meta(out_c), f"convs.{j}.skip.0.kernel": blur,
                  f"convs.{j}.skip.1.weight": meta(out_c, in_c, 1, 1)})
        in_c = out_c
    d.update({"final_conv.0.weight": meta(channels[4], in_c + 1, 3, 3), "final_conv.1.bias": meta(channels[4]),
              "final_linear.0.weight": meta(channels[4], channels[4] * 16), "final_linear.0.bias": meta(channels[4]),
              "final_linear.1.weight": meta(1, channels[4]), "final_linear.1.bias": meta(1)})
    return g, d


@pytest.mark.parametrize("size, multiplier", [(128, 1), (256, 1), (512, 2)])  # GAN2Shape: CelebA, cat, car
def test_gan2shape_rosinality_configs_read_as_their_architectures(size, multiplier):
    """The full-size layouts GAN2Shape uses, as shapes only (meta tensors):
    the architecture read from them is rosinality's, and every tensor has
    the shape the network built from it expects."""
    g_state, d_state = _rosinality_meta_state(size, multiplier)
    config, tensors = generator_from_state(g_state, "gan2shape.pt", latent_avg=torch.zeros(512))
    expected_channels = {res: c for res, c in _rosinality_channels(multiplier).items() if res <= size}
    assert (config.img_resolution, config.z_dim, config.w_dim, config.mapping_layers) == (size, 512, 512, 8)
    assert config.channels == expected_channels and config.mapping_lr_multiplier == 0.01
    with torch.device("meta"):
        network = StyleGAN2Network(config)
    assert network.num_ws == 2 * int(math.log2(size)) - 2
    wanted = {name: tuple(value.shape) for name, value in network.state_dict().items()}
    assert wanted == {name: tuple(value.shape) for name, value in tensors.items()}
    d_config, d_tensors = discriminator_from_state(d_state, "gan2shape.pt")
    assert d_config.img_resolution == size and d_config.channels == expected_channels
    with torch.device("meta"):
        discriminator = Discriminator(d_config)
    wanted = {name: tuple(value.shape) for name, value in discriminator.state_dict().items()}
    assert wanted == {name: tuple(value.shape) for name, value in d_tensors.items()}


class RunsAShell:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_pickle_that_would_run_a_command_is_refused_and_nothing_runs(tmp_path, capsys):
    marker = tmp_path / "MARKER"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"G_ema": RunsAShell(marker)}, protocol=3))
    with pytest.raises(UnsafePickleError, match=r"(posix|nt)\.system"):
        load_generator(f"stylegan2:{path}")
    assert main(["sample", "--generator", f"stylegan2:{path}", "--seeds", "0",
                 "--out", str(tmp_path / "x.png")]) == 2
    assert "refused to unpickle the global" in capsys.readouterr().err
    # inside a torch.save zip (the rosinality route) too
    zipped = tmp_path / "evil.pt"
    torch.save({"g_ema": RunsAShell(marker)}, zipped)
    with pytest.raises(UnsafePickleError, match="nothing from it was executed"):
        load_generator(f"stylegan2:{zipped}")
    # and builtins.eval
    evil_eval = tmp_path / "eval.pkl"
    evil_eval.write_bytes(b"\x80\x03cbuiltins\neval\nX\x0b\x00\x00\x00print('hi')\x85R.")
    with pytest.raises(UnsafePickleError, match="builtins.eval"):
        load_generator(f"stylegan2:{evil_eval}")
    assert not marker.exists()


def _truncated(path, tmp_path):
    data = path.read_bytes()
    out = tmp_path / f"truncated-{path.name}"
    out.write_bytes(data[:len(data) // 2])
    return out


@pytest.mark.parametrize("kind", ["nvidia-pickle", "rosinality", "safetensors"])
def test_a_truncated_checkpoint_is_a_clear_error(files, tmp_path, kind):
    with pytest.raises(CheckpointFormatError, match="corrupt or truncated"):
        load_generator(f"stylegan2:{_truncated(files['paths'][kind], tmp_path)}")


def test_unknown_and_wrong_files_are_clear_errors(files, tmp_path, capsys):
    png = tmp_path / "picture.pt"
    from PIL import Image

    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(png, format="PNG")
    with pytest.raises(CheckpointFormatError, match="unknown checkpoint format.*PNG image"):
        load_generator(f"stylegan2:{png}")
    empty = tmp_path / "empty.pkl"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointFormatError, match="empty"):
        load_generator(f"stylegan2:{empty}")
    with pytest.raises(FileNotFoundError):
        load_generator(f"stylegan2:{tmp_path / 'missing.pkl'}")
    plain = tmp_path / "plain.safetensors"
    from safetensors.torch import save_file

    save_file({"weight": torch.zeros(2)}, str(plain))
    with pytest.raises(CheckpointFormatError, match="without gan2x StyleGAN2 metadata"):
        load_generator(f"stylegan2:{plain}")
    not_a_network = tmp_path / "dict.pt"
    torch.save({"model": {"weight": torch.zeros(2)}}, not_a_network)
    with pytest.raises(CheckpointFormatError, match="without g_ema"):
        load_generator(f"stylegan2:{not_a_network}")
    broken_zip = tmp_path / "broken.pt"
    broken_zip.write_bytes(b"PK\x03\x04" + b"\x00" * 40)
    with pytest.raises(CheckpointFormatError, match="corrupt or truncated"):
        load_generator(f"stylegan2:{broken_zip}")
    with pytest.raises(ValueError, match="unknown generator spec.*stylegan2:PATH"):
        load_generator("stylegan3:whatever.pkl")
    assert main(["sample", "--generator", f"stylegan2:{png}", "--seeds", "0", "--out", str(tmp_path / "x.png")]) == 2
    assert "unknown checkpoint format" in capsys.readouterr().err


def test_sample_command_writes_a_grid_and_values(files, tmp_path):
    spec = f"stylegan2:{files['paths']['rosinality']}"
    assert main(["sample", "--generator", spec, "--seeds", "0-2", "--truncation", "0.5", "--out",
                 str(tmp_path / "grid.png")]) == 0
    from PIL import Image

    assert Image.open(tmp_path / "grid.png").size == (2 * 16, 2 * 16)
    assert main(["sample", "--generator", spec, "--seeds", "0,1,2", "--truncation", "0.5", "--out",
                 str(tmp_path / "values.npy")]) == 0
    values = np.load(tmp_path / "values.npy")
    assert values.dtype == np.float32 and values.shape == (3, 3, 16, 16)
    assert values.min() >= -1 and values.max() <= 1
    generator = load_stylegan2(files["paths"]["nvidia-pickle"])
    expected = _images(generator, psi=0.5).clamp(-1, 1).numpy()
    assert np.abs(values - expected).max() < 1e-4
    z = np.stack([generator.z_from_seed(s)[0].numpy() for s in (0, 1, 2)])
    np.save(tmp_path / "z.npy", z)
    assert main(["sample", "--generator", spec, "--z", str(tmp_path / "z.npy"), "--truncation", "0.5", "--out",
                 str(tmp_path / "from_z.npy")]) == 0
    assert np.abs(np.load(tmp_path / "from_z.npy") - values).max() < 1e-6

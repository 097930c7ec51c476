"""Every generator spec form (TorchScript, Python entry point, StyleGAN2)
loads with actionable errors and runs the fit end to end into a valid bundle."""
import json
import sys
import textwrap

import numpy as np
import pytest
import torch
from torch import nn

import stylegan2_checkpoints as checkpoints
from gan2x.export import validate_bundle
from gan2x.generators import GeneratorLoadError, load_generator
from gan2x.pipeline import ExportSettings, ReconstructionRequest, reconstruct
from gan2x.render.volume import SamplingSettings

TINY_FIT = dict(stages=1, target_steps=4, projection_steps=2, exploitation_steps=4, pseudo_samples=1,
                rays_per_image=64, sampling=SamplingSettings(coarse_samples=24, fine_samples=8, coarse_grid=24))
TINY_EXPORT = ExportSettings(mesh_resolution=32, texture_size=64)


class ZToImage(nn.Module):
    """A tiny decoder z [B, 8] -> images [B, 3, 16, 16] in [-1, 1]."""

    def __init__(self, layout: str = "nchw", with_sizes: bool = True):
        super().__init__()
        if with_sizes:
            self.z_dim = 8
            self.img_resolution = 16
        self.layout = layout
        self.linear = nn.Linear(8, 8 * 4 * 4)
        self.conv = nn.Conv2d(8, 3, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.linear(z).reshape(-1, 8, 4, 4)
        x = nn.functional.interpolate(x, scale_factor=4.0, mode="bilinear", align_corners=False)
        image = torch.tanh(self.conv(x))
        if self.layout == "nhwc":
            return image.permute(0, 2, 3, 1)
        if self.layout == "0-255":
            return (image + 1) * 127.5
        return image


class ZToTuple(ZToImage):
    """Returns (image, features), as some generators' forward does."""

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.linear(z)
        return torch.tanh(x.reshape(-1, 8, 4, 4)[:, :3]), x


class ZToVector(ZToImage):
    """Returns a latent-sized vector: not an image at all."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.linear(z))


def _script(path, module=ZToImage, **kwargs):
    torch.manual_seed(0)
    torch.jit.save(torch.jit.script(module(**kwargs)), str(path))
    return path


def _fit(spec, out_dir, seed=0):
    request = ReconstructionRequest(generator=spec, seed=seed, fit_overrides=TINY_FIT, export=TINY_EXPORT)
    return reconstruct(request, out_dir)


def _assert_valid_bundle(result, spec):
    manifest = validate_bundle(result.bundle)
    assert manifest["provenance"]["generator"] == spec
    assert np.isfinite(result.metrics["rerender_psnr_db"])
    assert "side_x100" not in result.metrics          # no ground truth: those metrics are simply absent


def test_torchscript_generator_reads_sizes_from_the_module_and_fits(tmp_path):
    path = _script(tmp_path / "decoder.pt")
    generator = load_generator(f"torchscript:{path}")
    assert (generator.z_dim, generator.img_resolution, generator.num_ws, generator.w_dim) == (8, 16, 1, 8)
    with torch.no_grad():
        image = generator(generator.z_from_seed(0))
    assert image.shape == (1, 3, 16, 16)
    _assert_valid_bundle(_fit(f"torchscript:{path}", tmp_path / "bundle"), f"torchscript:{path}")


def test_torchscript_sizes_from_a_sidecar_and_errors_for_bad_modules(tmp_path):
    bare = _script(tmp_path / "bare.pt", with_sizes=False)
    with pytest.raises(GeneratorLoadError, match=r"no z_dim attribute.*bare\.pt\.json"):
        load_generator(f"torchscript:{bare}")
    (tmp_path / "bare.pt.json").write_text(json.dumps({"z_dim": 8, "resolution": 16}))
    assert load_generator(f"torchscript:{bare}").img_resolution == 16
    (tmp_path / "bare.pt.json").write_text(json.dumps({"z_dim": 8, "resolution": 32}))
    with pytest.raises(GeneratorLoadError, match=r"shape \(2, 3, 16, 16\).*resolution 16"):
        load_generator(f"torchscript:{bare}")
    with pytest.raises(GeneratorLoadError, match="channels last"):
        load_generator(f"torchscript:{_script(tmp_path / 'nhwc.pt', layout='nhwc')}")
    with pytest.raises(GeneratorLoadError, match=r"values in \[.*divide by 127.5"):
        load_generator(f"torchscript:{_script(tmp_path / 'bytes.pt', layout='0-255')}")
    with pytest.raises(GeneratorLoadError, match="returned a tuple, not an image tensor.*returns the image only"):
        load_generator(f"torchscript:{_script(tmp_path / 'tuple.pt', ZToTuple)}")
    with pytest.raises(GeneratorLoadError, match=r"shape \(2, 128\).*not an image batch"):
        load_generator(f"torchscript:{_script(tmp_path / 'vector.pt', ZToVector)}")
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes((tmp_path / "nhwc.pt").read_bytes()[:500])
    with pytest.raises(GeneratorLoadError, match="not a readable TorchScript file"):
        load_generator(f"torchscript:{truncated}")


ENTRY_MODULE = '''
import numpy as np
import torch
from torch import nn


class TinyStyleDecoder(nn.Module):
    """A protocol generator: 2 style layers of 8, images 16 px."""

    z_dim, w_dim, num_ws, img_resolution, img_channels = 8, 8, 2, 16, 3

    def __init__(self, spec="tiny"):
        super().__init__()
        torch.manual_seed(1)
        self.spec = spec
        self.map = nn.Linear(8, 8)
        self.coarse = nn.Linear(8, 8 * 4 * 4)
        self.fine = nn.Linear(8, 3)
        self.register_buffer("w_avg", torch.zeros(8))

    def mapping(self, z, truncation_psi=1.0):
        w = self.map(z)[:, None].repeat(1, self.num_ws, 1)
        return self.w_avg + truncation_psi * (w - self.w_avg)

    def synthesis(self, ws):
        x = self.coarse(ws[:, 0]).reshape(-1, 8, 4, 4)
        x = nn.functional.interpolate(x, size=(16, 16), mode="bilinear", align_corners=False)
        return torch.tanh(x[:, :3] + self.fine(ws[:, 1])[:, :, None, None])

    def forward(self, z, truncation_psi=1.0):
        return self.synthesis(self.mapping(z, truncation_psi))

    def z_from_seed(self, seed):
        return torch.from_numpy(np.random.RandomState(seed).randn(1, self.z_dim)).float()


def make_generator(**options):
    return TinyStyleDecoder(**options)


def not_a_generator():
    return {"z_dim": 8}
'''


def test_python_entry_point_generator_fits_and_bad_ones_are_explained(tmp_path, monkeypatch):
    (tmp_path / "my_gans.py").write_text(textwrap.dedent(ENTRY_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = "python:my_gans:make_generator"
    generator = load_generator(spec)
    assert generator.num_ws == 2 and generator.img_resolution == 16
    _assert_valid_bundle(_fit(spec, tmp_path / "bundle"), spec)
    with pytest.raises(GeneratorLoadError, match="lacks the generator protocol members"):
        load_generator("python:my_gans:not_a_generator")
    with pytest.raises(GeneratorLoadError, match="cannot import"):
        load_generator("python:no_such_module_here:make")
    with pytest.raises(GeneratorLoadError, match="has no attribute"):
        load_generator("python:my_gans:missing")
    sys.modules.pop("my_gans", None)


@pytest.mark.parametrize("layout", ["nvidia", "safetensors"])
def test_stylegan2_fits_end_to_end(tmp_path, layout):
    path = tmp_path / "network.pkl"
    checkpoints.write_nvidia_pickle(path, seed=1, with_discriminator=layout == "nvidia")
    if layout == "safetensors":
        from gan2x.generators.stylegan2 import convert_checkpoint

        convert_checkpoint(path, tmp_path / "network.safetensors")
        path = tmp_path / "network.safetensors"
    spec = f"stylegan2:{path}"
    result = _fit(spec, tmp_path / "bundle", seed=3)
    _assert_valid_bundle(result, spec)
    latent = np.load(result.bundle / validate_bundle(result.bundle)["provenance"]["latent_file"])
    assert latent.shape == (1, 6, 32)

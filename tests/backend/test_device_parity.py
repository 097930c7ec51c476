"""The fit's code on the test device (``torch_device``: cpu, or the device
that ``GAN2X_TEST_DEVICE`` names; benchmarks/gpu_check.sh runs this file on
cuda). Each test computes on that device and, where the result is
deterministic, compares with the CPU: on cpu the comparisons are trivially
equal and the tests check that nothing is pinned to one device.

Comparisons turn TF32 off (``_full_precision``): the GPU's default TF32
convolutions differ from float32 by ~1e-3, which is not what is checked here."""
from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pytest
import torch

import stylegan2_checkpoints as checkpoints
from device_reads import READS_PER_STAGE, fit_and_count_reads
from gan2x.export import validate_bundle
from gan2x.fit.asset_model import AssetModel
from gan2x.fit.image_state import ImageState
from gan2x.fit.schedule import PRESETS
from gan2x.generators import load_generator
from gan2x.pipeline import ExportSettings, ReconstructionRequest, reconstruct
from gan2x.render.volume import SamplingSettings, SDFGridCache

TINY_SAMPLING = SamplingSettings(coarse_samples=16, fine_samples=8, coarse_grid=16)
TINY_FIT = dict(stages=1, target_steps=6, projection_steps=2, exploitation_steps=6, pseudo_samples=2,
                rays_per_image=64, refinement_steps=3, sampling=TINY_SAMPLING)
COUNTED_FIT = dict(TINY_FIT, stages=2, target_steps=20, projection_steps=4, exploitation_steps=20,
                   refinement_steps=6)
"""test_fit.py's settings for counting reads: enough steps a stage that the per-stage reads stay few."""


@pytest.fixture
def _full_precision():
    """float32 matrix products and convolutions (no TF32) for the test, restored after."""
    matmul = torch.get_float32_matmul_precision()
    cudnn = getattr(torch.backends.cudnn, "allow_tf32", None)
    torch.set_float32_matmul_precision("highest")
    with warnings.catch_warnings():  # newer torch calls allow_tf32 legacy
        warnings.simplefilter("ignore")
        if cudnn is not None:
            torch.backends.cudnn.allow_tf32 = False
        yield
        torch.set_float32_matmul_precision(matmul)
        if cudnn is not None:
            torch.backends.cudnn.allow_tf32 = cudnn


def _to_cpu(values: dict) -> dict:
    return {key: value.detach().cpu() for key, value in values.items() if isinstance(value, torch.Tensor)}


def _render_with_gradients(device: torch.device):
    """Pixels of two images of a seeded asset, with every parameter's gradient of a photometric-style loss."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = AssetModel()
        states = [ImageState(), ImageState(yaw=0.4, pitch=-0.1, towards_light=(0.3, 0.2, 0.9))]
    model.to(device)
    states = [state.to(device) for state in states]
    resolution = 24
    pixel_ids = torch.stack([torch.arange(0, resolution * resolution - 2, 5),
                             torch.arange(2, resolution * resolution, 5)]).to(device)
    out = model.render_pixels(states, pixel_ids, resolution, TINY_SAMPLING, coarse_sdf=SDFGridCache(model.sdf, 16))
    loss = out["rgb"].square().mean() + (out["sdf_gradient"].norm(dim=-1) - 1.0).square().mean()
    loss.backward()
    gradients = {name: p.grad.detach().cpu() for name, p in model.named_parameters() if p.grad is not None}
    return _to_cpu(out), gradients


def test_the_renderer_and_its_gradients_give_the_cpus_values(torch_device, _full_precision):
    on_device, device_gradients = _render_with_gradients(torch_device)
    on_cpu, cpu_gradients = _render_with_gradients(torch.device("cpu"))
    assert on_device.keys() == on_cpu.keys() and device_gradients.keys() == cpu_gradients.keys()
    assert on_cpu["opacity"].max() > 0.9 and on_cpu["opacity"].min() < 0.1  # the object and the background
    for key in ("rgb", "opacity", "radiance", "normal", "depth", "albedo"):
        assert torch.allclose(on_device[key], on_cpu[key], atol=2e-4), (key, (on_device[key] - on_cpu[key]).abs().max())
    for name, gradient in cpu_gradients.items():
        scale = gradient.abs().max().item() + 1e-8
        assert (device_gradients[name] - gradient).abs().max() <= 1e-3 * scale, name


def _synthetic_images(device: torch.device) -> torch.Tensor:
    generator = load_generator("synthetic:faces", device=device, resolution=24, supersample=1)
    with torch.no_grad():
        z = torch.cat([generator.z_from_seed(seed) for seed in (1, 2)]).to(device)
        return generator.synthesis(generator.mapping(z)).cpu()


def test_the_built_in_generator_gives_the_cpus_images(torch_device, _full_precision):
    on_device, on_cpu = _synthetic_images(torch_device), _synthetic_images(torch.device("cpu"))
    assert on_device.shape == on_cpu.shape == (2, 3, 24, 24)
    # its ray caster bisects to the surface: a float's difference may move a
    # silhouette pixel, nothing more
    differs = (on_device - on_cpu).abs().amax(1) > 1e-3
    assert differs.float().mean() < 0.01 and (on_device - on_cpu).abs().mean() < 1e-3


def test_a_stylegan2_checkpoint_gives_the_cpus_images(torch_device, _full_precision, tmp_path):
    path = tmp_path / "network-snapshot.pkl"
    checkpoints.write_nvidia_pickle(path, seed=0)
    images = {}
    for device in (torch_device, torch.device("cpu")):
        generator = load_generator(f"stylegan2:{path}", device=device)
        with torch.no_grad():
            z = torch.cat([generator.z_from_seed(seed) for seed in (0, 1)]).to(device)
            images[device.type] = generator.synthesis(generator.mapping(z, truncation_psi=0.7)).cpu()
            logits = generator.discriminator(images[device.type].to(device))
        assert torch.isfinite(logits).all()
    assert (images[torch_device.type] - images["cpu"]).abs().max() < 1e-4


def test_a_fit_stays_on_the_device_and_reads_back_once_a_step(torch_device):
    """The fit's reads back to the host, as tests/backend/test_fit.py counts
    them on cpu: on a GPU each one waits for the device."""
    torch.manual_seed(0)
    generator = load_generator("synthetic:faces", device=torch_device, resolution=24, supersample=1)
    with torch.no_grad():
        ws = generator.mapping(generator.z_from_seed(1).to(torch_device))
        target = generator.synthesis(ws)[0]
    settings = replace(PRESETS["draft"], **COUNTED_FIT)
    result, reads = fit_and_count_reads(generator, ws, target, settings)
    assert {p.device.type for p in result.model.parameters()} == {torch_device.type}
    assert all(np.isfinite(value) for record in result.history for value in record.values()
               if isinstance(value, float))
    assert settings.total_steps() <= reads <= settings.total_steps() + READS_PER_STAGE * settings.stages


def test_a_reconstruction_on_the_device_writes_a_valid_bundle(torch_device, tmp_path):
    request = ReconstructionRequest(generator="synthetic:faces", seed=2, device=str(torch_device),
                                    fit_overrides=TINY_FIT, generator_options={"resolution": 24, "supersample": 1},
                                    consistency_overrides={"steps": 2},
                                    export=ExportSettings(mesh_resolution=32, texture_size=64))
    result = reconstruct(request, tmp_path / "bundle")
    manifest = validate_bundle(result.bundle)
    assert manifest["provenance"]["generator"] == "synthetic:faces"
    assert np.isfinite(result.metrics["rerender_psnr_db"]) and np.isfinite(result.metrics["mad_degrees"])

"""rosinality/stylegan2-pytorch checkpoints (``torch.save`` of a dict with
``g_ema``, optional ``latent_avg``, ``d``, ``g``, optimiser states and
``args``), as used by GAN2Shape (CelebA 128 and cat 256 with channel
multiplier 1, car 512 with multiplier 2).

The file is read with ``torch.load(weights_only=True)`` (plus
``argparse.Namespace`` for ``args``), so no code from it runs. The
architecture is read from the tensors' shapes (resolution from the number of
layers, channels from the weights, mapping depth from ``style.N``), so forks
with other channel counts load too; the mapping's learning-rate multiplier is
rosinality's default, 0.01.

Name map (rosinality -> ``networks.py``), R = 2^(k+3) for index k:

    style.{i}                     mapping.fc{i-1}
    input.input [1, C, 4, 4]      synthesis.b4.const [C, 4, 4]
    conv1 / to_rgb1               synthesis.b4.conv1 / synthesis.b4.torgb
    convs.{2k} / convs.{2k+1}     synthesis.bR.conv0 / synthesis.bR.conv1
    to_rgbs.{k}                   synthesis.bR.torgb
    noises.noise_{j}              the j-th layer's noise_const
    *.conv.modulation             *.affine
    *.noise.weight [1]            *.noise_strength []
    *.activate.bias               *.bias

rosinality scales a demodulated convolution's weight by 1/sqrt(fan_in)
before modulation; NVIDIA does not (demodulation removes it up to the 1e-8
epsilon), so the scale is folded into the weight here and the outputs match
rosinality's exactly.
"""
from __future__ import annotations

import argparse
import math
import re

import torch

from ...errors import CheckpointFormatError
from ..networks import DiscriminatorConfig, GeneratorConfig
from ..ops import make_resample_filter
from .contents import CheckpointContents

ROSINALITY_LR_MLP = 0.01


def _tensor(state: dict, name: str, path) -> torch.Tensor:
    value = state.get(name)
    if not isinstance(value, torch.Tensor):
        raise CheckpointFormatError(f"{path}: the rosinality generator has no tensor {name}")
    return value.detach().float()


def _check_kernels(state: dict, path) -> None:
    reference = make_resample_filter()
    for name, tensor in state.items():
        if name.endswith(".kernel") and isinstance(tensor, torch.Tensor):
            if tensor.shape != reference.shape or not torch.allclose(tensor.float() / tensor.float().sum(),
                                                                       reference, atol=1e-6):
                raise CheckpointFormatError(f"{path}: {name} is not StyleGAN2's [1, 3, 3, 1] blur kernel; "
                                            "networks with other kernels are not supported")


def generator_from_state(state: dict, path, latent_avg: torch.Tensor | None = None) -> tuple[GeneratorConfig, dict]:
    _check_kernels(state, path)
    style_layers = sorted(int(m.group(1)) for m in (re.fullmatch(r"style\.(\d+)\.weight", k) for k in state) if m)
    if not style_layers or style_layers != list(range(1, len(style_layers) + 1)):
        raise CheckpointFormatError(f"{path}: no mapping layers style.1 .. style.N in the generator")
    num_convs = len({int(m.group(1)) for m in (re.fullmatch(r"convs\.(\d+)\.conv\.weight", k) for k in state) if m})
    if num_convs % 2:
        raise CheckpointFormatError(f"{path}: an odd number of convs ({num_convs}); the checkpoint is damaged")
    resolution = 4 * 2 ** (num_convs // 2)
    out: dict[str, torch.Tensor] = {}
    for i in style_layers:
        out[f"mapping.fc{i - 1}.weight"] = _tensor(state, f"style.{i}.weight", path)
        out[f"mapping.fc{i - 1}.bias"] = _tensor(state, f"style.{i}.bias", path)
    w_dim = out["mapping.fc0.weight"].shape[0]
    z_dim = out["mapping.fc0.weight"].shape[1]
    if latent_avg is None:
        latent_avg = torch.zeros(w_dim)  # replaced by the mean of sampled ws (see read_rosinality)
    out["mapping.w_avg"] = latent_avg.detach().float().reshape(-1)

    noise_index = [0]

    def styled_conv(source: str, target: str):
        weight = _tensor(state, f"{source}.conv.weight", path)[0]          # [O, I, k, k]
        fan_in = weight.shape[1] * weight.shape[2] * weight.shape[3]
        out[f"{target}.weight"] = weight / math.sqrt(fan_in)
        out[f"{target}.affine.weight"] = _tensor(state, f"{source}.conv.modulation.weight", path)
        out[f"{target}.affine.bias"] = _tensor(state, f"{source}.conv.modulation.bias", path)
        out[f"{target}.noise_strength"] = _tensor(state, f"{source}.noise.weight", path).reshape(())
        out[f"{target}.bias"] = _tensor(state, f"{source}.activate.bias", path)
        noise = state.get(f"noises.noise_{noise_index[0]}")
        if noise is None:  # older checkpoints keep no noise images: a fixed one
            size = 4 * 2 ** ((noise_index[0] + 1) // 2)
            noise = torch.randn(size, size, generator=torch.Generator().manual_seed(noise_index[0]))
        out[f"{target}.noise_const"] = noise.detach().float().reshape(noise.shape[-2:])
        noise_index[0] += 1

    def to_rgb(source: str, target: str):
        out[f"{target}.weight"] = _tensor(state, f"{source}.conv.weight", path)[0]
        out[f"{target}.affine.weight"] = _tensor(state, f"{source}.conv.modulation.weight", path)
        out[f"{target}.affine.bias"] = _tensor(state, f"{source}.conv.modulation.bias", path)
        out[f"{target}.bias"] = _tensor(state, f"{source}.bias", path).reshape(-1)

    out["synthesis.b4.const"] = _tensor(state, "input.input", path)[0]
    styled_conv("conv1", "synthesis.b4.conv1")
    to_rgb("to_rgb1", "synthesis.b4.torgb")
    channels = {4: out["synthesis.b4.conv1.weight"].shape[0]}
    for k in range(num_convs // 2):
        res = 2 ** (k + 3)
        styled_conv(f"convs.{2 * k}", f"synthesis.b{res}.conv0")
        styled_conv(f"convs.{2 * k + 1}", f"synthesis.b{res}.conv1")
        to_rgb(f"to_rgbs.{k}", f"synthesis.b{res}.torgb")
        channels[res] = out[f"synthesis.b{res}.conv1.weight"].shape[0]
    config = GeneratorConfig(z_dim=int(z_dim), w_dim=int(w_dim), img_resolution=resolution, channels=channels,
                             img_channels=int(out["synthesis.b4.torgb.weight"].shape[0]),
                             mapping_layers=len(style_layers), mapping_lr_multiplier=ROSINALITY_LR_MLP)
    return config, out


def discriminator_from_state(state: dict, path) -> tuple[DiscriminatorConfig, dict]:
    _check_kernels(state, path)
    blocks = sorted(int(m.group(1)) for m in (re.fullmatch(r"convs\.(\d+)\.conv1\.0\.weight", k) for k in state) if m)
    resolution = 4 * 2 ** len(blocks)
    tensor = lambda name: _tensor(state, name, path)  # noqa: E731
    out = {f"b{resolution}.fromrgb.weight": tensor("convs.0.0.weight"),
           f"b{resolution}.fromrgb.bias": tensor("convs.0.1.bias")}
    channels = {}
    for j in blocks:
        res = resolution >> (j - 1)
        out[f"b{res}.conv0.weight"] = tensor(f"convs.{j}.conv1.0.weight")
        out[f"b{res}.conv0.bias"] = tensor(f"convs.{j}.conv1.1.bias")
        out[f"b{res}.conv1.weight"] = tensor(f"convs.{j}.conv2.1.weight")
        out[f"b{res}.conv1.bias"] = tensor(f"convs.{j}.conv2.2.bias")
        out[f"b{res}.skip.weight"] = tensor(f"convs.{j}.skip.1.weight")
        channels[res] = out[f"b{res}.conv0.weight"].shape[0]
    out.update({"b4.conv.weight": tensor("final_conv.0.weight"), "b4.conv.bias": tensor("final_conv.1.bias"),
                "b4.fc.weight": tensor("final_linear.0.weight"), "b4.fc.bias": tensor("final_linear.0.bias"),
                "b4.out.weight": tensor("final_linear.1.weight"), "b4.out.bias": tensor("final_linear.1.bias")})
    channels[4] = out["b4.conv.weight"].shape[0]
    config = DiscriminatorConfig(img_resolution=resolution, channels=channels,
                                 img_channels=int(out[f"b{resolution}.fromrgb.weight"].shape[1]))
    return config, out


def read_rosinality(checkpoint, path) -> CheckpointContents:
    """``checkpoint``: what ``torch.load`` returned."""
    if not isinstance(checkpoint, dict):
        raise CheckpointFormatError(f"{path}: a torch file holding a {type(checkpoint).__name__}, not a "
                                    "rosinality checkpoint (a dict with g_ema)")
    if "g_ema" in checkpoint:
        g_state = checkpoint["g_ema"]
    elif any(str(key).startswith("style.1.") for key in checkpoint):
        g_state = checkpoint  # a bare generator state dict
    else:
        raise CheckpointFormatError(f"{path}: a torch file without g_ema (keys: {sorted(map(str, checkpoint))[:8]}); "
                                    "not a rosinality stylegan2-pytorch checkpoint")
    latent_avg = checkpoint.get("latent_avg") if g_state is not checkpoint else None
    config, tensors = generator_from_state(g_state, path, latent_avg)
    contents = CheckpointContents(config, tensors, source_format="rosinality")
    if latent_avg is None:
        contents.notes.append("no latent_avg in the checkpoint: w_avg is the mean of 4096 sampled ws (seed 0)")
        contents.generator_state["mapping.w_avg"] = _mean_w(config, tensors)
    if isinstance(checkpoint.get("d"), dict):
        contents.discriminator_config, contents.discriminator_state = discriminator_from_state(checkpoint["d"], path)
    else:
        contents.notes.append("no discriminator in the checkpoint: the fit uses its image losses only")
    return contents


def _mean_w(config: GeneratorConfig, tensors: dict) -> torch.Tensor:
    from ..networks import MappingNetwork

    mapping = MappingNetwork(config, 1)
    mapping.load_state_dict({name[len("mapping."):]: value for name, value in tensors.items()
                             if name.startswith("mapping.") and name != "mapping.w_avg"}, strict=False)
    z = torch.randn(4096, config.z_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        return mapping(z)[:, 0].mean(0)


TORCH_LOAD_SAFE_GLOBALS = [argparse.Namespace]
"""Besides tensors and containers, rosinality checkpoints hold ``args`` (an
``argparse.Namespace``)."""

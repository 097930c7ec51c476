"""StyleGAN2 networks (Karras et al. 2020, config F with skip ToRGB and a
residual discriminator), written from the published architecture.

Parameter names follow NVIDIA's layout (``mapping.fc0.weight``,
``synthesis.b8.conv0.affine.weight``, ``b4.fc.weight``...), so the
checkpoint readers in ``formats/`` map every published layout onto these
modules. Weights are stored unscaled and multiplied by their equalised
learning-rate gain at run time, as in both published implementations.

Shapes: ``z [B, z_dim]``, ``ws [B, num_ws, w_dim]``, images ``[B, C, R, R]``
in ``[-1, 1]``.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from .ops import (LRELU_GAIN, bias_act, downsample2d, fir_filter, make_resample_filter, modulated_conv2d,
                  upsample2d)

Tensor = torch.Tensor
NOISE_MODES = ("const", "random", "none")


def block_resolutions(img_resolution: int) -> list[int]:
    """4, 8, ..., img_resolution; the resolution must be a power of two >= 4."""
    log2 = int(round(math.log2(img_resolution))) if img_resolution > 0 else 0
    if img_resolution < 4 or 2 ** log2 != img_resolution:
        raise ValueError(f"a StyleGAN2 resolution must be a power of two >= 4, got {img_resolution}")
    return [2 ** i for i in range(2, log2 + 1)]


def channels_from_base(img_resolution: int, channel_base: int, channel_max: int) -> dict[int, int]:
    """NVIDIA's rule: ``min(channel_base // res, channel_max)`` feature maps at ``res``."""
    return {res: min(channel_base // res, channel_max) for res in block_resolutions(img_resolution)}


def _int_keys(mapping: dict) -> dict[int, int]:
    return {int(key): int(value) for key, value in mapping.items()}


@dataclass
class GeneratorConfig:
    """Everything that defines a StyleGAN2 generator's architecture."""

    z_dim: int
    w_dim: int
    img_resolution: int
    channels: dict[int, int]
    """Feature maps at each resolution 4..img_resolution."""
    img_channels: int = 3
    mapping_layers: int = 8
    mapping_lr_multiplier: float = 0.01
    conv_clamp: float | None = None
    """Activations of every synthesis layer are clamped to +-conv_clamp
    (NVIDIA's configs use 256; rosinality's none)."""

    def __post_init__(self):
        self.channels = _int_keys(self.channels)
        missing = [res for res in block_resolutions(self.img_resolution) if res not in self.channels]
        if missing:
            raise ValueError(f"generator config lacks channel counts for resolutions {missing}")

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_dict(cls, values: dict) -> "GeneratorConfig":
        return cls(**values)


@dataclass
class DiscriminatorConfig:
    """A residual StyleGAN2 discriminator."""

    img_resolution: int
    channels: dict[int, int]
    img_channels: int = 3
    mbstd_group_size: int = 4
    mbstd_channels: int = 1
    conv_clamp: float | None = None

    def __post_init__(self):
        self.channels = _int_keys(self.channels)
        missing = [res for res in block_resolutions(self.img_resolution) if res not in self.channels]
        if missing:
            raise ValueError(f"discriminator config lacks channel counts for resolutions {missing}")

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_dict(cls, values: dict) -> "DiscriminatorConfig":
        return cls(**values)


# --- layers -------------------------------------------------------------------------------------

class FullyConnected(nn.Module):
    """Equalised-learning-rate dense layer: ``act(x (w g)^T + b m)`` with
    ``g = lr_multiplier / sqrt(in)``, ``m = lr_multiplier``."""

    def __init__(self, in_features: int, out_features: int, activation: str = "linear",
                 lr_multiplier: float = 1.0, bias_init: float = 0.0):
        super().__init__()
        self.activation = activation
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init)))
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: Tensor) -> Tensor:
        x = x @ (self.weight * self.weight_gain).t().to(x.dtype)
        gain = LRELU_GAIN if self.activation == "lrelu" else 1.0
        return bias_act(x, self.bias * self.bias_gain, self.activation, gain)


class Conv2dLayer(nn.Module):
    """Equalised-learning-rate convolution of the discriminator, optionally
    downsampling 2x (FIR filter, then stride 2)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True,
                 activation: str = "linear", down: bool = False, conv_clamp: float | None = None):
        super().__init__()
        self.activation, self.down, self.conv_clamp = activation, down, conv_clamp
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)
        self.register_buffer("resample_filter", make_resample_filter(), persistent=False)

    def forward(self, x: Tensor, gain: float = 1.0) -> Tensor:
        w = (self.weight * self.weight_gain).to(x.dtype)
        k = w.shape[-1]
        if self.down:
            fk = self.resample_filter.shape[-1]
            if k == 1:
                x = downsample2d(x, self.resample_filter)
                x = nn.functional.conv2d(x, w)
            else:
                lo = (fk - 1) // 2 + k // 2
                hi = (fk - 2) // 2 + k // 2
                x = fir_filter(x, self.resample_filter, (lo, hi, lo, hi))
                x = nn.functional.conv2d(x, w, stride=2)
        else:
            x = nn.functional.conv2d(x, w, padding=k // 2)
        act_gain = (LRELU_GAIN if self.activation == "lrelu" else 1.0) * gain
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, self.bias, self.activation, act_gain, clamp)


class SynthesisLayer(nn.Module):
    """Modulated 3x3 convolution (2x upsampling with ``up``), noise input,
    bias and leaky ReLU."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, up: bool = False,
                 conv_clamp: float | None = None):
        super().__init__()
        self.up, self.resolution, self.conv_clamp = up, resolution, conv_clamp
        self.affine = FullyConnected(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 3, 3))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.noise_strength = nn.Parameter(torch.zeros([]))
        self.register_buffer("noise_const", torch.randn(resolution, resolution))
        self.register_buffer("resample_filter", make_resample_filter(), persistent=False)

    def forward(self, x: Tensor, w: Tensor, noise_mode: str = "const", fused: bool = True) -> Tensor:
        styles = self.affine(w)
        x = modulated_conv2d(x, self.weight.to(x.dtype), styles, demodulate=True, up=self.up,
                             resample_filter=self.resample_filter, fused=fused)
        if noise_mode == "const":
            x = x + (self.noise_const * self.noise_strength).to(x.dtype)
        elif noise_mode == "random":
            noise = torch.randn(x.shape[0], 1, self.resolution, self.resolution, device=x.device, dtype=x.dtype)
            x = x + noise * self.noise_strength
        elif noise_mode != "none":
            raise ValueError(f"unknown noise mode {noise_mode!r}; choose one of {NOISE_MODES}")
        clamp = self.conv_clamp
        return bias_act(x, self.bias, "lrelu", LRELU_GAIN, clamp)


class ToRGBLayer(nn.Module):
    """Modulated 1x1 convolution to RGB, no demodulation."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, conv_clamp: float | None = None):
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnected(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.weight_gain = 1.0 / math.sqrt(in_channels)

    def forward(self, x: Tensor, w: Tensor, fused: bool = True) -> Tensor:
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x, self.weight.to(x.dtype), styles, demodulate=False, fused=fused)
        return bias_act(x, self.bias, "linear", 1.0, self.conv_clamp)


class SynthesisBlock(nn.Module):
    """One resolution: a learned constant (4x4) or an upsampling layer, a
    second layer, and a ToRGB added to the upsampled skip image."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, img_channels: int,
                 conv_clamp: float | None):
        super().__init__()
        self.first = in_channels == 0
        if self.first:
            self.const = nn.Parameter(torch.randn(out_channels, resolution, resolution))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim, resolution, up=True, conv_clamp=conv_clamp)
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim, resolution, conv_clamp=conv_clamp)
        self.torgb = ToRGBLayer(out_channels, img_channels, w_dim, conv_clamp=conv_clamp)
        self.num_conv = 1 if self.first else 2
        self.register_buffer("resample_filter", make_resample_filter(), persistent=False)

    def forward(self, x: Tensor | None, img: Tensor | None, ws: Tensor, noise_mode: str, fused: bool):
        """ws [B, num_conv + 1, w_dim]: one per layer, the last for ToRGB."""
        if self.first:
            x = self.const[None].expand(ws.shape[0], -1, -1, -1).to(ws.dtype)
            x = self.conv1(x, ws[:, 0], noise_mode, fused)
        else:
            x = self.conv0(x, ws[:, 0], noise_mode, fused)
            x = self.conv1(x, ws[:, 1], noise_mode, fused)
        rgb = self.torgb(x, ws[:, self.num_conv], fused)
        img = rgb if img is None else upsample2d(img, self.resample_filter) + rgb
        return x, img


class SynthesisNetwork(nn.Module):
    """ws [B, num_ws, w_dim] -> images [B, C, R, R]. Block ``b{res}`` reads
    its layers' ws and shares its ToRGB's w with the next block's first layer,
    so ``num_ws = 2 log2(R) - 2``."""

    def __init__(self, config: GeneratorConfig):
        super().__init__()
        self.resolutions = block_resolutions(config.img_resolution)
        self.num_ws = 0
        for res in self.resolutions:
            in_channels = config.channels[res // 2] if res > 4 else 0
            block = SynthesisBlock(in_channels, config.channels[res], config.w_dim, res, config.img_channels,
                                   config.conv_clamp)
            setattr(self, f"b{res}", block)
            self.num_ws += block.num_conv
        self.num_ws += 1

    def forward(self, ws: Tensor, noise_mode: str = "const", fused: bool = True) -> Tensor:
        x = img = None
        index = 0
        for res in self.resolutions:
            block = getattr(self, f"b{res}")
            x, img = block(x, img, ws[:, index:index + block.num_conv + 1], noise_mode, fused)
            index += block.num_conv
        return img


class MappingNetwork(nn.Module):
    """z [B, z_dim] -> ws [B, num_ws, w_dim]: normalise z to unit second
    moment, ``num_layers`` leaky-ReLU dense layers (learning rate x0.01),
    broadcast, truncate towards ``w_avg``."""

    def __init__(self, config: GeneratorConfig, num_ws: int):
        super().__init__()
        self.num_ws = num_ws
        dims = [config.z_dim] + [config.w_dim] * config.mapping_layers
        for index in range(config.mapping_layers):
            setattr(self, f"fc{index}", FullyConnected(dims[index], dims[index + 1], "lrelu",
                                                       config.mapping_lr_multiplier))
        self.num_layers = config.mapping_layers
        self.register_buffer("w_avg", torch.zeros(config.w_dim))

    def forward(self, z: Tensor, truncation_psi: float = 1.0, truncation_cutoff: int | None = None) -> Tensor:
        x = z * (z.square().mean(dim=1, keepdim=True) + 1e-8).rsqrt()
        for index in range(self.num_layers):
            x = getattr(self, f"fc{index}")(x)
        ws = x[:, None, :].repeat(1, self.num_ws, 1)
        if truncation_psi != 1.0:
            cutoff = self.num_ws if truncation_cutoff is None else int(truncation_cutoff)
            ws[:, :cutoff] = self.w_avg + truncation_psi * (ws[:, :cutoff] - self.w_avg)
        return ws


class StyleGAN2Network(nn.Module):
    """The generator: ``mapping`` and ``synthesis``."""

    def __init__(self, config: GeneratorConfig):
        super().__init__()
        self.config = config
        self.synthesis = SynthesisNetwork(config)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(config, self.num_ws)

    def forward(self, z: Tensor, truncation_psi: float = 1.0, noise_mode: str = "const") -> Tensor:
        return self.synthesis(self.mapping(z, truncation_psi), noise_mode)


# --- discriminator -------------------------------------------------------------------------------

class DiscriminatorBlock(nn.Module):
    """Residual block at ``resolution``: (fromrgb on the first,) two 3x3
    convolutions, the second downsampling, plus a 1x1 downsampling skip."""

    def __init__(self, in_channels: int, tmp_channels: int, out_channels: int, img_channels: int,
                 conv_clamp: float | None):
        super().__init__()
        self.first = in_channels == 0
        if self.first:
            self.fromrgb = Conv2dLayer(img_channels, tmp_channels, 1, activation="lrelu", conv_clamp=conv_clamp)
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, 3, activation="lrelu", conv_clamp=conv_clamp)
        self.conv1 = Conv2dLayer(tmp_channels, out_channels, 3, activation="lrelu", down=True,
                                 conv_clamp=conv_clamp)
        self.skip = Conv2dLayer(tmp_channels, out_channels, 1, bias=False, down=True)

    def forward(self, x: Tensor | None, img: Tensor) -> Tensor:
        if self.first:
            x = self.fromrgb(img)
        y = self.skip(x, gain=math.sqrt(0.5))
        x = self.conv1(self.conv0(x), gain=math.sqrt(0.5))
        return x + y


class MinibatchStd(nn.Module):
    def __init__(self, group_size: int, num_channels: int):
        super().__init__()
        self.group_size, self.num_channels = group_size, num_channels

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        group = min(self.group_size, n) if self.group_size else n
        if n % group:
            group = 1 if n < self.group_size else math.gcd(n, group)
        f = self.num_channels
        y = x.reshape(group, -1, f, c // f, h, w)
        y = (y - y.mean(dim=0)).square().mean(dim=0)
        y = (y + 1e-8).sqrt().mean(dim=[2, 3, 4]).reshape(-1, f, 1, 1)
        return torch.cat([x, y.repeat(group, 1, h, w)], dim=1)


class DiscriminatorEpilogue(nn.Module):
    def __init__(self, in_channels: int, config: DiscriminatorConfig):
        super().__init__()
        self.mbstd = MinibatchStd(config.mbstd_group_size, config.mbstd_channels) if config.mbstd_channels else None
        self.conv = Conv2dLayer(in_channels + config.mbstd_channels, in_channels, 3, activation="lrelu",
                                conv_clamp=config.conv_clamp)
        self.fc = FullyConnected(in_channels * 16, in_channels, activation="lrelu")
        self.out = FullyConnected(in_channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        if self.mbstd is not None:
            x = self.mbstd(x)
        return self.out(self.fc(self.conv(x).flatten(1)))


class Discriminator(nn.Module):
    """images [B, C, R, R] in [-1, 1] -> realness logits [B, 1];
    ``features`` gives every block's output."""

    def __init__(self, config: DiscriminatorConfig):
        super().__init__()
        self.config = config
        self.img_resolution = config.img_resolution
        self.resolutions = block_resolutions(config.img_resolution)[::-1][:-1]   # R, R/2, ..., 8
        for res in self.resolutions:
            in_channels = config.channels[res] if res < config.img_resolution else 0
            setattr(self, f"b{res}", DiscriminatorBlock(in_channels, config.channels[res], config.channels[res // 2],
                                                        config.img_channels, config.conv_clamp))
        self.b4 = DiscriminatorEpilogue(config.channels[4], config)

    def features(self, img: Tensor) -> list[Tensor]:
        """Outputs of blocks b{R} .. b8: [B, channels[res/2], res/2, res/2] each."""
        x, out = None, []
        for res in self.resolutions:
            x = getattr(self, f"b{res}")(x, img)
            out.append(x)
        return out

    def forward(self, img: Tensor) -> Tensor:
        features = self.features(img)
        return self.b4(features[-1] if features else img)

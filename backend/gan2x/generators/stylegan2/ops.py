"""The arithmetic of StyleGAN2 in plain PyTorch (no custom CUDA ops).

Images and feature maps are ``[B, C, H, W]``. Resampling uses StyleGAN2's
4-tap FIR filter ``[1, 3, 3, 1]`` (outer product, normalised to sum 1).

``modulated_conv2d`` has two paths that compute the same thing:

* ``fused=True`` (the fast path, used by default): one grouped convolution
  (transposed with stride 2 when upsampling) with per-sample modulated and
  demodulated weights, then the FIR filter;
* ``fused=False`` (the reference path, what tests compare against): the
  activations are scaled by the styles, upsampled by zero insertion and
  FIR-filtered, convolved with the shared weight, then multiplied by the
  demodulation coefficients.
"""
from __future__ import annotations

import math

import torch
from torch.nn import functional as F

Tensor = torch.Tensor

LRELU_SLOPE = 0.2
LRELU_GAIN = math.sqrt(2.0)
DEFAULT_RESAMPLE_FILTER = (1.0, 3.0, 3.0, 1.0)


def make_resample_filter(taps=DEFAULT_RESAMPLE_FILTER) -> Tensor:
    """``[K, K]`` separable FIR filter from 1-D taps, normalised to sum 1."""
    f = torch.as_tensor(taps, dtype=torch.float32)
    f = torch.outer(f, f)
    return f / f.sum()


def fir_filter(x: Tensor, f: Tensor, pad: tuple[int, int, int, int], gain: float = 1.0) -> Tensor:
    """Pads ``x`` by (left, right, top, bottom) zeros and convolves every
    channel with ``f * gain`` (a true convolution: ``f`` is flipped)."""
    x = F.pad(x, list(pad))
    channels = x.shape[1]
    kernel = (f * gain).flip([0, 1]).to(x.dtype)[None, None].expand(channels, 1, -1, -1)
    return F.conv2d(x, kernel, groups=channels)


def zero_insert_upsample(x: Tensor, factor: int = 2) -> Tensor:
    """``[B, C, H, W]`` -> ``[B, C, H*f, W*f]`` with the input at every f-th
    pixel (top-left of each f x f cell) and zeros elsewhere."""
    b, c, h, w = x.shape
    out = x.new_zeros(b, c, h, factor, w, factor)
    out[:, :, :, 0, :, 0] = x
    return out.reshape(b, c, h * factor, w * factor)


def upsample2d(x: Tensor, f: Tensor) -> Tensor:
    """2x upsampling with the FIR filter (StyleGAN2's skip-image upsampler)."""
    k = f.shape[-1]
    return fir_filter(zero_insert_upsample(x), f, ((k + 1) // 2, (k - 2) // 2, (k + 1) // 2, (k - 2) // 2),
                      gain=4.0)


def downsample2d(x: Tensor, f: Tensor) -> Tensor:
    """2x downsampling: FIR filter, then every second pixel."""
    k = f.shape[-1]
    pad = ((k - 1) // 2, (k - 2) // 2, (k - 1) // 2, (k - 2) // 2)
    return fir_filter(x, f, pad)[:, :, ::2, ::2]


def bias_act(x: Tensor, bias: Tensor | None, activation: str = "linear", gain: float = 1.0,
             clamp: float | None = None) -> Tensor:
    """``x + bias`` (per channel, dim 1), then leaky ReLU (slope 0.2) for
    ``"lrelu"``, times ``gain``, then clamped to ``[-clamp, clamp]``."""
    if bias is not None:
        x = x + bias.reshape([1, -1] + [1] * (x.ndim - 2)).to(x.dtype)
    if activation == "lrelu":
        x = F.leaky_relu(x, LRELU_SLOPE)
    elif activation != "linear":
        raise ValueError(f"unknown activation {activation!r}")
    if gain != 1.0:
        x = x * gain
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return x


def modulated_conv2d(x: Tensor, weight: Tensor, styles: Tensor, demodulate: bool = True, up: bool = False,
                     resample_filter: Tensor | None = None, fused: bool = True) -> Tensor:
    """StyleGAN2's modulated convolution.

    x [B, I, H, W]; weight [O, I, k, k]; styles [B, I]. Returns [B, O, H, W]
    (``[B, O, 2H, 2W]`` with ``up``: a 2x upsampling convolution followed by
    the FIR filter). With ``demodulate`` every output channel of the
    modulated weight is scaled to unit norm (eps 1e-8 in the rsqrt)."""
    batch, in_channels, height, width = x.shape
    out_channels, _, kh, kw = weight.shape
    if up and resample_filter is None:
        raise ValueError("an upsampling convolution needs the resample filter")
    modulated = weight[None] * styles[:, None, :, None, None]          # [B, O, I, k, k]
    dcoefs = (modulated.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt() if demodulate else None   # [B, O]
    fk = resample_filter.shape[-1] if resample_filter is not None else 0
    if fused:
        if dcoefs is not None:
            modulated = modulated * dcoefs[:, :, None, None, None]
        grouped = x.reshape(1, batch * in_channels, height, width)
        if up:
            # conv_transpose2d reads [in, out / groups, k, k] per group
            w = modulated.transpose(1, 2).reshape(batch * in_channels, out_channels, kh, kw)
            y = F.conv_transpose2d(grouped, w, stride=2, groups=batch)
            y = y.reshape(batch, out_channels, y.shape[2], y.shape[3])
            # the transposed conv gives 2H + k - 2 pixels; the filter trims to 2H
            total = fk - 1 - (kw - 2)
            return fir_filter(y, resample_filter, (total // 2, total - total // 2,
                                                   total // 2, total - total // 2), gain=4.0)
        y = F.conv2d(grouped, modulated.reshape(batch * out_channels, in_channels, kh, kw),
                     padding=kh // 2, groups=batch)
        return y.reshape(batch, out_channels, height, width)

    # reference path
    y = x * styles[:, :, None, None].to(x.dtype)
    if up:
        # a transposed convolution = zero insertion, then a true convolution
        # (flipped kernel) with full padding; the FIR filter goes in between
        y = zero_insert_upsample(y)
        pad_lo = (fk + 1) // 2 + kw // 2
        pad_hi = (fk - 2) // 2 + kw // 2
        y = fir_filter(y, resample_filter, (pad_lo, pad_hi, pad_lo, pad_hi), gain=4.0)
        y = F.conv2d(y, weight.flip([2, 3]))
    else:
        y = F.conv2d(y, weight, padding=kh // 2)
    if dcoefs is not None:
        y = y * dcoefs[:, :, None, None].to(y.dtype)
    return y

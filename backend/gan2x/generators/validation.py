"""Checks that a loaded generator follows the protocol, with messages a
person can act on."""
from __future__ import annotations

import torch

from .errors import GeneratorLoadError

PROTOCOL_MEMBERS = ("spec", "z_dim", "w_dim", "num_ws", "img_resolution", "img_channels", "w_avg",
                    "mapping", "synthesis", "z_from_seed")
VALUE_LIMIT = 3.0
"""Images are in [-1, 1]; a GAN overshoots a little, never by this much
(values in [0, 1] pass; [0, 255] do not)."""


def check_image_batch(images, batch: int, resolution: int, where: str) -> None:
    """Raises ``GeneratorLoadError`` unless ``images`` is a finite float tensor
    [batch, 3, resolution, resolution] within +-VALUE_LIMIT."""
    if not isinstance(images, torch.Tensor):
        raise GeneratorLoadError(
            f"{where} returned a {type(images).__name__}, not an image tensor; it must return images "
            f"[B, 3, R, R] in [-1, 1] (wrap a module that returns a tuple or dict so it returns the image only)")
    expected = (batch, 3, resolution, resolution)
    if tuple(images.shape) != expected:
        hint = ""
        if images.ndim == 4 and images.shape[-1] == 3:
            hint = " (channels last? permute to [B, 3, R, R])"
        elif images.ndim == 4 and images.shape[1] != 3:
            hint = f" ({images.shape[1]} channels; only RGB generators are supported)"
        elif images.ndim == 4 and images.shape[-1] != resolution:
            hint = f" (resolution {images.shape[-1]}: set the right resolution in the sidecar .json)"
        elif images.ndim != 4:
            hint = " (not an image batch: is the module's output an image?)"
        raise GeneratorLoadError(f"{where} returned a tensor of shape {tuple(images.shape)}; expected images "
                                 f"{list(expected)} in [-1, 1]{hint}")
    if not images.is_floating_point() or not torch.isfinite(images).all():
        raise GeneratorLoadError(f"{where} returned non-finite or non-float values ({images.dtype})")
    low, high = float(images.min()), float(images.max())
    if low < -VALUE_LIMIT or high > VALUE_LIMIT:
        raise GeneratorLoadError(f"{where} returned values in [{low:.3g}, {high:.3g}]; images must be sRGB-encoded "
                                 "in [-1, 1] (for [0, 255] output, divide by 127.5 and subtract 1)")


def validate_generator(generator, where: str) -> None:
    """Protocol members present, and one batch of 2 seeds gives images of the
    declared shape."""
    missing = [name for name in PROTOCOL_MEMBERS if not hasattr(generator, name)]
    if missing:
        raise GeneratorLoadError(f"{where} lacks the generator protocol members {missing} "
                                 "(gan2x/generators/protocol.py, docs/generators.md)")
    if not isinstance(generator, torch.nn.Module):
        raise GeneratorLoadError(f"{where} is a {type(generator).__name__}; a generator must be a torch.nn.Module")
    for name in ("z_dim", "w_dim", "num_ws", "img_resolution"):
        value = getattr(generator, name)
        if not isinstance(value, int) or value <= 0:
            raise GeneratorLoadError(f"{where}: {name} must be a positive int, got {value!r}")
    with torch.no_grad():
        z = torch.cat([generator.z_from_seed(0), generator.z_from_seed(1)])
        if tuple(z.shape) != (2, generator.z_dim):
            raise GeneratorLoadError(f"{where}: z_from_seed gives shape {tuple(z.shape[1:])}, expected "
                                     f"[1, {generator.z_dim}]")
        ws = generator.mapping(z)
        if tuple(ws.shape) != (2, generator.num_ws, generator.w_dim):
            raise GeneratorLoadError(f"{where}: mapping returned shape {tuple(ws.shape)}, expected "
                                     f"[B, num_ws={generator.num_ws}, w_dim={generator.w_dim}]")
        check_image_batch(generator.synthesis(ws), 2, generator.img_resolution, f"{where} (synthesis)")

"""StyleGAN2 in plain PyTorch, loaded from NVIDIA pickles, rosinality
checkpoints or the project's safetensors export (docs/generators.md).

    networks.py   the generator and discriminator (NVIDIA's parameter names)
    ops.py        modulated convolution (fast and reference paths), FIR resampling
    generator.py  StyleGAN2Generator: the project's generator protocol
    formats/      reading and writing checkpoints, without executing them
"""
from __future__ import annotations

from pathlib import Path

from .formats import FORMATS, CheckpointContents, build_networks, detect_format, read_checkpoint, write_safetensors
from .generator import DEFAULT_VIEW_LAYERS, StyleGAN2Generator
from .networks import Discriminator, DiscriminatorConfig, GeneratorConfig, StyleGAN2Network


def load_stylegan2(path, spec: str | None = None, noise_mode: str = "const", fused: bool = True,
                   with_discriminator: bool = True, view_layers: int = DEFAULT_VIEW_LAYERS) -> StyleGAN2Generator:
    """A ``StyleGAN2Generator`` from a checkpoint file of any format in ``FORMATS``."""
    contents = read_checkpoint(path)
    network, discriminator = build_networks(contents, path, with_discriminator)
    generator = StyleGAN2Generator(network, discriminator, spec=spec or f"stylegan2:{path}", noise_mode=noise_mode,
                                   fused=fused, source_format=contents.source_format, view_layers=view_layers)
    generator.notes = list(contents.notes)
    return generator


def convert_checkpoint(source, destination, include_discriminator: bool = True) -> CheckpointContents:
    """Reads ``source`` (any format), checks it builds, writes the project's
    safetensors file to ``destination``; returns what was read."""
    contents = read_checkpoint(source)
    build_networks(contents, source, include_discriminator)
    write_safetensors(contents, Path(destination), include_discriminator)
    return contents


__all__ = ["FORMATS", "CheckpointContents", "Discriminator", "DiscriminatorConfig", "GeneratorConfig",
           "StyleGAN2Generator", "StyleGAN2Network", "build_networks", "convert_checkpoint", "detect_format",
           "load_stylegan2", "read_checkpoint", "write_safetensors"]

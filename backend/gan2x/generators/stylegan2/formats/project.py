"""The project's own StyleGAN2 format: one safetensors file.

Tensors are named ``G.<name>`` and ``D.<name>`` with the names of
``networks.py`` (float32, contiguous). The header's metadata holds

    gan2x_format          "stylegan2"
    gan2x_format_version  "1"
    generator_config      GeneratorConfig as JSON
    discriminator_config  DiscriminatorConfig as JSON (only with D tensors)
    source_format         where the weights came from (nvidia-pickle, rosinality)

``gan2x convert-checkpoint`` writes it from the other formats.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from ...errors import CheckpointFormatError
from ..networks import DiscriminatorConfig, GeneratorConfig
from .contents import CheckpointContents

FORMAT_NAME = "stylegan2"
FORMAT_VERSION = "1"


def write_safetensors(contents: CheckpointContents, path, include_discriminator: bool = True) -> Path:
    from safetensors.torch import save_file

    path = Path(path)
    tensors = {f"G.{name}": value.detach().to(torch.float32).contiguous().cpu()
               for name, value in contents.generator_state.items()}
    metadata = {"gan2x_format": FORMAT_NAME, "gan2x_format_version": FORMAT_VERSION,
                "generator_config": contents.generator_config.to_json(),
                "source_format": contents.source_format or "unknown"}
    if include_discriminator and contents.discriminator_config is not None and contents.discriminator_state:
        tensors.update({f"D.{name}": value.detach().to(torch.float32).contiguous().cpu()
                        for name, value in contents.discriminator_state.items()})
        metadata["discriminator_config"] = contents.discriminator_config.to_json()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + f".tmp-{os.getpid()}")
    try:
        save_file(tensors, str(temporary), metadata=metadata)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


def read_safetensors(path) -> CheckpointContents:
    from safetensors import SafetensorError
    from safetensors.torch import load_file, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointFormatError(f"{path}: a corrupt or truncated safetensors file ({error}); copy or "
                                    "convert it again") from error
    if metadata.get("gan2x_format") != FORMAT_NAME:
        raise CheckpointFormatError(
            f"{path}: a safetensors file without gan2x StyleGAN2 metadata; gan2x cannot tell its architecture. "
            "Convert the original checkpoint with `gan2x convert-checkpoint` (docs/generators.md)")
    if metadata.get("gan2x_format_version") != FORMAT_VERSION:
        raise CheckpointFormatError(f"{path}: gan2x StyleGAN2 format version "
                                    f"{metadata.get('gan2x_format_version')!r}; this gan2x reads version "
                                    f"{FORMAT_VERSION}. Convert the original checkpoint again")
    try:
        generator_config = GeneratorConfig.from_dict(json.loads(metadata["generator_config"]))
        discriminator_config = (DiscriminatorConfig.from_dict(json.loads(metadata["discriminator_config"]))
                                if "discriminator_config" in metadata else None)
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointFormatError(f"{path}: the architecture in the file's metadata is unreadable ({error})") from error
    contents = CheckpointContents(
        generator_config, {name[2:]: value for name, value in tensors.items() if name.startswith("G.")},
        source_format="safetensors")
    d_state = {name[2:]: value for name, value in tensors.items() if name.startswith("D.")}
    if discriminator_config is not None and d_state:
        contents.discriminator_config, contents.discriminator_state = discriminator_config, d_state
    else:
        contents.notes.append("no discriminator in the checkpoint: the fit uses its image losses only")
    return contents

"""What every checkpoint reader returns, and how it becomes networks."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ...errors import CheckpointFormatError
from ..networks import Discriminator, DiscriminatorConfig, GeneratorConfig, StyleGAN2Network


@dataclass
class CheckpointContents:
    """A StyleGAN2 checkpoint as plain data, in the project's parameter names
    (those of ``networks.py``)."""

    generator_config: GeneratorConfig
    generator_state: dict[str, torch.Tensor]
    discriminator_config: DiscriminatorConfig | None = None
    discriminator_state: dict[str, torch.Tensor] | None = None
    source_format: str = ""
    notes: list[str] = field(default_factory=list)
    """Things a person may want to know (e.g. "no discriminator: ...")."""


def _load_exactly(module: torch.nn.Module, state: dict[str, torch.Tensor], what: str, path) -> None:
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise CheckpointFormatError(
            f"{path}: the {what} tensors do not match the architecture read from the checkpoint "
            f"(missing {missing[:5]}{'...' if len(missing) > 5 else ''}, unexpected "
            f"{unexpected[:5]}{'...' if len(unexpected) > 5 else ''}); the file may be from a modified network "
            "or damaged")
    for name, tensor in state.items():
        if tuple(tensor.shape) != tuple(expected[name].shape):
            raise CheckpointFormatError(
                f"{path}: {what} tensor {name} has shape {tuple(tensor.shape)}, the architecture read from the "
                f"checkpoint needs {tuple(expected[name].shape)}")
        if not torch.isfinite(tensor).all():
            raise CheckpointFormatError(f"{path}: {what} tensor {name} holds NaN or infinite values; the file "
                                        "is corrupt")
    module.load_state_dict({name: tensor.to(torch.float32) for name, tensor in state.items()}, strict=True)


def build_networks(contents: CheckpointContents, path="checkpoint", with_discriminator: bool = True):
    """(StyleGAN2Network, Discriminator or None), weights copied in, eval mode."""
    network = StyleGAN2Network(contents.generator_config)
    _load_exactly(network, contents.generator_state, "generator", path)
    discriminator = None
    if with_discriminator and contents.discriminator_config is not None and contents.discriminator_state:
        discriminator = Discriminator(contents.discriminator_config)
        _load_exactly(discriminator, contents.discriminator_state, "discriminator", path)
        discriminator.eval()
    return network.eval(), discriminator

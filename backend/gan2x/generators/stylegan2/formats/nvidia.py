"""NVIDIA network pickles: stylegan2-ada-pytorch (``training.networks``) and
the stylegan3 repository's StyleGAN2 configs (``training.networks_stylegan2``).

The pickle is a dict with ``G``, ``D``, ``G_ema`` (and training state); each
network is a persistent object (read by ``safe_pickle`` as a
``PersistedObject``: class name, init keyword arguments, parameters, buffers,
children). The architecture comes from the saved init arguments and the
tensors' shapes; the parameter names are those ``networks.py`` uses.
"""
from __future__ import annotations

import torch

from ...errors import CheckpointFormatError
from ..networks import DiscriminatorConfig, GeneratorConfig, block_resolutions
from ..ops import make_resample_filter
from .contents import CheckpointContents
from .safe_pickle import PersistedObject, safe_load_pickle

_GENERATOR_ARGS = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs",
                   "synthesis_kwargs")
_DISCRIMINATOR_ARGS = ("c_dim", "img_resolution", "img_channels", "architecture", "channel_base", "channel_max",
                       "num_fp16_res", "conv_clamp", "cmap_dim", "block_kwargs", "mapping_kwargs",
                       "epilogue_kwargs")


def _arguments(obj: PersistedObject, names: tuple[str, ...]) -> dict:
    values = dict(zip(names, obj.init_args))
    values.update(obj.init_kwargs)
    return values


def _check_filters(tensors: dict[str, torch.Tensor], path) -> dict[str, torch.Tensor]:
    """Drops the stored FIR filters after checking they are StyleGAN2's own."""
    reference = make_resample_filter()
    kept = {}
    for name, tensor in tensors.items():
        if name.endswith("resample_filter"):
            if tensor.shape != reference.shape or not torch.allclose(tensor.float(), reference, atol=1e-6):
                raise CheckpointFormatError(f"{path}: {name} is not StyleGAN2's [1, 3, 3, 1] filter; "
                                            "networks with other resampling filters are not supported")
            continue
        kept[name] = tensor
    return kept


def generator_from_persisted(g: PersistedObject, path) -> tuple[GeneratorConfig, dict]:
    if g.class_name != "Generator":
        raise CheckpointFormatError(f"{path}: G_ema is a {g.class_name or 'unnamed'} object, not a Generator")
    args = _arguments(g, _GENERATOR_ARGS)
    if int(args.get("c_dim", 0) or 0) > 0:
        raise CheckpointFormatError(f"{path}: a class-conditional generator (c_dim {args['c_dim']}); only "
                                    "unconditional StyleGAN2 networks are supported")
    synthesis, mapping = g.child("synthesis"), g.child("mapping")
    if not isinstance(synthesis, PersistedObject) or not isinstance(mapping, PersistedObject):
        raise CheckpointFormatError(f"{path}: the generator has no mapping or synthesis network")
    if synthesis.child("b4") is None:
        hint = " (this looks like a StyleGAN3 alias-free network)" if synthesis.child("input") is not None else ""
        raise CheckpointFormatError(f"{path}: the synthesis network has no 4x4 block b4{hint}; only StyleGAN2 "
                                    "networks are supported")
    synthesis_kwargs = dict(args.get("synthesis_kwargs") or {})
    architecture = synthesis_kwargs.get("architecture", "skip")
    if architecture != "skip":
        raise CheckpointFormatError(f"{path}: generator architecture {architecture!r}; only 'skip' (StyleGAN2 "
                                    "config F, the default) is supported")
    resolution = int(args["img_resolution"])
    tensors = _check_filters(g.tensors(), path)
    channels = {}
    for res in block_resolutions(resolution):
        weight = tensors.get(f"synthesis.b{res}.conv1.weight")
        if weight is None:
            raise CheckpointFormatError(f"{path}: the generator has no synthesis.b{res}.conv1.weight")
        channels[res] = int(weight.shape[0])
    layers = sorted(int(name[2:]) for name in mapping.children() if name.startswith("fc") and name[2:].isdigit())
    first_fc = mapping.child("fc0")
    lr_multiplier = mapping.init_kwargs.get("lr_multiplier")
    if lr_multiplier is None and isinstance(first_fc, PersistedObject):
        lr_multiplier = first_fc.init_kwargs.get("lr_multiplier")
    if "embed" in mapping.children():
        raise CheckpointFormatError(f"{path}: the mapping network embeds a class label; only unconditional "
                                    "networks are supported")
    config = GeneratorConfig(
        z_dim=int(args["z_dim"]), w_dim=int(args["w_dim"]), img_resolution=resolution, channels=channels,
        img_channels=int(args.get("img_channels", 3)), mapping_layers=len(layers),
        mapping_lr_multiplier=float(lr_multiplier if lr_multiplier is not None else 0.01),
        conv_clamp=(float(synthesis_kwargs["conv_clamp"]) if synthesis_kwargs.get("conv_clamp") is not None
                    else None))
    return config, tensors


def discriminator_from_persisted(d: PersistedObject, path) -> tuple[DiscriminatorConfig | None, dict | None, str]:
    """(config, tensors, note): None and a note saying why when D cannot be used."""
    if d.class_name != "Discriminator":
        return None, None, f"D is a {d.class_name} object, not a Discriminator: not loaded"
    args = _arguments(d, _DISCRIMINATOR_ARGS)
    if int(args.get("c_dim", 0) or 0) > 0:
        return None, None, "the discriminator is class-conditional: not loaded"
    if args.get("architecture", "resnet") != "resnet":
        return None, None, f"discriminator architecture {args['architecture']!r} (only 'resnet'): not loaded"
    resolution = int(args["img_resolution"])
    tensors = _check_filters(d.tensors(), path)
    channels = {}
    try:
        for res in block_resolutions(resolution)[1:]:
            channels[res] = int(tensors[f"b{res}.conv0.weight"].shape[0])
        channels[4] = int(tensors["b4.conv.weight"].shape[0])
    except KeyError as missing:
        raise CheckpointFormatError(f"{path}: the discriminator has no tensor {missing}") from None
    epilogue = dict(args.get("epilogue_kwargs") or {})
    config = DiscriminatorConfig(
        img_resolution=resolution, channels=channels, img_channels=int(args.get("img_channels", 3)),
        mbstd_group_size=int(epilogue.get("mbstd_group_size", 4)),
        mbstd_channels=int(epilogue.get("mbstd_num_channels", 1)),
        conv_clamp=float(args["conv_clamp"]) if args.get("conv_clamp") is not None else None)
    return config, tensors, ""


def read_nvidia_pickle(data: bytes, path) -> CheckpointContents:
    snapshot = safe_load_pickle(data, f"{path}")
    if not isinstance(snapshot, dict):
        raise CheckpointFormatError(f"{path}: a pickle of a {type(snapshot).__name__}, not a network snapshot "
                                    "(a dict with G_ema)")
    key = "G_ema" if "G_ema" in snapshot else "G" if "G" in snapshot else None
    if key is None or not isinstance(snapshot[key], PersistedObject):
        raise CheckpointFormatError(f"{path}: no G_ema network in this pickle (keys: {sorted(map(str, snapshot))[:8]})")
    config, tensors = generator_from_persisted(snapshot[key], path)
    contents = CheckpointContents(config, tensors, source_format="nvidia-pickle")
    if key == "G":
        contents.notes.append("no G_ema in the pickle: using G")
    d = snapshot.get("D")
    if isinstance(d, PersistedObject):
        contents.discriminator_config, contents.discriminator_state, note = discriminator_from_persisted(d, path)
        if note:
            contents.notes.append(note)
    else:
        contents.notes.append("no discriminator in the checkpoint: the fit uses its image losses only")
    return contents

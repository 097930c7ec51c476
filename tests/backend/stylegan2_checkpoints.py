"""Tiny random StyleGAN2 checkpoints in every supported layout, written by
the tests themselves (nothing is downloaded).

The NVIDIA layout is built with stand-in objects that pickle exactly like
``torch_utils.persistence`` persistent networks do (a call to
``torch_utils.persistence._reconstruct_persistent_obj(meta)`` with the
class name, the module source and the module's ``__dict__``); the fake
``torch_utils`` and ``dnnlib`` modules exist only while the pickle is written.
The stored module source would create ``marker`` if anything executed it.

The rosinality layout is derived from the same tensors with this file's own
name map (written from rosinality's model.py layout), so loading both must
give the same network.
"""
from __future__ import annotations

import argparse
import contextlib
import math
import pickle
import sys
import types
from collections import OrderedDict
from pathlib import Path

import torch

Z_DIM = W_DIM = 32
RESOLUTION = 16
MAPPING_LAYERS = 2
CHANNEL_BASE, CHANNEL_MAX = 256, 32          # channels: 4 -> 32, 8 -> 32, 16 -> 16
CONV_CLAMP = 256.0


def channels(res: int) -> int:
    return min(CHANNEL_BASE // res, CHANNEL_MAX)


def resample_filter() -> torch.Tensor:
    f = torch.tensor([1.0, 3.0, 3.0, 1.0])
    f = torch.outer(f, f)
    return f / f.sum()


class EasyDict(dict):
    """Stand-in for dnnlib.util.EasyDict (pickled by that name)."""


def _reconstruct_persistent_obj(meta):  # never called: only its name is pickled
    raise AssertionError("the stand-in reconstruct function must never run")


class StandIn:
    """Pickles like an NVIDIA persistent nn.Module."""

    def __init__(self, class_name, init_kwargs=None, parameters=None, buffers=None, modules=None,
                 marker: Path | None = None, **attributes):
        self.class_name, self.init_kwargs = class_name, init_kwargs or {}
        self.parameters, self.buffers = parameters or {}, buffers or {}
        self.modules, self.attributes, self.marker = modules or {}, attributes, marker

    def __reduce__(self):
        state = {"training": False,
                 "_parameters": OrderedDict((k, torch.nn.Parameter(v)) for k, v in self.parameters.items()),
                 "_buffers": OrderedDict(self.buffers), "_non_persistent_buffers_set": set(),
                 "_backward_hooks": OrderedDict(), "_forward_hooks": OrderedDict(),
                 "_forward_pre_hooks": OrderedDict(), "_state_dict_hooks": OrderedDict(),
                 "_load_state_dict_pre_hooks": OrderedDict(), "_modules": OrderedDict(self.modules),
                 "_init_args": (), "_init_kwargs": self.init_kwargs, **self.attributes}
        source = f"import pathlib\npathlib.Path({str(self.marker)!r}).touch()\n" if self.marker else "pass\n"
        meta = dict(type="class", version=4, module_src=source, class_name=self.class_name, state=state)
        return (_reconstruct_persistent_obj, (meta,))

    def tensors(self, prefix=""):
        out = {prefix + k: v for k, v in {**self.parameters, **self.buffers}.items()}
        for name, child in self.modules.items():
            out.update(child.tensors(f"{prefix}{name}."))
        return out


@contextlib.contextmanager
def fake_nvidia_modules():
    """``torch_utils.persistence`` and ``dnnlib.util`` exist while this is open."""
    names = ("torch_utils", "torch_utils.persistence", "dnnlib", "dnnlib.util")
    saved = {name: sys.modules.get(name) for name in names}
    persistence = types.ModuleType("torch_utils.persistence")
    persistence._reconstruct_persistent_obj = _reconstruct_persistent_obj
    util = types.ModuleType("dnnlib.util")
    util.EasyDict = EasyDict
    sys.modules.update({"torch_utils": types.ModuleType("torch_utils"), "torch_utils.persistence": persistence,
                        "dnnlib": types.ModuleType("dnnlib"), "dnnlib.util": util})
    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    EasyDict.__module__ = "dnnlib.util"
    try:
        yield
    finally:
        _reconstruct_persistent_obj.__module__ = __name__
        EasyDict.__module__ = __name__
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def _fc(generator, in_features, out_features, activation="linear", lr=1.0, bias_init=0.0, marker=None):
    return StandIn("FullyConnectedLayer",
                   dict(in_features=in_features, out_features=out_features, activation=activation,
                        lr_multiplier=lr, bias_init=bias_init),
                   {"weight": torch.randn(out_features, in_features, generator=generator) / lr,
                    "bias": bias_init + 0.1 * torch.randn(out_features, generator=generator)},
                   marker=marker, activation=activation, weight_gain=lr / math.sqrt(in_features), bias_gain=lr)


def _synthesis_layer(g, in_c, out_c, res, up, kernel=3):
    return StandIn("SynthesisLayer",
                   dict(in_channels=in_c, out_channels=out_c, w_dim=W_DIM, resolution=res, up=up,
                        kernel_size=kernel, conv_clamp=CONV_CLAMP),
                   {"weight": torch.randn(out_c, in_c, kernel, kernel, generator=g),
                    "noise_strength": 0.2 * torch.randn([], generator=g),
                    "bias": 0.1 * torch.randn(out_c, generator=g)},
                   {"resample_filter": resample_filter(), "noise_const": torch.randn(res, res, generator=g)},
                   {"affine": _fc(g, W_DIM, in_c, bias_init=1.0)}, up=up, conv_clamp=CONV_CLAMP)


def nvidia_generator(seed: int, marker: Path | None = None) -> StandIn:
    g = torch.Generator().manual_seed(seed)
    num_ws = 2 * int(math.log2(RESOLUTION)) - 2
    mapping = StandIn("MappingNetwork",
                      dict(z_dim=Z_DIM, c_dim=0, w_dim=W_DIM, num_ws=num_ws, num_layers=MAPPING_LAYERS),
                      buffers={"w_avg": 0.3 * torch.randn(W_DIM, generator=g)},
                      modules={f"fc{i}": _fc(g, Z_DIM if i == 0 else W_DIM, W_DIM, "lrelu", 0.01, marker=marker)
                               for i in range(MAPPING_LAYERS)})
    blocks = {}
    res = 4
    while res <= RESOLUTION:
        out_c = channels(res)
        modules, parameters = {}, {}
        if res == 4:
            parameters["const"] = torch.randn(out_c, 4, 4, generator=g)
        else:
            modules["conv0"] = _synthesis_layer(g, channels(res // 2), out_c, res, up=2)
        modules["conv1"] = _synthesis_layer(g, out_c, out_c, res, up=1)
        modules["torgb"] = StandIn("ToRGBLayer", dict(in_channels=out_c, out_channels=3, w_dim=W_DIM),
                                   {"weight": torch.randn(3, out_c, 1, 1, generator=g),
                                    "bias": 0.1 * torch.randn(3, generator=g)},
                                   modules={"affine": _fc(g, W_DIM, out_c, bias_init=1.0)})
        blocks[f"b{res}"] = StandIn("SynthesisBlock", dict(in_channels=0 if res == 4 else channels(res // 2),
                                                           out_channels=out_c, resolution=res),
                                    parameters, {"resample_filter": resample_filter()}, modules)
        res *= 2
    synthesis_kwargs = EasyDict(channel_base=CHANNEL_BASE, channel_max=CHANNEL_MAX, num_fp16_res=0,
                                conv_clamp=CONV_CLAMP)
    synthesis = StandIn("SynthesisNetwork", dict(w_dim=W_DIM, img_resolution=RESOLUTION, img_channels=3,
                                                 **synthesis_kwargs), modules=blocks, num_ws=num_ws)
    return StandIn("Generator", dict(z_dim=Z_DIM, c_dim=0, w_dim=W_DIM, img_resolution=RESOLUTION, img_channels=3,
                                     mapping_kwargs=EasyDict(num_layers=MAPPING_LAYERS),
                                     synthesis_kwargs=synthesis_kwargs),
                   modules={"synthesis": synthesis, "mapping": mapping}, marker=marker, num_ws=num_ws)


def _conv(g, in_c, out_c, kernel, bias=True, activation="lrelu", down=1):
    parameters = {"weight": torch.randn(out_c, in_c, kernel, kernel, generator=g)}
    if bias:
        parameters["bias"] = 0.1 * torch.randn(out_c, generator=g)
    return StandIn("Conv2dLayer", dict(in_channels=in_c, out_channels=out_c, kernel_size=kernel, bias=bias,
                                       activation=activation, down=down), parameters,
                   {"resample_filter": resample_filter()})


def nvidia_discriminator(seed: int) -> StandIn:
    g = torch.Generator().manual_seed(seed + 1000)
    blocks = {}
    res = RESOLUTION
    while res > 4:
        tmp, out = channels(res), channels(res // 2)
        modules = {}
        if res == RESOLUTION:
            modules["fromrgb"] = _conv(g, 3, tmp, 1)
        modules.update(conv0=_conv(g, tmp, tmp, 3), conv1=_conv(g, tmp, out, 3, down=2),
                       skip=_conv(g, tmp, out, 1, bias=False, activation="linear", down=2))
        blocks[f"b{res}"] = StandIn("DiscriminatorBlock", dict(resolution=res), buffers={"resample_filter":
                                                                                         resample_filter()},
                                    modules=modules)
        res //= 2
    c4 = channels(4)
    blocks["b4"] = StandIn("DiscriminatorEpilogue", dict(in_channels=c4, cmap_dim=0, resolution=4),
                           modules={"mbstd": StandIn("MinibatchStdLayer", dict(group_size=4, num_channels=1)),
                                    "conv": _conv(g, c4 + 1, c4, 3), "fc": _fc(g, c4 * 16, c4, "lrelu"),
                                    "out": _fc(g, c4, 1)})
    return StandIn("Discriminator", dict(c_dim=0, img_resolution=RESOLUTION, img_channels=3, architecture="resnet",
                                         channel_base=CHANNEL_BASE, channel_max=CHANNEL_MAX, num_fp16_res=0,
                                         conv_clamp=CONV_CLAMP, epilogue_kwargs=EasyDict(mbstd_group_size=4)),
                   modules=blocks)


def write_nvidia_pickle(path: Path, seed: int = 0, with_discriminator: bool = True, marker: Path | None = None,
                        protocol: int = 3) -> dict:
    """Writes ``{'G', 'D', 'G_ema', 'augment_pipe', 'training_set_kwargs'}``;
    returns the generator and discriminator stand-ins."""
    generator = nvidia_generator(seed, marker)
    discriminator = nvidia_discriminator(seed) if with_discriminator else None
    snapshot = {"G": generator, "G_ema": generator, "augment_pipe": None,
                "training_set_kwargs": EasyDict(resolution=RESOLUTION, use_labels=False)}
    if discriminator is not None:
        snapshot["D"] = discriminator
    with fake_nvidia_modules():
        path.write_bytes(pickle.dumps(snapshot, protocol=protocol))
    return {"G": generator, "D": discriminator}


def rosinality_state(nvidia: dict) -> dict:
    """The same networks in rosinality's stylegan2-pytorch layout."""
    t = nvidia["G"].tensors()
    blur = resample_filter() * 4
    g = {}
    for i in range(MAPPING_LAYERS):
        g[f"style.{i + 1}.weight"], g[f"style.{i + 1}.bias"] = t[f"mapping.fc{i}.weight"], t[f"mapping.fc{i}.bias"]
    g["input.input"] = t["synthesis.b4.const"][None]
    noise = [0]

    def styled(source, target, upsample):
        weight = t[f"{source}.weight"]
        g[f"{target}.conv.weight"] = (weight * math.sqrt(weight[0].numel()))[None]
        g[f"{target}.conv.modulation.weight"] = t[f"{source}.affine.weight"]
        g[f"{target}.conv.modulation.bias"] = t[f"{source}.affine.bias"]
        if upsample:
            g[f"{target}.conv.blur.kernel"] = blur
        g[f"{target}.noise.weight"] = t[f"{source}.noise_strength"].reshape(1)
        g[f"{target}.activate.bias"] = t[f"{source}.bias"]
        g[f"noises.noise_{noise[0]}"] = t[f"{source}.noise_const"][None, None]
        noise[0] += 1

    def rgb(source, target, upsample):
        g[f"{target}.conv.weight"] = t[f"{source}.weight"][None]
        g[f"{target}.conv.modulation.weight"] = t[f"{source}.affine.weight"]
        g[f"{target}.conv.modulation.bias"] = t[f"{source}.affine.bias"]
        g[f"{target}.bias"] = t[f"{source}.bias"].reshape(1, 3, 1, 1)
        if upsample:
            g[f"{target}.upsample.kernel"] = blur

    styled("synthesis.b4.conv1", "conv1", False)
    rgb("synthesis.b4.torgb", "to_rgb1", False)
    k, res = 0, 8
    while res <= RESOLUTION:
        styled(f"synthesis.b{res}.conv0", f"convs.{2 * k}", True)
        styled(f"synthesis.b{res}.conv1", f"convs.{2 * k + 1}", False)
        rgb(f"synthesis.b{res}.torgb", f"to_rgbs.{k}", True)
        k, res = k + 1, res * 2
    checkpoint = {"g_ema": g, "g": dict(g), "latent_avg": t["mapping.w_avg"],
                  "args": argparse.Namespace(size=RESOLUTION, channel_multiplier=1)}
    if nvidia["D"] is not None:
        d_t = nvidia["D"].tensors()
        d = {"convs.0.0.weight": d_t[f"b{RESOLUTION}.fromrgb.weight"],
             "convs.0.1.bias": d_t[f"b{RESOLUTION}.fromrgb.bias"]}
        j, res = 1, RESOLUTION
        while res > 4:
            d.update({f"convs.{j}.conv1.0.weight": d_t[f"b{res}.conv0.weight"],
                      f"convs.{j}.conv1.1.bias": d_t[f"b{res}.conv0.bias"],
                      f"convs.{j}.conv2.0.kernel": resample_filter(),
                      f"convs.{j}.conv2.1.weight": d_t[f"b{res}.conv1.weight"],
                      f"convs.{j}.conv2.2.bias": d_t[f"b{res}.conv1.bias"],
                      f"convs.{j}.skip.0.kernel": resample_filter(),
                      f"convs.{j}.skip.1.weight": d_t[f"b{res}.skip.weight"]})
            j, res = j + 1, res // 2
        d.update({"final_conv.0.weight": d_t["b4.conv.weight"], "final_conv.1.bias": d_t["b4.conv.bias"],
                  "final_linear.0.weight": d_t["b4.fc.weight"], "final_linear.0.bias": d_t["b4.fc.bias"],
                  "final_linear.1.weight": d_t["b4.out.weight"], "final_linear.1.bias": d_t["b4.out.bias"]})
        checkpoint["d"] = d
    return checkpoint


def write_rosinality(path: Path, nvidia: dict) -> Path:
    torch.save(rosinality_state(nvidia), path)
    return path

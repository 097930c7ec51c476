"""DCGAN generators: PyTorch's DCGAN tutorial architecture, from a state dict.

The most common GAN people train themselves: an ``nn.Sequential`` called
``main`` of ``ConvTranspose2d`` (4x4 kernels) / ``BatchNorm2d`` / ``ReLU``
blocks, ending in ``ConvTranspose2d`` / ``Tanh``. Keys ``main.N.*``: block
``k`` is ``main.{3k}`` (the transposed convolution), ``main.{3k+1}`` (batch
norm) and ``main.{3k+2}`` (ReLU); the last transposed convolution is
``main.{3(L-1)}``, ``L`` the number of them. The first maps ``z [B, nz, 1,
1]`` to 4x4; every later one doubles the side, so the resolution is
``4 * 2 ** (L - 1)``: 32, 64, 128 or 256 px for L = 4..7.

The file is read with ``torch.load(weights_only=True)`` (nothing in it is
executed). It holds the generator's state dict, bare or under one of
``CONTAINER_KEYS`` (``netG_state_dict`` is what the tutorial saves); a
``module.`` prefix (``nn.DataParallel``) is dropped. ``nz``, ``ngf``, ``nc``
and the resolution come from the tensors' shapes. Refused, with a message
saying what the file is: empty, truncated or corrupt files, files that are
not ``torch.save`` files (images, plain pickles, TorchScript archives), files
saved with pickle protocol 4 or later (``weights_only`` cannot read them), a
whole module saved with ``torch.save(netG)``, a discriminator's state dict,
other architectures, generators of other than 3 channels, non-finite weights.

Latents: ``z ~ N(0, I)`` of length ``nz``; there is no mapping network, so W
is z (``num_ws`` 1, ``w_dim`` = ``nz``) and truncation pulls z towards
``w_avg``. ``w_avg`` is *not* z = 0: the first transposed convolution (no
bias) maps z = 0 to 0 and the first batch norm maps that to ``beta - gamma
* running_mean / sqrt(running_var + eps)``, negative in all 512 channels of
the development GAN, so the first ReLU zeroes everything and the gradient with
respect to z is exactly 0 there (measured: also at |z| = 1e-3, 1e-2 and 0.1
in each of 64 random directions; a typical |z| is about sqrt(nz)); an
inversion started there never moves. ``w_avg`` is the medoid latent: of
``MEDOID_SEEDS`` seeds' latents, the one whose image is nearest (mean square)
the mean of their images, a typical point on the prior's shell.

Besides the protocol, a DCGAN offers its intermediate activations, for an
inversion to optimise the way W+ extends W:

* ``feature_layers``: the blocks whose outputs may be replaced, ``(0, ..., L-2)``;
  block ``k``'s output is ``[B, C_k, 4 * 2**k, 4 * 2**k]`` (after its ReLU);
* ``synthesis_features(ws, layer)``: that output for latents ``ws``;
* ``synthesis_from_features(features, layer)``: the images from it.
"""
from __future__ import annotations

import pickle
import re
import warnings
import zipfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .errors import CheckpointFormatError, GeneratorLoadError
from .validation import check_image_batch

CONTAINER_KEYS = ("netG_state_dict", "state_dict", "generator", "G")
"""Keys under which a checkpoint dict may hold the generator's state dict."""
RESOLUTIONS = {4: 32, 5: 64, 6: 128, 7: 256}
"""Transposed convolutions -> image side in pixels."""
MEDOID_SEEDS = 128
"""How many seeds' latents the medoid ``w_avg`` is chosen from."""


class DCGANGenerator(nn.Module):
    """The DCGAN tutorial's generator behind the generator protocol (module doc).

    nz: latent length; channels: output channels of every transposed
    convolution, first to last (the last is ``nc`` = 3); biases: whether
    each transposed convolution has a bias (the tutorial's have none)."""

    img_channels = 3

    def __init__(self, nz: int, channels: list[int], biases: list[bool] | None = None, spec: str = "dcgan"):
        super().__init__()
        if len(channels) not in RESOLUTIONS:
            raise ValueError(f"a DCGAN has 4 to 7 transposed convolutions, not {len(channels)}")
        biases = biases or [False] * len(channels)
        layers: list[nn.Module] = []
        previous = nz
        for index, width in enumerate(channels):
            first, last = index == 0, index == len(channels) - 1
            layers.append(nn.ConvTranspose2d(previous, width, 4, 1 if first else 2, 0 if first else 1,
                                             bias=biases[index]))
            layers += [nn.Tanh()] if last else [nn.BatchNorm2d(width), nn.ReLU(True)]
            previous = width
        self.main = nn.Sequential(*layers)
        self.spec = spec
        self.z_dim = self.w_dim = int(nz)
        self.num_ws = 1
        self.img_resolution = RESOLUTIONS[len(channels)]
        self.feature_layers = tuple(range(len(channels) - 1))
        self.register_buffer("_w_avg", torch.zeros(nz))

    @property
    def w_avg(self) -> torch.Tensor:
        return self._w_avg

    def mapping(self, z: torch.Tensor, truncation_psi: float = 1.0) -> torch.Tensor:
        """``z [B, nz]`` -> ``ws [B, 1, nz]`` (W is z), pulled towards ``w_avg`` by ``truncation_psi``."""
        return (self.w_avg + truncation_psi * (z - self.w_avg))[:, None, :]

    def synthesis(self, ws: torch.Tensor) -> torch.Tensor:
        """``ws [B, 1, nz]`` -> images ``[B, 3, R, R]`` in [-1, 1]."""
        return self.main(ws[:, 0, :, None, None])

    def forward(self, z: torch.Tensor, truncation_psi: float = 1.0) -> torch.Tensor:
        return self.synthesis(self.mapping(z, truncation_psi))

    def z_from_seed(self, seed: int) -> torch.Tensor:
        z = np.random.RandomState(int(seed)).randn(1, self.z_dim)
        return torch.from_numpy(z).to(self._w_avg.device, torch.float32)

    def _check_layer(self, layer: int) -> int:
        if layer not in self.feature_layers:
            raise ValueError(f"feature layer {layer!r} is not one of {self.feature_layers}")
        return 3 * (layer + 1)

    def synthesis_features(self, ws: torch.Tensor, layer: int) -> torch.Tensor:
        """``ws [B, 1, nz]`` -> block ``layer``'s output ``[B, C, 4 * 2**layer, 4 * 2**layer]`` (>= 0)."""
        return self.main[:self._check_layer(layer)](ws[:, 0, :, None, None])

    def synthesis_from_features(self, features: torch.Tensor, layer: int) -> torch.Tensor:
        """Block ``layer``'s output (as ``synthesis_features`` gives it) -> images ``[B, 3, R, R]``."""
        return self.main[self._check_layer(layer):](features)

    @torch.no_grad()
    def choose_w_avg(self, seeds: int = MEDOID_SEEDS) -> None:
        """Sets ``w_avg`` to the medoid latent of seeds ``0..seeds-1`` (module doc)."""
        z = torch.cat([self.z_from_seed(seed) for seed in range(seeds)])
        images = torch.cat([self.main(chunk[:, :, None, None]) for chunk in z.split(32)])
        distances = (images - images.mean(0, keepdim=True)).square().flatten(1).mean(1)
        self._w_avg.copy_(z[int(distances.argmin())])


# legacy (pre-1.6, or _use_new_zipfile_serialization=False) torch.save streams start with the pickled magic
# number 0x1950a86a20f9469cfc6c (after a frame header from pickle protocol 4 on)
_TORCH_LEGACY_MAGIC = pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)[2:-1]
_HOW_TO_SAVE = "torch.save(netG.state_dict(), PATH)"


def _sniff(path: Path) -> None:
    """Raises ``CheckpointFormatError`` saying what the file is, unless it is
    a ``torch.save`` file (a zip that is no TorchScript archive, or the
    legacy pickle stream)."""
    with open(path, "rb") as handle:
        head = handle.read(64)
    if not head:
        raise CheckpointFormatError(f"{path} is empty; copy the checkpoint again")
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except (zipfile.BadZipFile, OSError) as error:
            raise CheckpointFormatError(f"{path}: a zip (torch.save) file that is corrupt or truncated ({error}); "
                                        "copy it again") from error
        if any(name.endswith("/constants.pkl") or "/code/" in name for name in names):
            raise CheckpointFormatError(f"{path} is a TorchScript module, not a DCGAN state dict; load it with "
                                        f"the spec torchscript:{path}")
        return
    if head[0] == 0x80 and _TORCH_LEGACY_MAGIC in head[:24]:
        return
    if head[0] == 0x80 and 2 <= head[1] <= 5:
        raise CheckpointFormatError(f"{path}: a plain pickle, not a torch.save file (a StyleGAN2 network pickle? "
                                    f"load it with stylegan2:{path}); save a DCGAN's generator with {_HOW_TO_SAVE}")
    known = {b"\x89PNG": "a PNG image", b"\xff\xd8\xff": "a JPEG image", b"\x89HDF": "an HDF5 file (Keras?)",
             b"{": "a JSON or text file", b"GIF8": "a GIF image"}
    what = next((name for prefix, name in known.items() if head.startswith(prefix)), f"it starts with {head[:8]!r}")
    raise CheckpointFormatError(f"{path}: not a torch.save file ({what}); a DCGAN checkpoint is the generator's "
                                f"state dict saved with {_HOW_TO_SAVE}")


def _read_file(path: Path):
    _sniff(path)
    try:
        with warnings.catch_warnings():  # a protocol 4 pickle is refused below, with what to do about it
            warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        found = re.search(r"GLOBAL ([\w.]+)", str(error))
        if "Unsupported operand 149" in str(error):  # FRAME: pickle protocol 4 or later
            raise CheckpointFormatError(
                f"{path}: saved with pickle protocol 4 or later (torch.save(..., pickle_protocol=4)), which "
                f"torch.load(weights_only=True) cannot read; save it again with the default protocol: "
                f"{_HOW_TO_SAVE}") from error
        if not found:
            raise CheckpointFormatError(f"{path}: a torch.save file whose contents cannot be read (corrupt or "
                                        "truncated?); copy it again") from error
        raise CheckpointFormatError(
            f"{path}: pickles Python objects, not just tensors (it needs the global {found.group(1)}); "
            "torch.load(weights_only=True) refused it and nothing in it ran. Was the whole module saved "
            f"(torch.save(netG))? Save its state dict instead: {_HOW_TO_SAVE}") from error
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as error:
        raise CheckpointFormatError(f"{path}: not a readable torch.save file (corrupt or truncated?): "
                                    f"{str(error).splitlines()[0][:200]}") from error


def _state_dict(checkpoint, path: Path) -> dict:
    if not isinstance(checkpoint, dict):
        raise GeneratorLoadError(f"{path}: holds a {type(checkpoint).__name__}, not a state dict; a DCGAN "
                                 f"checkpoint is a generator state dict, bare or under one of {list(CONTAINER_KEYS)}")
    for key in CONTAINER_KEYS:
        if isinstance(checkpoint.get(key), dict):
            checkpoint = checkpoint[key]
            break
    else:
        if not any(isinstance(key, str) and key.startswith(("main.", "module.main.")) for key in checkpoint):
            if any(isinstance(key, str) and "netD" in key or key == "discriminator" for key in checkpoint):
                raise GeneratorLoadError(f"{path}: holds a discriminator ({[k for k in checkpoint][:4]}) but no "
                                         f"generator under {list(CONTAINER_KEYS)}")
            hint = (f" (a rosinality StyleGAN2 checkpoint: load it with stylegan2:{path})"
                    if "g_ema" in checkpoint else "")
            raise GeneratorLoadError(
                f"{path}: no DCGAN generator state dict in it (top-level keys {sorted(map(str, checkpoint))[:6]})"
                f"{hint}; expected keys main.N.* of the DCGAN tutorial's Generator, bare or under "
                f"{list(CONTAINER_KEYS)}")
    return {key[len("module."):] if isinstance(key, str) and key.startswith("module.") else key: value
            for key, value in checkpoint.items()}


def architecture_from_state_dict(state: dict, path) -> tuple[int, list[int], list[bool]]:
    """(nz, channels of each transposed convolution, biases) read from the
    tensors' shapes; ``GeneratorLoadError`` saying what the file is when it
    is not this architecture."""
    tensors = {key: value for key, value in state.items() if isinstance(value, torch.Tensor)}
    if not tensors or len(tensors) != len(state):
        others = [key for key in state if key not in tensors]
        kinds = sorted({type(state[key]).__name__ for key in others})
        raise GeneratorLoadError(f"{path}: a DCGAN state dict maps names to tensors; this one does not (keys "
                                 f"{sorted(map(str, others))[:4]} hold {kinds})"
                                 if others else f"{path}: the generator's state dict is empty")
    first = tensors.get("main.0.weight")
    if first is None:
        raise GeneratorLoadError(f"{path}: no main.0.weight; not the DCGAN tutorial's Generator (keys "
                                 f"{sorted(tensors)[:6]})")
    if first.ndim == 4 and first.shape[1] in (1, 3, 4) and first.shape[0] > first.shape[1] \
            and "main.1.running_mean" not in tensors:
        raise GeneratorLoadError(f"{path}: this is a DCGAN discriminator's state dict (main.0 is a Conv2d from "
                                 f"{first.shape[1]} image channels, with no batch norm after it); load the "
                                 "generator's (netG) instead")
    channels, biases, previous = [], [], None
    index = 0
    while f"main.{index}.weight" in tensors:
        weight = tensors[f"main.{index}.weight"]
        if weight.ndim != 4 or tuple(weight.shape[2:]) != (4, 4):
            raise GeneratorLoadError(f"{path}: main.{index}.weight has shape {tuple(weight.shape)}; the DCGAN "
                                     "generator's transposed convolutions have 4x4 kernels [in, out, 4, 4]")
        if previous is not None and weight.shape[0] != previous:
            raise GeneratorLoadError(f"{path}: main.{index} takes {weight.shape[0]} channels but the layer before "
                                     f"gives {previous}; not the DCGAN tutorial's Generator")
        previous = int(weight.shape[1])
        channels.append(previous)
        biases.append(f"main.{index}.bias" in tensors)
        norm = f"main.{index + 1}"
        if f"{norm}.running_mean" in tensors:
            for name in ("weight", "bias", "running_mean", "running_var"):
                value = tensors.get(f"{norm}.{name}")
                if value is None or tuple(value.shape) != (previous,):
                    raise GeneratorLoadError(f"{path}: {norm}.{name} missing or not [{previous}]; expected the "
                                             "batch norm of the DCGAN tutorial's Generator")
            index += 3
        else:
            break
    if len(channels) not in RESOLUTIONS:
        raise GeneratorLoadError(f"{path}: {len(channels)} transposed convolutions; a DCGAN generator has 4 to 7 "
                                 f"(32 to 256 px)")
    if channels[-1] != 3:
        raise GeneratorLoadError(f"{path}: the generator makes {channels[-1]}-channel images; only RGB (3) "
                                 "generators are supported")
    expected = {f"main.{3 * k}.weight" for k in range(len(channels))}
    expected |= {f"main.{3 * k}.bias" for k in range(len(channels)) if biases[k]}
    expected |= {f"main.{3 * k + 1}.{name}" for k in range(len(channels) - 1)
                 for name in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")}
    unknown = sorted(set(tensors) - expected)
    if unknown:
        raise GeneratorLoadError(f"{path}: keys the DCGAN tutorial's Generator does not have: {unknown[:6]}")
    return int(first.shape[0]), channels, biases


def load_dcgan(path, spec: str | None = None) -> DCGANGenerator:
    """A ``DCGANGenerator`` from a checkpoint file (module doc), in eval mode."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no DCGAN checkpoint at {path}")
    state = _state_dict(_read_file(path), path)
    nz, channels, biases = architecture_from_state_dict(state, path)
    generator = DCGANGenerator(nz, channels, biases, spec=spec or f"dcgan:{path}")
    state = {key[len("main."):]: value for key, value in state.items()}
    missing = {key for key in generator.main.state_dict() if key.endswith("num_batches_tracked")} - set(state)
    state.update({key: torch.zeros((), dtype=torch.long) for key in missing})
    generator.main.load_state_dict(state)
    generator.eval()
    for parameter in generator.parameters():
        parameter.requires_grad_(False)
    with torch.no_grad():
        if not all(torch.isfinite(value).all() for value in state.values() if value.is_floating_point()):
            raise GeneratorLoadError(f"{path}: holds non-finite weights (NaN or infinity); the training diverged")
        generator.choose_w_avg()
        images = generator.synthesis(generator.mapping(torch.cat([generator.z_from_seed(0),
                                                                  generator.z_from_seed(1)])))
    check_image_batch(images, 2, generator.img_resolution, f"the DCGAN {path}")
    return generator

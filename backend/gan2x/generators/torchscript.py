"""Any image generator saved as TorchScript (``torch.jit.save``).

The module maps a latent ``z [B, z_dim]`` to images ``[B, 3, R, R]``,
sRGB-encoded in ``[-1, 1]``. ``z_dim`` and ``R`` come from the module's
attributes (``z_dim``, and ``img_resolution`` or ``resolution``) or from a
sidecar JSON file next to it, ``PATH.json``::

    {"z_dim": 512, "resolution": 256}

(the sidecar wins). If the module also has ``mapping`` and ``synthesis``
methods and ``w_dim``/``num_ws`` attributes (a scripted StyleGAN), they are
used, so W and W+ work; otherwise the latent itself plays W
(``num_ws = 1``, ``w_dim = z_dim``, ``w_avg = 0``, truncation scales z).

TorchScript runs the module's own (TorchScript) code: load modules you trust.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .errors import CheckpointFormatError, GeneratorLoadError
from .validation import check_image_batch


def _read_sizes(module, path: Path) -> dict:
    sizes = {}
    for key, names in (("z_dim", ("z_dim",)), ("resolution", ("img_resolution", "resolution")),
                       ("w_dim", ("w_dim",)), ("num_ws", ("num_ws",))):
        for name in names:
            value = getattr(module, name, None)
            if isinstance(value, int):
                sizes[key] = value
                break
    sidecar = path.with_name(path.name + ".json")
    if sidecar.is_file():
        try:
            values = json.loads(sidecar.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise GeneratorLoadError(f"{sidecar}: not valid JSON ({error})") from error
        if not isinstance(values, dict):
            raise GeneratorLoadError(f"{sidecar}: expected a JSON object like {{\"z_dim\": 512, \"resolution\": 256}}")
        for key in ("z_dim", "resolution", "w_dim", "num_ws"):
            if key in values:
                if not isinstance(values[key], int) or values[key] <= 0:
                    raise GeneratorLoadError(f"{sidecar}: {key} must be a positive integer, got {values[key]!r}")
                sizes[key] = values[key]
    for key in ("z_dim", "resolution"):
        if key not in sizes:
            raise GeneratorLoadError(
                f"{path}: the TorchScript module has no {key} attribute and there is no sidecar {sidecar.name} "
                f"giving it; write {sidecar} with {{\"z_dim\": ..., \"resolution\": ...}}")
    return sizes


class TorchScriptGenerator(nn.Module):
    """A TorchScript module behind the generator protocol (see module doc)."""

    img_channels = 3

    def __init__(self, module, spec: str, z_dim: int, resolution: int, w_dim: int | None = None,
                 num_ws: int | None = None):
        super().__init__()
        self.module = module
        self.spec = spec
        self.z_dim = int(z_dim)
        self.img_resolution = int(resolution)
        self.styled = all(hasattr(module, name) for name in ("mapping", "synthesis")) and w_dim and num_ws
        self.w_dim = int(w_dim) if self.styled else self.z_dim
        self.num_ws = int(num_ws) if self.styled else 1
        w_avg = getattr(module, "w_avg", None) if self.styled else None
        self.register_buffer("_w_avg", w_avg.detach().clone().float() if isinstance(w_avg, torch.Tensor)
                             else torch.zeros(self.w_dim))
        for parameter in self.parameters():
            parameter.requires_grad_(False)

    @property
    def w_avg(self) -> torch.Tensor:
        return self._w_avg

    def mapping(self, z: torch.Tensor, truncation_psi: float = 1.0) -> torch.Tensor:
        if self.styled:
            ws = self.module.mapping(z)
            if ws.ndim == 2:
                ws = ws[:, None].repeat(1, self.num_ws, 1)
        else:
            ws = z[:, None, :]
        return self.w_avg + truncation_psi * (ws - self.w_avg)

    def synthesis(self, ws: torch.Tensor) -> torch.Tensor:
        if self.styled:
            return self.module.synthesis(ws)
        return self.module(ws[:, 0])

    def forward(self, z: torch.Tensor, truncation_psi: float = 1.0) -> torch.Tensor:
        return self.synthesis(self.mapping(z, truncation_psi))

    def z_from_seed(self, seed: int) -> torch.Tensor:
        z = np.random.RandomState(int(seed)).randn(1, self.z_dim)
        return torch.from_numpy(z).to(self._w_avg.device, torch.float32)


def load_torchscript(path, spec: str | None = None) -> TorchScriptGenerator:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no TorchScript file at {path}")
    try:
        with warnings.catch_warnings():  # torch >= 2.10 marks TorchScript deprecated; it is still the format asked for
            warnings.simplefilter("ignore", DeprecationWarning)
            module = torch.jit.load(str(path), map_location="cpu")
    except (RuntimeError, ValueError) as error:
        from .stylegan2.formats import detect_format

        kind = None
        try:
            kind = detect_format(path)
        except (GeneratorLoadError, FileNotFoundError):
            pass
        if kind in ("nvidia-pickle", "rosinality", "safetensors"):
            raise GeneratorLoadError(f"{path} is a StyleGAN2 checkpoint ({kind}), not TorchScript; use the spec "
                                     f"stylegan2:{path}") from error
        raise CheckpointFormatError(f"{path}: not a readable TorchScript file (corrupt, truncated, or saved with "
                                    f"torch.save instead of torch.jit.save): {str(error).splitlines()[0][:200]}") from error
    module.eval()
    computed = [name for name, parameter in module.named_parameters() if not parameter.is_leaf]
    if computed:
        shown = ", ".join(computed[:5]) + (f" and {len(computed) - 5} more" if len(computed) > 5 else "")
        raise GeneratorLoadError(
            f"{path}: the TorchScript module's parameter{'s' if len(computed) > 1 else ''} {shown} "
            f"{'are' if len(computed) > 1 else 'is'} not a leaf tensor but computed from other tensors when the "
            "module loads (e.g. in its __setstate__), so it cannot be frozen for fitting; save the module with "
            "plain parameters (compute them before torch.jit.save, then detach)")
    sizes = _read_sizes(module, path)
    generator = TorchScriptGenerator(module, spec or f"torchscript:{path}", sizes["z_dim"], sizes["resolution"],
                                     sizes.get("w_dim"), sizes.get("num_ws"))
    with torch.no_grad():
        z = torch.cat([generator.z_from_seed(0), generator.z_from_seed(1)])
        try:
            images = generator.synthesis(generator.mapping(z))
        except RuntimeError as error:
            raise GeneratorLoadError(f"{path}: the TorchScript module failed on z of shape [2, {generator.z_dim}] "
                                     f"(is z_dim right?): {str(error).splitlines()[0][:200]}") from error
    check_image_batch(images, 2, generator.img_resolution, f"the TorchScript module {path}")
    return generator

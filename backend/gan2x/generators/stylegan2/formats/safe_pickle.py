"""A restricted unpickler for network pickles: data in, never code.

NVIDIA's network pickles (stylegan2-ada-pytorch, stylegan3) store each
network as a "persistent" object whose reconstruction, with the original
``torch_utils.persistence``, imports and executes Python source stored in
the pickle. Here that reconstruct function is mapped to ``PersistedObject``,
which only keeps the saved data (class name, init arguments, the module's
``__dict__`` with its parameters, buffers and sub-modules); the source text
is never compiled.

Every other global a pickle names must be on ``ALLOWED_GLOBALS``: tensor and
storage rebuild helpers, ``OrderedDict``, sets, numpy arrays and dtypes, and
``dnnlib``'s ``EasyDict`` (read as a plain dict). Anything else (``os.system``,
``builtins.eval``, a class of the training code...) is refused with
``UnsafePickleError`` naming it, before anything it asks for is called.
"""
from __future__ import annotations

import collections
import io
import pickle

import torch

from ...errors import CheckpointFormatError, UnsafePickleError


class PersistedObject:
    """What an NVIDIA persistent object holds, as plain data.

    ``class_name``: e.g. "Generator"; ``state``: the module's ``__dict__``
    (``_parameters``, ``_buffers``, ``_modules``, ``_init_args``,
    ``_init_kwargs`` and plain attributes); ``module_source_chars``: the
    length of the stored source (kept for messages; the text is dropped)."""

    def __init__(self, meta):
        if not isinstance(meta, dict):
            raise UnsafePickleError("a persistent object in the pickle has no metadata dictionary")
        self.class_name = str(meta.get("class_name", ""))
        self.version = meta.get("version")
        self.module_source_chars = len(meta.get("module_src") or "")
        state = meta.get("state")
        self.state = dict(state) if isinstance(state, dict) else {}

    def __repr__(self):
        return f"PersistedObject({self.class_name})"

    @property
    def init_args(self) -> tuple:
        return tuple(self.state.get("_init_args") or ())

    @property
    def init_kwargs(self) -> dict:
        return dict(self.state.get("_init_kwargs") or {})

    def children(self) -> dict:
        return dict(self.state.get("_modules") or {})

    def child(self, name: str):
        return self.children().get(name)

    def tensors(self, prefix: str = "") -> dict[str, torch.Tensor]:
        """Every parameter and buffer of this object and its children, by
        dotted name (like ``nn.Module.state_dict``)."""
        out: dict[str, torch.Tensor] = {}
        for group in ("_parameters", "_buffers"):
            for name, value in (self.state.get(group) or {}).items():
                if isinstance(value, torch.Tensor):
                    out[prefix + name] = value.detach()
        for name, child in self.children().items():
            if isinstance(child, PersistedObject):
                out.update(child.tensors(f"{prefix}{name}."))
        return out


class PlainDict(dict):
    """Stands in for ``dnnlib.EasyDict`` (a dict with attribute access)."""


def _storage_from_bytes(data: bytes):
    """``torch.storage._load_from_bytes``: a tensor storage that plain pickle
    stored as the bytes of a legacy ``torch.save``; read with torch's own
    weights-only unpickler."""
    if not isinstance(data, (bytes, bytearray)):
        raise UnsafePickleError("a tensor storage in the pickle is not stored as bytes")
    return torch.load(io.BytesIO(bytes(data)), map_location="cpu", weights_only=True)


def _numpy_globals() -> dict:
    """numpy arrays and dtypes, under the module names of numpy 1 and 2."""
    import importlib

    import numpy as np

    try:
        multiarray = importlib.import_module("numpy._core.multiarray")
    except ImportError:  # numpy 1
        multiarray = importlib.import_module("numpy.core.multiarray")
    allowed = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
    for module_name in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(module_name, "_reconstruct")] = multiarray._reconstruct
        allowed[(module_name, "scalar")] = multiarray.scalar
    return allowed


def _allowed_globals() -> dict:
    from torch import _utils

    allowed = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("builtins", "set"): set,
        ("builtins", "frozenset"): frozenset,
        ("torch._utils", "_rebuild_tensor"): _utils._rebuild_tensor,
        ("torch._utils", "_rebuild_tensor_v2"): _utils._rebuild_tensor_v2,
        ("torch._utils", "_rebuild_parameter"): _utils._rebuild_parameter,
        ("torch.storage", "_load_from_bytes"): _storage_from_bytes,
        ("torch", "Size"): torch.Size,
        ("torch", "device"): torch.device,
        ("torch_utils.persistence", "_reconstruct_persistent_obj"): PersistedObject,
        ("dnnlib.util", "EasyDict"): PlainDict,
        ("dnnlib", "EasyDict"): PlainDict,
    }
    if hasattr(_utils, "_rebuild_parameter_with_state"):
        allowed[("torch._utils", "_rebuild_parameter_with_state")] = _utils._rebuild_parameter_with_state
    for name in ("float16", "float32", "float64", "bfloat16", "int64", "int32", "uint8", "bool"):
        allowed[("torch", name)] = getattr(torch, name)
    allowed.update(_numpy_globals())
    return allowed


ALLOWED_GLOBALS = _allowed_globals()
"""(module, name) -> the object the unpickler returns for it."""


class RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        allowed = ALLOWED_GLOBALS.get((module, name))
        if allowed is not None:
            return allowed
        if module.startswith("dnnlib.tflib"):
            raise UnsafePickleError(
                f"this is a TensorFlow StyleGAN pickle (it names {module}.{name}); gan2x reads the PyTorch "
                "formats only: convert it with NVIDIA's stylegan2-ada-pytorch (legacy.py) on a machine you "
                "trust, then bring the result (docs/generators.md)")
        raise UnsafePickleError(
            f"refused to unpickle the global {module}.{name}: a network checkpoint never needs it, and "
            "loading it could run code, so nothing from this file was executed. If this is a genuine "
            "checkpoint of a format gan2x does not know, export its weights to safetensors or a state dict "
            "(docs/generators.md)")

    def persistent_load(self, pid):
        raise UnsafePickleError(f"the pickle uses persistent id {str(pid)[:60]!r}, which network pickles never do; "
                                "if it is a torch.save file, its header is damaged")


def safe_load_pickle(data: bytes, what: str = "the checkpoint"):
    """Unpickles ``data`` with ``RestrictedUnpickler``. A truncated or
    corrupt stream raises ``CheckpointFormatError``; a refused global
    ``UnsafePickleError``."""
    try:
        return RestrictedUnpickler(io.BytesIO(data)).load()
    except UnsafePickleError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError,
            AttributeError, RuntimeError, OverflowError, MemoryError) as error:
        raise CheckpointFormatError(
            f"{what} is corrupt or truncated (the pickle stream breaks off: {type(error).__name__}: "
            f"{str(error)[:200]}); download or copy it again") from error

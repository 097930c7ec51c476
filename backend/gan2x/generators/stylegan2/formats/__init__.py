"""StyleGAN2 checkpoint formats, told apart by content (never by extension).

| format | how it is recognised | reader |
| --- | --- | --- |
| ``nvidia-pickle`` | a raw pickle stream (``\\x80`` + protocol 2..5) | ``nvidia.read_nvidia_pickle`` (restricted unpickler) |
| ``rosinality`` | a ``torch.save`` zip (or a legacy ``torch.save`` stream) | ``rosinality.read_rosinality`` (``torch.load(weights_only=True)``) |
| ``safetensors`` | 8-byte header length + a JSON header | ``project.read_safetensors`` |

``read_checkpoint(path)`` returns a ``CheckpointContents``; nothing in a
file is ever executed.
"""
from __future__ import annotations

import pickle
import struct
import zipfile
from pathlib import Path

from ...errors import CheckpointFormatError, GeneratorLoadError
from .contents import CheckpointContents, build_networks
from .project import read_safetensors, write_safetensors

FORMATS = ("nvidia-pickle", "rosinality", "safetensors")
# legacy torch.save starts with the pickled magic number 0x1950a86a20f9469cfc6c
_TORCH_LEGACY_PREFIX = pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)[:-1]


def _describe(head: bytes) -> str:
    known = {b"\x89PNG": "a PNG image", b"\xff\xd8\xff": "a JPEG image", b"\x89HDF": "an HDF5 file (Keras?)",
             b"{": "a JSON or text file", b"GIF8": "a GIF image", b"\x08": "possibly a protobuf (ONNX/TensorFlow)"}
    for prefix, what in known.items():
        if head.startswith(prefix):
            return what
    return f"starts with bytes {head[:8]!r}"


def detect_format(path) -> str:
    """One of ``FORMATS`` or "torchscript"; ``CheckpointFormatError`` otherwise."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint file at {path}")
    with open(path, "rb") as handle:
        head = handle.read(64)
    if not head:
        raise CheckpointFormatError(f"{path} is empty; copy the checkpoint again")
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except zipfile.BadZipFile as error:
            raise CheckpointFormatError(f"{path}: a zip (torch.save) file that is corrupt or truncated ({error}); "
                                        "copy it again") from error
        if any(name.endswith("/constants.pkl") or "/code/" in name for name in names):
            return "torchscript"
        return "rosinality"
    if len(head) >= 9 and head[8:9] == b"{":
        (header_length,) = struct.unpack("<Q", head[:8])
        if 0 < header_length < 100_000_000:
            return "safetensors"
    if head[0] == 0x80 and 2 <= head[1] <= 5:
        return "rosinality" if head.startswith(_TORCH_LEGACY_PREFIX) else "nvidia-pickle"
    raise CheckpointFormatError(
        f"{path}: unknown checkpoint format ({_describe(head)}). gan2x reads NVIDIA network pickles "
        "(stylegan2-ada-pytorch, stylegan3), rosinality stylegan2-pytorch .pt files and its own safetensors "
        "export; see docs/generators.md")


def read_checkpoint(path) -> CheckpointContents:
    """Reads a StyleGAN2 checkpoint of any known format (``FORMATS``)."""
    path = Path(path)
    kind = detect_format(path)
    if kind == "torchscript":
        raise GeneratorLoadError(f"{path} is a TorchScript module, not a StyleGAN2 checkpoint; load it with the "
                                 f"spec torchscript:{path}")
    if kind == "safetensors":
        return read_safetensors(path)
    if kind == "nvidia-pickle":
        from .nvidia import read_nvidia_pickle

        return read_nvidia_pickle(path.read_bytes(), path)
    return _read_torch_file(path)


def _read_torch_file(path: Path) -> CheckpointContents:
    import torch

    from .rosinality import TORCH_LOAD_SAFE_GLOBALS, read_rosinality

    try:
        with torch.serialization.safe_globals(TORCH_LOAD_SAFE_GLOBALS):
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        message = str(error)
        if "Unsupported global" in message or "not an allowed global" in message or "GLOBAL" in message:
            from ...errors import UnsafePickleError

            raise UnsafePickleError(f"{path}: refused to load: the file asks for a global a checkpoint never needs "
                                    f"({message.splitlines()[0][:200]}); nothing from it was executed") from error
        raise CheckpointFormatError(f"{path}: a corrupt or truncated torch file ({message[:200]})") from error
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as error:
        raise CheckpointFormatError(f"{path}: a corrupt or truncated torch file ({type(error).__name__}: "
                                    f"{str(error)[:200]}); copy it again") from error
    return read_rosinality(checkpoint, path)


__all__ = ["FORMATS", "CheckpointContents", "build_networks", "detect_format", "read_checkpoint",
           "write_safetensors"]

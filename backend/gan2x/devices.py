"""Which torch device a fit runs on: ``--device auto|cpu|cuda|cuda:N|mps``.

One place for the choice and its errors, used by ``gan2x fit``, ``demo``,
``bench``, ``serve`` and the benchmarks.
"""
from __future__ import annotations

DEVICE_HELP = "torch device: auto (a CUDA GPU when torch sees one, else cpu), cpu, cuda, cuda:N or mps"


def resolve_device(name: str) -> str:
    """``auto`` becomes ``cuda`` when torch sees a CUDA device and ``cpu``
    otherwise; any other name is checked (``check_device``) and returned."""
    import torch

    if name.strip().lower() == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    check_device(name)
    return name


def check_device(device: str) -> None:
    """Raises ValueError, saying what to do, for a device the fits could not use."""
    import torch

    try:
        parsed = torch.device(device)
    except RuntimeError:
        raise ValueError(f"unknown device {device!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"--device {device}: this torch sees no CUDA device (torch {torch.__version__}, CUDA "
                             f"build: {torch.version.cuda or 'no'}); install the CUDA build of torch (README, GPU "
                             "machines) or use --device cpu")
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise ValueError(f"--device {device}: there are only {torch.cuda.device_count()} CUDA devices")
    elif parsed.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"--device {device}: MPS is not available on this machine; use --device cpu")
    elif parsed.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"--device {device}: fits run on cpu, cuda or mps")

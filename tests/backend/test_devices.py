"""--device auto|cpu|cuda: one resolution and one set of errors for every command."""
from __future__ import annotations

import pytest
import torch

from gan2x.cli import main
from gan2x.devices import check_device, resolve_device


def test_auto_takes_a_cuda_gpu_when_torch_sees_one(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("AUTO") == "cuda"
    assert resolve_device("cpu") == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a machine without CUDA")
def test_cuda_without_a_gpu_says_what_to_install(capsys):
    with pytest.raises(ValueError, match="install the CUDA build of torch"):
        check_device("cuda")
    assert main(["fit", "--device", "cuda", "--out", "unused"]) == 2
    assert "--device cuda" in capsys.readouterr().err


def test_unknown_devices_are_refused():
    with pytest.raises(ValueError, match="use auto, cpu, cuda"):
        resolve_device("gpu0")
    with pytest.raises(ValueError, match="cpu, cuda or mps"):
        check_device("meta")

"""Shared by every test: one torch thread. The tests' tensors are tiny, and
on a 2-core machine whose other core is busy (a service worker, a Blender
render) torch's default of one thread per core makes them many times slower.

``torch_device``: the device of the device-parity tests
(tests/backend/test_device_parity.py), cpu unless ``GAN2X_TEST_DEVICE``
names another (benchmarks/gpu_check.sh sets cuda)."""
import os

import pytest

try:
    import torch
except ImportError:  # the add-on's own tests need no torch
    torch = None

if torch is not None:
    torch.set_num_threads(1)

TEST_DEVICE_VARIABLE = "GAN2X_TEST_DEVICE"


@pytest.fixture(scope="session")
def torch_device():
    """``torch.device(GAN2X_TEST_DEVICE or "cpu")``. A device that torch cannot
    use is an error, not a skip: a GPU check whose CUDA is broken must not
    pass by skipping."""
    import torch as torch_module  # the device tests need torch: without it they fail here, not skip

    from gan2x.devices import check_device

    name = os.environ.get(TEST_DEVICE_VARIABLE, "").strip() or "cpu"
    check_device(name)  # ValueError saying what is wrong
    return torch_module.device(name)

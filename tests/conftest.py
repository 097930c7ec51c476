"""Shared by every test: one torch thread. The tests' tensors are tiny, and
on a 2-core machine whose other core is busy (a service worker, a Blender
render) torch's default of one thread per core makes them many times slower."""
try:
    import torch
except ImportError:  # the add-on's own tests need no torch
    torch = None

if torch is not None:
    torch.set_num_threads(1)

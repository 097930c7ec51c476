"""Image generators (GANs) the fitting inverts, behind one interface.

``load_generator(spec)`` returns an ``nn.Module`` that follows
``protocol.Generator``. Spec forms (``SPEC_FORMS``, docs/generators.md):

    synthetic[:faces|objects|detailed] the built-in procedural generator (``KNOWN_SPECS``)
    stylegan2:PATH              a StyleGAN2 checkpoint (NVIDIA pickle, rosinality .pt, gan2x safetensors)
    dcgan:PATH                  a DCGAN generator state dict (PyTorch's DCGAN tutorial architecture)
    torchscript:PATH            a TorchScript module z -> image (sizes from the module or PATH.json)
    python:MODULE:CALLABLE      your own code returning a protocol generator
"""
from __future__ import annotations

from torch import nn

from .errors import CheckpointFormatError, GeneratorLoadError, UnsafePickleError
from .protocol import Generator

KNOWN_SPECS = ("synthetic", "synthetic:faces", "synthetic:objects", "synthetic:detailed")
"""The built-in spec strings ("synthetic" means "synthetic:faces")."""

SPEC_FORMS = ("synthetic", "synthetic:faces", "synthetic:objects", "synthetic:detailed",
              "stylegan2:PATH", "dcgan:PATH",
              "torchscript:PATH", "python:MODULE:CALLABLE")
"""Every form of spec ``load_generator`` accepts."""

FILE_SPEC_PREFIXES = ("stylegan2:", "dcgan:", "torchscript:", "python:")


def load_generator(spec: str = "synthetic", device="cpu", **options) -> nn.Module:
    """Load a generator by spec string (``SPEC_FORMS``).

    device: where its buffers live (a torch device or its name).
    options (synthetic): resolution (default 64), supersample (default 2),
        march_steps, bisections, entanglement (default 0: view and light
        latents leave the identity alone; the benchmark uses
        ``bench.run.DEFAULT_ENTANGLEMENT``), highlight_scale (default 1:
        multiplies every ks, a benchmark diagnostic).
    options (stylegan2): noise_mode ("const", "random", "none"), fused
        (fast path, default True), with_discriminator (default True),
        view_layers (default 4).
    options (python): passed to the callable.
    The result is in eval mode and needs no gradients of its own; gradients
    flow to the inputs. Unknown specs raise ValueError naming the forms;
    files that cannot be used raise ``GeneratorLoadError`` (a ValueError)
    saying why.
    """
    if not isinstance(spec, str):
        raise ValueError(f"generator spec must be a string; forms: {', '.join(SPEC_FORMS)}")
    name = spec.strip()
    kind, _, target = name.partition(":")
    if kind in ("stylegan2", "dcgan", "torchscript", "python"):
        if not target:
            raise ValueError(f"generator spec {spec!r} needs a target: {kind}:PATH"
                             + ("" if kind != "python" else " (python:MODULE:CALLABLE)"))
        allowed = {"stylegan2": {"noise_mode", "fused", "with_discriminator", "view_layers"},
                   "dcgan": set(), "torchscript": set(), "python": None}[kind]
        if allowed is not None and set(options) - allowed:
            raise ValueError(f"unknown options for {spec!r}: {sorted(set(options) - allowed)}; "
                             f"allowed: {sorted(allowed)}")
        if kind == "stylegan2":
            from .stylegan2 import load_stylegan2

            generator = load_stylegan2(target, spec=name, **options)
        elif kind == "dcgan":
            from .dcgan import load_dcgan

            generator = load_dcgan(target, spec=name)
        elif kind == "torchscript":
            from .torchscript import load_torchscript

            generator = load_torchscript(target, spec=name)
        else:
            from .entry_point import load_entry_point

            generator = load_entry_point(target, name, **options)
        return generator.to(device).eval()
    if name not in KNOWN_SPECS:
        raise ValueError(f"unknown generator spec {spec!r}; forms: {', '.join(SPEC_FORMS)}")
    from .synthetic import SyntheticGenerator

    category = name.split(":", 1)[1] if ":" in name else "faces"
    allowed = {"resolution", "supersample", "march_steps", "bisections", "entanglement", "highlight_scale"}
    unknown = set(options) - allowed
    if unknown:
        raise ValueError(f"unknown options for {spec!r}: {sorted(unknown)}; allowed: {sorted(allowed)}")
    generator = SyntheticGenerator(category, **options)
    return generator.to(device).eval()


__all__ = ["CheckpointFormatError", "Generator", "GeneratorLoadError", "KNOWN_SPECS", "SPEC_FORMS",
           "UnsafePickleError", "load_generator"]

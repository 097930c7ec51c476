"""Image generators (GANs) the fitting inverts, behind one interface.

``load_generator(spec)`` returns an ``nn.Module`` that follows
``protocol.Generator``. Known specs: see ``KNOWN_SPECS`` and
docs/generators.md.
"""
from __future__ import annotations

from torch import nn

from .protocol import Generator

KNOWN_SPECS = ("synthetic", "synthetic:faces", "synthetic:objects")
"""Spec strings ``load_generator`` accepts ("synthetic" means "synthetic:faces")."""


def load_generator(spec: str = "synthetic", device="cpu", **options) -> nn.Module:
    """Load a generator by spec string.

    spec: "synthetic" (= "synthetic:faces"), "synthetic:faces" or
        "synthetic:objects"; anything else raises ValueError naming the known specs.
    device: where its buffers live (a torch device or its name).
    options (synthetic): resolution (default 64), supersample (default 2),
        march_steps, bisections, entanglement (default 0: view and light
        latents leave the identity alone; the benchmark uses
        ``bench.run.DEFAULT_ENTANGLEMENT``).
    The result is in eval mode and needs no gradients of its own (its
    "weights" are fixed buffers); gradients flow to the inputs.
    """
    if not isinstance(spec, str):
        raise ValueError(f"generator spec must be a string; known specs: {', '.join(KNOWN_SPECS)}")
    name = spec.strip()
    if name not in KNOWN_SPECS:
        raise ValueError(f"unknown generator spec {spec!r}; known specs: {', '.join(KNOWN_SPECS)}")
    from .synthetic import SyntheticGenerator

    category = name.split(":", 1)[1] if ":" in name else "faces"
    allowed = {"resolution", "supersample", "march_steps", "bisections", "entanglement"}
    unknown = set(options) - allowed
    if unknown:
        raise ValueError(f"unknown options for {spec!r}: {sorted(unknown)}; allowed: {sorted(allowed)}")
    generator = SyntheticGenerator(category, **options)
    return generator.to(device).eval()


__all__ = ["Generator", "KNOWN_SPECS", "load_generator"]

"""Counting a fit's reads back to the host: on a GPU each value read back
(``Tensor.item``, ``float()``, ``bool()``, ``int()``, ``tolist``) makes the
CPU wait for the device (docs/performance.md)."""
from __future__ import annotations

import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook

from gan2x.fit.schedule import FitResult, fit_target

READS = ("item", "__float__", "__bool__", "__int__", "tolist")

READS_PER_STAGE = 25
"""The reads a fit may make in a stage besides the one a step (the history,
the pseudo-sample draws), however long the stage."""


def fit_and_count_reads(generator, ws, target, settings) -> tuple[FitResult, int]:
    """``fit_target``'s result and the number of values it read back to the
    host, outside the generator's own calls (``mapping``, ``synthesis``: the
    built-in generator's ray caster reads sizes back, a real GAN does not)
    and outside the optimisers' steps (torch's Adam reads its step counters,
    which it keeps on the CPU)."""
    reads = 0
    generator_calls = 0
    optimiser_steps = 0

    def counting(name):
        original = getattr(torch.Tensor, name)

        def read(self, *args, **kwargs):
            nonlocal reads
            if not generator_calls and not optimiser_steps:
                reads += 1
            return original(self, *args, **kwargs)
        return read

    def in_generator(method):
        def call(*args, **kwargs):
            nonlocal generator_calls
            generator_calls += 1
            try:
                return method(*args, **kwargs)
            finally:
                generator_calls -= 1
        return call

    def step_starts(optimiser, args, kwargs):
        nonlocal optimiser_steps
        optimiser_steps += 1

    def step_ends(optimiser, args, kwargs):
        nonlocal optimiser_steps
        optimiser_steps -= 1

    hooks = [register_optimizer_step_pre_hook(step_starts), register_optimizer_step_post_hook(step_ends)]
    try:
        with pytest.MonkeyPatch.context() as patch:
            for name in ("mapping", "synthesis"):
                patch.setattr(generator, name, in_generator(getattr(generator, name)))
            for name in READS:
                patch.setattr(torch.Tensor, name, counting(name))
            result = fit_target(generator, ws, target, settings)
    finally:
        for hook in hooks:
            hook.remove()
    return result, reads

"""Optimiser steps that survive a bad batch (the fit's and the inversion's)."""
from __future__ import annotations

from dataclasses import dataclass

import torch

MAX_SKIPPED_IN_A_ROW = 20


@dataclass
class SkipCounter:
    """Steps ``guarded_step`` skipped for a non-finite loss or gradient."""

    total: int = 0
    """In all."""
    in_a_row: int = 0
    """Since the last step taken."""


def guarded_step(optimiser: torch.optim.Optimizer, loss: torch.Tensor, skipped: SkipCounter) -> bool:
    """Backward and step, unless the loss or a gradient is not finite (or
    the gradients' norm overflows): then the step is skipped (as
    mixed-precision scalers do) and counted in ``skipped``; too many in a
    row raise a clear error. Returns whether the step was taken.

    The check reads one boolean back from the device per step (the loss and
    the gradients' total norm together), so a GPU fit waits for the device
    once a step, not once per parameter."""
    optimiser.zero_grad(set_to_none=True)
    loss.backward()  # a non-finite loss leaves non-finite gradients, which the check below sees too
    gradients = [p.grad for group in optimiser.param_groups for p in group["params"] if p.grad is not None]
    finite = torch.isfinite(loss.detach())
    if gradients:
        finite = finite & torch.isfinite(torch.nn.utils.get_total_norm(gradients, foreach=True))
    if bool(finite):
        optimiser.step()
        skipped.in_a_row = 0
        return True
    optimiser.zero_grad(set_to_none=True)
    skipped.total += 1
    skipped.in_a_row += 1
    if skipped.in_a_row >= MAX_SKIPPED_IN_A_ROW:
        raise FloatingPointError(f"the fit diverged: {skipped.in_a_row} steps in a row had a non-finite loss or "
                                 "gradient; try another seed or a smaller learning rate")
    return False

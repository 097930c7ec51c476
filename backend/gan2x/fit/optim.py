"""Optimiser steps that survive a bad batch."""
from __future__ import annotations

import torch

MAX_SKIPPED_IN_A_ROW = 20


def guarded_step(optimiser: torch.optim.Optimizer, loss: torch.Tensor, skipped: list[int]) -> bool:
    """Backward and step, unless the loss or a gradient is not finite: then
    the step is skipped (as mixed-precision scalers do) and counted in
    ``skipped[0]``; too many in a row raise a clear error. Returns whether
    the step was taken."""
    optimiser.zero_grad(set_to_none=True)
    if torch.isfinite(loss):
        loss.backward()
        gradients = [p.grad for group in optimiser.param_groups for p in group["params"] if p.grad is not None]
        if all(bool(torch.isfinite(g).all()) for g in gradients):
            optimiser.step()
            skipped[1] = 0
            return True
        optimiser.zero_grad(set_to_none=True)
    skipped[0] += 1
    skipped[1] += 1
    if skipped[1] >= MAX_SKIPPED_IN_A_ROW:
        raise FloatingPointError(f"the fit diverged: {skipped[1]} steps in a row had a non-finite loss or "
                                 "gradient; try another seed or a smaller learning rate")
    return False

"""Optimiser steps that survive a bad batch."""
from __future__ import annotations

import torch

MAX_SKIPPED_IN_A_ROW = 20


def guarded_step(optimiser: torch.optim.Optimizer, loss: torch.Tensor, skipped: list[int]) -> bool:
    """Backward and step, unless the loss or a gradient is not finite (or
    the gradients' norm overflows): then the step is skipped (as
    mixed-precision scalers do) and counted in ``skipped[0]``; too many in a
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
        skipped[1] = 0
        return True
    optimiser.zero_grad(set_to_none=True)
    skipped[0] += 1
    skipped[1] += 1
    if skipped[1] >= MAX_SKIPPED_IN_A_ROW:
        raise FloatingPointError(f"the fit diverged: {skipped[1]} steps in a row had a non-finite loss or "
                                 "gradient; try another seed or a smaller learning rate")
    return False

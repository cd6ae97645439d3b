"""One guarded optimiser step, shared by every training loop that can meet a bad batch."""

from __future__ import annotations

import torch


def finite_step(optimizer: torch.optim.Optimizer, parameters, loss: torch.Tensor,
                max_grad_norm: float) -> bool:
    """Backward, clip to `max_grad_norm`, step; False (and no update) when the loss or the
    gradient is not finite, so one overflowing batch cannot poison the weights."""
    optimizer.zero_grad(set_to_none=True)
    if not bool(torch.isfinite(loss)):
        return False
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(parameters, max_grad_norm)
    if not bool(torch.isfinite(norm)):
        optimizer.zero_grad(set_to_none=True)
        return False
    optimizer.step()
    return True

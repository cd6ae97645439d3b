"""One guarded optimiser step, shared by every training loop that can meet a bad batch, and the
learning-rate schedule of the loops that a budget of target evaluations can stop."""

from __future__ import annotations

import math

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


class BudgetCosine:
    """Learning rate lr·(1 + cos π·p)/2, where the progress p is the larger of the fraction of
    `steps` taken and the fraction of `budget` target evaluations spent (budget 0: steps only).

    Why not torch's CosineAnnealingLR over `steps`: a loop that `method.budget` stops long
    before its `steps` would end at almost its full rate, and its last weights would carry the
    noise of large steps; here the rate reaches 0 wherever training ends first. Without a
    budget the rates equal CosineAnnealingLR's closed form.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, steps: int, budget: int = 0) -> None:
        self.optimizer, self.steps, self.budget = optimizer, steps, budget
        self.base = [group["lr"] for group in optimizer.param_groups]
        self.taken = 0

    def progress(self, spent: int) -> float:
        by_steps = self.taken / self.steps
        by_budget = spent / self.budget if self.budget else 0.0
        return min(1.0, max(by_steps, by_budget))

    def step(self, spent: int = 0) -> None:
        """After one update, with `spent` evaluations made so far by the loop."""
        self.taken += 1
        factor = 0.5 * (1.0 + math.cos(math.pi * self.progress(spent)))
        for group, base in zip(self.optimizer.param_groups, self.base):
            group["lr"] = base * factor

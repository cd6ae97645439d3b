"""Reverse-KL training of a spin sampler with an exact log q, by the score-function gradient.

For the Boltzmann law p_β(s) = exp(−βH(s))/Z(β),

    KL(q‖p_β) = E_q[f(s)] + ln Z(β),    f(s) = log q(s) + βH(s),

so E_q[f]/N is the variational βF/N, an upper bound on the exact one. Spins are discrete, so
there is no reparametrisation: the gradient is E_q[(f(s) − b)∇log q(s)] for any b that does not
depend on s (E_q[∇log q] = 0, which also removes the ∇ acting on the log q inside f). In a batch
s₁…s_B, bᵢ is the mean f of the *other* samples (leave-one-out; Kool, van Hoof & Welling 2019):
independent of sᵢ, so the estimate stays unbiased, while tracking the batch's level as the
plain batch mean of VAN (Wu, Wang & Zhang 2019) does with an O(1/B) bias.

β-conditioned models train on β drawn uniformly in [low, high] per sample (one expectation per
β, summed); `anneal_steps` ramps every training β linearly from 0 (VAN's annealing: a
near-uniform start has no modes to lose).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from heatbath.core.errors import TrainingDiverged
from heatbath.core.optim import BudgetCosine, finite_step
from heatbath.estimators.importance import kish_ess
from heatbath.flows.training import FlowTrainingLog

MAX_GRAD_NORM = 10.0
MAX_NONFINITE = 20     # skipped steps before training stops with an error


def loo_surrogate(log_q: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """A scalar whose gradient is the leave-one-out score-function estimate of ∇E_q[f]:
    mean over the batch of (fᵢ − bᵢ)·∇log q(sᵢ), bᵢ the mean f of the other samples."""
    f = f.detach()
    baseline = (f.sum() - f) / (len(f) - 1)
    return ((f - baseline) * log_q).mean()


@dataclass(frozen=True)
class TrainingBetas:
    """The β of every training sample at a step: uniform in [low, high] (one value when equal),
    times min(1, step / anneal_steps) while annealing (anneal_steps = 0: no ramp)."""

    low: float
    high: float
    anneal_steps: int = 0

    def draw(self, step: int, n: int, generator: torch.Generator) -> torch.Tensor:
        betas = torch.full((n,), self.low, dtype=torch.float64)
        if self.high > self.low:
            betas = betas + (self.high - self.low) * torch.rand(n, generator=generator,
                                                                dtype=torch.float64)
        ramp = min(1.0, step / self.anneal_steps) if self.anneal_steps else 1.0
        return betas * ramp


def train_reverse_kl(model, shape: tuple[int, int], energy: Callable[[torch.Tensor], torch.Tensor],
                     betas: TrainingBetas, *, steps: int, batch_size: int, lr: float,
                     generator: torch.Generator, budget: int = 0,
                     log_every: int | None = None) -> FlowTrainingLog:
    """Adam (cosine decay from lr to 0 over the steps or the budget, whichever runs out first)
    on KL(q‖p_β) for a model with `sample(n, L, M, beta, generator)` and
    `log_prob(spins, beta)`; `energy` is H without β (B, L, M) -> (B,).

    Every step evaluates H on batch_size lattices; `budget` (0: none) stops training before a
    step would take those evaluations past it. The log's loss is mean f / N (the variational
    βF/N at the batch's β) and its ess the Kish ESS fraction of log w = −f.
    """
    L, M = shape
    log_every = log_every or max(1, steps // 100)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = BudgetCosine(optimizer, steps, budget)
    logged_steps, losses, ess, window = [], [], [], []
    skipped, evals, budget_reached = 0, 0, False
    model.train()
    for step in range(1, steps + 1):
        if budget and evals + batch_size > budget:
            budget_reached = True
            break
        beta = betas.draw(step, batch_size, generator)
        spins, _ = model.sample(batch_size, L, M, beta, generator)
        log_q = model.log_prob(spins, beta)
        f = log_q.detach() + beta * energy(spins)
        evals += batch_size
        if finite_step(optimizer, list(model.parameters()), loo_surrogate(log_q, f),
                       MAX_GRAD_NORM):
            schedule.step(evals)
            window.append(float(f.mean()) / (L * M))
        else:
            skipped += 1
            if skipped > MAX_NONFINITE:
                raise TrainingDiverged(f"autoregressive training: {skipped} steps had a "
                                       f"non-finite loss or gradient (last at step {step}); "
                                       f"lower autoregressive.lr")
        if step % log_every == 0 or step == steps:
            logged_steps.append(step)
            losses.append(sum(window) / len(window) if window else math.nan)
            ess.append(kish_ess(-f.numpy()).value if bool(torch.isfinite(f).all()) else math.nan)
            window = []
    model.eval()
    return FlowTrainingLog(tuple(logged_steps), tuple(losses), tuple(ess), skipped, evals,
                           budget_reached)

"""Stochastic normalizing flows (Wu, Köhler & Noé, NeurIPS 2020).

    x₀ ~ p₀ = N(loc, scale² I)  →  [spline couplings → MCMC on π_k] × n_blocks  →  x_T

with intermediate densities log π_k(x) = (1 − β_k) log p₀(x) + β_k (−U(x)), β_k = k / n_blocks,
so the last block already samples the target. q(x_T) is intractable, but the *path* weight is
exact. With the forward path density q_f and a backward path density q_b,

    log w = −U(x_T) − log p₀(x₀) + Σ_t ΔS_t,     E[w] = Z exactly,

because p(x_T)·Π q_b / (p₀(x₀)·Π q_f) is a ratio of two normalised densities over whole paths.
The increments ΔS_t = log q_b(x_t → x_{t−1}) − log q_f(x_{t−1} → x_t) are

  coupling layer  log|det ∂x_t/∂x_{t−1}| (q_b/q_f of a bijection);
  ULA step        x' = x + ε∇log π(x) + √(2ε) ξ, with the backward kernel the same Langevin
                  step from x' back to x:
                  log N(x; x' + ε∇log π(x'), 2ε) − log N(x'; x + ε∇log π(x), 2ε);
  MALA step       the backward kernel is the Metropolis kernel itself; detailed balance
                  K(x'→x)/K(x→x') = π(x)/π(x') makes ΔS = log π_k(x) − log π_k(x')
                  (0 on rejection, where x' = x).

Training minimises E[−log w] (the path KL, up to log Z) through reparametrised noise: ULA steps
are differentiable (second derivatives of U); for MALA, as in the paper, the accept decision is
held fixed and gradients flow through the accepted proposals only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from heatbath.core import rng
from heatbath.flows.coupling import (Standardise, _scale_vector, alternating_couplings,
                                     init_generator)
from heatbath.flows.weighted import WeightedSamples
from heatbath.targets.base import EnergyTarget

KERNELS = ("langevin", "mala")


@dataclass(frozen=True)
class DensityPoint:
    """log π_k(x), ∇ log π_k(x) and U(x) at a batch of x (one energy+force evaluation)."""

    log_pi: torch.Tensor
    grad: torch.Tensor
    energy: torch.Tensor


class PathNoise:
    """Where an SNF path's randomness comes from, one call per draw along the path.

    With a generator (training): fast sequential draws for the whole batch. With a seed and the
    samples' ids: counter-based draws keyed by (seed, id, draw number), so sample i is the same
    whatever n and the batching (the path's draws come in the same order for every batch).
    """

    def __init__(self, generator: torch.Generator | None = None, seed: int | None = None,
                 ids: torch.Tensor | None = None) -> None:
        if (generator is None) == (seed is None) or (seed is not None and ids is None):
            raise ValueError("give either a generator, or a seed with the sample ids")
        self.generator, self.seed, self.ids, self.draws = generator, seed, ids, 0

    def normal(self, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
        self.draws += 1
        if self.seed is None:
            z = torch.randn(shape, generator=self.generator, dtype=like.dtype,
                            device=self.generator.device)
        else:
            z = rng.normal(self.seed, self.ids, self.draws, shape[1:], like.dtype)
        return z.to(like.device)

    def uniform(self, n: int, like: torch.Tensor) -> torch.Tensor:
        self.draws += 1
        if self.seed is None:
            u = torch.rand(n, generator=self.generator, dtype=like.dtype,
                           device=self.generator.device)
        else:
            u = rng.uniform(self.seed, self.ids, self.draws, (), like.dtype)
        return u.to(like.device)


class SNF(nn.Module):
    """A stochastic normalizing flow; draws (x, log w) with E[w] = Z.

    SNF(dim, n_blocks=4, layers_per_block=2, hidden=64, bins=8, bound=5.0, loc=0.0, scale=1.0,
        kernel="langevin", mcmc_steps=1, step_size=0.05, learn_step_size=True, event_shape=None,
        generator=None)

    loc/scale  the Gaussian p₀ = N(loc, scale² I) in data units, also the standardisation the
               couplings work in (their splines cover [−bound, bound] standardised units).
    step_size  initial ε of every MCMC step, in data units (one learnable ε per block).
    mcmc_steps 0 gives a plain coupling flow with the same layers, for comparison.
    generator  draws the initial hidden weights (default: a fixed seed).

    As for `Flow`, guess `scale` on the wide side (1.5–2× the target's spread).
    """

    def __init__(self, dim: int, n_blocks: int = 4, layers_per_block: int = 2, hidden: int = 64,
                 bins: int = 8, bound: float = 5.0, loc=0.0, scale=1.0, kernel: str = "langevin",
                 mcmc_steps: int = 1, step_size: float = 0.05, learn_step_size: bool = True,
                 event_shape: tuple[int, ...] | None = None,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        if kernel not in KERNELS:
            raise ValueError(f"unknown kernel '{kernel}'; choose one of {', '.join(KERNELS)}")
        if dim < 1 or n_blocks < 1 or layers_per_block < 0 or mcmc_steps < 0 or step_size <= 0:
            raise ValueError("need dim >= 1, n_blocks >= 1, layers_per_block >= 0, "
                             "mcmc_steps >= 0 and step_size > 0")
        self.dim, self.kernel, self.mcmc_steps = dim, kernel, mcmc_steps
        self.event_shape = tuple(event_shape) if event_shape is not None else (dim,)
        if math.prod(self.event_shape) != dim:
            raise ValueError(f"event_shape {self.event_shape} does not hold {dim} numbers")
        scale = _scale_vector(scale, dim, "scale")
        if not bool((scale > 0).all()):
            raise ValueError("scale must be positive")
        self.register_buffer("loc", _scale_vector(loc, dim, "loc"))
        self.register_buffer("scale", scale)
        self.register_buffer("betas", torch.arange(1, n_blocks + 1) / n_blocks)
        generator = init_generator(generator)
        self.blocks = nn.ModuleList(alternating_couplings(dim, layers_per_block, hidden, bins,
                                                          bound, generator)
                                    for _ in range(n_blocks))
        # A learnable affine after each block's couplings (identity at start): splines have
        # slope-1 tails, so without it q's tails would stay those of p₀ and could be lighter
        # than the target's — heavy-tailed weights and a log Z biased low in practice.
        self.affines = nn.ModuleList(Standardise(dim) for _ in range(n_blocks))
        self.log_step = nn.Parameter(torch.full((n_blocks,), math.log(step_size)),
                                     requires_grad=learn_step_size)

    # -- reference Gaussian p₀ ----------------------------------------------------------------
    def sample_base(self, n: int, generator: torch.Generator | PathNoise) -> torch.Tensor:
        noise = generator if isinstance(generator, PathNoise) else PathNoise(generator)
        return self.loc + self.scale * noise.normal((n, self.dim), self.loc)

    def base_log_prob(self, x: torch.Tensor) -> torch.Tensor:
        z = (x - self.loc) / self.scale
        return (-0.5 * z.pow(2).sum(dim=1) - self.scale.log().sum()
                - 0.5 * self.dim * math.log(2 * math.pi))

    # -- deterministic layers -----------------------------------------------------------------
    def _couple(self, k: int, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Block k's couplings and affine in standardised units (the fixed maps in and out of
        standardised units cancel in log|det J|)."""
        y = (x - self.loc) / self.scale
        log_det = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        for layer in [*self.blocks[k], self.affines[k]]:
            y, step = layer(y)
            log_det = log_det + step
        return self.loc + self.scale * y, log_det

    # -- stochastic layers --------------------------------------------------------------------
    def _evaluate(self, x: torch.Tensor, beta: torch.Tensor, target: EnergyTarget,
                  differentiable: bool) -> DensityPoint:
        """log π_β, its gradient and U at x; keeps the graph (for training) when differentiable."""
        with torch.enable_grad():
            xg = x if (differentiable and x.requires_grad) else x.detach().requires_grad_(True)
            energy = target.energy(xg.reshape(x.shape[0], *target.event_shape))
            log_pi = (1.0 - beta) * self.base_log_prob(xg) - beta * energy
            (grad,) = torch.autograd.grad(log_pi.sum(), xg, create_graph=differentiable)
        target.force_evals += x.shape[0]   # a gradient of U was taken: count it like a force
        if not differentiable:
            return DensityPoint(log_pi.detach(), grad.detach(), energy.detach())
        return DensityPoint(log_pi, grad, energy)

    def _mcmc_step(self, x: torch.Tensor, point: DensityPoint, beta: torch.Tensor,
                   eps: torch.Tensor, target: EnergyTarget, draws: PathNoise,
                   differentiable: bool) -> tuple[torch.Tensor, DensityPoint, torch.Tensor]:
        """One ULA or MALA step on π_β: (x', point at x', ΔS)."""
        noise = draws.normal(tuple(x.shape), x)
        proposal = x + eps * point.grad + torch.sqrt(2.0 * eps) * noise
        new = self._evaluate(proposal, beta, target, differentiable)
        # log N(x'; x + ε∇log π(x), 2ε) − log N(x; x' + ε∇log π(x'), 2ε): constants cancel.
        log_forward = -0.5 * noise.pow(2).sum(dim=1)
        back = x - proposal - eps * new.grad
        log_backward = -back.pow(2).sum(dim=1) / (4.0 * eps)
        if self.kernel == "langevin":
            return proposal, new, log_backward - log_forward
        log_accept = (new.log_pi - point.log_pi + log_backward - log_forward).detach()
        uniform = draws.uniform(x.shape[0], x)
        accept = torch.log(uniform) < log_accept
        keep = accept[:, None]
        moved = torch.where(keep, proposal, x)
        after = DensityPoint(torch.where(accept, new.log_pi, point.log_pi),
                             torch.where(keep, new.grad, point.grad),
                             torch.where(accept, new.energy, point.energy))
        # Detailed balance: K(x'→x)/K(x→x') = π(x)/π(x'); exactly 0 on rejection (x' = x).
        return moved, after, point.log_pi - after.log_pi

    # -- the path -----------------------------------------------------------------------------
    def weighted_sample(self, n: int, generator: torch.Generator | PathNoise,
                        target: EnergyTarget) -> WeightedSamples:
        """x_T with its path log-weight (log_q is None: q(x_T) is intractable).

        `generator` may be a `PathNoise` keyed per sample (see `importance_sample`).
        Differentiable in the parameters when gradients are enabled (training); under
        torch.no_grad() it still takes ∇U internally but keeps no graph.
        """
        differentiable = torch.is_grad_enabled()
        draws = generator if isinstance(generator, PathNoise) else PathNoise(generator)
        x = self.sample_base(n, draws)
        log_w = -self.base_log_prob(x)
        point = None
        for k in range(len(self.blocks)):
            x, log_det = self._couple(k, x)
            log_w = log_w + log_det
            point = None   # the couplings moved x: any cached density is stale
            if self.mcmc_steps == 0:
                continue
            beta, eps = self.betas[k], self.log_step[k].exp()
            point = self._evaluate(x, beta, target, differentiable)
            for _ in range(self.mcmc_steps):
                x, point, delta = self._mcmc_step(x, point, beta, eps, target, draws,
                                                  differentiable)
                log_w = log_w + delta
        # The last block runs at β = 1, so its cached point already holds U(x_T).
        energy = point.energy if point is not None else target.energy(
            x.reshape(n, *target.event_shape))
        x = x.reshape(n, *self.event_shape)
        return WeightedSamples(x, log_w - energy, None, energy)

    def sample_with_log_weights(self, n: int, generator: torch.Generator,
                                target: EnergyTarget) -> tuple[torch.Tensor, torch.Tensor]:
        """(x_T, log w) with E[w] = Z: log-mean-exp of log w is an unbiased-in-w log Z."""
        batch = self.weighted_sample(n, generator, target)
        return batch.x, batch.log_w

    def sample(self, n: int, generator: torch.Generator, target: EnergyTarget) -> torch.Tensor:
        """Samples x_T (approximately from the target; reweight with log w for exactness)."""
        with torch.no_grad():
            return self.weighted_sample(n, generator, target).x

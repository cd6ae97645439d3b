"""Stochastic normalizing flows (Wu, Köhler & Noé, NeurIPS 2020).

    x₀ ~ p₀ = N(loc, scale² I)  →  [spline couplings → MCMC on π_k] × n_blocks  →  x_T

a layer sequence whose block k is one bijection (its couplings and a learnable affine, in the
standardised units of p₀: `InStandardUnits`) followed by `mcmc_steps` stochastic layers on

    log π_k(x) = (1 − β_k) log p₀(x) + β_k (−U(x)),     β_k = k / n_blocks,

so the last block already samples the target. q(x_T) is intractable, but the *path* weight is
exact (`sequential.py`):

    log w = −U(x_T) − log p₀(x₀) + Σ_t ΔS_t,     E[w] = Z exactly,

with ΔS_t = log|det ∂x_t/∂x_{t−1}| for a block's bijection and the ULA / MALA path terms of
`stochastic.py` for its MCMC steps.

Training minimises E[−log w] (the path KL, up to log Z) through reparametrised noise: ULA steps
are differentiable (second derivatives of U); for MALA, as in the paper, the accept decision is
held fixed and gradients flow through the accepted proposals only.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from heatbath.flows.layers import (InStandardUnits, Standardise, alternating_couplings,
                                   init_generator, positive_scale_vector, scale_vector)
from heatbath.flows.noise import PathNoise
from heatbath.flows.sequential import SequentialFlow
from heatbath.flows.stochastic import MCMC_STEPS, AnnealedDensity


class SNF(SequentialFlow):
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

    # Keyed noise: the base draw has always used stream 1 for an SNF (0 for a Flow).
    base_stream = 1

    def __init__(self, dim: int, n_blocks: int = 4, layers_per_block: int = 2, hidden: int = 64,
                 bins: int = 8, bound: float = 5.0, loc=0.0, scale=1.0, kernel: str = "langevin",
                 mcmc_steps: int = 1, step_size: float = 0.05, learn_step_size: bool = True,
                 event_shape: tuple[int, ...] | None = None,
                 generator: torch.Generator | None = None) -> None:
        if kernel not in MCMC_STEPS:
            raise ValueError(f"unknown kernel '{kernel}'; choose one of {', '.join(MCMC_STEPS)}")
        if dim < 1 or n_blocks < 1 or layers_per_block < 0 or mcmc_steps < 0 or step_size <= 0:
            raise ValueError("need dim >= 1, n_blocks >= 1, layers_per_block >= 0, "
                             "mcmc_steps >= 0 and step_size > 0")
        super().__init__(dim, event_shape)
        self.kernel, self.mcmc_steps = kernel, mcmc_steps
        scale = positive_scale_vector(scale, dim)
        # Attribute names and registration order are the stored checkpoint keys (log_step, loc,
        # scale, betas, blocks.k.j.net.*, affines.k.*) and the optimiser's parameter order.
        self.register_buffer("loc", scale_vector(loc, dim, "loc"))
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

    def layers(self) -> list[nn.Module]:
        """Block by block: its bijection, then its MCMC steps on π_k.

        Built from the registered modules on every call: ε_k = exp(log_step_k) must enter each
        pass's graph anew, once per block (its steps share it, so its gradient is summed before
        the exp's backward, as it always was).
        """
        sequence: list[nn.Module] = []
        step = MCMC_STEPS[self.kernel]
        for k, (couplings, affine) in enumerate(zip(self.blocks, self.affines)):
            sequence.append(InStandardUnits(self.loc, self.scale, [*couplings, affine]))
            if self.mcmc_steps:
                density = AnnealedDensity(self.base_log_prob, self.betas[k])
                eps = self.log_step[k].exp()
                sequence += [step(density, eps) for _ in range(self.mcmc_steps)]
        return sequence

    # -- reference Gaussian p₀ ----------------------------------------------------------------
    def sample_base(self, n: int, noise: PathNoise) -> torch.Tensor:
        return self.loc + self.scale * noise.normal((n, self.dim), self.loc)

    def base_log_prob(self, x: torch.Tensor) -> torch.Tensor:
        z = (x - self.loc) / self.scale
        return (-0.5 * z.pow(2).sum(dim=1) - self.scale.log().sum()
                - 0.5 * self.dim * math.log(2 * math.pi))

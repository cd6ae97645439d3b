"""Flows of bijections only, from a Gaussian base: exact samples and exact densities.

    z ~ N(0, base_scale² I)  →  T = L_K ∘ … ∘ L_1  →  x,
    log q(x) = log N(T⁻¹(x); 0, base_scale² I) + log|det ∂T⁻¹/∂x|.

What every such flow shares — the base, the map both ways, the density — lives here once; a
kind of flow (`coupling.Flow`: spline couplings on vectors; `lattice.LatticeFlow`: periodic
convolutional couplings on L×M fields) only says which layers it has. `transform` is also what
HMC in the latent space needs (`heatbath.mcmc.latent`): x = T(z) and log|det ∂T/∂z|.
"""

from __future__ import annotations

import math

import torch

from heatbath.flows.layers import compose, compose_inverse
from heatbath.flows.noise import PathNoise
from heatbath.flows.sequential import Noise, SequentialFlow


class BijectiveFlow(SequentialFlow):
    """A `SequentialFlow` whose layers are all bijections, from N(0, base_scale² I)."""

    def __init__(self, dim: int, event_shape: tuple[int, ...] | None,
                 base_scale: float = 1.0) -> None:
        if base_scale <= 0:
            raise ValueError(f"base_scale must be positive; got {base_scale}")
        super().__init__(dim, event_shape)
        self.base_scale = float(base_scale)
        # Carries the flow's dtype and device for the base draw (not stored in checkpoints).
        self.register_buffer("dtype_anchor", torch.zeros(()), persistent=False)

    # -- base distribution ------------------------------------------------------------------
    def sample_base(self, n: int, noise: PathNoise) -> torch.Tensor:
        """z ~ N(0, base_scale² I), (n, dim)."""
        return self.base_scale * noise.normal((n, self.dim), self.dtype_anchor)

    def base_log_prob(self, z: torch.Tensor) -> torch.Tensor:
        var = self.base_scale ** 2
        return -0.5 * (z.pow(2).sum(dim=1) / var + self.dim * math.log(2 * math.pi * var))

    # -- the bijection ------------------------------------------------------------------------
    def transform(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Base → data, flat (n, dim): (x, log|det ∂x/∂z|)."""
        return compose(self.layers(), z)

    def inverse(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Data → base, flat (n, dim): (z, log|det ∂z/∂x|)."""
        return compose_inverse(self.layers(), x)

    # -- the density --------------------------------------------------------------------------
    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log q(x), (n,), for x of shape (n, *event_shape)."""
        z, log_det = self.inverse(self.flatten(x))
        return self.base_log_prob(z) + log_det

    def sample_and_log_prob(self, n: int, noise: Noise) -> tuple[torch.Tensor, torch.Tensor]:
        """(x, log q(x)) in one pass; differentiable in the parameters (reparametrised)."""
        x, log_q, _ = self._pass(n, noise, None)
        return self.unflatten(x), log_q

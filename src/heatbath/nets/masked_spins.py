"""The data half's masked lattice model as a spin sampler with an exact log q (energy half).

`MaskedLatticeSpins` is `MaskedLatticeNet` (periodic convolutions, any L×M) read by
`paths.masked.MaskedPath`: sites are revealed step by step in a fixed order, so the model is an
autoregressive one whose exact log q(s) = Σᵢ log p_θ(sᵢ | sites revealed before) is what the
sampler accumulates. It has the contract of `nets.masked_conv.MaskedConvSpins` —
`sample(n, L, M, beta, generator)` and a differentiable `log_prob(spins, beta)` over spin
*values* — so the reverse-KL trainer, the weighted draw, neural MCMC and size/β transfer take
either model.

Order. A step costs a pass over the whole lattice (the network is not causal: its
conditionals are recomputed whenever sites are revealed). `order="raster"` reveals one site per
step, as `fit --data` does: L·M passes. `order="sublattice"` (the default) reveals many sites
per step, all further apart than the network reads (`paths.masked.sublattice_steps`), which
keeps log q exact at S_L·S_M passes, S the smallest divisor of the side beyond the reach (64
for depth 4 on 16×16 and on 32×32, against 256 and 1024); `order="random"` one site per step
in a permutation drawn from `order_seed`. What the model buys over the masked
convolutions: q states per site (Potts, alloys), and the network and sampler of `fit --data`.

Values. The lattice's spin values (Ising −1, +1; Potts 0…q−1) are `values`, sorted; the
network sees their indices 0…q−1.

Symmetry (`symmetric`): for a field-free target, exp(−βH) is invariant under relabelling
every site s → s + k mod q (Ising: s → −s). The model is then the mixture
q_sym(s) = (1/q) Σₖ q(s + k mod q): draw from q, relabel by a uniform k; log q_sym stays exact
at q passes of log q each.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from heatbath.nets.masked_lattice import MaskedLatticeNet
from heatbath.paths.masked import ORDERS, MaskedPath, order_steps


class MaskedLatticeSpins(nn.Module):
    def __init__(self, values: torch.Tensor, channels: int = 32, depth: int = 4,
                 conditioned: bool = False, symmetric: bool = False,
                 generator: torch.Generator | None = None, order: str = "sublattice",
                 order_seed: int = 0) -> None:
        super().__init__()
        if order not in ORDERS:
            raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
        self.order, self.order_seed = order, order_seed
        values = torch.as_tensor(values, dtype=torch.float64)
        if values.ndim != 1 or len(values) < 2 or not bool((values.diff() > 0).all()):
            raise ValueError(f"values must be >= 2 increasing spin values, got {values.tolist()}")
        self._values = tuple(values.tolist())   # not a buffer: .to(dtype) must not round it
        self.conditioned, self.symmetric = conditioned, symmetric
        self.net = MaskedLatticeNet(len(self._values), channels, depth, generator or
                                    torch.Generator().manual_seed(0), conditioned=conditioned)

    @property
    def values(self) -> torch.Tensor:
        return torch.tensor(self._values, dtype=torch.float64)

    @property
    def num_states(self) -> int:
        return len(self._values)

    def _conditionals(self, beta, n: int):
        """net(x, masked) at β (one value or one per lattice), as MaskedPath calls it."""
        if not self.conditioned:
            return self.net
        if beta is None:
            raise ValueError("this model is conditioned on beta: pass beta (a number or (n,))")
        betas = torch.as_tensor(beta, dtype=torch.float64)
        betas = betas.expand(n) if betas.ndim == 0 else betas
        return lambda x, masked: self.net(x, masked, betas)

    def steps(self, L: int, M: int) -> list[torch.Tensor]:
        """The sites revealed at each step (flat indices), in order (`paths.masked.ORDERS`:
        all exact here, one site per step or a sublattice beyond the net's reach)."""
        return order_steps(self.order, (L, M), reach=self.net.reach, seed=self.order_seed)[0]

    def _states(self, spins: torch.Tensor) -> torch.Tensor:
        values = self.values
        states = torch.searchsorted(values, spins.double().contiguous())
        if bool((states >= self.num_states).any()) or not bool(
                (values[states.clamp(max=self.num_states - 1)] == spins).all()):
            raise ValueError(f"spins must take the values {self.values.tolist()}")
        return states

    def log_prob(self, spins: torch.Tensor, beta=None) -> torch.Tensor:
        """Exact log q(s), (B,) float64; a pass per step (q times as many when symmetric).
        Differentiable."""
        spins = spins.reshape(spins.shape[0], *spins.shape[-2:])
        states, net = self._states(spins), self._conditionals(beta, spins.shape[0])
        steps = self.steps(*states.shape[1:])
        if not self.symmetric:
            return MaskedPath.ordered_log_prob(net, states, steps)
        shifted = [MaskedPath.ordered_log_prob(net, (states - k) % self.num_states, steps)
                   for k in range(self.num_states)]
        return torch.logsumexp(torch.stack(shifted), 0) - math.log(self.num_states)

    @torch.no_grad()
    def sample(self, n: int, L: int, M: int, beta=None,
               generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """n exact draws (n, L, M) of spin values (float64) and their log q (n,), float64.
        Every uniform (one per site, then the relabelling's) is drawn first, per draw."""
        if L < 2 or M < 2:
            raise ValueError(f"lattices must be at least 2×2, got {L}×{M}")
        drawn = torch.rand(n, L * M + self.symmetric, generator=generator, dtype=torch.float64)
        net = self._conditionals(beta, n)
        states, log_q = MaskedPath().sample(net, drawn[:, :L * M], (L, M),
                                            steps=self.steps(L, M))
        if self.symmetric:
            shift = (drawn[:, -1] * self.num_states).long().clamp(max=self.num_states - 1)
            states = (states + shift[:, None, None]) % self.num_states
            log_q = self.log_prob(self.values[states], beta)
        return self.values[states], log_q

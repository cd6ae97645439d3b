"""A flow as a sequence of layers, and the one sampling path every flow shares.

    x₀ ~ p₀  →  layer₁  →  …  →  layer_L  →  x,        layer_l: x ↦ (x', Δ_l)

Bijective layers (`layers.py`) return Δ_l = log|det ∂x'/∂x|; stochastic layers
(`stochastic.py`) return their path term ΔS_l. With the path's log-density

    log q = log p₀(x₀) − Σ_l Δ_l,       log w = −U(x) − log q,

E[w] = Z exactly: for bijections only, q is the density of x (change of variables); with
stochastic layers w = e^{−U(x)}·Π q_b / (p₀(x₀)·Π q_f) is the ratio of an unnormalised
(mass Z) to a normalised density over whole paths.

The Δ's of consecutive bijections are summed first (from 0, in order: they compose into one
bijection) and that run's total is booked into log q when a stochastic layer or the end comes.
This fixes the rounding of log q, which is why it is a rule and not a detail: a coupling flow
books Σ log|det J| once, as it always has, and an SNF books each block's couplings as one term
between its MCMC steps — so stored seeds keep giving bit-identical weights. (The one exception:
an SNF with mcmc_steps=0 is all bijections, so its blocks now book as one run; its samples and
gradients are unchanged, log w moves in the last bits.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from heatbath.flows.noise import PathNoise
from heatbath.flows.stochastic import PathState
from heatbath.flows.weighted import WeightedSamples
from heatbath.targets.base import EnergyTarget

Noise = torch.Generator | PathNoise


def run_layers(layers: Sequence[nn.Module], x: torch.Tensor, log_q: torch.Tensor,
               path: PathState) -> tuple[torch.Tensor, torch.Tensor]:
    """Push flat x (n, dim) through `layers`: (x_L, log q − Σ Δ_l), runs booked as above.
    A stochastic layer clears `path.exact_density`: log q is then a path term, not q(x)."""
    run = None
    for layer in layers:
        if layer.bijective:
            if run is None:
                run = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
            x, log_det = layer(x)
            run = run + log_det
            path.moved()
            continue
        if run is not None:
            log_q, run = log_q - run, None
        path.exact_density = False
        x, delta = layer(x, path)
        log_q = log_q - delta
    if run is not None:
        log_q = log_q - run
    return x, log_q


class SequentialFlow(nn.Module):
    """Base of every flow: a reference p₀ and `layers()`; sampling is shared.

    Subclasses define `layers()`, `sample_base(n, noise)` (flat (n, dim)), `base_log_prob(x)`
    and `base_stream`, the counter-based stream of the base draw under keyed noise (the
    layers' draws take the following streams).
    """

    base_stream = 0

    def __init__(self, dim: int, event_shape: tuple[int, ...] | None) -> None:
        super().__init__()
        self.dim = dim
        self.event_shape = tuple(event_shape) if event_shape is not None else (dim,)
        if math.prod(self.event_shape) != dim:
            raise ValueError(f"event_shape {self.event_shape} does not hold {dim} numbers")

    def layers(self) -> Sequence[nn.Module]:
        raise NotImplementedError

    def sample_base(self, n: int, noise: PathNoise) -> torch.Tensor:
        raise NotImplementedError

    def base_log_prob(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    # -- shapes ---------------------------------------------------------------------------
    def flatten(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], self.dim)

    def unflatten(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.event_shape)

    # -- the one sampling path ------------------------------------------------------------
    def _pass(self, n: int, noise: Noise,
              target: EnergyTarget | None) -> tuple[torch.Tensor, torch.Tensor, PathState]:
        """Flat x (n, dim), its path log q, and the pass's state (for the final energy)."""
        path = PathState(PathNoise.of(noise), target, torch.is_grad_enabled())
        x = self.sample_base(n, path.noise)
        x, log_q = run_layers(self.layers(), x, self.base_log_prob(x), path)
        return x, log_q, path

    def weighted_sample(self, n: int, noise: Noise, target: EnergyTarget) -> WeightedSamples:
        """n samples with log w = −U(x) − log q; log_q is None unless it is log q(x) itself.

        `noise`: a torch.Generator (sequential draws) or a `PathNoise` (e.g. keyed per sample,
        see `importance_sample`). Differentiable in the parameters when gradients are enabled
        (training); under torch.no_grad() MCMC layers still take ∇U but keep no graph.
        """
        x, log_q, path = self._pass(n, noise, target)
        energy = path.energy_at(x)
        exact = log_q if path.exact_density else None
        return WeightedSamples(self.unflatten(x), -energy - log_q, exact, energy)

    def sample_with_log_weights(self, n: int, noise: Noise,
                                target: EnergyTarget) -> tuple[torch.Tensor, torch.Tensor]:
        """(x, log w) with E[w] = Z: log-mean-exp of log w estimates log Z."""
        batch = self.weighted_sample(n, noise, target)
        return batch.x, batch.log_w

    def sample(self, n: int, noise: Noise, target: EnergyTarget | None = None) -> torch.Tensor:
        """x (n, *event_shape); flows with MCMC layers need `target`. Reweight with log w for
        exactness. Differentiable when gradients are enabled."""
        return self.unflatten(self._pass(n, noise, target)[0])

"""Flow annealed importance sampling bootstrap (FAB; Midgley et al., ICLR 2023), without the
replay buffer.

FAB trains a flow q_θ on the α = 2 divergence D₂(p‖q) = log ∫ p²/q. Unlike the reverse KL, it
punishes a missed mode without bound (p²/q explodes where q has no mass), so the minimiser
covers every mode. Its gradient is −E_g[w̄ ∇ log q_θ] under g ∝ p²/q, the distribution that
minimises the variance of importance weights for p under q. Each step therefore runs AIS from q
to g and takes the surrogate loss

    L(θ) = −Σᵢ w̄ᵢ log q_θ(xᵢ),      w̄ = softmax(log w_AIS), held fixed.

The AIS path between q and g is linear in β:

    log γ_β = (1 − β) log q + β (−2U − log q),

i.e. the tempered family of `heatbath.mcmc.density.TemperedDensity` with the flow as base and
the "energy" 2U + log q — so the existing AIS loop and MCMC moves run it unchanged. Gradients
of log q with respect to x come from autograd through the spline inverse; the flow's
parameters are held fixed inside AIS.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from heatbath.annealing.ais import ais
from heatbath.mcmc.moves import Move
from heatbath.targets.base import EnergyTarget


@dataclass(frozen=True)
class FabAnnealing:
    """The AIS run of every FAB step: its β grid (0 → 1) and the move made at each β."""

    betas: torch.Tensor
    move: Move


class _FlowAsBase:
    """The flow seen by AIS as a normalised base p₀ = q (flat coordinates, no parameter grads)."""

    def __init__(self, flow) -> None:
        self.flow = flow

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        with torch.no_grad():
            return self.flow.flatten(self.flow.sample(n, generator))

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return self.flow.log_prob(x)


def fab_batch(flow, target: EnergyTarget, n: int, generator: torch.Generator,
              annealing: FabAnnealing) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, log w): n AIS samples from q towards g ∝ p²/q, detached, x flat (n, dim)."""
    event_shape = target.event_shape

    def doubled_energy_plus_log_q(x: torch.Tensor) -> torch.Tensor:
        return 2.0 * target.energy(x.reshape(x.shape[0], *event_shape)) + flow.log_prob(x)

    base = _FlowAsBase(flow)
    result = ais(doubled_energy_plus_log_q, base.sample(n, generator), annealing.betas,
                 annealing.move, generator, base=base)
    return result.x.detach(), result.log_w.detach()


def fab_loss(flow, x: torch.Tensor, log_w: torch.Tensor) -> torch.Tensor:
    """−Σ w̄ log q_θ(x) with self-normalised, fixed weights w̄."""
    weights = torch.softmax(log_w.to(torch.float64), 0).to(x.dtype)
    return -(weights * flow.log_prob(x)).sum()

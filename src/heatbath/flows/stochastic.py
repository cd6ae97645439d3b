"""Stochastic flow layers: one MCMC step on an intermediate density, with its path term ΔS.

A stochastic layer is a module with `forward(x, path) = (x', ΔS)`: it draws from `path.noise`,
evaluates U on `path.target`, and returns the increment of the path log-weight

    ΔS = log q_b(x' → x) − log q_f(x → x'),

the ratio of a backward to the forward kernel (Wu, Köhler & Noé, NeurIPS 2020):

  ULA step   x' = x + ε∇log π(x) + √(2ε) ξ, the backward kernel the same Langevin step from x'
             back to x:  ΔS = log N(x; x' + ε∇log π(x'), 2ε) − log N(x'; x + ε∇log π(x), 2ε);
  MALA step  the same proposal, accepted with min(1, π(x')q(x'→x) / π(x)q(x→x')); the backward
             kernel is the Metropolis kernel itself, and detailed balance
             K(x'→x)/K(x→x') = π(x)/π(x') gives ΔS = log π(x) − log π(x') (0 on rejection).

Both run on log π_β(x) = (1 − β) log p₀(x) + β(−U(x)) (`AnnealedDensity`). ULA steps are
differentiable (second derivatives of U); for MALA the accept decision is held fixed and
gradients flow through the accepted proposals only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from heatbath.flows.noise import PathNoise
from heatbath.samplers.transition import gaussian_step_log_density
from heatbath.targets.base import EnergyTarget


@dataclass(frozen=True)
class DensityPoint:
    """log π_β(x), ∇ log π_β(x) and U(x) at a batch of x (one energy+force evaluation)."""

    log_pi: torch.Tensor
    grad: torch.Tensor
    energy: torch.Tensor


class PathState:
    """What a pass through a flow carries besides x: its noise, the target and a cached density.

    `point` holds the last density evaluation at the current x (made by `density`); a bijection
    moves x and clears it, so consecutive MCMC steps on one density share one evaluation.
    `differentiable`: keep the graph for training (gradients enabled when the pass started).
    `exact_density`: no stochastic layer has run, so the path's log q is the density of x.
    """

    def __init__(self, noise: PathNoise, target: EnergyTarget | None,
                 differentiable: bool) -> None:
        self.noise, self.target, self.differentiable = noise, target, differentiable
        self.point: DensityPoint | None = None
        self.density: AnnealedDensity | None = None
        self.exact_density = True

    def moved(self) -> None:
        """x changed outside a density's view: any cached point is stale."""
        self.point = self.density = None

    def energy_at(self, x: torch.Tensor) -> torch.Tensor:
        """U(x) at the end of the pass, from the cached point when there is one."""
        if self.point is not None:
            return self.point.energy
        return self.target.energy(x.reshape(x.shape[0], *self.target.event_shape))


@dataclass(frozen=True)
class AnnealedDensity:
    """log π_β(x) = (1 − β) log p₀(x) − β U(x) between a reference p₀ (flat x) and the target."""

    reference_log_prob: Callable[[torch.Tensor], torch.Tensor]
    beta: torch.Tensor

    def evaluate(self, x: torch.Tensor, target: EnergyTarget,
                 differentiable: bool) -> DensityPoint:
        """log π_β, its gradient and U at x; keeps the graph (for training) when differentiable."""
        with torch.enable_grad():
            xg = x if (differentiable and x.requires_grad) else x.detach().requires_grad_(True)
            energy = target.energy(xg.reshape(x.shape[0], *target.event_shape))
            log_pi = (1.0 - self.beta) * self.reference_log_prob(xg) - self.beta * energy
            (grad,) = torch.autograd.grad(log_pi.sum(), xg, create_graph=differentiable)
        target.force_evals += x.shape[0]   # a gradient of U was taken: count it like a force
        if not differentiable:
            return DensityPoint(log_pi.detach(), grad.detach(), energy.detach())
        return DensityPoint(log_pi, grad, energy)


class LangevinStep(nn.Module):
    """One unadjusted Langevin (ULA) step on `density` with step size ε (a tensor, may be
    learnable): forward(x, path) = (x', ΔS)."""

    bijective = False

    def __init__(self, density: AnnealedDensity, step_size: torch.Tensor) -> None:
        super().__init__()
        self.density, self.eps = density, step_size

    def _start(self, x: torch.Tensor, path: PathState) -> DensityPoint:
        """The density at x: the cached point if this density made it, else a new evaluation."""
        if path.target is None:
            raise ValueError("a flow with MCMC layers needs the target to sample (target=...)")
        if path.point is None or path.density is not self.density:
            path.point = self.density.evaluate(x, path.target, path.differentiable)
            path.density = self.density
        return path.point

    def _propose(self, x: torch.Tensor, point: DensityPoint, path: PathState):
        """Proposal x' with its density point, log q_f(x → x') and log q_b(x' → x)."""
        noise = path.noise.normal(tuple(x.shape), x)
        forward_mean = x + self.eps * point.grad
        proposal = forward_mean + torch.sqrt(2.0 * self.eps) * noise
        new = self.density.evaluate(proposal, path.target, path.differentiable)
        log_forward = gaussian_step_log_density(proposal, forward_mean, 2.0 * self.eps)
        log_backward = gaussian_step_log_density(x, proposal + self.eps * new.grad,
                                                 2.0 * self.eps)
        return proposal, new, log_forward, log_backward

    def forward(self, x: torch.Tensor, path: PathState) -> tuple[torch.Tensor, torch.Tensor]:
        proposal, new, log_forward, log_backward = self._propose(x, self._start(x, path), path)
        path.point = new
        return proposal, log_backward - log_forward


class MALAStep(LangevinStep):
    """One Metropolis-adjusted Langevin step: the ULA proposal, accepted or rejected;
    ΔS = log π(x) − log π(x') by detailed balance, exactly 0 on rejection (x' = x)."""

    def forward(self, x: torch.Tensor, path: PathState) -> tuple[torch.Tensor, torch.Tensor]:
        point = self._start(x, path)
        proposal, new, log_forward, log_backward = self._propose(x, point, path)
        log_accept = (new.log_pi - point.log_pi + log_backward - log_forward).detach()
        accept = torch.log(path.noise.uniform(x.shape[0], x)) < log_accept
        keep = accept[:, None]
        after = DensityPoint(torch.where(accept, new.log_pi, point.log_pi),
                             torch.where(keep, new.grad, point.grad),
                             torch.where(accept, new.energy, point.energy))
        path.point = after
        return torch.where(keep, proposal, x), point.log_pi - after.log_pi


MCMC_STEPS: dict[str, type[LangevinStep]] = {"langevin": LangevinStep, "mala": MALAStep}

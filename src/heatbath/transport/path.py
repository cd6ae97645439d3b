"""The annealed path a transport sampler follows, and the one evaluation each state needs.

    π_t(x) = exp(−V_t(x)) / Z_t,   V_t = (1 − β(t))·(−log p0) + β(t)·U,

between a normalised Gaussian base p0 (t = 0, Z_0 = 1) and the target exp(−U) (t = 1, Z_1 = Z):
the family AIS and SMC anneal along (`annealing`), so a learned drift adds to it and nothing else
changes. β(t) is a smooth curve of `annealing.BETA_SCHEDULES` (`linear` is NETS's
U_t = (1 − t)U_0 + tU_1; `geometric` its exponential counterpart, which spends its time near
β = 0, where π_t narrows fastest), and the sampler steps through t_k = k/K. The drift is a
function of t, so it only has to keep up with π_t at the pace the curve sets, and ∂_tV_t =
β'(t)(U + log p0) is defined at every t (a piecewise-linear β would jump at grid points).

One evaluation of U and ∇U at a state (a `PathPoint`, with log p0 and its gradient, which cost
nothing) gives V_t, ∇V_t and ∂V/∂β at *every* t. So a stored state serves the weights, the
losses and any later time without evaluating the target again: training on stored trajectories
costs network evaluations only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from heatbath.annealing.bases import GaussianBase
from heatbath.targets.base import EnergyTarget

Curve = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]   # t -> (β(t), dβ/dt)


@dataclass(frozen=True)
class PathPoint:
    """U, ∇U, log p0 and ∇log p0 at a batch of flat states (N, D)."""

    energy: torch.Tensor
    grad_energy: torch.Tensor
    base_log_prob: torch.Tensor
    base_grad: torch.Tensor

    def potential(self, beta: torch.Tensor | float) -> torch.Tensor:
        """V_β = −(1 − β) log p0 + β U, (N,); β a number or one per state."""
        return -(1.0 - beta) * self.base_log_prob + beta * self.energy

    def grad_potential(self, beta: torch.Tensor | float) -> torch.Tensor:
        """∇V_β, (N, D)."""
        if isinstance(beta, torch.Tensor) and beta.dim() == 1:
            beta = beta[:, None]
        return -(1.0 - beta) * self.base_grad + beta * self.grad_energy

    def potential_beta_derivative(self) -> torch.Tensor:
        """∂V/∂β = U + log p0, (N,): times dβ/dt it is ∂_t V_t."""
        return self.energy + self.base_log_prob

    def take(self, rows: torch.Tensor | slice) -> "PathPoint":
        """The points at `rows` of the first axis (walkers, or grid times of stored walks)."""
        return PathPoint(self.energy[rows], self.grad_energy[rows], self.base_log_prob[rows],
                         self.base_grad[rows])


class AnnealedPath:
    """π_t from `base` to `target` along β(t) = curve(t), in `steps` steps t_k = k/K."""

    def __init__(self, target: EnergyTarget, base: GaussianBase, curve: Curve,
                 steps: int) -> None:
        if steps < 1:
            raise ValueError(f"a transport path needs at least one step, got {steps}")
        self.target, self.base, self.curve, self.steps = target, base, curve, int(steps)
        self.dim = target.dim
        self.times = torch.linspace(0.0, 1.0, self.steps + 1, dtype=torch.float64)
        self.betas = self.beta(self.times)
        if abs(float(self.betas[0])) > 1e-12 or abs(float(self.betas[-1]) - 1.0) > 1e-12:
            raise ValueError("a transport path's β curve must run from 0 to 1")

    def beta(self, t: torch.Tensor) -> torch.Tensor:
        return self.curve(t.to(torch.float64))[0]

    def beta_rate(self, t: torch.Tensor) -> torch.Tensor:
        """dβ/dt, (N,) float64."""
        return self.curve(t.to(torch.float64))[1]

    def point_at(self, x: torch.Tensor, energy: torch.Tensor,
                 grad_energy: torch.Tensor) -> PathPoint:
        """The PathPoint of states (…, D) whose U and ∇U are known (stored): the base's parts
        are recomputed, they cost nothing."""
        flat = x.reshape(-1, x.shape[-1])
        return PathPoint(energy, grad_energy, self.base.log_prob(flat).reshape(energy.shape),
                         self.base.grad_log_prob(flat).reshape(x.shape))

    def evaluate(self, x: torch.Tensor) -> PathPoint:
        """The path at flat states x (N, D): one counted energy and force evaluation each."""
        energy, force = self.target.energy_and_force(
            x.reshape(x.shape[0], *self.target.event_shape))
        return PathPoint(energy.to(x.dtype), -force.reshape(x.shape).to(x.dtype),
                         self.base.log_prob(x), self.base.grad_log_prob(x))

"""Moves: one MCMC transition at a given member of a tempered family, for PT, AIS and SMC.

A move is called as `move(density, x, generator, log_prob=None, grad=None) -> x_new`, where
`density` is a `TemperedDensity` (β a number or one per row). The caller passes log π and ∇ log π
at x when it has already evaluated them (AIS/SMC/PT always have), so a move costs only its own
kernel steps. `needs_grad` tells the caller whether to evaluate gradients.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch

from heatbath.mcmc.continuous import Kernel, Params, run_chain
from heatbath.mcmc.density import TemperedDensity
from heatbath.mcmc.spins import IsingModel, Sweep, heat_bath_sweep


class Move(Protocol):
    """One transition leaving `density` invariant; `needs_grad` asks the caller for ∇ log π."""

    needs_grad: bool

    def __call__(self, density: TemperedDensity, x: torch.Tensor, generator: torch.Generator,
                 log_prob: torch.Tensor | None = None,
                 grad: torch.Tensor | None = None) -> torch.Tensor: ...


@dataclass(frozen=True)
class MCMCMove:
    """`n_steps` steps of a continuous kernel, started afresh at x (momenta redrawn for BAOAB)."""

    kernel: Kernel
    params: Params
    n_steps: int = 1

    @property
    def needs_grad(self) -> bool:
        return self.kernel.needs_grad

    def __call__(self, density: TemperedDensity, x: torch.Tensor, generator: torch.Generator,
                 log_prob: torch.Tensor | None = None,
                 grad: torch.Tensor | None = None) -> torch.Tensor:
        state = self.kernel.init(density, x, generator, log_prob=log_prob, grad=grad)
        state, _ = run_chain(self.kernel, density, state, generator, self.params, self.n_steps)
        return state.x


@dataclass(frozen=True)
class SpinMove:
    """`n_sweeps` sweeps of a spin-lattice model (Ising or Potts: `IsingModel`, `PottsModel`;
    the checkerboard heat bath by default) at the density's β.

    The density must be the inverse-temperature family of this very model, exp(−β H): its
    energy must equal `model` and it must have no base (a uniform spin base is a constant anyway).
    """

    model: IsingModel
    sweep: Sweep = heat_bath_sweep
    n_sweeps: int = 1

    needs_grad = False

    def __call__(self, density: TemperedDensity, x: torch.Tensor, generator: torch.Generator,
                 log_prob: torch.Tensor | None = None,
                 grad: torch.Tensor | None = None) -> torch.Tensor:
        if density.base is not None or density.energy != self.model:
            raise ValueError("SpinMove samples exp(-beta*H) of its own IsingModel: the density "
                             "must be TemperedDensity(model, beta) with no base")
        for _ in range(self.n_sweeps):
            x = self.sweep(x, density.beta, self.model.J, self.model.h, generator)
            self.model.count(x.shape[0])
        return x

"""Log densities the MCMC kernels run on, and the tempered family shared by PT, AIS and SMC.

Kernels never see a target directly: they see a *log density* `log_prob(x) -> (N,)`. A target
enters through `TemperedDensity`, which also covers every intermediate distribution the
annealing and tempering code needs:

    log π_β(x) = β·(−U(x)) + (1 − β)·log p0(x)      (with a base p0)
    log π_β(x) = β·(−U(x))                           (without: plain inverse temperature)

Both are linear in β, log π_β(x) = a(x) + β·φ(x) with a = log p0 (or 0) and φ = −U − a. A
`PathPoint` holds (a, φ) and their gradients at a batch of x, so that one energy evaluation
serves the AIS/SMC weight increment, the PT swap test *and* the initial state of the next MCMC
move, at whatever β.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol, Union

import torch

from heatbath.targets.base import EnergyTarget

Energy = Union[EnergyTarget, Callable[[torch.Tensor], torch.Tensor]]
Beta = Union[float, torch.Tensor]   # a number, or one value per row (N,)


class LogDensity(Protocol):
    """Anything callable as log_prob(x) -> (N,); may offer value_and_grad(x) to save autograd."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor: ...


class Base(Protocol):
    """A tractable, normalised reference distribution p0."""

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor: ...

    def log_prob(self, x: torch.Tensor) -> torch.Tensor: ...


def per_row(value: Beta, like: torch.Tensor) -> Beta:
    """Reshape a per-row (N,) tensor so that it broadcasts against `like` (N, *event)."""
    if isinstance(value, torch.Tensor) and value.ndim == 1:
        return value.reshape(-1, *([1] * (like.ndim - 1)))
    return value


def flat_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum over all event dimensions: (N, *event) -> (N,)."""
    return t.reshape(t.shape[0], -1).sum(dim=1)


def _autograd_value_and_grad(fn: Callable[[torch.Tensor], torch.Tensor],
                             x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.enable_grad():
        xg = x.detach().requires_grad_(True)
        value = fn(xg)
        (grad,) = torch.autograd.grad(value.sum(), xg)
    return value.detach(), grad


def energy_of(energy: Energy, x: torch.Tensor) -> torch.Tensor:
    """U(x), (N,): a target through its counted `energy`, a plain callable directly."""
    if isinstance(energy, EnergyTarget):
        return energy.energy(x)
    return energy(x)


def energy_and_grad(energy: Energy, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(U(x), ∇U(x)); a target goes through `energy_and_force` so its force counter is kept."""
    if isinstance(energy, EnergyTarget):
        u, force = energy.energy_and_force(x)
        return u, -force
    return _autograd_value_and_grad(energy, x)


def log_prob_and_grad(density: LogDensity, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(log π(x), ∇ log π(x)), by the density's own `value_and_grad` if it has one."""
    own = getattr(density, "value_and_grad", None)
    if own is not None:
        return own(x)
    return _autograd_value_and_grad(density, x)


@dataclass(frozen=True)
class PathPoint:
    """(a, φ) of log π_β = a + β·φ at a batch of x, with gradients when they were asked for."""

    log_base: torch.Tensor               # a(x) = log p0(x), zeros without a base, (N,)
    phi: torch.Tensor                    # φ(x) = −U(x) − a(x) = d log π_β / dβ, (N,)
    grad_log_base: torch.Tensor | None   # ∇a, (N, *event)
    grad_phi: torch.Tensor | None        # ∇φ, (N, *event)

    def log_prob(self, beta: Beta) -> torch.Tensor:
        return self.log_base + beta * self.phi

    def grad(self, beta: Beta) -> torch.Tensor | None:
        if self.grad_phi is None:
            return None
        return self.grad_log_base + per_row(beta, self.grad_phi) * self.grad_phi

    def take(self, index: torch.Tensor) -> "PathPoint":
        """Rows `index` (a permutation or a resampling), keeping everything aligned."""
        pick = (lambda t: None if t is None else t[index])
        return PathPoint(self.log_base[index], self.phi[index], pick(self.grad_log_base),
                         pick(self.grad_phi))


class TemperedDensity:
    """log π_β(x) = β·(−U(x)) + (1 − β)·log p0(x); β a number or one value per row.

    With `base=None` the (1 − β) term is dropped: π_β ∝ exp(−βU), the inverse-temperature family
    (β = 1 is the target itself). `energy` is an `EnergyTarget` or any callable x -> U(x) (N,).
    """

    def __init__(self, energy: Energy, beta: Beta = 1.0, base: Base | None = None) -> None:
        self.energy = energy
        self.beta = beta
        self.base = base

    def with_beta(self, beta: Beta) -> "TemperedDensity":
        return TemperedDensity(self.energy, beta, self.base)

    def point(self, x: torch.Tensor, need_grad: bool) -> PathPoint:
        """Evaluate (a, φ) at x: one energy evaluation (and one force evaluation if need_grad)."""
        if need_grad:
            u, grad_u = energy_and_grad(self.energy, x)
        else:
            u, grad_u = energy_of(self.energy, x), None
        if self.base is None:
            zeros = torch.zeros_like(u)
            grad_zero = None if grad_u is None else torch.zeros_like(grad_u)
            return PathPoint(zeros, -u, grad_zero, None if grad_u is None else -grad_u)
        if need_grad:
            log_p0, grad_p0 = _autograd_value_and_grad(self.base.log_prob, x)
            return PathPoint(log_p0, -u - log_p0, grad_p0, -grad_u - grad_p0)
        log_p0 = self.base.log_prob(x)
        return PathPoint(log_p0, -u - log_p0, None, None)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.point(x, need_grad=False).log_prob(self.beta)

    def value_and_grad(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        found = self.point(x, need_grad=True)
        return found.log_prob(self.beta), found.grad(self.beta)


def as_log_density(model: EnergyTarget | LogDensity) -> LogDensity:
    """The thin wrapper that lets every kernel take a target: target ↦ log π = −U."""
    if isinstance(model, EnergyTarget):
        return TemperedDensity(model, 1.0)
    if not callable(model):
        raise TypeError(f"expected an EnergyTarget or a callable log density, got {type(model)}")
    return model


def energy_evals_of(energy: Energy) -> int | None:
    """The target's running count of energy evaluations; None for a plain callable."""
    return energy.energy_evals if isinstance(energy, EnergyTarget) else None

"""Continuous MCMC kernels as pure `(init, step)` functions over an immutable `ChainState`.

Every kernel is batched: x is (chains, *event_shape) and each chain is an independent Markov
chain with its own accept/reject. Kernels take a log density `log_prob(x) -> (N,)` (see
`density.py`); an `EnergyTarget` is accepted everywhere and wrapped as log π = −U. Step sizes may
be a number or one value per chain (N,), which is how parallel tempering gives each rung its own.

Kernels (`RWM`, `MALA`, `HMC`, `BAOAB`) are `Kernel` records: `kernel.init(density, x0, ...)`
builds the state, `kernel.step(density, state, generator, params)` returns the next one; the
state passed in is never modified (jax-md `simulate.py` style).

BAOAB is *unadjusted* underdamped Langevin (no accept/reject), so its stationary law differs
from π: configurational averages carry an O(dt²) bias in general (Leimkuhler & Matthews 2013,
which also shows the x-marginal is exact for a Gaussian target, while ⟨p²⟩ = 1/(1 − dt²ω²/4)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable, Union

import torch

from heatbath.mcmc.density import (LogDensity, as_log_density, flat_sum, log_prob_and_grad,
                                   per_row)

StepSize = Union[float, torch.Tensor]


@dataclass(frozen=True)
class ChainState:
    """One batch of independent chains. Never mutated: kernels return a new state."""

    x: torch.Tensor                     # (N, *event)
    log_prob: torch.Tensor              # log π(x) of the density the chains target, (N,)
    grad: torch.Tensor | None           # ∇ log π(x), kept by gradient-based kernels
    momentum: torch.Tensor | None       # BAOAB only: the momenta (unit mass)
    n_accepted: torch.Tensor            # accepted proposals per chain, (N,) int64
    n_steps: int                        # steps taken since init
    accept_prob: torch.Tensor           # Metropolis acceptance probability of the last step, (N,)

    @property
    def energy(self) -> torch.Tensor:
        """−log π(x): the energy U when the density is a target at β = 1."""
        return -self.log_prob

    @property
    def acceptance_rate(self) -> torch.Tensor:
        """Fraction of accepted proposals per chain since init, (N,)."""
        return self.n_accepted.to(self.log_prob.dtype) / max(self.n_steps, 1)


@dataclass(frozen=True)
class RWMParams:
    step_size: StepSize                 # proposal std: x' = x + h·ξ


@dataclass(frozen=True)
class MALAParams:
    step_size: StepSize                 # x' = x + (h²/2)∇log π + h·ξ


@dataclass(frozen=True)
class HMCParams:
    step_size: StepSize                 # leapfrog step ε
    n_leapfrog: int = 10


@dataclass(frozen=True)
class BAOABParams:
    dt: StepSize
    friction: float = 1.0               # γ; the O step keeps a fraction exp(−γ dt) of p


Params = Union[RWMParams, MALAParams, HMCParams, BAOABParams]


def _randn_like(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)


def _log_uniform(n: int, like: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    u = torch.rand(n, generator=generator, dtype=like.dtype, device=like.device)
    return torch.log(u)


def init_state(density: LogDensity, x0: torch.Tensor, *, with_grad: bool = False,
               momentum: torch.Tensor | None = None, log_prob: torch.Tensor | None = None,
               grad: torch.Tensor | None = None) -> ChainState:
    """State at x0; pass `log_prob` (and `grad`) when already known to skip re-evaluating them."""
    density = as_log_density(density)
    x0 = x0.detach()
    if log_prob is None or (with_grad and grad is None):
        if with_grad:
            log_prob, grad = log_prob_and_grad(density, x0)
        else:
            log_prob = density(x0).detach()
    n = x0.shape[0]
    return ChainState(x0, log_prob, grad if with_grad else None, momentum,
                      torch.zeros(n, dtype=torch.int64, device=x0.device), 0,
                      torch.ones(n, dtype=log_prob.dtype, device=x0.device))


def _metropolis(state: ChainState, proposal: torch.Tensor, log_prob: torch.Tensor,
                grad: torch.Tensor | None, log_alpha: torch.Tensor,
                generator: torch.Generator) -> ChainState:
    """Per-chain accept/reject; a NaN log α (proposal off the support) is a rejection."""
    log_alpha = torch.nan_to_num(log_alpha, nan=-math.inf)
    accept = _log_uniform(log_alpha.shape[0], log_alpha, generator) < log_alpha
    keep = per_row(accept, proposal)
    new_grad = None if grad is None else torch.where(keep, grad, state.grad)
    return ChainState(torch.where(keep, proposal, state.x),
                      torch.where(accept, log_prob, state.log_prob), new_grad, state.momentum,
                      state.n_accepted + accept.long(), state.n_steps + 1,
                      torch.exp(log_alpha.clamp(max=0.0)))


def _with_grad(density: LogDensity, state: ChainState) -> ChainState:
    if state.grad is not None:
        return state
    log_prob, grad = log_prob_and_grad(density, state.x)
    return replace(state, log_prob=log_prob, grad=grad)


def rwm_step(density: LogDensity, state: ChainState, generator: torch.Generator,
             params: RWMParams) -> ChainState:
    """Random-walk Metropolis with an isotropic Gaussian proposal of std `step_size`."""
    density = as_log_density(density)
    h = per_row(params.step_size, state.x)
    proposal = state.x + h * _randn_like(state.x, generator)
    log_prob = density(proposal).detach()
    return _metropolis(state, proposal, log_prob, None, log_prob - state.log_prob, generator)


def mala_step(density: LogDensity, state: ChainState, generator: torch.Generator,
              params: MALAParams) -> ChainState:
    """Metropolis-adjusted Langevin: Langevin proposal, Metropolis–Hastings correction."""
    density = as_log_density(density)
    state = _with_grad(density, state)
    h = per_row(params.step_size, state.x)
    h2 = params.step_size ** 2                         # per chain, for the (N,) log q terms
    forward_mean = state.x + 0.5 * h * h * state.grad
    proposal = forward_mean + h * _randn_like(state.x, generator)
    log_prob, grad = log_prob_and_grad(density, proposal)
    backward_mean = proposal + 0.5 * h * h * grad
    log_q_forward = -flat_sum((proposal - forward_mean) ** 2) / (2 * h2)
    log_q_backward = -flat_sum((state.x - backward_mean) ** 2) / (2 * h2)
    log_alpha = log_prob - state.log_prob + log_q_backward - log_q_forward
    return _metropolis(state, proposal, log_prob, grad, log_alpha, generator)


def hmc_step(density: LogDensity, state: ChainState, generator: torch.Generator,
             params: HMCParams) -> ChainState:
    """Hamiltonian Monte Carlo: fresh unit-mass momenta, n_leapfrog leapfrog steps, MH test."""
    if params.n_leapfrog < 1:
        raise ValueError(f"HMC needs n_leapfrog >= 1, got {params.n_leapfrog}")
    density = as_log_density(density)
    state = _with_grad(density, state)
    eps = per_row(params.step_size, state.x)
    p0 = _randn_like(state.x, generator)
    x, grad = state.x, state.grad
    p = p0 + 0.5 * eps * grad                          # first half kick
    for i in range(params.n_leapfrog):
        x = x + eps * p                                # drift
        log_prob, grad = log_prob_and_grad(density, x)
        kick = eps if i < params.n_leapfrog - 1 else 0.5 * eps   # last kick is a half kick
        p = p + kick * grad
    h_old = -state.log_prob + 0.5 * flat_sum(p0 ** 2)
    h_new = -log_prob + 0.5 * flat_sum(p ** 2)
    return _metropolis(state, x, log_prob, grad, h_old - h_new, generator)


def baoab_step(density: LogDensity, state: ChainState, generator: torch.Generator,
               params: BAOABParams) -> ChainState:
    """One BAOAB step of underdamped Langevin dynamics (unit mass, kT = 1), unadjusted."""
    density = as_log_density(density)
    state = _with_grad(density, state)
    if state.momentum is None:
        raise ValueError("BAOAB needs momenta in the state: build it with "
                         "BAOAB.init(..., generator)")
    dt = per_row(params.dt, state.x)
    keep = torch.exp(-params.friction * torch.as_tensor(dt, dtype=state.x.dtype))
    p = state.momentum + 0.5 * dt * state.grad                      # B: half kick
    x = state.x + 0.5 * dt * p                                      # A: half drift
    p = keep * p + torch.sqrt(1 - keep ** 2) * _randn_like(p, generator)   # O: exact OU step
    x = x + 0.5 * dt * p                                            # A: half drift
    log_prob, grad = log_prob_and_grad(density, x)
    p = p + 0.5 * dt * grad                                         # B: half kick
    n = x.shape[0]
    return ChainState(x, log_prob, grad, p, state.n_accepted + 1, state.n_steps + 1,
                      torch.ones(n, dtype=x.dtype, device=x.device))


@dataclass(frozen=True)
class Kernel:
    """A named `step` with what its state needs; `init` builds a matching state."""

    name: str
    step: Callable[[LogDensity, ChainState, torch.Generator, Params], ChainState]
    needs_grad: bool
    needs_momentum: bool = False
    adjusted: bool = True               # has an accept/reject step (step size is adaptable)

    def init(self, density: LogDensity, x0: torch.Tensor,
             generator: torch.Generator | None = None, log_prob: torch.Tensor | None = None,
             grad: torch.Tensor | None = None) -> ChainState:
        momentum = None
        if self.needs_momentum:
            if generator is None:
                raise ValueError(f"{self.name}.init draws momenta: pass a torch.Generator")
            momentum = _randn_like(x0, generator)
        return init_state(density, x0, with_grad=self.needs_grad, momentum=momentum,
                          log_prob=log_prob, grad=grad)


RWM = Kernel("rwm", rwm_step, needs_grad=False)
MALA = Kernel("mala", mala_step, needs_grad=True)
HMC = Kernel("hmc", hmc_step, needs_grad=True)
BAOAB = Kernel("baoab", baoab_step, needs_grad=True, needs_momentum=True, adjusted=False)


def run_chain(kernel: Kernel, density: LogDensity, state: ChainState, generator: torch.Generator,
              params: Params, n_steps: int, thin: int = 1,
              keep_trace: bool = False) -> tuple[ChainState, torch.Tensor | None]:
    """n_steps of `kernel`; with keep_trace, also every `thin`-th x stacked: (n_kept, N, *event)."""
    if n_steps < 0 or thin < 1:
        raise ValueError(f"need n_steps >= 0 and thin >= 1, got {n_steps}, {thin}")
    density = as_log_density(density)
    trace = []
    for i in range(n_steps):
        state = kernel.step(density, state, generator, params)
        if keep_trace and (i + 1) % thin == 0:
            trace.append(state.x)
    return state, (torch.stack(trace) if keep_trace and trace else None)
